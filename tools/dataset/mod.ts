/**
 * The project's bet data on disk: `generate` writes a seeded, deterministic dataset,
 * `import` copies the course's `dataset.zip`, and `ensure` generates one for the demo
 * only where there is none. The CLI is `main.ts` (`deno task dataset`).
 *
 * Each file `agency-{N}.csv` holds `first_name,last_name,document,birthdate,number` rows,
 * no header, CRLF line endings, UTF-8. Generated files carry an exact, known number of
 * winning bets (number 7574) and DNIs that are unique across the whole dataset. A folder
 * always holds one dataset: agency files the new one does not have are removed.
 *
 * @example Usage
 * ```ts
 * const summary = await generateDataset({ dir: ".data", agencies: 5, betsPerAgency: 20000 });
 * // summary.winners === 100
 * ```
 *
 * @module
 */
import { join } from "node:path";
import { unzipSync } from "fflate";
import { WINNING_NUMBER } from "../../shared/bet.ts";
import { ToolError, UsageError, writeFileAtomic } from "../_cli.ts";
import { checkOption, DATASET_DEFAULTS, generateAgencyCsv } from "./agency_csv.ts";
import { DNI_COUNT } from "./random.ts";

export { DATASET_DEFAULTS };

/** The agency file names `import` and `ensure` recognise. */
const AGENCY_FILE = /^agency-([1-9]\d{0,5})\.csv$/;

/** One agency file of a dataset, as written or imported. */
export interface AgencyFileSummary {
  /** The agency number. */
  readonly agency: number;
  /** The file's path. */
  readonly path: string;
  /** Number of rows (bets). */
  readonly rows: number;
  /** Number of rows whose number is 7574. */
  readonly winners: number;
}

/** What a dataset folder holds after `generate` or `import`. */
export interface DatasetSummary {
  /** The folder. */
  readonly dir: string;
  /** One entry per agency file, by agency number. */
  readonly files: readonly AgencyFileSummary[];
  /** Total rows. */
  readonly rows: number;
  /** Total winners. */
  readonly winners: number;
  /** Agency files removed because the new dataset does not have them. */
  readonly removed: readonly string[];
}

/**
 * Lists the agency files of a folder.
 *
 * @param dir The folder.
 * @returns Agency number and file name, sorted by agency; empty if the folder is missing.
 */
export async function listAgencyFiles(dir: string): Promise<{ agency: number; name: string }[]> {
  const found: { agency: number; name: string }[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      const match = AGENCY_FILE.exec(entry.name);
      if (match && !entry.isDirectory) found.push({ agency: Number(match[1]), name: entry.name });
    }
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
  return found.sort((a, b) => a.agency - b.agency);
}

/** Writes a dataset's files, removes the folder's other agency files and totals it. */
async function writeDataset(
  dir: string,
  files: readonly {
    agency: number;
    name: string;
    bytes: Uint8Array;
    rows: number;
    winners: number;
  }[],
): Promise<DatasetSummary> {
  await Deno.mkdir(dir, { recursive: true });
  // Every target first: a folder where a file goes (what Docker leaves where it mounted a
  // missing file) would otherwise stop the writing half-way.
  for (const { name } of files) {
    if ((await Deno.lstat(join(dir, name)).catch(() => undefined))?.isDirectory) {
      throw new ToolError(
        `Cannot write ${join(dir, name)}: it is a folder, not a file (Docker makes one where a ` +
          "mounted file is missing); remove it with rmdir and run again",
      );
    }
  }
  const written: AgencyFileSummary[] = [];
  for (const { agency, name, bytes, rows, winners } of files) {
    const path = join(dir, name);
    // World-readable: containers running as other users read the data.
    await writeFileAtomic(path, bytes, 0o644);
    written.push({ agency, path, rows, winners });
  }
  const keep = new Set(files.map((file) => file.agency));
  const removed: string[] = [];
  for (const { agency, name } of await listAgencyFiles(dir)) {
    if (keep.has(agency)) continue;
    await Deno.remove(join(dir, name));
    removed.push(name);
  }
  return {
    dir,
    files: written,
    rows: written.reduce((sum, file) => sum + file.rows, 0),
    winners: written.reduce((sum, file) => sum + file.winners, 0),
    removed,
  };
}

/** Options of {@linkcode generateDataset}; every default is in {@linkcode DATASET_DEFAULTS}. */
export interface GenerateOptions {
  /** Output folder, created if missing. */
  readonly dir?: string;
  /** Number of agency files. */
  readonly agencies?: number;
  /** Rows in each file. */
  readonly betsPerAgency?: number;
  /** PRNG seed. */
  readonly seed?: number;
  /** Share of winning rows in each file. */
  readonly winnerShare?: number;
}

/**
 * Generates `agency-1.csv` … `agency-N.csv` into a folder, deterministically from the
 * seed, with DNIs unique across the files.
 *
 * @param options Folder, size, seed and winner share.
 * @returns What was written.
 * @throws {UsageError} If an option is out of range; {@linkcode ToolError} if an agency
 *   file's path is a folder (nothing is written then).
 */
