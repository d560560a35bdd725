/**
 * `generate`: writes a whole seeded dataset, `agency-1.csv` … `agency-N.csv`, into a
 * directory, with DNIs unique across its files.
 *
 * @module
 */
import { join } from "node:path";
import { generateAgencyCsv } from "./agency_csv.ts";
import {
  type AgencyFileSummary,
  type DatasetSummary,
  removeOtherAgencyFiles,
  summarizeDataset,
  writeAtomically,
} from "./files.ts";
import {
  checkInteger,
  checkShare,
  DATASET_DEFAULTS,
  MAX_AGENCIES,
  MAX_BETS_PER_AGENCY,
  MAX_SEED,
} from "./options.ts";
import { DNI_COUNT } from "./random.ts";

/** Options of {@linkcode generateDataset}. */
export interface GenerateOptions {
  /**
   * Output directory, created if missing.
   *
   * @default {".data"}
   */
  readonly dir?: string;
  /**
   * Number of agency files.
   *
   * @default {5}
   */
  readonly agencies?: number;
  /**
   * Rows in each file.
   *
   * @default {20000}
   */
  readonly betsPerAgency?: number;
  /**
   * PRNG seed.
   *
   * @default {42}
   */
  readonly seed?: number;
  /**
   * Share of winning rows in each file.
   *
   * @default {0.001}
   */
  readonly winnerShare?: number;
  /** Called after each file is written. */
  readonly onProgress?: (file: AgencyFileSummary, total: number) => void;
}

/**
 * Generates `agency-1.csv` … `agency-N.csv` into a directory, each written atomically,
 * and removes other agency files there so the directory holds one consistent dataset.
 *
 * @param options Directory, size, seed and winner share.
 * @returns What was written.
 * @throws {RangeError} If an option is out of range.
 *
 * @example Usage
 * ```ts
 * const summary = await generateDataset({ dir: ".data", agencies: 5, betsPerAgency: 20000 });
 * // summary.winners === 100
 * ```
 */
export async function generateDataset(options: GenerateOptions = {}): Promise<DatasetSummary> {
  const dir = options.dir ?? DATASET_DEFAULTS.dir;
  const agencies = options.agencies ?? DATASET_DEFAULTS.agencies;
  const betsPerAgency = options.betsPerAgency ?? DATASET_DEFAULTS.betsPerAgency;
  const seed = options.seed ?? DATASET_DEFAULTS.seed;
  const winnerShare = options.winnerShare ?? DATASET_DEFAULTS.winnerShare;
  checkInteger("agencies", agencies, 1, MAX_AGENCIES);
  checkInteger("bets per agency", betsPerAgency, 0, MAX_BETS_PER_AGENCY);
  checkInteger("seed", seed, 0, MAX_SEED);
  checkShare(winnerShare);
  if (agencies * betsPerAgency > DNI_COUNT) {
    throw new RangeError(
      `Cannot generate dataset: ${agencies} agencies of ${betsPerAgency} bets exceed the ${DNI_COUNT} distinct 8-digit DNIs`,
    );
  }

  await Deno.mkdir(dir, { recursive: true });
  const files: AgencyFileSummary[] = [];
  for (let agency = 1; agency <= agencies; agency++) {
    const csv = generateAgencyCsv({ agency, rows: betsPerAgency, seed, winnerShare });
    const path = join(dir, `agency-${agency}.csv`);
    await writeAtomically(path, csv.bytes);
    const file = {
      agency,
      path,
      rows: csv.rows,
      winners: csv.winners,
      winningDocuments: csv.winningDocuments,
    };
    files.push(file);
    options.onProgress?.(file, agencies);
  }
  const removed = await removeOtherAgencyFiles(dir, new Set(files.map((file) => file.agency)));
  return summarizeDataset(dir, files, removed);
}
