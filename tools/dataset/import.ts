/**
 * `import`: copies the agency files of a course-style `dataset.zip` into a directory,
 * after checking that each one is UTF-8 with five fields a row.
 *
 * @module
 */
import { join } from "node:path";
import { unzipSync } from "fflate";
import { WINNING_NUMBER } from "../../shared/bet.ts";
import { DatasetError } from "./errors.ts";
import {
  AGENCY_FILE,
  type AgencyFileSummary,
  type DatasetSummary,
  removeOtherAgencyFiles,
  summarizeDataset,
  writeAtomically,
} from "./files.ts";
import { DATASET_DEFAULTS } from "./options.ts";

/** Reads an agency file's content: row count and winners; throws on a malformed row. */
function inspectAgencyCsv(name: string, bytes: Uint8Array): { rows: number; winners: string[] } {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch (error) {
    throw new DatasetError(`Cannot import dataset: ${name} is not UTF-8 text`, { cause: error });
  }
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  const winners: string[] = [];
  let rows = 0;
  for (const [index, raw] of lines.entries()) {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (line === "") continue;
    const fields = line.split(",");
    if (fields.length !== 5) {
      throw new DatasetError(
        `Cannot import dataset: ${name} line ${
          index + 1
        } has ${fields.length} fields, expected 5 (first_name,last_name,document,birthdate,number)`,
      );
    }
    rows++;
    if (Number(fields[4]) === WINNING_NUMBER) winners.push(fields[2]!);
  }
  return { rows, winners };
}

/** Options of {@linkcode importDataset}. */
export interface ImportOptions {
  /**
   * Output directory, created if missing.
   *
   * @default {".data"}
   */
  readonly dir?: string;
}

/**
 * Imports a course-style `dataset.zip` (entries `agency-1.csv` … `agency-N.csv`, at the
 * top or inside one folder) into a directory. Each file is checked (UTF-8, five fields a
 * row) and written atomically; agency files the zip does not have are removed.
 *
 * @param zipPath The zip file.
 * @param options The output directory.
 * @returns What was imported.
 * @throws {DatasetError} If the file is missing, not a zip, has no agency files, has
 * an agency file twice, or one of them is malformed.
 *
 * @example Usage
 * ```ts
 * const summary = await importDataset("dataset.zip", { dir: ".data" });
 * // summary.files.length === 5
 * ```
 */
export async function importDataset(
  zipPath: string,
  options: ImportOptions = {},
): Promise<DatasetSummary> {
  const dir = options.dir ?? DATASET_DEFAULTS.dir;
  let zipped: Uint8Array;
  try {
    zipped = await Deno.readFile(zipPath);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new DatasetError(`Cannot import dataset: file "${zipPath}" not found`, {
        cause: error,
      });
    }
    if (error instanceof Deno.errors.IsADirectory) {
      throw new DatasetError(`Cannot import dataset: "${zipPath}" is a directory`, {
        cause: error,
      });
    }
    throw error;
  }

  const entries = new Map<number, { name: string; entry: string }>();
  let unzipped: Record<string, Uint8Array>;
  try {
    unzipped = unzipSync(zipped, {
      filter(file) {
        const parts = file.name.split("/");
        const name = parts.at(-1) ?? "";
        const match = AGENCY_FILE.exec(name);
        // Ignore macOS resource forks and anything nested deeper than one folder.
        if (!match || parts.length > 2 || parts[0] === "__MACOSX") return false;
        const agency = Number(match[1]);
        const previous = entries.get(agency);
        if (previous) {
          throw new DatasetError(
            `Cannot import dataset: "${zipPath}" has ${name} twice ("${previous.entry}" and "${file.name}")`,
          );
        }
        entries.set(agency, { name, entry: file.name });
        return true;
      },
    });
  } catch (error) {
    if (error instanceof DatasetError) throw error;
    throw new DatasetError(
      `Cannot import dataset: "${zipPath}" is not a valid zip archive (${
        error instanceof Error ? error.message : String(error)
      })`,
      { cause: error },
    );
  }
  if (entries.size === 0) {
    throw new DatasetError(
      `Cannot import dataset: "${zipPath}" has no agency-N.csv entries at its top or in one folder`,
    );
  }

  const checked = [...entries.entries()].sort(([a], [b]) => a - b).map(([agency, found]) => {
    const bytes = unzipped[found.entry]!;
    return { agency, name: found.name, bytes, ...inspectAgencyCsv(found.name, bytes) };
  });
  await Deno.mkdir(dir, { recursive: true });
  const files: AgencyFileSummary[] = [];
  for (const { agency, name, bytes, rows, winners } of checked) {
    const path = join(dir, name);
    await writeAtomically(path, bytes);
    files.push({ agency, path, rows, winners: winners.length, winningDocuments: winners });
  }
  const removed = await removeOtherAgencyFiles(dir, new Set(entries.keys()));
  return summarizeDataset(dir, files, removed);
}
