/**
 * `ensure`: generates the default dataset only when a directory has no agency file, so
 * the demo always has data and never overwrites data someone imported.
 *
 * @module
 */
import { basename } from "node:path";
import { type DatasetSummary, listAgencyFiles } from "./files.ts";
import { generateDataset } from "./generate.ts";
import { checkInteger, MAX_AGENCIES } from "./options.ts";

/** The result of {@linkcode ensureDataset}. */
export interface EnsureResult {
  /** Whether default data was generated (the directory had no agency file). */
  readonly generated: boolean;
  /** The summary of what was generated, when it was. */
  readonly summary?: DatasetSummary;
  /** The agency file names present afterwards. */
  readonly files: readonly string[];
  /** Agencies in 1..`agencies` that still have no file (only when data already existed). */
  readonly missing: readonly number[];
}

/**
 * Generates the default dataset (seed 42, 20000 bets per agency, 20 winners each) only
 * when the directory has no `agency-*.csv` at all; existing data, generated or imported,
 * is kept as is.
 *
 * @param dir The data directory, e.g. `.data`.
 * @param agencies How many agencies the caller needs.
 * @returns Whether data was generated, the files present, and any agency still missing.
 *
 * @example Usage
 * ```ts
 * const { generated, missing } = await ensureDataset(".data", 5);
 * ```
 */
export async function ensureDataset(dir: string, agencies: number): Promise<EnsureResult> {
  checkInteger("agencies", agencies, 1, MAX_AGENCIES);
  const existing = await listAgencyFiles(dir);
  if (existing.length > 0) {
    const present = new Set(existing.map((file) => file.agency));
    const missing: number[] = [];
    for (let agency = 1; agency <= agencies; agency++) {
      if (!present.has(agency)) missing.push(agency);
    }
    return { generated: false, files: existing.map((file) => file.name), missing };
  }
  const summary = await generateDataset({ dir, agencies });
  return {
    generated: true,
    summary,
    files: summary.files.map((file) => basename(file.path)),
    missing: [],
  };
}
