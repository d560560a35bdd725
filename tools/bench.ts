/**
 * The benchmark: `deno task bench`.
 *
 * It prepares agency files (generated, or the course's zip, each file repeated `--repeat`
 * times), then for every run starts `bin/server` on 127.0.0.1 with a fresh storage
 * directory, waits for `accept_connections`, starts every agency (`bin/client`) at once
 * and measures the wall time until the last agency has exited. A run counts only when it
 * is correct: every agency exits 0, `bets.csv` holds one line per bet, each agency's
 * `cant_ganadores` is its number of 7574 rows, the server logs `sorteo` once, no line
 * says `result: fail`, and the server exits 0 on SIGTERM.
 *
 * Beside each run it measures the floor: the same number of processes pushing the same
 * CSV bytes over loopback TCP into one file with one fsync at the end. An extra pass
 * through a pass-through proxy measures ack latency (BATCH frame seen → its BATCH_ACK
 * seen), so the programs need no instrumentation; that pass is not timed.
 *
 * ```sh
 * deno task bench -- --dataset ../shared/data/dataset.zip [--repeat 10] [--runs 3]
 * deno task bench -- [--agencies 5] [--bets-per-agency 20000] [--repeat 1]
 *   [--fsync group|batch|off] [--batch 100] [--timeout 120s] [--latency-runs 1]
 * ```
 *
 * Progress goes to stderr; stdout gets a Markdown table of min/median/max per metric
 * and ends with one JSON line of the medians. Exit code: 0 every run verified, 1 a run
 * failed, 2 bad arguments.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { basename, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { MAGIC, MessageType } from "../shared/protocol/mod.ts";
import { WINNING_NUMBER } from "../shared/bet.ts";
import { DatasetError, generateDataset, importDataset } from "./dataset/mod.ts";

// ---------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------

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
  let values;
  try {
    ({ values } = parseArgs({
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
    }));
  } catch (error) {
    const text = error instanceof Error ? error.message : String(error);
    const code = (error as { code?: string }).code;
    const option = /'(--?[\w-]+)/.exec(text)?.[1];
    const detail = code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" && option
      ? `unknown option "${option}"`
      : code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE" && option
      ? `option "${option}" needs a value`
      : code === "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL"
      ? `unexpected argument (${text.split("\n")[0]})`
      : text.split("\n")[0];
    throw new BenchArgError(`Cannot run bench: ${detail}`, { cause: error });
  }
  const help = values.help ?? false;
  if (values.dataset !== undefined) {
    if (values.dataset.trim() === "") {
      throw new BenchArgError(`Cannot run bench: --dataset needs a path to a zip file`);
    }
    for (const flag of ["agencies", "bets-per-agency"] as const) {
      if (values[flag] !== undefined) {
        throw new BenchArgError(
          `Cannot run bench: --${flag} does not apply with --dataset (the zip decides)`,
        );
      }
    }
  }
  const fsync = values.fsync ?? BENCH_DEFAULTS.fsync;
  if (!(FSYNC_MODES as readonly string[]).includes(fsync)) {
    throw new BenchArgError(
      `Cannot run bench: --fsync must be one of ${FSYNC_MODES.join(", ")}, got "${fsync}"`,
    );
  }
  let timeoutMs: number | undefined;
  if (values.timeout !== undefined) {
    timeoutMs = parseDurationMs(values.timeout);
    if (timeoutMs === undefined) {
      throw new BenchArgError(
        `Cannot run bench: --timeout must be a positive duration such as "90s" or "5m", got "${values.timeout}"`,
      );
    }
  }
  const optional = (
    flag: string,
    raw: string | undefined,
    fallback: number,
    min: number,
    max: number,
  ) => raw === undefined ? fallback : integerArg(flag, raw, min, max);
  const options: BenchOptions = {
    agencies: optional("agencies", values.agencies, BENCH_DEFAULTS.agencies, 1, 1000),
    betsPerAgency: optional(
      "bets-per-agency",
      values["bets-per-agency"],
      BENCH_DEFAULTS.betsPerAgency,
      1,
      10_000_000,
    ),
    repeat: optional("repeat", values.repeat, BENCH_DEFAULTS.repeat, 1, 10_000),
    runs: optional("runs", values.runs, BENCH_DEFAULTS.runs, 1, 100),
    latencyRuns: optional(
      "latency-runs",
      values["latency-runs"],
      BENCH_DEFAULTS.latencyRuns,
      0,
      100,
    ),
    fsync: fsync as FsyncMode,
    batch: optional("batch", values.batch, BENCH_DEFAULTS.batch, 1, 65_535),
    help,
    ...(values.dataset === undefined ? {} : { dataset: values.dataset }),
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
  };
  return options;
}

/**
 * The limit of one run when `--timeout` is not given: 60 s plus 1 s per 25,000 bets.
 *
 * @param totalBets Bets of the whole run.
 * @returns Milliseconds.
 */
export function defaultRunTimeoutMs(totalBets: number): number {
  return 60_000 + Math.ceil(totalBets / 25_000) * 1000;
}

// ---------------------------------------------------------------------------------------
// Statistics and parsing (pure)
// ---------------------------------------------------------------------------------------

/** The spread of one metric over runs. */
export interface Spread {
  readonly min: number;
  readonly median: number;
  readonly max: number;
}

/**
 * Min, median (the mean of the two middle values for an even count) and max.
 *
 * @param values The samples; non-finite ones are ignored.
 * @returns The spread, or undefined when there is no finite sample.
 *
 * @example Usage
 * ```ts
 * summarize([3, 1, 2]); // { min: 1, median: 2, max: 3 }
 * ```
 */
export function summarize(values: readonly number[]): Spread | undefined {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return undefined;
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { min: sorted[0]!, median, max: sorted.at(-1)! };
}

/**
 * A nearest-rank percentile.
 *
 * @param values The samples, in any order.
 * @param p The percentile, 0 to 100.
 * @returns The smallest sample with at least `p`% of samples at or below it;
 * undefined for no samples.
 *
 * @example Usage
 * ```ts
 * percentile([5, 1, 4, 2, 3], 50); // 3
 * ```
 */
export function percentile(values: readonly number[], p: number): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1];
}

/** Memory figures of `/proc/<pid>/status`, in kB. */
export interface ProcMemory {
  /** Resident set size now (`VmRSS`). */
  readonly rssKb: number;
  /** Peak resident set size (`VmHWM`). */
  readonly hwmKb: number;
}

/**
 * Reads `VmRSS` and `VmHWM` from the text of `/proc/<pid>/status`.
 *
 * @param text The file's text.
 * @returns Both in kB (0 when absent, e.g. for a zombie).
 *
 * @example Usage
 * ```ts
 * parseProcStatus("VmHWM:\t  51200 kB\nVmRSS:\t  40960 kB\n"); // { rssKb: 40960, hwmKb: 51200 }
 * ```
 */
export function parseProcStatus(text: string): ProcMemory {
  const field = (name: string): number => {
    const match = new RegExp(`^${name}:\\s+(\\d+)\\s*kB`, "m").exec(text);
    return match ? Number(match[1]) : 0;
  };
  return { rssKb: field("VmRSS"), hwmKb: field("VmHWM") };
}

/** CPU times of `/proc/<pid>/stat`, in clock ticks. */
export interface ProcCpu {
  /** The process's own `utime` + `stime` (fields 14 and 15). */
  readonly selfTicks: number;
  /** `cutime` + `cstime` (fields 16 and 17): its children that it has reaped. */
  readonly childrenTicks: number;
}

