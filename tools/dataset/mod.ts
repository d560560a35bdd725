/**
 * The project's bet data on disk (`agency-{N}.csv`, CRLF, no header): generated (seeded, with
 * a known number of winners and unique DNIs) or imported; a folder holds one dataset.
 *
 * @module
 */
import { join } from "node:path";
import { unzipSync } from "fflate";
import { WINNING_NUMBER } from "../../shared/bet.ts";
import { ToolError, UsageError, writeFileAtomic } from "../_cli.ts";
import {
  type AgencyCsv,
  type AgencyCsvOptions,
  checkOption,
  DATASET_DEFAULTS,
  generateAgencyCsv,
} from "./agency_csv.ts";
import { DNI_COUNT } from "./random.ts";

export { DATASET_DEFAULTS };

/** The agency file names `import` and {@linkcode ensureDataset} recognise. */
const AGENCY_FILE = /^agency-([1-9]\d{0,5})\.csv$/;

/** One agency file of a dataset, as written or imported: its rows (bets) and winners (7574). */
export interface AgencyFileSummary {
  readonly agency: number;
  readonly path: string;
  readonly rows: number;
  readonly winners: number;
}

/**
 * What a dataset folder holds after `generate` or `import`: one entry per agency file, by
 * agency number, the total rows and winners, and the agency files `removed` because the
 * new dataset does not have them.
 */
export interface DatasetSummary {
  readonly dir: string;
  readonly files: readonly AgencyFileSummary[];
  readonly rows: number;
  readonly winners: number;
  readonly removed: readonly string[];
}

/** The agency files of a folder by agency number; none when the folder is missing. */
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
  files: readonly (AgencyCsv & { readonly agency: number })[],
): Promise<DatasetSummary> {
  const pathOf = (agency: number) => join(dir, `agency-${agency}.csv`);
  await Deno.mkdir(dir, { recursive: true });
  // Every target first: a folder where a file goes (what Docker leaves where it mounted a
  // missing file) would otherwise stop the writing half-way.
  for (const { agency } of files) {
    if ((await Deno.lstat(pathOf(agency)).catch(() => undefined))?.isDirectory) {
      throw new ToolError(
        `Cannot write ${pathOf(agency)}: it is a folder, not a file (Docker makes one where a ` +
          "mounted file is missing); remove it with rmdir and run again",
      );
    }
  }
  // World-readable: containers running as other users read the data.
  for (const { agency, bytes } of files) await writeFileAtomic(pathOf(agency), bytes, 0o644);
  const removed = (await listAgencyFiles(dir)).filter(({ agency }) =>
    !files.some((file) => file.agency === agency)
  ).map(({ name }) => name);
  for (const name of removed) await Deno.remove(join(dir, name));
  return {
    dir,
    files: files.map(({ agency, rows, winners }) => ({
      agency,
      path: pathOf(agency),
      rows,
      winners,
    })),
    rows: files.reduce((sum, file) => sum + file.rows, 0),
    winners: files.reduce((sum, file) => sum + file.winners, 0),
    removed,
  };
}

/** Options of {@linkcode generateDataset}; every default is in {@linkcode DATASET_DEFAULTS}. */
export interface GenerateOptions extends Pick<AgencyCsvOptions, "seed" | "winnerShare"> {
  /** Output folder, created if missing. */
  readonly dir?: string;
  /** Number of agency files. */
  readonly agencies?: number;
  /** Rows in each file. */
  readonly betsPerAgency?: number;
}

/**
 * Generates `agency-1.csv` … `agency-N.csv` into a folder, deterministically from the
 * seed, with DNIs unique across the files.
 *
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
  const files = Array.from({ length: agencies }, (_, i) => ({
    agency: i + 1,
    ...generateAgencyCsv({ agency: i + 1, rows: betsPerAgency, seed, winnerShare }),
  }));
  return await writeDataset(dir, files);
}

/** The agency of a zip entry `agency-N.csv` at the top or in one folder, not under `__MACOSX`. */
function agencyOf(entry: string): number | undefined {
  const parts = entry.split("/");
  const match = AGENCY_FILE.exec(parts.at(-1)!);
  return match && parts.length <= 2 && parts[0] !== "__MACOSX" ? Number(match[1]) : undefined;
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
      const found = `line ${index + 1} has ${fields.length} fields`;
      throw new ToolError(
        `Cannot import dataset: ${name} ${found}, expected 5 (first_name,last_name,document,birthdate,number)`,
      );
    }
    rows++;
    if (Number(fields[4]) === WINNING_NUMBER) winners++;
  }
  return { rows, winners };
}

/**
 * Imports a course-style `dataset.zip` into a folder, every file checked before any is written.
 *
 * @throws {UsageError} If the file is missing; {@linkcode ToolError} if it is not a valid dataset.
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
  // Checked as the archive is read, so an entry name that comes twice is seen twice.
  const entries = new Map<number, string>();
  let unzipped: Record<string, Uint8Array>;
  try {
    unzipped = unzipSync(zipped, {
      filter({ name }) {
        const agency = agencyOf(name);
        if (agency === undefined) return false;
        const previous = entries.get(agency);
        if (previous !== undefined) {
          const twice = `agency-${agency}.csv twice ("${previous}" and "${name}")`;
          throw new ToolError(`Cannot import dataset: "${zipPath}" has ${twice}`);
        }
        entries.set(agency, name);
        return true;
      },
    });
  } catch (error) {
    if (error instanceof ToolError) throw error;
    const why = (error as Error).message;
    throw new ToolError(`Cannot import dataset: "${zipPath}" is not a valid zip archive (${why})`);
  }
  if (entries.size === 0) {
    throw new ToolError(
      `Cannot import dataset: "${zipPath}" has no agency-N.csv entries at its top or in one folder`,
    );
  }
  const files = [...entries].sort(([a], [b]) => a - b).map(([agency, entry]) => {
    const bytes = unzipped[entry]!;
    return { agency, bytes, ...inspectAgencyCsv(`agency-${agency}.csv`, bytes) };
  });
  return await writeDataset(dir, files);
}

/**
 * Generates the default dataset only when the folder (e.g. `.data`) has no `agency-*.csv`
 * at all; existing data, generated or imported, is kept as is, and the agencies in
 * 1..`agencies` that have no file are named.
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
