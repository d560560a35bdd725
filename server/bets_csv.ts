/**
 * The rows of `bets.csv`, as the course's `store_bets` writes them: columns agency,
 * first_name, last_name, document, birthdate, number; minimal quoting; CRLF endings
 * (Python's `csv.writer`). Formatting and parsing only: no files here, so validation
 * (`batch_rows.ts`) and storage (`storage.ts`) both use it without importing each other.
 *
 * @module
 */
import { stringify } from "csv-stringify/sync";
import { type Bet, type BetFields, hasWon } from "../shared/bet.ts";
import { splitCsvLine } from "../shared/csv_line.ts";

/** `bets.csv` rows ready to store (whole, CRLF-terminated), how many, and how many win. */
export interface BetRows {
  readonly rows: Uint8Array;
  readonly count: number;
  readonly winners: number;
}

const encoder = new TextEncoder();

/**
 * Parses one `bets.csv` row (without its line ending).
 *
 * @throws {SyntaxError} If it does not have the six columns.
 */
export function parseRow(line: string): Bet {
  const fields = splitCsvLine(line);
  if (fields === undefined || fields.length !== 6) {
    throw new SyntaxError(`Cannot parse bets.csv row "${line}": expected 6 columns`);
  }
  return {
    agency: Number(fields[0]),
    firstName: fields[1]!,
    lastName: fields[2]!,
    document: fields[3]!,
    birthdate: fields[4]!,
    number: Number(fields[5]),
  };
}

/** An agency's bets as `bets.csv` text: CRLF rows, as the course's `store_bets` writes them. */
export function formatBetRows(agency: number, bets: readonly BetFields[]): string {
  return stringify(
    bets.map((b) => [agency, b.firstName, b.lastName, b.document, b.birthdate, b.number]),
    // csv-stringify alone quotes only a whole CRLF; Python quotes a lone CR or LF too.
    { record_delimiter: "windows", quoted_match: /[\r\n]/ },
  );
}

/** An agency's validated bets as rows to store (the reference path; batch_rows.ts is fast). */
export function betRows(agency: number, bets: readonly BetFields[]): BetRows {
  let winners = 0;
  for (const bet of bets) if (hasWon(bet)) winners++;
  return { rows: encoder.encode(formatBetRows(agency, bets)), count: bets.length, winners };
}
