/**
 * The bench's data: the agency files of a run, imported from a course-style zip or
 * generated, each file repeated `--repeat` times, cached under `.bench/data/` so the
 * next run with the same options reuses them.
 *
 * @module
 */
import { basename, join, resolve } from "node:path";
import { type DatasetSummary, generateDataset, importDataset } from "../dataset/mod.ts";
import { BenchArgError, type BenchOptions } from "./args.ts";
import { BENCH_DIR } from "./paths.ts";

/** One agency file ready for a run. */
export interface AgencyData {
  /** The agency number. */
  readonly agency: number;
  /** The file's absolute path. */
  readonly path: string;
  /** Rows (bets), repeats included. */
  readonly rows: number;
  /** Rows whose number is 7574, repeats included. */
  readonly winners: number;
  /** The file's size. */
  readonly bytes: number;
}

/** The prepared dataset. */
export interface PreparedData {
  /** What the report calls it, e.g. `course dataset ×10`. */
  readonly label: string;
  /** Its directory. */
  readonly dir: string;
  /** The agency files, by agency number. */
  readonly files: readonly AgencyData[];
}

/** Options of {@linkcode prepareData}: the data options of the command line. */
export interface DataOptions
  extends Pick<BenchOptions, "dataset" | "agencies" | "betsPerAgency" | "repeat"> {
  /**
   * Where cached datasets live; everything else in it is removed.
   *
   * @default {".bench/data"}
   */
  readonly dataRoot?: string;
}

/**
 * The cache key and label of a dataset. A zip's key includes its size and mtime, so an
 * edited zip is imported again.
 *
 * @param options The data options.
 * @returns A file-name-safe key and the report's label.
 * @throws {BenchArgError} If the zip does not exist.
 *
 * @example Usage
 * ```ts
 * await datasetKey({ agencies: 5, betsPerAgency: 20000, repeat: 1 });
 * // { key: "gen-5x20000-x1", label: "generated 5×20000 ×1" }
 * ```
 */
export async function datasetKey(
  options: DataOptions,
): Promise<{ key: string; label: string }> {
  if (options.dataset === undefined) {
    return {
      key: `gen-${options.agencies}x${options.betsPerAgency}-x${options.repeat}`,
      label: `generated ${options.agencies}×${options.betsPerAgency} ×${options.repeat}`,
    };
  }
  const zip = resolve(options.dataset);
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(zip);
  } catch (error) {
    throw new BenchArgError(`Cannot run bench: dataset "${options.dataset}" not found`, {
      cause: error,
    });
  }
  const key = `zip-${basename(zip, ".zip")}-${info.size}-${
    info.mtime?.getTime() ?? 0
  }-x${options.repeat}`;
  const name = basename(zip) === "dataset.zip" ? "course dataset" : basename(zip);
  return { key: key.replace(/[^\w.-]/g, "_"), label: `${name} ×${options.repeat}` };
}

/**
 * Prepares the agency files under `.bench/data/`: imports the zip or generates data,
 * then writes each file repeated. A dataset already there with the same key is reused;
 * other cached datasets are removed so at most one sits on disk.
 *
 * @param options Source, size and repeat.
 * @param log Progress sink.
 * @returns The files with their row, winner and byte counts.
 *
 * @example Usage
 * ```ts
 * const data = await prepareData({ agencies: 2, betsPerAgency: 2000, repeat: 1 }, console.error);
 * // data.files.length === 2
 * ```
 */
export async function prepareData(
  options: DataOptions,
  log: (message: string) => void,
): Promise<PreparedData> {
  const dataRoot = options.dataRoot ?? join(BENCH_DIR, "data");
  const { key, label } = await datasetKey(options);
  const dir = join(dataRoot, key);
  const cached = await readManifest(dir, key);
  if (cached) {
    log(`reusing data in ${dir}`);
    return cached;
  }
  await emptyDir(dataRoot);
  log(`preparing data in ${dir}`);
  const summary = await writeBase(options, join(dir, "base"));
  const data: PreparedData = { label, dir, files: await repeatFiles(summary, dir, options.repeat) };
  await Deno.writeTextFile(join(dir, "manifest.json"), JSON.stringify({ key, data }));
  return data;
}

/** Reads a cached dataset's manifest; undefined when missing or its files changed. */
async function readManifest(dir: string, key: string): Promise<PreparedData | undefined> {
  try {
    const manifest = JSON.parse(await Deno.readTextFile(join(dir, "manifest.json")));
    if (manifest.key !== key) return undefined;
    const data = manifest.data as PreparedData;
    for (const file of data.files) {
      if ((await Deno.stat(file.path)).size !== file.bytes) return undefined;
    }
    return data;
  } catch {
    return undefined;
  }
}

async function emptyDir(dir: string): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  for await (const entry of Deno.readDir(dir)) {
    await Deno.remove(join(dir, entry.name), { recursive: true });
  }
}

/** The files once: the zip imported, or generated data. */
function writeBase(options: DataOptions, baseDir: string): Promise<DatasetSummary> {
  return options.dataset !== undefined
    ? importDataset(options.dataset, { dir: baseDir })
    : generateDataset({
      dir: baseDir,
      agencies: options.agencies,
      betsPerAgency: options.betsPerAgency,
    });
}

/** The files of a run: the base files themselves, or each repeated into `dir`. */
async function repeatFiles(
  summary: DatasetSummary,
  dir: string,
  repeat: number,
): Promise<AgencyData[]> {
  const files: AgencyData[] = [];
  for (const file of summary.files) {
    const path = repeat === 1 ? file.path : join(dir, basename(file.path));
    const bytes = repeat === 1
      ? (await Deno.stat(path)).size
      : await writeRepeated(file.path, path, repeat);
    files.push({
      agency: file.agency,
      path: resolve(path),
      rows: file.rows * repeat,
      winners: file.winners * repeat,
      bytes,
    });
  }
  return files;
}

/**
 * Writes `source` `repeat` times into `target`, ending it with CRLF first when it has no
 * final line break, so rows never join across copies.
 */
async function writeRepeated(source: string, target: string, repeat: number): Promise<number> {
  let bytes = await Deno.readFile(source);
  if (bytes.length > 0 && bytes[bytes.length - 1] !== 0x0a) {
    bytes = new Uint8Array([...bytes, 0x0d, 0x0a]);
  }
  const file = await Deno.open(target, { write: true, create: true, truncate: true });
  try {
    for (let i = 0; i < repeat; i++) {
      for (let off = 0; off < bytes.length;) off += await file.write(bytes.subarray(off));
    }
  } finally {
    file.close();
  }
  return bytes.length * repeat;
}
