/**
 * The bench's command line: options, defaults and `--help` text.
 *
 * @module
 */
import { parseDuration } from "../../shared/duration.ts";
import { FSYNC_POLICIES, type FsyncPolicy } from "../../server/storage.ts";
import { choiceArg, integerArg, parseCli, UsageError } from "../_cli.ts";

/**
 * The resolved benchmark options, each the flag of its name in {@linkcode USAGE}: no
 * `dataset` means generated data, no `timeoutMs` a limit from the data size.
 */
export interface BenchOptions {
  readonly dataset?: string;
  readonly agencies: number;
  readonly betsPerAgency: number;
  readonly repeat: number;
  readonly runs: number;
  readonly fsync: FsyncPolicy;
  readonly batch: number;
  readonly timeoutMs?: number;
  /** The server's SERVER_WORKERS of each setting compared, `default` for its own default. */
  readonly workers: readonly string[];
  /** The many-agencies load instead of agency processes on files. */
  readonly load: boolean;
  readonly help: boolean;
}

/** The usage text of `--help`. */
export const USAGE = `Usage: deno task bench -- [options]
  --dataset PATH.zip     agency files from a course-style zip (e.g. ../shared/data/dataset.zip)
  --agencies N           agencies of generated data (default 5; not with --dataset)
  --bets-per-agency N    rows per generated agency file (default 20000; not with --dataset)
  --repeat K             each agency file is its rows repeated K times (default 1)
  --runs R               timed runs of the system and of the floor (default 3)
  --fsync MODE           server SERVER_FSYNC: group, batch or off (default group)
  --batch N              agencies' batch.maxAmount (default 100)
  --timeout DURATION     limit of each run, e.g. 90s, 5m (default 60s + 1s per 25000 bets)
  --workers LIST         SERVER_WORKERS settings run in turn, "default" for the server's own
                         (default "default,1"; with --load "1,2,4")
  --load                 one generator process playing --agencies agencies (default 1000)
                         of --bets-per-agency bets (default 1000) instead of agency processes`;

/**
 * Parses the command line (after `deno task bench --`).
 *
 * @throws {UsageError} On an unknown flag, a missing or bad value, or flags that do not
 *   go together.
 */
export function parseBenchArgs(args: readonly string[]): BenchOptions {
  const { values } = parseCli(args, {
    dataset: { type: "string" },
    agencies: { type: "string" },
    "bets-per-agency": { type: "string" },
    repeat: { type: "string", default: "1" },
    runs: { type: "string", default: "3" },
    fsync: { type: "string", default: "group" },
    batch: { type: "string", default: "100" },
    timeout: { type: "string" },
    workers: { type: "string" },
    load: { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  });
  if (values.dataset?.trim() === "") throw new UsageError("--dataset needs a path to a zip file");
  for (const flag of ["agencies", "bets-per-agency"] as const) {
    if (values.dataset !== undefined && values[flag] !== undefined) {
      throw new UsageError(`--${flag} does not apply with --dataset (the zip decides)`);
    }
  }
  const timeoutMs = values.timeout === undefined ? undefined : timeoutArg(values.timeout);
  const { load } = values;
  if (load && values.dataset !== undefined) {
    throw new UsageError("--dataset does not apply with --load (it generates its bets)");
  }
  const workers = (values.workers ?? (load ? "1,2,4" : "default,1")).split(",").map((w) =>
    w.trim()
  );
  for (const w of workers) {
    if (w !== "default") integerArg("--workers", w, 1, 64);
  }
  return {
    dataset: values.dataset,
    agencies: integerArg("--agencies", values.agencies ?? (load ? "1000" : "5"), 1, 1000),
    betsPerAgency: integerArg(
      "--bets-per-agency",
      values["bets-per-agency"] ?? (load ? "1000" : "20000"),
      1,
      1e7,
    ),
    repeat: integerArg("--repeat", values.repeat, 1, 10_000),
    runs: integerArg("--runs", values.runs, 1, 100),
    fsync: choiceArg("--fsync", values.fsync, FSYNC_POLICIES),
    batch: integerArg("--batch", values.batch, 1, 65_535),
    timeoutMs,
    workers,
    load,
    help: values.help,
  };
}

/** `--timeout`'s value in milliseconds. */
function timeoutArg(raw: string): number {
  try {
    const { ms } = parseDuration(raw);
    if (ms > 0) return ms;
  } catch {
    // Not a duration: refused below, as zero is.
  }
  throw new UsageError(`--timeout must be a positive duration such as 90s or 5m, not "${raw}"`);
}