export async function generateDataset(options: GenerateOptions = {}): Promise<DatasetSummary> {
  const { dir, agencies, betsPerAgency, seed, winnerShare } = { ...DATASET_DEFAULTS, ...options };
  checkOption("agencies", agencies, [1, 10_000]);
  if (agencies * betsPerAgency > DNI_COUNT) {
    throw new UsageError(
      `Cannot generate dataset: ${agencies} agencies of ${betsPerAgency} bets exceed the ${DNI_COUNT} distinct 8-digit DNIs`,
    );
  }
  const files = Array.from({ length: agencies }, (_, i) => {
    const agency = i + 1;
    const csv = generateAgencyCsv({ agency, rows: betsPerAgency, seed, winnerShare });
    return { agency, name: `agency-${agency}.csv`, ...csv };
  });
  return await writeDataset(dir, files);
}

/** Counts an agency file's rows and winners; throws on a row that is not five fields. */
function inspectAgencyCsv(name: string, bytes: Uint8Array): { rows: number; winners: number } {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch (error) {
    throw new ToolError(`Cannot import dataset: ${name} is not UTF-8 text`, { cause: error });
  }
  let rows = 0;
  let winners = 0;
  for (const [index, raw] of text.split("\n").entries()) {
    const line = raw.replace(/\r$/, "");
    if (line === "") continue;
    const fields = line.split(",");
    if (fields.length !== 5) {
      throw new ToolError(
        `Cannot import dataset: ${name} line ${
          index + 1
        } has ${fields.length} fields, expected 5 (first_name,last_name,document,birthdate,number)`,
      );
    }
    rows++;
    if (Number(fields[4]) === WINNING_NUMBER) winners++;
  }
  return { rows, winners };
}

/**
 * Imports a course-style `dataset.zip` (entries `agency-1.csv` … `agency-N.csv`, at the
 * top or inside one folder) into a folder. Every file is checked (UTF-8, five fields a
 * row) before any is written.
 *
 * @param zipPath The zip file.
 * @param dir The output folder.
 * @returns What was imported.
 * @throws {UsageError} If the file is missing; {@linkcode ToolError} if it is not a zip,
 *   has no agency files, has one twice, one of them is malformed, or its path in `dir`
 *   is a folder (nothing is written then).
 */
export async function importDataset(
  zipPath: string,
  dir: string = DATASET_DEFAULTS.dir,
): Promise<DatasetSummary> {
  let zipped: Uint8Array;
  try {
    zipped = await Deno.readFile(zipPath);
  } catch (error) {
    const what = error instanceof Deno.errors.IsADirectory ? "is a directory" : "not found";
    throw new UsageError(`Cannot import dataset: file "${zipPath}" ${what}`, { cause: error });
  }
  const entries = new Map<number, string>();
  let unzipped: Record<string, Uint8Array>;
  try {
    unzipped = unzipSync(zipped, {
      filter(file) {
        const parts = file.name.split("/");
        const match = AGENCY_FILE.exec(parts.at(-1)!);
        // Ignore macOS resource forks and anything nested deeper than one folder.
        if (!match || parts.length > 2 || parts[0] === "__MACOSX") return false;
        const previous = entries.get(Number(match[1]));
        if (previous !== undefined) {
          throw new ToolError(
            `Cannot import dataset: "${zipPath}" has ${
              match[0]
            } twice ("${previous}" and "${file.name}")`,
          );
        }
        entries.set(Number(match[1]), file.name);
        return true;
      },
    });
  } catch (error) {
    if (error instanceof ToolError) throw error;
    throw new ToolError(
      `Cannot import dataset: "${zipPath}" is not a valid zip archive (${
        (error as Error).message
      })`,
    );
  }
  if (entries.size === 0) {
    throw new ToolError(
      `Cannot import dataset: "${zipPath}" has no agency-N.csv entries at its top or in one folder`,
    );
  }
  const files = [...entries].sort(([a], [b]) => a - b).map(([agency, entry]) => {
    const name = entry.split("/").at(-1)!;
    const bytes = unzipped[entry]!;
    return { agency, name, bytes, ...inspectAgencyCsv(name, bytes) };
  });
  return await writeDataset(dir, files);
}

/**
 * Generates the default dataset only when the folder has no `agency-*.csv` at all;
 * existing data, generated or imported, is kept as is.
 *
 * @param dir The data folder, e.g. `.data`.
 * @param agencies How many agencies the caller needs.
 * @returns The summary when data was generated, and the agencies in 1..`agencies` that
 *   still have no file (only when data already existed).
 */
export async function ensureDataset(
  dir: string,
  agencies: number,
): Promise<{ generated?: DatasetSummary; kept: number; missing: number[] }> {
  const existing = await listAgencyFiles(dir);
  if (existing.length === 0) {
    return { generated: await generateDataset({ dir, agencies }), kept: 0, missing: [] };
  }
  const present = new Set(existing.map((file) => file.agency));
  const missing = Array.from({ length: agencies }, (_, i) => i + 1).filter((a) => !present.has(a));
  return { kept: existing.length, missing };
}
