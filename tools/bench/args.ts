/**
 * The bench's command line: options, defaults, `--help` text and their validation.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { parseArgsErrorDetail } from "../_parse_args.ts";

/** How bet storage makes acks durable; passed to the server as `SERVER_FSYNC`. */
export type FsyncMode = "group" | "batch" | "off";

/** The resolved benchmark options. */
export interface BenchOptions {
  /** The course-style zip to read agency files from; generated data when undefined. */
  readonly dataset?: string;
  /** Agencies of generated data (with `dataset`, the zip decides). */
  readonly agencies: number;
  /** Rows of each generated agency file. */
  readonly betsPerAgency: number;
  /** Each agency file is its rows repeated this many times. */
  readonly repeat: number;
  /** Timed runs of the system, and as many of the floor. */
  readonly runs: number;
  /** Untimed runs through the ack-latency proxy; 0 skips them. */
  readonly latencyRuns: number;
  /** The server's `SERVER_FSYNC`. */
  readonly fsync: FsyncMode;
  /** The agencies' `batch.maxAmount`. */
  readonly batch: number;
  /** Limit of one run in milliseconds; undefined picks one from the data size. */
  readonly timeoutMs?: number;
  /** Whether `--help` was asked for. */
  readonly help: boolean;
}

/** Defaults of {@linkcode BenchOptions}. */
export const BENCH_DEFAULTS = {
  agencies: 5,
  betsPerAgency: 20_000,
  repeat: 1,
  runs: 3,
  latencyRuns: 1,
  fsync: "group",
  batch: 100,
} as const;

/** The accepted `--fsync` values. */
const FSYNC_MODES: readonly FsyncMode[] = ["group", "batch", "off"];

/** A bad command line; the CLI prints its message and exits with 2. */
export class BenchArgError extends Error {
  /**
   * @param message What is wrong, std style: "Cannot run bench: …".
   * @param options Standard error options.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "BenchArgError";
  }
}

/** The usage text of `--help`. */
export const USAGE = `Usage: deno task bench -- [options]
  --dataset PATH.zip     agency files from a course-style zip (e.g. ../shared/data/dataset.zip)
  --agencies N           agencies of generated data (default 5; not with --dataset)
  --bets-per-agency N    rows per generated agency file (default 20000; not with --dataset)
  --repeat K             each agency file is its rows repeated K times (default 1)
  --runs R               timed runs of the system and of the floor (default 3)
  --latency-runs L       untimed runs through the ack-latency proxy (default 1; 0 skips)
  --fsync MODE           server SERVER_FSYNC: group, batch or off (default group)
  --batch N              agencies' batch.maxAmount (default 100)
  --timeout DURATION     limit of each run, e.g. 90s, 5m (default 60s + 1s per 25000 bets)`;

function integerArg(flag: string, raw: string, min: number, max: number): number {
  const value = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new BenchArgError(
      `Cannot run bench: --${flag} must be a whole number from ${min} to ${max}, got "${raw}"`,
    );
  }
  return value;
}

/**
 * Parses a duration such as `90s`, `1500ms`, `5m` or a bare number of seconds.
 *
 * @param raw The text.
 * @returns Milliseconds, or undefined when it is not a positive duration.
 *
 * @example Usage
 * ```ts
 * parseDurationMs("90s"); // 90000
 * parseDurationMs("2m"); // 120000
 * ```
 */
export function parseDurationMs(raw: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(raw.trim());
  if (!match) return undefined;
  const scale = match[2] === "ms" ? 1 : match[2] === "m" ? 60_000 : 1000;
  const ms = Number(match[1]) * scale;
  return ms > 0 && Number.isFinite(ms) ? Math.round(ms) : undefined;
}

/** The flags as `parseArgs` returns them, before validation. */
interface RawFlags {
  readonly dataset?: string;
  readonly agencies?: string;
  readonly "bets-per-agency"?: string;
  readonly repeat?: string;
  readonly runs?: string;
  readonly "latency-runs"?: string;
  readonly fsync?: string;
  readonly batch?: string;
  readonly timeout?: string;
  readonly help?: boolean;
}

/** The flags that take a whole number. */
type IntegerFlag = "agencies" | "bets-per-agency" | "repeat" | "runs" | "latency-runs" | "batch";