/**
 * Reads the CPU times of `/proc/<pid>/stat`. The command name (field 2) may hold
 * spaces and parentheses, so fields are counted from its last `)`.
 *
 * @param text The file's text.
 * @returns The ticks, or undefined when the text is not a stat line.
 *
 * @example Usage
 * ```ts
 * parseProcStat("42 (deno) S 1 42 42 0 -1 0 0 0 0 0 150 25 300 40 20");
 * // { selfTicks: 175, childrenTicks: 340 }
 * ```
 */
export function parseProcStat(text: string): ProcCpu | undefined {
  const close = text.lastIndexOf(")");
  if (close < 0) return undefined;
  const fields = text.slice(close + 1).trim().split(/\s+/);
  // fields[0] is field 3 (state), so field n is at n - 3.
  const [utime, stime, cutime, cstime] = [14, 15, 16, 17].map((n) => Number(fields[n - 3]));
  const all = [utime, stime, cutime, cstime];
  if (!all.every((v) => v !== undefined && Number.isFinite(v))) return undefined;
  return { selfTicks: utime! + stime!, childrenTicks: cutime! + cstime! };
}

/** Milliseconds of one clock tick: USER_HZ is 100 on every Linux architecture Deno runs on. */
const MS_PER_TICK = 10;

/**
 * CPU time of the children this process has reaped so far, from `/proc/self/stat`.
 * The difference over a span is the CPU of the children that exited in it: exact,
 * with no sampling, because the kernel adds a child's times to its parent on reaping.
 */
function reapedChildrenCpuMs(): number | undefined {
  try {
    const cpu = parseProcStat(Deno.readTextFileSync("/proc/self/stat"));
    return cpu === undefined ? undefined : cpu.childrenTicks * MS_PER_TICK;
  } catch {
    return undefined;
  }
}

/** One parsed log line of the course's format. */
export interface LogLine {
  /** `INFO`, `DEBUG`, … (empty when the line has no prefix). */
  readonly level: string;
  readonly action: string;
  readonly result: string;
  /** Every `key: value` pair, `action` and `result` included. */
  readonly fields: Readonly<Record<string, string>>;
}

/**
 * Parses `YYYY-MM-DD HH:MM:SS LEVEL    action: a | result: r | key: value | …`.
 * Each part is split on its first `": "`, so values such as `127.0.0.1:12345` survive.
 *
 * @param line One line of output.
 * @returns The parsed line, or undefined when it is not an action line.
 *
 * @example Usage
 * ```ts
 * parseLogLine("2026-01-01 10:00:00 INFO     action: sorteo | result: success | ms: 12");
 * // { level: "INFO", action: "sorteo", result: "success", fields: { …, ms: "12" } }
 * ```
 */
export function parseLogLine(line: string): LogLine | undefined {
  const at = line.indexOf("action: ");
  if (at < 0) return undefined;
  const fields: Record<string, string> = {};
  for (const part of line.slice(at).split(" | ")) {
    const colon = part.indexOf(": ");
    if (colon < 0) continue;
    fields[part.slice(0, colon).trim()] = part.slice(colon + 2).trim();
  }
  if (fields["action"] === undefined || fields["result"] === undefined) return undefined;
  const level = line.slice(0, at).trim().split(/\s+/)[2] ?? "";
  return { level, action: fields["action"], result: fields["result"], fields };
}

/**
 * Counts rows and rows whose number (fifth field) is 7574 in agency CSV bytes.
 *
 * @param bytes CSV text, CRLF or LF lines.
 * @returns Row and winner counts.
 *
 * @example Usage
 * ```ts
 * countRows(new TextEncoder().encode("a,b,1,2000-01-01,7574\r\na,b,2,2000-01-01,1\r\n"));
 * // { rows: 2, winners: 1 }
 * ```
 */
export function countRows(bytes: Uint8Array): { rows: number; winners: number } {
  const text = new TextDecoder().decode(bytes);
  let rows = 0;
  let winners = 0;
  for (const raw of text.split("\n")) {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (line === "") continue;
    rows++;
    if (Number(line.slice(line.lastIndexOf(",") + 1)) === WINNING_NUMBER) winners++;
  }
  return { rows, winners };
}

/**
 * Scans a byte stream of protocol frames (magic u8, type u8, body length u16 BE, body),
 * fed in chunks of any size, and reports each frame's type and first body bytes. It
 * never copies whole bodies, so a proxy can watch gigabytes cheaply.
 *
 * @example Usage
 * ```ts
 * const scanner = new FrameScanner((type, prefix) => console.log(type, prefix.length));
 * scanner.push(new Uint8Array([0xfb, 0x0e, 0, 0])); // logs "14 0" (a BYE)
 * ```
 */
export class FrameScanner {
  readonly #onFrame: (type: number, prefix: Uint8Array) => void;
  readonly #header = new Uint8Array(4);
  readonly #prefix: Uint8Array;
  #headerFill = 0;
  #prefixFill = 0;
  #prefixWant = 0;
  #remaining = 0;
  #broken = false;

  /**
   * @param onFrame Called once per whole frame with its type and up to `prefixSize`
   * first body bytes (a view valid only during the call).
   * @param prefixSize How many body bytes to hand over.
   */
  constructor(onFrame: (type: number, prefix: Uint8Array) => void, prefixSize = 8) {
    this.#onFrame = onFrame;
    this.#prefix = new Uint8Array(prefixSize);
  }

  /** Whether a frame did not start with the magic byte; scanning then stops. */
  get broken(): boolean {
    return this.#broken;
  }

