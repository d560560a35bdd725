/**
 * The bench's data: the agency files of a run, imported from a course-style zip or
 * generated, each file repeated `--repeat` times, cached under `.bench/data/` (git
 * ignores `.bench/`) so the next run with the same options reuses them.
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
  /** Where cached datasets live; everything else in it is removed. @default ".bench/data" */
  readonly dataRoot?: string;
}

/**
 * The cache key (safe as a file name) and the report's label of a dataset. A zip's key
 * includes its size and mtime, so an edited zip is imported again.
 *
 * @throws {UsageError} If the zip does not exist.
 */
export async function datasetKey(options: DataOptions): Promise<{ key: string; label: string }> {
  const { agencies, betsPerAgency, repeat } = options;
  if (options.dataset === undefined) {
    return {
      key: `gen-${agencies}x${betsPerAgency}-x${repeat}`,
      label: `generated ${agencies}×${betsPerAgency} ×${repeat}`,
    };
  }
  const zip = resolve(options.dataset);
  const info = await Deno.stat(zip).catch((error) => {
    throw new UsageError(`Cannot run bench: dataset "${options.dataset}" not found`, {
      cause: error,
    });
  });
  const key = `zip-${basename(zip, ".zip")}-${info.size}-${info.mtime?.getTime() ?? 0}-x${repeat}`;
  const name = basename(zip) === "dataset.zip" ? "course dataset" : basename(zip);
  return { key: key.replace(/[^\w.-]/g, "_"), label: `${name} ×${repeat}` };
}

/**
 * Prepares the agency files under `.bench/data/`: imports the zip or generates data,
 * then writes each file repeated. A dataset already there with the same key is reused;
 * other cached datasets are removed so at most one sits on disk.
 */
export async function prepareData(
  options: DataOptions,
  log: (message: string) => void,
): Promise<PreparedData> {
  const { dataset, agencies, betsPerAgency, repeat, dataRoot = join(BENCH_DIR, "data") } = options;
  const { key, label } = await datasetKey(options);
  const dir = join(dataRoot, key);
  const manifest = join(dir, "manifest.json");
  const cached = await Deno.readTextFile(manifest).then(JSON.parse).catch(() => undefined);
  if (cached?.key === key && await unchanged(cached.data)) {
    log(`reusing data in ${dir}`);
    return cached.data;
  }
  await Deno.remove(dataRoot, { recursive: true }).catch(() => {});
  log(`preparing data in ${dir}`);
  const base = join(dir, "base");
  const summary: DatasetSummary = dataset !== undefined
    ? await importDataset(dataset, base)
    : await generateDataset({ dir: base, agencies, betsPerAgency });
  const files: AgencyData[] = [];
  for (const { agency, path: source, rows, winners } of summary.files) {
    const path = resolve(repeat === 1 ? source : join(dir, basename(source)));
    if (repeat > 1) await writeRepeated(source, path, repeat);
    const { size } = await Deno.stat(path);
    files.push({ agency, path, rows: rows * repeat, winners: winners * repeat, bytes: size });
  }
  const data: PreparedData = { label, files };
  await Deno.writeTextFile(manifest, JSON.stringify({ key, data }));
  return data;
}

/** Whether a cached dataset's files are still the size the manifest says. */
async function unchanged(data: PreparedData): Promise<boolean> {
  for (const file of data.files) {
    if ((await Deno.stat(file.path).catch(() => undefined))?.size !== file.bytes) return false;
  }
  return true;
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
