/**
 * The bench's data: the agency files of a run, imported from a course-style zip or
 * generated, each file repeated `--repeat` times, under `.bench/data/` (git ignores
 * `.bench/`).
 *
 * @module
 */
import { basename, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { concatBytes, CR, LF, writeAll } from "../../shared/bytes.ts";
import { UsageError } from "../_cli.ts";
import {
  type AgencyFileSummary,
  type DatasetSummary,
  generateDataset,
  importDataset,
} from "../dataset/mod.ts";
import type { BenchOptions } from "./args.ts";

/** The bench's own folder, `.bench/` at the repository root. */
export const BENCH_DIR: string = fileURLToPath(new URL("../../.bench", import.meta.url));

/** An agency file ready for a run: absolute path, rows and winners with repeats, and size. */
export interface AgencyData extends AgencyFileSummary {
  readonly bytes: number;
}

/** The prepared dataset. */
export interface PreparedData {
  /** What the report calls it, e.g. `course dataset ×10`. */
  readonly label: string;
  /** The agency files, by agency number. */
  readonly files: readonly AgencyData[];
}

/** Options of {@linkcode prepareData}: the data options of the command line. */
export interface DataOptions
  extends Pick<BenchOptions, "dataset" | "agencies" | "betsPerAgency" | "repeat"> {
  /** Where the data goes; what was there is removed first. @default ".bench/data" */
  readonly dataRoot?: string;
}

/**
 * Prepares the agency files under `.bench/data/`: imports the zip or generates data,
 * then writes each file repeated. The report's label names the data, e.g. `course dataset
 * ×10`.
 *
 * @throws {UsageError} If the zip does not exist.
 */
export async function prepareData(
  options: DataOptions,
  log: (message: string) => void,
): Promise<PreparedData> {
  const { dataset, agencies, betsPerAgency, repeat, dataRoot = join(BENCH_DIR, "data") } = options;
  const zip = dataset === undefined ? undefined : resolve(dataset);
  if (zip !== undefined && !(await Deno.stat(zip).then((info) => info.isFile, () => false))) {
    throw new UsageError(`Cannot run bench: dataset "${dataset}" not found`);
  }
  const name = zip === undefined
    ? `generated ${agencies}×${betsPerAgency}`
    : basename(zip) === "dataset.zip"
    ? "course dataset"
    : basename(zip);
  await Deno.remove(dataRoot, { recursive: true }).catch(() => {});
  log(`preparing data in ${dataRoot}`);
  const base = join(dataRoot, "base");
  const summary: DatasetSummary = zip !== undefined
    ? await importDataset(zip, base)
    : await generateDataset({ dir: base, agencies, betsPerAgency });
  const files: AgencyData[] = [];
  for (const { agency, path: source, rows, winners } of summary.files) {
    const path = resolve(repeat === 1 ? source : join(dataRoot, basename(source)));
    if (repeat > 1) await writeRepeated(source, path, repeat);
    const { size } = await Deno.stat(path);
    files.push({ agency, path, rows: rows * repeat, winners: winners * repeat, bytes: size });
  }
  return { label: `${name} ×${repeat}`, files };
}

/**
 * Writes `source` `repeat` times into `target`, ending it with CRLF first when it has no
 * final line break, so rows never join across copies.
 */
async function writeRepeated(source: string, target: string, repeat: number): Promise<void> {
  let bytes: Uint8Array = await Deno.readFile(source);
  if (bytes.length > 0 && bytes[bytes.length - 1] !== LF) {
    bytes = concatBytes([bytes, new Uint8Array([CR, LF])]);
  }
  using file = await Deno.open(target, { write: true, create: true, truncate: true });
  for (let i = 0; i < repeat; i++) await writeAll(file, bytes);
}