  /**
   * Feeds the next bytes of the stream.
   *
   * @param chunk Any slice of the stream.
   */
  push(chunk: Uint8Array): void {
    let i = 0;
    while (i < chunk.length && !this.#broken) {
      if (this.#headerFill < 4) {
        this.#header[this.#headerFill++] = chunk[i++]!;
        if (this.#headerFill === 4) {
          if (this.#header[0] !== MAGIC) {
            this.#broken = true;
            return;
          }
          this.#remaining = (this.#header[2]! << 8) | this.#header[3]!;
          this.#prefixFill = 0;
          this.#prefixWant = Math.min(this.#prefix.length, this.#remaining);
          if (this.#remaining === 0) this.#emit();
        }
        continue;
      }
      const take = Math.min(this.#remaining, chunk.length - i);
      const need = this.#prefixWant - this.#prefixFill;
      if (need > 0) {
        const n = Math.min(need, take);
        this.#prefix.set(chunk.subarray(i, i + n), this.#prefixFill);
        this.#prefixFill += n;
      }
      i += take;
      this.#remaining -= take;
      if (this.#remaining === 0) this.#emit();
    }
  }

  #emit(): void {
    this.#headerFill = 0;
    this.#onFrame(this.#header[1]!, this.#prefix.subarray(0, this.#prefixFill));
  }
}

// ---------------------------------------------------------------------------------------
// Report (pure)
// ---------------------------------------------------------------------------------------

/** One timed run of the system. */
export interface SystemRun {
  /** Whether every check passed; only these runs are summarized. */
  readonly ok: boolean;
  /** Why it failed (empty when ok). */
  readonly failures: readonly string[];
  /** Client start to the last client exited, ms. */
  readonly wallMs: number;
  /** Client start to the last agency's `config` line (process up, config read), ms. */
  readonly startupMs?: number;
  /** Client start to the last agency's `apuestas_enviadas` (all bets acked, done), ms. */
  readonly ackedMs?: number;
  /** Client start to the last agency's `consulta_ganadores`, ms. */
  readonly winnersMs?: number;
  /** The server's `sorteo` `ms`. */
  readonly drawMs?: number;
  /** Server peak RSS, kB. */
  readonly serverRssKb?: number;
  /** Largest client peak RSS, kB. */
  readonly clientRssKb?: number;
  /** Server CPU time (user + system) over its whole life, ms. */
  readonly serverCpuMs?: number;
  /** CPU time of all clients together, ms. */
  readonly clientCpuMs?: number;
  /** Ack latencies seen by the proxy (latency runs only), ms. */
  readonly ackLatenciesMs?: readonly number[];
}

/** One run of the floor. */
export interface FloorRun {
  readonly ok: boolean;
  readonly failures: readonly string[];
  /** Senders' start to the last sender exited and the receiver's fsync done, ms. */
  readonly wallMs: number;
}

/** What was benchmarked. */
export interface BenchSetup {
  /** e.g. `course dataset ×10`. */
  readonly label: string;
  readonly agencies: number;
  /** Bets of one run. */
  readonly bets: number;
  /** CSV bytes of one run. */
  readonly bytes: number;
  /** Winners of one run. */
  readonly winners: number;
  readonly repeat: number;
  readonly fsync: FsyncMode;
  readonly batch: number;
}

/** Everything a bench invocation measured. */
export interface BenchReport {
  readonly setup: BenchSetup;
  readonly system: readonly SystemRun[];
  readonly floor: readonly FloorRun[];
  readonly latency: readonly SystemRun[];
  /** Machine facts for the record, e.g. `{ cpu: "…", cores: "2", deno: "2.9.6" }`. */
  readonly machine: Readonly<Record<string, string>>;
}

interface MetricRow {
  readonly key: string;
  readonly label: string;
  readonly digits: number;
  readonly values: (report: BenchReport) => readonly number[];
}

const KB_PER_MIB = 1024;

function okRuns(runs: readonly SystemRun[]): SystemRun[] {
  return runs.filter((run) => run.ok);
}

function pick(
  runs: readonly SystemRun[],
  get: (run: SystemRun) => number | undefined,
): number[] {
  return okRuns(runs).map(get).filter((v): v is number => v !== undefined && Number.isFinite(v));
}

const METRICS: readonly MetricRow[] = [
  {
    key: "wall_s",
    label: "wall: client start → all exited (s)",
    digits: 3,
    values: (r) => pick(r.system, (run) => run.wallMs / 1000),
  },
  {
    key: "bets_per_s",
    label: "bets/s",
    digits: 0,
    values: (r) => pick(r.system, (run) => r.setup.bets / (run.wallMs / 1000)),
  },
  {
    key: "mb_per_s",
    label: "MB/s (CSV bytes, 10^6)",
    digits: 1,
    values: (r) => pick(r.system, (run) => r.setup.bytes / 1e6 / (run.wallMs / 1000)),
  },
  {
    key: "floor_s",
    label: "floor: same bytes and processes, 1 fsync (s)",
    digits: 3,
    values: (r) => r.floor.filter((run) => run.ok).map((run) => run.wallMs / 1000),
  },
  {
    key: "startup_s",
    label: "phase: last agency started (s)",
    digits: 3,
    values: (r) => pick(r.system, (run) => msToS(run.startupMs)),
  },
  {
    key: "acked_s",
    label: "phase: last agency's bets all acked (s)",
    digits: 3,
    values: (r) => pick(r.system, (run) => msToS(run.ackedMs)),
  },
  {
    key: "winners_s",
    label: "phase: last agency got its winners (s)",
    digits: 3,
    values: (r) => pick(r.system, (run) => msToS(run.winnersMs)),
  },
  {
    key: "draw_ms",
    label: "draw (ms, server's sorteo line)",
    digits: 0,
    values: (r) => pick(r.system, (run) => run.drawMs),
  },
  {
    key: "server_rss_mib",
    label: "server peak RSS (MiB)",
    digits: 1,
    values: (r) => pick(r.system, (run) => kbToMib(run.serverRssKb)),
  },
  {
    key: "client_rss_mib",
    label: "client peak RSS (MiB, largest agency)",
    digits: 1,
    values: (r) => pick(r.system, (run) => kbToMib(run.clientRssKb)),
  },
  {
    key: "server_cpu_s",
    label: "server CPU, user+sys, whole life (s)",
    digits: 2,
    values: (r) => pick(r.system, (run) => msToS(run.serverCpuMs)),
  },
  {
    key: "clients_cpu_s",
    label: "clients CPU, user+sys, all (s)",
    digits: 2,
    values: (r) => pick(r.system, (run) => msToS(run.clientCpuMs)),
  },
  {
    key: "ack_p50_ms",
    label: "ack latency p50 (ms, proxy pass)",
    digits: 2,
    values: (r) => pick(r.latency, (run) => percentile(run.ackLatenciesMs ?? [], 50)),
  },
  {
    key: "ack_p99_ms",
    label: "ack latency p99 (ms, proxy pass)",
    digits: 2,
    values: (r) => pick(r.latency, (run) => percentile(run.ackLatenciesMs ?? [], 99)),
  },
];

function msToS(ms: number | undefined): number | undefined {
  return ms === undefined ? undefined : ms / 1000;
}

function kbToMib(kb: number | undefined): number | undefined {
  return kb === undefined || kb === 0 ? undefined : kb / KB_PER_MIB;
}

/**
 * Formats a number for the table: fixed digits, thousands grouped with commas.
 *
 * @param value The number.
 * @param digits Digits after the point.
 * @returns e.g. `"1,234,567"` or `"0.201"`.
 */
export function formatNumber(value: number, digits: number): string {
  return value.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

/**
 * The median of each metric over verified runs, plus the ratio of the median wall to
 * the median floor; null where nothing was measured.
 *
 * @param report The measurements.
 * @returns Metric key → median.
 *
 * @example Usage
 * ```ts
 * function show(report: BenchReport): void {
 *   console.log(computeMedians(report)); // { wall_s: 1.59, bets_per_s: 49495, …, ratio: 12.4 }
 * }
 * ```
 */
export function computeMedians(report: BenchReport): Record<string, number | null> {
  const out: Record<string, number | null> = {};
  for (const metric of METRICS) out[metric.key] = summarize(metric.values(report))?.median ?? null;
  const wall = out["wall_s"];
  const floor = out["floor_s"];
  out["ratio"] = wall != null && floor != null && floor > 0 ? wall / floor : null;
  return out;
}

function round(value: number | null, digits: number): number | null {
  if (value === null) return null;
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

/**
 * The JSON line that ends the output: the setup and the medians, on one line.
 *
 * @param report The measurements.
 * @returns One line of JSON (no newline).
 *
 * @example Usage
 * ```ts
 * function medianWall(report: BenchReport): number {
 *   return JSON.parse(formatJsonLine(report)).wall_s; // seconds
 * }
 * ```
 */
export function formatJsonLine(report: BenchReport): string {
  const medians = computeMedians(report);
  const digitsOf = new Map(METRICS.map((metric) => [metric.key, metric.digits + 2]));
  const rounded: Record<string, number | null> = {};
  for (const [key, value] of Object.entries(medians)) {
    rounded[key] = round(value, digitsOf.get(key) ?? 3);
  }
  const { setup } = report;
  return JSON.stringify({
    bench: "loteria",
    label: setup.label,
    agencies: setup.agencies,
    bets: setup.bets,
    bytes: setup.bytes,
    repeat: setup.repeat,
    fsync: setup.fsync,
    batch: setup.batch,
    runs_ok: report.system.filter((run) => run.ok).length,
    runs_failed: report.system.filter((run) => !run.ok).length,
    ...rounded,
  });
}

/**
 * The human part of the output: a heading, a Markdown table of min/median/max per
 * metric over verified runs, the ratio to the floor, and any failures.
 *
 * @param report The measurements.
 * @returns Markdown text ending with a newline.
 */
export function formatReport(report: BenchReport): string {
  const { setup } = report;
  const lines: string[] = [];
  lines.push(
    `### ${setup.label}: ${setup.agencies} agencies, ${formatNumber(setup.bets, 0)} bets, ` +
      `${formatNumber(setup.bytes / 1e6, 1)} MB, fsync ${setup.fsync}, batch ${setup.batch}`,
  );
  lines.push("");
  const machine = Object.entries(report.machine).map(([k, v]) => `${k} ${v}`).join(", ");
  const systemOk = report.system.filter((run) => run.ok).length;
  const floorOk = report.floor.filter((run) => run.ok).length;
  const latencyOk = report.latency.filter((run) => run.ok).length;
  lines.push(
    `Runs verified: system ${systemOk}/${report.system.length}, floor ${floorOk}/${report.floor.length}` +
      (report.latency.length > 0 ? `, latency pass ${latencyOk}/${report.latency.length}` : "") +
      (machine ? `. Machine: ${machine}.` : "."),
  );
  lines.push("");
  lines.push("| metric | min | median | max |");
  lines.push("|---|---:|---:|---:|");
  for (const metric of METRICS) {
    const spread = summarize(metric.values(report));
    if (spread === undefined) {
      lines.push(`| ${metric.label} | – | – | – |`);
      continue;
    }
    const cells = [spread.min, spread.median, spread.max].map((v) =>
      formatNumber(v, metric.digits)
    );
    lines.push(`| ${metric.label} | ${cells.join(" | ")} |`);
  }
  const medians = computeMedians(report);
  const ratio = medians["ratio"];
  lines.push(
    `| ratio: median wall / median floor | – | ${
      ratio == null ? "–" : `${formatNumber(ratio, 1)}×`
    } | – |`,
  );
  const failures = [
    ...report.system.map((run, i) => ({ what: `system run ${i + 1}`, run })),
    ...report.floor.map((run, i) => ({ what: `floor run ${i + 1}`, run })),
    ...report.latency.map((run, i) => ({ what: `latency run ${i + 1}`, run })),
  ].filter(({ run }) => !run.ok);
  if (failures.length > 0) {
    lines.push("");
    lines.push("Failed runs (not timed):");
    for (const { what, run } of failures) lines.push(`- ${what}: ${run.failures.join("; ")}`);
  }
  return lines.join("\n") + "\n";
}

// ---------------------------------------------------------------------------------------
// Data
// ---------------------------------------------------------------------------------------

/** One agency file ready for a run. */
export interface AgencyData {
  readonly agency: number;
  readonly path: string;
  readonly rows: number;
  readonly winners: number;
  readonly bytes: number;
}

/** The prepared dataset. */
export interface PreparedData {
  readonly label: string;
  readonly dir: string;
  readonly files: readonly AgencyData[];
}

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const BENCH_DIR = join(ROOT, ".bench");

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
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

/**
 * Prepares the agency files under `.bench/data/`: imports the zip or generates data,
 * then writes each file repeated. A dataset already there with the same key is reused;
 * other cached datasets are removed so at most one sits on disk.
 *
 * @param options Source, size and repeat.
 * @param log Progress sink.
 * @returns The files with their row, winner and byte counts.
 */
export async function prepareData(
  options: BenchOptions,
  log: (message: string) => void,
): Promise<PreparedData> {
  const dataRoot = join(BENCH_DIR, "data");
  let key: string;
  let label: string;
  if (options.dataset !== undefined) {
    const zip = resolve(options.dataset);
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(zip);
    } catch (error) {
      throw new BenchArgError(`Cannot run bench: dataset "${options.dataset}" not found`, {
        cause: error,
      });
    }
    key = `zip-${basename(zip, ".zip")}-${info.size}-${
      info.mtime?.getTime() ?? 0
    }-x${options.repeat}`;
    label = `${
      basename(zip) === "dataset.zip" ? "course dataset" : basename(zip)
    } ×${options.repeat}`;
  } else {
    key = `gen-${options.agencies}x${options.betsPerAgency}-x${options.repeat}`;
    label = `generated ${options.agencies}×${options.betsPerAgency} ×${options.repeat}`;
  }
  key = key.replace(/[^\w.-]/g, "_");
  const dir = join(dataRoot, key);
  const cached = await readManifest(dir, key);
  if (cached) {
    log(`reusing data in ${dir}`);
    return cached;
  }
  await Deno.mkdir(dataRoot, { recursive: true });
  for await (const entry of Deno.readDir(dataRoot)) {
    await Deno.remove(join(dataRoot, entry.name), { recursive: true });
  }
  const baseDir = join(dir, "base");
  log(`preparing data in ${dir}`);
  const summary = options.dataset !== undefined
    ? await importDataset(options.dataset, { dir: baseDir })
    : await generateDataset({
      dir: baseDir,
      agencies: options.agencies,
      betsPerAgency: options.betsPerAgency,
    });
  const files: AgencyData[] = [];
  for (const file of summary.files) {
    const path = options.repeat === 1 ? file.path : join(dir, basename(file.path));
    const bytes = options.repeat === 1
      ? (await Deno.stat(path)).size
      : await writeRepeated(file.path, path, options.repeat);
    files.push({
      agency: file.agency,
      path: resolve(path),
      rows: file.rows * options.repeat,
      winners: file.winners * options.repeat,
      bytes,
    });
  }
  const data: PreparedData = { label, dir, files };
  await Deno.writeTextFile(join(dir, "manifest.json"), JSON.stringify({ key, data }));
  return data;
}

// ---------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------

/** Every child this bench started and has not seen exit, for cleanup on a signal. */
const live = new Set<Deno.ChildProcess>();

/** Scratch directories in use, removed on a signal too. */
const scratchDirs = new Set<string>();

interface Tracked {
  readonly child: Deno.ChildProcess;
  readonly pid: number;
  readonly startedAt: number;
  /** Resolves with the exit code and the moment the exit was seen. */
  readonly exited: Promise<{ code: number; signal: string | null; at: number }>;
  /** Resolves when stdout and stderr are drained. */
  readonly drained: Promise<void>;
  /** The last lines of stdout and stderr, for failure messages. */
  readonly tail: string[];
}

const TAIL_LINES = 12;

async function readLines(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string, at: number) => void,
): Promise<void> {
  let carry = "";
  for await (const text of stream.pipeThrough(new TextDecoderStream())) {
    const at = performance.now();
    const parts = (carry + text).split("\n");
    carry = parts.pop() ?? "";
    for (const part of parts) onLine(part.endsWith("\r") ? part.slice(0, -1) : part, at);
  }
  if (carry !== "") onLine(carry, performance.now());
}

function spawn(
  program: string,
  options: {
    readonly args?: readonly string[];
    readonly env: Record<string, string>;
    readonly cwd?: string;
    readonly onLine?: (line: string, at: number) => void;
  },
): Tracked {
  const startedAt = performance.now();
  const child = new Deno.Command(program, {
    args: [...(options.args ?? [])],
    env: options.env,
    clearEnv: true,
    cwd: options.cwd ?? ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  live.add(child);
  const tail: string[] = [];
  const keep = (line: string, at: number, fromStdout: boolean): void => {
    tail.push(line);
    if (tail.length > TAIL_LINES) tail.shift();
    if (fromStdout) options.onLine?.(line, at);
  };
  const drained = Promise.all([
    readLines(child.stdout, (line, at) => keep(line, at, true)),
    readLines(child.stderr, (line, at) => keep(line, at, false)),
  ]).then(() => {});
  const exited = child.status.then((status) => {
    live.delete(child);
    return { code: status.code, signal: status.signal, at: performance.now() };
  });
  return { child, pid: child.pid, startedAt, exited, drained, tail };
}

/** `0.1 s`, `12.5 s`, `375 s`: enough digits to tell short limits apart. */
function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
}

/** The last non-empty line a process printed, cut short, for a failure message. */
function lastLine(tail: readonly string[]): string {
  const line = tail.findLast((text) => text.trim() !== "") ?? "(no output)";
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}

function kill(tracked: Tracked, signal: Deno.Signal): void {
  if (!live.has(tracked.child)) return;
  try {
    tracked.child.kill(signal);
  } catch {
    // It exited between the check and the kill.
  }
}

/** The environment every child gets: only what Deno needs to find its cache. */
function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of ["PATH", "HOME", "DENO_DIR", "XDG_CACHE_HOME", "TMPDIR", "LANG", "TZ"]) {
    const value = Deno.env.get(name);
    if (value !== undefined) env[name] = value;
  }
  return env;
}

/**
 * Samples `/proc/<pid>/status` of tracked processes every 10 ms and keeps, per pid, the
 * largest of `VmRSS` and `VmHWM`. `VmHWM` is the process's own peak, so the last sample
 * before it exits is the answer, whenever the peak happened.
 */
class RssSampler {
  readonly #peakKb = new Map<number, number>();
  readonly #active = new Set<number>();
  readonly #timer: ReturnType<typeof setInterval>;

