/**
 * Streams an agency's CSV (`first_name,last_name,document,birthdate,number`, CRLF or LF
 * lines, no header) as bets, never holding the whole file.
 *
 * @module
 */
import { createReadStream } from "node:fs";
import { parse as parseCsv } from "csv-parse";
import type { BetFields } from "../shared/bet.ts";

/** A line of the agency's CSV could not be read as a bet. */
export class BetsFileError extends SyntaxError {
  /** The file. */
  readonly path: string;
  /** The 1-based line number. */
  readonly line: number;

  /**
   * @param path The file.
   * @param line The line.
   * @param detail What was wrong.
   * @param options Standard error options.
   */
  constructor(path: string, line: number, detail: string, options?: ErrorOptions) {
    super(`Cannot read bets from ${path} line ${line}: ${detail}`, options);
    this.name = "BetsFileError";
    this.path = path;
    this.line = line;
  }
}

/**
 * Reads bets one by one from an agency CSV file.
 *
 * @param path The file.
 * @returns The bets in file order.
 * @throws {BetsFileError} For a line without 5 fields or with a non-numeric number.
 * @throws {Deno.errors.NotFound} When the file is missing.
 */
export async function* readBets(path: string): AsyncGenerator<BetFields> {
  await Deno.stat(path);
  const parser = createReadStream(path).pipe(parseCsv({ trim: false, skip_empty_lines: true }));
  let line = 0;
  try {
    for await (const row of parser as AsyncIterable<string[]>) {
      line++;
      if (row.length !== 5) {
        throw new BetsFileError(path, parser.info.lines, `expected 5 fields, found ${row.length}`);
      }
      const [firstName, lastName, document, birthdate, number] = row as [
        string,
        string,
        string,
        string,
        string,
      ];
      if (!/^\d{1,4}$/.test(number)) {
        throw new BetsFileError(path, parser.info.lines, `number "${number}" is not 0-9999`);
      }
      yield { firstName, lastName, document, birthdate, number: Number(number) };
    }
  } catch (error) {
    if (error instanceof BetsFileError) throw error;
    const detail = error instanceof Error ? error.message : String(error);
    throw new BetsFileError(path, line + 1, detail, { cause: error });
  } finally {
    parser.destroy();
  }
}
