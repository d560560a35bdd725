/**
 * Agency files on disk: their names, the summaries `generate`, `import` and `ensure`
 * return, atomic writes, listing, and the removal of files a new dataset does not have.
 *
 * @module
 */
import { basename, join } from "node:path";

/** The agency file names the importer and `ensure` recognise. */
export const AGENCY_FILE: RegExp = /^agency-([1-9]\d{0,5})\.csv$/;

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
  /** The DNIs of the winning rows, in file order. */
  readonly winningDocuments: readonly string[];
}

/** What a dataset directory holds after `generate`, `import` or `ensure`. */
export interface DatasetSummary {
  /** The directory. */
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
 * Writes a file atomically: a temporary file in the same directory, then a rename.
 *
 * @param path The destination.
 * @param bytes The content.
 *
 * @example Usage
 * ```ts
 * await writeAtomically(".data/agency-1.csv", new TextEncoder().encode("Ana,Sosa,30904465,1999-03-17,7574\r\n"));
 * ```
 */
export async function writeAtomically(path: string, bytes: Uint8Array): Promise<void> {
  const dir = join(path, "..");
  const temp = await Deno.makeTempFile({ dir, prefix: `.${basename(path)}.`, suffix: ".tmp" });
  try {
    await Deno.writeFile(temp, bytes);
    // makeTempFile creates 0600; data files are read by containers running as other users.
    await Deno.chmod(temp, 0o644);
    await Deno.rename(temp, path);
  } catch (error) {
    await Deno.remove(temp).catch(() => {});
    throw error;
  }
}

/**
 * Lists the agency files of a directory.
 *
 * @param dir The directory.
 * @returns Agency number and file name, sorted by agency; empty if the directory is missing.
 *
 * @example Usage
 * ```ts
 * const files = await listAgencyFiles(".data");
 * // [{ agency: 1, name: "agency-1.csv" }, …]
 * ```
 */
export async function listAgencyFiles(
  dir: string,
): Promise<{ agency: number; name: string }[]> {
  const found: { agency: number; name: string }[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      const match = AGENCY_FILE.exec(entry.name);
      if (match && (entry.isFile || entry.isSymlink)) {
        found.push({ agency: Number(match[1]), name: entry.name });
      }
    }
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
  return found.sort((a, b) => a.agency - b.agency);
}

/**
 * Removes the agency files whose number is not in `keep`, so a directory holds one
 * consistent dataset.
 *
 * @param dir The directory.
 * @param keep The agency numbers of the new dataset.
 * @returns The removed file names.
 *
 * @example Usage
 * ```ts
 * const removed = await removeOtherAgencyFiles(".data", new Set([1, 2]));
 * // ["agency-3.csv"] when a third file was left from an earlier dataset
 * ```
 */
export async function removeOtherAgencyFiles(
  dir: string,
  keep: ReadonlySet<number>,
): Promise<string[]> {
  const removed: string[] = [];
  for (const { agency, name } of await listAgencyFiles(dir)) {
    if (!keep.has(agency)) {
      await Deno.remove(join(dir, name));
      removed.push(name);
    }
  }
  return removed;
}

/**
 * Totals the files of a dataset.
 *
 * @param dir The directory.
 * @param files The agency files, by agency number.
 * @param removed The stale files removed.
 * @returns The summary, with total rows and winners.
 *
 * @example Usage
 * ```ts
 * summarizeDataset(".data", [], []); // { dir: ".data", files: [], rows: 0, winners: 0, removed: [] }
 * ```
 */
export function summarizeDataset(
  dir: string,
  files: AgencyFileSummary[],
  removed: string[],
): DatasetSummary {
  return {
    dir,
    files,
    rows: files.reduce((sum, file) => sum + file.rows, 0),
    winners: files.reduce((sum, file) => sum + file.winners, 0),
    removed,
  };
}