  constructor(intervalMs = 10) {
    this.#timer = setInterval(() => this.sampleAll(), intervalMs);
  }

  track(pid: number): void {
    this.#active.add(pid);
    this.#sample(pid);
  }

  /** Stops sampling a pid (call once its exit is seen, before the pid can be reused). */
  untrack(pid: number): void {
    this.#active.delete(pid);
  }

  sampleAll(): void {
    for (const pid of this.#active) this.#sample(pid);
  }

  peakKb(pid: number): number | undefined {
    return this.#peakKb.get(pid);
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#active.clear();
  }

  #sample(pid: number): void {
    try {
      const memory = parseProcStatus(Deno.readTextFileSync(`/proc/${pid}/status`));
      const peak = Math.max(memory.rssKb, memory.hwmKb, this.#peakKb.get(pid) ?? 0);
      if (peak > 0) this.#peakKb.set(pid, peak);
    } catch {
      // Gone already; the last sample stands.
    }
  }
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** Waits for a promise, or gives up after `ms`; returns whether it settled. */
async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((done) => {
    timer = setTimeout(() => done(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------
// One run of the system
// ---------------------------------------------------------------------------------------

/** What one run needs besides the data. */
interface RunContext {
  readonly options: BenchOptions;
  readonly data: PreparedData;
  readonly serverBin: string;
  readonly clientBin: string;
  /** This invocation's scratch directory under `.bench/`. */
  readonly scratch: string;
  readonly timeoutMs: number;
  readonly log: (message: string) => void;
}

const SERVER_READY_MS = 30_000;
const SERVER_STOP_MS = 15_000;
const PROGRESS_EVERY_MS = 2000;

function serverIni(port: number): string {
  // Course keys only; everything else comes from env so no user file skews a run.
  return `[DEFAULT]\nSERVER_PORT = ${port}\nSERVER_IP = 127.0.0.1\nSERVER_LISTEN_BACKLOG = 128\nLOGGING_LEVEL = INFO\n`;
}

function clientYaml(address: string, batch: number): string {
  return `server:\n  address: "${address}"\nloop:\n  amount: 5\n  period: "5s"\nlog:\n  level: "INFO"\nbatch:\n  maxAmount: ${batch}\n`;
}

async function countNewlines(path: string): Promise<number> {
  let lines = 0;
  using file = await Deno.open(path);
  const buf = new Uint8Array(1 << 20);
  for (;;) {
    const n = await file.read(buf);
    if (n === null) break;
    for (let i = 0; i < n; i++) if (buf[i] === 0x0a) lines++;
  }
  return lines;
}

/**
 * A pass-through TCP proxy that times each BATCH frame until its BATCH_ACK, per
 * connection, without touching the bytes.
 */
class AckLatencyProxy {
  readonly #listener: Deno.TcpListener;
  readonly #target: number;
  readonly #conns = new Set<Deno.Conn>();
  readonly #tasks = new Set<Promise<void>>();
  readonly latenciesMs: number[] = [];
  readonly #accepting: Promise<void>;

  constructor(targetPort: number) {
    this.#target = targetPort;
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.#accepting = this.#accept();
  }

  get port(): number {
    return (this.#listener.addr as Deno.NetAddr).port;
  }

  async #accept(): Promise<void> {
    try {
      for await (const client of this.#listener) {
        const task = this.#relay(client).catch(() => {});
        this.#tasks.add(task);
        task.finally(() => this.#tasks.delete(task));
      }
    } catch {
      // Listener closed.
    }
  }

  async #relay(client: Deno.TcpConn): Promise<void> {
    this.#conns.add(client);
    let upstream: Deno.TcpConn | undefined;
    try {
      upstream = await Deno.connect({ hostname: "127.0.0.1", port: this.#target });
      this.#conns.add(upstream);
      // Forward each chunk at once: Nagle's algorithm would add delays of its own.
      client.setNoDelay(true);
      upstream.setNoDelay(true);
      const sentAt = new Map<number, number>();
      let now = 0;
      const toServer = new FrameScanner((type, prefix) => {
        if (type === MessageType.BATCH && prefix.length >= 6) {
          sentAt.set(new DataView(prefix.buffer, prefix.byteOffset).getUint32(2), now);
        }
      });
      const toClient = new FrameScanner((type, prefix) => {
        if (type === MessageType.BATCH_ACK && prefix.length >= 4) {
          const seq = new DataView(prefix.buffer, prefix.byteOffset).getUint32(0);
          const at = sentAt.get(seq);
          if (at !== undefined) {
            this.latenciesMs.push(now - at);
            sentAt.delete(seq);
          }
        }
      });
      const pump = async (from: Deno.TcpConn, to: Deno.TcpConn, scanner: FrameScanner) => {
        const buf = new Uint8Array(1 << 16);
        try {
          for (;;) {
            const n = await from.read(buf);
            if (n === null) break;
            now = performance.now();
            scanner.push(buf.subarray(0, n));
            for (let off = 0; off < n;) off += await to.write(buf.subarray(off, n));
          }
          await to.closeWrite().catch(() => {});
        } catch {
          // Reset or closed: the other direction ends too.
          closeQuietly(to);
          closeQuietly(from);
        }
      };
      await Promise.all([pump(client, upstream, toServer), pump(upstream, client, toClient)]);
    } finally {
      for (const conn of [client, upstream]) {
        if (conn && this.#conns.delete(conn)) closeQuietly(conn);
      }
    }
  }

  async close(): Promise<void> {
    closeQuietly(this.#listener);
    for (const conn of this.#conns) closeQuietly(conn);
    this.#conns.clear();
    await this.#accepting;
    await Promise.all(this.#tasks);
  }
}

function closeQuietly(resource: { close(): void }): void {
  try {
    resource.close();
  } catch {
    // Already closed.
  }
}

interface ClientOutcome {
  readonly agency: number;
  configAt?: number;
  ackedAt?: number;
  winnersAt?: number;
  winners?: number;
  failLines: number;
}

/**
 * Runs the system once: fresh storage, server, every agency at once, checks.
 *
 * @param ctx Data, programs and limits.
 * @param runName For progress lines, e.g. `run 2/3`.
 * @param withProxy Whether agencies talk through the ack-latency proxy.
 * @returns The measurements (not ok when any check failed).
 */
async function runSystem(ctx: RunContext, runName: string, withProxy: boolean): Promise<SystemRun> {
  const { data, options } = ctx;
  const dir = await Deno.makeTempDir({ dir: ctx.scratch, prefix: "system-" });
  const failures: string[] = [];
  const sampler = new RssSampler();
  let server: Tracked | undefined;
  const clients: Tracked[] = [];
  let proxy: AckLatencyProxy | undefined;
  let progress: ReturnType<typeof setInterval> | undefined;
  let timeout: ReturnType<typeof setTimeout> | undefined;
  try {
    const port = freePort();
    const storage = join(dir, "storage", "bets.csv");
    await Deno.mkdir(join(dir, "storage"));
    const ini = join(dir, "server.ini");
    await Deno.writeTextFile(ini, serverIni(port));

    let ready: () => void = () => {};
    const readyPromise = new Promise<void>((done) => (ready = done));
    let sorteoLines = 0;
    let drawMs: number | undefined;
    let drawWinners: number | undefined;
    let serverFails = 0;
    let received = 0;
    const onServerLine = (line: string): void => {
      const parsed = parseLogLine(line);
      if (!parsed) return;
      if (parsed.result === "fail") serverFails++;
      if (parsed.action === "accept_connections" && parsed.result === "in_progress") ready();
      else if (parsed.action === "apuesta_recibida" && parsed.result === "success") {
        received += Number(parsed.fields["cantidad"]) || 0;
      } else if (parsed.action === "progreso") {
        received = Math.max(received, Number(parsed.fields["apuestas"]) || 0);
      } else if (parsed.action === "sorteo" && parsed.result === "success") {
        sorteoLines++;
        drawMs = Number(parsed.fields["ms"]);
        drawWinners = Number(parsed.fields["ganadores"]);
      }
    };
    server = spawn(ctx.serverBin, {
      env: {
        ...baseEnv(),
        SERVER_CONFIG: ini,
        SERVER_PORT: String(port),
        SERVER_LISTEN_ADDRESS: "127.0.0.1",
        SERVER_AGENCIES: String(data.files.length),
        SERVER_STORAGE_PATH: storage,
        SERVER_FSYNC: options.fsync,
        LOGGING_LEVEL: "INFO",
      },
      onLine: onServerLine,
    });
    sampler.track(server.pid);
    const serverPid = server.pid;
    const serverExit = server.exited.then((exit) => {
      sampler.untrack(serverPid);
      return exit;
    });
    const up = await Promise.race([
      readyPromise.then(() => "ready" as const),
      serverExit.then(() => "exited" as const),
      new Promise<"timeout">((done) => {
        timeout = setTimeout(() => done("timeout"), SERVER_READY_MS);
      }),
    ]);
    clearTimeout(timeout);
    if (up !== "ready") {
      failures.push(
        up === "exited"
          ? `server exited before accepting connections: ${lastLine(server.tail)}`
          : `server did not log accept_connections within ${SERVER_READY_MS / 1000} s`,
      );
      return { ok: false, failures, wallMs: NaN };
    }
    if (withProxy) proxy = new AckLatencyProxy(port);
    const address = `127.0.0.1:${proxy ? proxy.port : port}`;
    const yaml = join(dir, "client.yaml");
    await Deno.writeTextFile(yaml, clientYaml(address, options.batch));

    // Everything is ready; the clock starts with the first agency.
    const outcomes: ClientOutcome[] = [];
    const cpuBeforeClients = reapedChildrenCpuMs();
    const started = performance.now();
    for (const file of data.files) {
      const outcome: ClientOutcome = { agency: file.agency, failLines: 0 };
      outcomes.push(outcome);
      const client = spawn(ctx.clientBin, {
        env: {
          ...baseEnv(),
          CLI_ID: String(file.agency),
          CLI_CONFIG: yaml,
          CLI_SERVER_ADDRESS: address,
          CLI_DATA_PATH: file.path,
          CLI_BATCH_MAXAMOUNT: String(options.batch),
          CLI_LOG_LEVEL: "INFO",
          CLI_MODE: "agency",
        },
        onLine: (line, at) => {
          const parsed = parseLogLine(line);
          if (!parsed) return;
          if (parsed.result === "fail") outcome.failLines++;
          if (parsed.action === "config" && outcome.configAt === undefined) outcome.configAt = at;
          if (parsed.action === "apuestas_enviadas" && parsed.result === "success") {
            outcome.ackedAt = at;
          }
          if (parsed.action === "consulta_ganadores" && parsed.result === "success") {
            outcome.winnersAt = at;
            outcome.winners = Number(parsed.fields["cant_ganadores"]);
          }
        },
      });
      clients.push(client);
      sampler.track(client.pid);
    }
    const exits = clients.map((client) =>
      client.exited.then((exit) => {
        sampler.untrack(client.pid);
        return exit;
      })
    );
    const totalBets = data.files.reduce((sum, file) => sum + file.rows, 0);
    progress = setInterval(() => {
      const done = clients.filter((client) => !live.has(client.child)).length;
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      ctx.log(
        `${runName}: ${seconds} s, server received ~${formatNumber(received, 0)} of ` +
          `${formatNumber(totalBets, 0)} bets, ${done}/${clients.length} agencies exited`,
      );
    }, PROGRESS_EVERY_MS);
    const allExited = Promise.all(exits);
    // One agency failing means the draw never comes: stop the others at once.
    const firstFailure = Promise.race(
      exits.map((exit) =>
        exit.then((status) => status.code === 0 ? new Promise<never>(() => {}) : status)
      ),
    );
    const stoppedByBench = new Set<number>();
    const outcome = await Promise.race([
      allExited.then(() => "done" as const),
      firstFailure.then(() => "failed" as const),
      new Promise<"timeout">((done) => {
        timeout = setTimeout(() => done("timeout"), ctx.timeoutMs);
      }),
    ]);
    clearTimeout(timeout);
    if (outcome !== "done") {
      if (outcome === "timeout") {
        failures.push(`timed out after ${seconds(ctx.timeoutMs)}`);
      }
      clients.forEach((client, i) => {
        if (!live.has(client.child)) return;
        stoppedByBench.add(i);
        kill(client, "SIGKILL");
      });
    }
    const clientExits = await allExited;
    const cpuAfterClients = reapedChildrenCpuMs();
    const finished = Math.max(...clientExits.map((exit) => exit.at));
    const wallMs = finished - started;
    clearInterval(progress);
    progress = undefined;
    await Promise.all(clients.map((client) => client.drained));

    // Stop the server and check it exits cleanly.
    kill(server, "SIGTERM");
    if (!(await within(serverExit, SERVER_STOP_MS))) {
      failures.push(`server did not exit within ${SERVER_STOP_MS / 1000} s of SIGTERM`);
      kill(server, "SIGKILL");
    }
    const serverStatus = await serverExit;
    const cpuAfterServer = reapedChildrenCpuMs();
    await server.drained;
    if (serverStatus.code !== 0) {
      failures.push(
        `server exited with ${serverStatus.signal ?? `code ${serverStatus.code}`} after SIGTERM: ${
          lastLine(server.tail)
        }`,
      );
    }

    // Checks.
    clientExits.forEach((exit, i) => {
      const file = data.files[i]!;
      const outcome = outcomes[i]!;
      if (stoppedByBench.has(i)) {
        failures.push(`agency ${file.agency} stopped by the bench`);
      } else if (exit.code !== 0) {
        failures.push(
          `agency ${file.agency} exited with ${exit.signal ?? `code ${exit.code}`}: ${
            lastLine(clients[i]!.tail)
          }`,
        );
      } else if (outcome.winners !== file.winners) {
        failures.push(
          `agency ${file.agency} reported cant_ganadores ${
            outcome.winners ?? "none"
          }, expected ${file.winners}`,
        );
      }
      if (outcome.failLines > 0) {
        failures.push(`agency ${file.agency} logged ${outcome.failLines} "result: fail" lines`);
      }
    });
    if (serverFails > 0) failures.push(`server logged ${serverFails} "result: fail" lines`);
    if (sorteoLines !== 1) {
      failures.push(`server logged sorteo ${sorteoLines} times, expected once`);
    }
    const expectedWinners = data.files.reduce((sum, file) => sum + file.winners, 0);
    if (sorteoLines === 1 && drawWinners !== expectedWinners) {
      failures.push(`server's sorteo says ${drawWinners} winners, expected ${expectedWinners}`);
    }
    try {
      const lines = await countNewlines(storage);
      if (lines !== totalBets) {
        failures.push(`bets.csv has ${lines} lines, expected ${totalBets}`);
      }
    } catch (error) {
      failures.push(`cannot read bets.csv: ${error instanceof Error ? error.message : error}`);
    }

    const latest = (get: (o: ClientOutcome) => number | undefined): number | undefined => {
      const times = outcomes.map(get);
      return times.every((t) => t !== undefined) ? Math.max(...times) - started : undefined;
    };
    const clientPeaks = clients.map((client) => sampler.peakKb(client.pid) ?? 0);
    const span = (from: number | undefined, to: number | undefined): number | undefined =>
      from === undefined || to === undefined ? undefined : to - from;
    const run: SystemRun = {
      ok: failures.length === 0,
      failures,
      wallMs,
      ...optional("startupMs", latest((o) => o.configAt)),
      ...optional("ackedMs", latest((o) => o.ackedAt)),
      ...optional("winnersMs", latest((o) => o.winnersAt)),
      ...optional("drawMs", Number.isFinite(drawMs) ? drawMs : undefined),
      ...optional("serverRssKb", sampler.peakKb(serverPid)),
      ...optional("clientRssKb", Math.max(0, ...clientPeaks) || undefined),
      ...optional("serverCpuMs", span(cpuAfterClients, cpuAfterServer)),
      ...optional("clientCpuMs", span(cpuBeforeClients, cpuAfterClients)),
      ...(proxy ? { ackLatenciesMs: proxy.latenciesMs } : {}),
    };
    if (proxy && proxy.latenciesMs.length === 0) {
      return { ...run, ok: false, failures: [...failures, "the proxy saw no acknowledged batch"] };
    }
    return run;
  } finally {
    if (progress !== undefined) clearInterval(progress);
    clearTimeout(timeout);
    for (const client of clients) kill(client, "SIGKILL");
    if (server) kill(server, "SIGKILL");
    await Promise.all([...clients, ...(server ? [server] : [])].map((t) => t.exited));
    sampler.stop();
    await proxy?.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

function optional<K extends string>(
  key: K,
  value: number | undefined,
): { [P in K]?: number } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: number };
}

// ---------------------------------------------------------------------------------------
// The floor
// ---------------------------------------------------------------------------------------

/**
 * The floor's receiver: accepts N connections, appends everything to one file (writes
 * serialized), fsyncs once when all have closed, prints the byte count and exits.
 */
const FLOOR_RECEIVER = `const [n, path] = Deno.args;
const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
const file = await Deno.open(path, { create: true, write: true, append: true });
let total = 0;
let chain = Promise.resolve();
console.log("ready " + listener.addr.port);
async function writeAll(bytes) {
  for (let off = 0; off < bytes.length;) off += await file.write(bytes.subarray(off));
}
async function serve(conn) {
  const buf = new Uint8Array(1 << 18);
  for (;;) {
    const got = await conn.read(buf);
    if (got === null) break;
    total += got;
    chain = chain.then(() => writeAll(buf.subarray(0, got)));
    await chain;
  }
  conn.close();
}
const tasks = [];
for (let i = 0; i < Number(n); i++) tasks.push(serve(await listener.accept()));
listener.close();
await Promise.all(tasks);
await file.sync();
file.close();
console.log("bytes " + total);
`;

/** The floor's sender: streams one file into one connection and exits. */
const FLOOR_SENDER = `const [port, path] = Deno.args;
const conn = await Deno.connect({ hostname: "127.0.0.1", port: Number(port) });
const file = await Deno.open(path);
const buf = new Uint8Array(1 << 18);
for (;;) {
  const n = await file.read(buf);
  if (n === null) break;
  for (let off = 0; off < n;) off += await conn.write(buf.subarray(off, n));
}
file.close();
conn.close();
`;

/**
 * Runs the floor once: a receiver process and one sender process per agency file, all
 * senders at once, over loopback TCP into one file with one fsync.
 */
async function runFloor(ctx: RunContext): Promise<FloorRun> {
  const { data } = ctx;
  const dir = await Deno.makeTempDir({ dir: ctx.scratch, prefix: "floor-" });
  const failures: string[] = [];
  const procs: Tracked[] = [];
  const deno = Deno.execPath();
  try {
    const receiverJs = join(dir, "receiver.js");
    const senderJs = join(dir, "sender.js");
    const out = join(dir, "floor.csv");
    await Deno.writeTextFile(receiverJs, FLOOR_RECEIVER);
    await Deno.writeTextFile(senderJs, FLOOR_SENDER);
    let port = 0;
    let received: number | undefined;
    let ready: () => void = () => {};
    const readyPromise = new Promise<void>((done) => (ready = done));
    const receiver = spawn(deno, {
      args: [
        "run",
        "--no-config",
        "--allow-net=127.0.0.1",
        `--allow-write=${out}`,
        `--allow-read=${out}`,
        receiverJs,
        String(data.files.length),
        out,
      ],
      env: baseEnv(),
      onLine: (line) => {
        const match = /^(ready|bytes) (\d+)$/.exec(line);
        if (match?.[1] === "ready") {
          port = Number(match[2]);
          ready();
        } else if (match?.[1] === "bytes") received = Number(match[2]);
      },
    });
    procs.push(receiver);
    if (!(await within(readyPromise, SERVER_READY_MS))) {
      failures.push(`floor receiver did not start: ${lastLine(receiver.tail)}`);
      return { ok: false, failures, wallMs: NaN };
    }
    const started = performance.now();
    for (const file of data.files) {
      procs.push(spawn(deno, {
        args: [
          "run",
          "--no-config",
          "--allow-net=127.0.0.1",
          `--allow-read=${file.path}`,
          senderJs,
          String(port),
          file.path,
        ],
        env: baseEnv(),
      }));
    }
    const all = Promise.all(procs.map((proc) => proc.exited));
    if (!(await within(all, ctx.timeoutMs))) {
      failures.push(`timed out after ${seconds(ctx.timeoutMs)}`);
      for (const proc of procs) kill(proc, "SIGKILL");
    }
    const exits = await all;
    const wallMs = Math.max(...exits.map((exit) => exit.at)) - started;
    await Promise.all(procs.map((proc) => proc.drained));
    exits.forEach((exit, i) => {
      if (exit.code !== 0) {
        failures.push(
          `floor ${i === 0 ? "receiver" : `sender ${i}`} exited with code ${exit.code}: ${
            lastLine(procs[i]!.tail)
          }`,
        );
      }
    });
    const expected = data.files.reduce((sum, file) => sum + file.bytes, 0);
    if (received !== expected) {
      failures.push(`floor receiver got ${received ?? "no"} bytes, expected ${expected}`);
    }
    return { ok: failures.length === 0, failures, wallMs };
  } finally {
    for (const proc of procs) kill(proc, "SIGKILL");
    await Promise.all(procs.map((proc) => proc.exited));
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

// ---------------------------------------------------------------------------------------
// Orchestration
// ---------------------------------------------------------------------------------------

async function newestMtime(dirs: readonly string[]): Promise<number> {
  let newest = 0;
  for (const dir of dirs) {
    for await (const entry of Deno.readDir(dir)) {
      const path = join(dir, entry.name);
      if (entry.isDirectory) newest = Math.max(newest, await newestMtime([path]));
      else if (entry.name.endsWith(".ts")) {
        newest = Math.max(newest, (await Deno.stat(path)).mtime?.getTime() ?? 0);
      }
    }
  }
  return newest;
}

/** Whether `bin/<name>` is missing, or a compiled binary older than the sources. */
async function needsBuild(bin: string): Promise<boolean> {
  if (!(await exists(bin))) return true;
  using file = await Deno.open(bin);
  const head = new Uint8Array(2);
  await file.read(head);
  if (head[0] === 0x23 && head[1] === 0x21) return false; // "#!": a launcher runs the sources.
  const built = (await Deno.stat(bin)).mtime?.getTime() ?? 0;
  const dirs = ["server", "client", "shared"].map((dir) => join(ROOT, dir));
  return (await newestMtime(dirs)) > built;
}

/**
 * Makes sure `bin/server` and `bin/client` exist and are current, running
 * `tools/build.ts` (what `deno task build` runs) when they are not.
 *
 * @param log Progress sink.
 * @returns The two programs' paths.
 */
export async function ensurePrograms(
  log: (message: string) => void,
): Promise<{ server: string; client: string }> {
  const server = join(ROOT, "bin", "server");
  const client = join(ROOT, "bin", "client");
  if ((await needsBuild(server)) || (await needsBuild(client))) {
    log("building bin/server and bin/client (deno task build)");
    const { code, stderr, stdout } = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-read",
        "--allow-write",
        "--allow-run",
        "--allow-env",
        "tools/build.ts",
      ],
      cwd: ROOT,
      stdin: "null",
    }).output();
    if (code !== 0) {
      const text = new TextDecoder().decode(stderr) + new TextDecoder().decode(stdout);
      throw new Error(`Cannot build programs: tools/build.ts exited with ${code}: ${text.trim()}`);
    }
  }
  return { server, client };
}

async function loadAverage(): Promise<string | undefined> {
  try {
    return (await Deno.readTextFile("/proc/loadavg")).split(" ").slice(0, 3).join(" ");
  } catch {
    return undefined;
  }
}

async function machineFacts(loadAtStart: string | undefined): Promise<Record<string, string>> {
  const facts: Record<string, string> = {};
  try {
    const cpuinfo = await Deno.readTextFile("/proc/cpuinfo");
    const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1];
    if (model) facts["cpu"] = model.trim();
  } catch {
    // Not Linux; leave it out.
  }
  facts["cores"] = String(navigator.hardwareConcurrency);
  facts["deno"] = Deno.version.deno;
  facts["kernel"] = Deno.osRelease();
  // Other work on the machine skews every figure; the load says how busy it was.
  const loadAtEnd = await loadAverage();
  if (loadAtStart !== undefined) facts["load before"] = loadAtStart;
  if (loadAtEnd !== undefined) facts["load after"] = loadAtEnd;
  return facts;
}

/**
 * Runs the whole benchmark: prepares data, then alternates floor and system runs
 * (`runs` of each, so both see the same machine state), then the latency runs.
 *
 * @param options The parsed options.
 * @param log Progress sink (stderr in the CLI).
 * @returns The report.
 */
export async function runBench(
  options: BenchOptions,
  log: (message: string) => void,
): Promise<BenchReport> {
  const data = await prepareData(options, log);
  const programs = await ensurePrograms(log);
  const loadAtStart = await loadAverage();
  const bets = data.files.reduce((sum, file) => sum + file.rows, 0);
  const setup: BenchSetup = {
    label: data.label,
    agencies: data.files.length,
    bets,
    bytes: data.files.reduce((sum, file) => sum + file.bytes, 0),
    winners: data.files.reduce((sum, file) => sum + file.winners, 0),
    repeat: options.repeat,
    fsync: options.fsync,
    batch: options.batch,
  };
  log(
    `${setup.label}: ${setup.agencies} agencies, ${formatNumber(bets, 0)} bets, ` +
      `${formatNumber(setup.bytes / 1e6, 1)} MB, ${setup.winners} winners`,
  );
  await Deno.mkdir(BENCH_DIR, { recursive: true });
  const scratch = await Deno.makeTempDir({ dir: BENCH_DIR, prefix: "run-" });
  scratchDirs.add(scratch);
  const ctx: RunContext = {
    options,
    data,
    serverBin: programs.server,
    clientBin: programs.client,
    scratch,
    timeoutMs: options.timeoutMs ?? defaultRunTimeoutMs(bets),
    log,
  };
  const system: SystemRun[] = [];
  const floor: FloorRun[] = [];
  const latency: SystemRun[] = [];
  const describe = (run: { ok: boolean; wallMs: number; failures: readonly string[] }) =>
    run.ok ? `${(run.wallMs / 1000).toFixed(3)} s` : `FAILED: ${run.failures.join("; ")}`;
  try {
    for (let i = 1; i <= options.runs; i++) {
      const floorRun = await runFloor(ctx);
      floor.push(floorRun);
      log(`floor ${i}/${options.runs}: ${describe(floorRun)}`);
      const run = await runSystem(ctx, `run ${i}/${options.runs}`, false);
      system.push(run);
      const extra = run.ok
        ? ` (${formatNumber(bets / (run.wallMs / 1000), 0)} bets/s, draw ${run.drawMs ?? "?"} ms)`
        : "";
      log(`run ${i}/${options.runs}: ${describe(run)}${extra}`);
    }
    for (let i = 1; i <= options.latencyRuns; i++) {
      const run = await runSystem(ctx, `latency ${i}/${options.latencyRuns}`, true);
      latency.push(run);
      const extra = run.ok
        ? ` (${run.ackLatenciesMs?.length ?? 0} acks, p50 ${
          percentile(run.ackLatenciesMs ?? [], 50)?.toFixed(2)
        } ms, p99 ${percentile(run.ackLatenciesMs ?? [], 99)?.toFixed(2)} ms; not timed)`
        : "";
      log(`latency ${i}/${options.latencyRuns}: ${describe(run)}${extra}`);
    }
  } finally {
    await Deno.remove(scratch, { recursive: true }).catch(() => {});
    scratchDirs.delete(scratch);
  }
  return { setup, system, floor, latency, machine: await machineFacts(loadAtStart) };
}

/**
 * Runs the CLI.
 *
 * @param args The command-line arguments.
 * @returns The exit code: 0 all runs verified, 1 a run failed, 2 bad arguments.
 */
export async function main(args: readonly string[]): Promise<number> {
  let options: BenchOptions;
  try {
    options = parseBenchArgs(args);
  } catch (error) {
    if (error instanceof BenchArgError || error instanceof TypeError) {
      console.error(error.message);
      return 2;
    }
    throw error;
  }
  if (options.help) {
    console.log(USAGE);
    return 0;
  }
  const log = (message: string): void => console.error(`bench: ${message}`);
  const onSignal = (): void => {
    log("interrupted; stopping the processes it started");
    for (const child of live) {
      try {
        child.kill("SIGKILL");
      } catch {
        // Gone already.
      }
    }
    for (const dir of scratchDirs) {
      try {
        Deno.removeSync(dir, { recursive: true });
      } catch {
        // Best effort: the processes may still hold files for a moment.
      }
    }
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  try {
    const report = await runBench(options, log);
    console.log(formatReport(report));
    console.log(formatJsonLine(report));
    const failed = [...report.system, ...report.floor, ...report.latency].some((run) => !run.ok);
    return failed ? 1 : 0;
  } catch (error) {
    if (error instanceof BenchArgError || error instanceof DatasetError) {
      console.error(error.message);
      return 2;
    }
    console.error(`Cannot run bench: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
