/**
 * The project's bet data: a seeded, deterministic generator of agency files in the
 * course's format, an importer for the course's `dataset.zip`, and `ensure` for the demo.
 * The CLI is `main.ts` (`deno task dataset`).
 *
 * Each file `agency-{N}.csv` holds `first_name,last_name,document,birthdate,number` rows,
 * no header, CRLF line endings, UTF-8. Generated files carry an exact, known number of
 * winning bets (number 7574) and DNIs that are unique across the whole dataset.
 *
 * @example Usage
 * ```ts
 * import { generateDataset } from "./mod.ts";
 *
 * const summary = await generateDataset({ dir: ".data", agencies: 5, betsPerAgency: 20000 });
 * // summary.winners === 100
 * ```
 *
 * @module
 */
export { type AgencyCsv, type AgencyCsvOptions, generateAgencyCsv } from "./agency_csv.ts";
export { ensureDataset, type EnsureResult } from "./ensure.ts";
export { DatasetError } from "./errors.ts";
export { type AgencyFileSummary, type DatasetSummary, listAgencyFiles } from "./files.ts";
export { generateDataset, type GenerateOptions } from "./generate.ts";
export { importDataset, type ImportOptions } from "./import.ts";
export { DATASET_DEFAULTS } from "./options.ts";