function readFlags(args: readonly string[]): RawFlags {
  try {
    return parseArgs({
      // `deno task bench -- …` hands the script the `--` too.
      args: args[0] === "--" ? args.slice(1) : [...args],
      strict: true,
      allowPositionals: false,
      options: {
        dataset: { type: "string" },
        agencies: { type: "string" },
        "bets-per-agency": { type: "string" },
        repeat: { type: "string" },
        runs: { type: "string" },
        "latency-runs": { type: "string" },
        fsync: { type: "string" },
        batch: { type: "string" },
        timeout: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }).values;
  } catch (error) {
    throw new BenchArgError(`Cannot run bench: ${parseArgsErrorDetail(error)}`, { cause: error });
  }
}

/** `--dataset` needs a path, and then the zip decides agencies and rows. */
function checkDataset(flags: RawFlags): void {
  if (flags.dataset === undefined) return;
  if (flags.dataset.trim() === "") {
    throw new BenchArgError(`Cannot run bench: --dataset needs a path to a zip file`);
  }
  for (const flag of ["agencies", "bets-per-agency"] as const) {
    if (flags[flag] !== undefined) {
      throw new BenchArgError(
        `Cannot run bench: --${flag} does not apply with --dataset (the zip decides)`,
      );
    }
  }
}

function fsyncArg(raw: string | undefined): FsyncMode {
  const fsync = raw ?? BENCH_DEFAULTS.fsync;
  if (!(FSYNC_MODES as readonly string[]).includes(fsync)) {
    throw new BenchArgError(
      `Cannot run bench: --fsync must be one of ${FSYNC_MODES.join(", ")}, got "${fsync}"`,
    );
  }
  return fsync as FsyncMode;
}

function timeoutArg(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const timeoutMs = parseDurationMs(raw);
  if (timeoutMs === undefined) {
    throw new BenchArgError(
      `Cannot run bench: --timeout must be a positive duration such as "90s" or "5m", got "${raw}"`,
    );
  }
  return timeoutMs;
}

/**
 * Parses the command line.
 *
 * @param args The arguments after `deno task bench --`.
 * @returns The resolved options.
 * @throws {BenchArgError} On an unknown flag, a missing or bad value, or flags that
 * do not go together.
 *
 * @example Usage
 * ```ts
 * const options = parseBenchArgs(["--dataset", "../shared/data/dataset.zip", "--repeat", "10"]);
 * // options.repeat === 10, options.runs === 3
 * ```
 */
export function parseBenchArgs(args: readonly string[]): BenchOptions {
  const flags = readFlags(args);
  const help = flags.help ?? false;
  checkDataset(flags);
  const fsync = fsyncArg(flags.fsync);
  const timeoutMs = timeoutArg(flags.timeout);
  const optional = (flag: IntegerFlag, fallback: number, min: number, max: number): number => {
    const raw = flags[flag];
    return raw === undefined ? fallback : integerArg(flag, raw, min, max);
  };
  return {
    agencies: optional("agencies", BENCH_DEFAULTS.agencies, 1, 1000),
    betsPerAgency: optional("bets-per-agency", BENCH_DEFAULTS.betsPerAgency, 1, 10_000_000),
    repeat: optional("repeat", BENCH_DEFAULTS.repeat, 1, 10_000),
    runs: optional("runs", BENCH_DEFAULTS.runs, 1, 100),
    latencyRuns: optional("latency-runs", BENCH_DEFAULTS.latencyRuns, 0, 100),
    fsync,
    batch: optional("batch", BENCH_DEFAULTS.batch, 1, 65_535),
    help,
    ...(flags.dataset === undefined ? {} : { dataset: flags.dataset }),
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
  };
}

/**
 * The limit of one run when `--timeout` is not given: 60 s plus 1 s per 25,000 bets.
 *
 * @param totalBets Bets of the whole run.
 * @returns Milliseconds.
 *
 * @example Usage
 * ```ts
 * defaultRunTimeoutMs(78_697); // 64000
 * ```
 */
export function defaultRunTimeoutMs(totalBets: number): number {
  return 60_000 + Math.ceil(totalBets / 25_000) * 1000;
}
