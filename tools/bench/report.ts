/**
 * What a bench invocation measured, and how it is printed: a Markdown table of
 * min/median/max per metric over verified runs, then one JSON line of the medians.
 * Pure: no I/O.
 *
 * @module
 */
import type { FsyncMode } from "./args.ts";
import { percentile, summarize } from "./stats.ts";

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
  /** Whether every check passed; only these runs are summarized. */
  readonly ok: boolean;
  /** Why it failed (empty when ok). */
  readonly failures: readonly string[];
  /** Senders' start to the last sender exited and the receiver's fsync done, ms. */
  readonly wallMs: number;
}

/** What was benchmarked. */
export interface BenchSetup {
  /** e.g. `course dataset ×10`. */
  readonly label: string;
  /** Agencies (clients) of one run. */
  readonly agencies: number;
  /** Bets of one run. */
  readonly bets: number;
  /** CSV bytes of one run. */
  readonly bytes: number;
  /** Winners of one run. */
  readonly winners: number;
  /** `--repeat`. */
  readonly repeat: number;
  /** The server's `SERVER_FSYNC`. */
  readonly fsync: FsyncMode;
  /** The agencies' `batch.maxAmount`. */
  readonly batch: number;
}

/** Everything a bench invocation measured. */
export interface BenchReport {
  /** What was benchmarked. */
  readonly setup: BenchSetup;
  /** The timed runs of the system. */
  readonly system: readonly SystemRun[];
  /** The runs of the floor. */
  readonly floor: readonly FloorRun[];
  /** The untimed runs through the ack-latency proxy. */
  readonly latency: readonly SystemRun[];
  /** Machine facts for the record, e.g. `{ cpu: "…", cores: "2", deno: "2.9.6" }`. */
  readonly machine: Readonly<Record<string, string>>;
}

/** One row of the table and one key of the JSON line. */
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
 *
 * @example Usage
 * ```ts
 * formatNumber(1_234_567.891, 0); // "1,234,568"
 * ```
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
 *
 * @example Usage
 * ```ts
 * function print(report: BenchReport): void {
 *   console.log(formatReport(report));
 *   console.log(formatJsonLine(report));
 * }
 * ```
 */
export function formatReport(report: BenchReport): string {
  const lines = [...headingLines(report), "", ...tableLines(report), ...failureLines(report)];
  return lines.join("\n") + "\n";
}

/** The title line, a blank line and the runs verified with the machine facts. */
function headingLines(report: BenchReport): string[] {
  const { setup } = report;
  const machine = Object.entries(report.machine).map(([k, v]) => `${k} ${v}`).join(", ");
  const systemOk = report.system.filter((run) => run.ok).length;
  const floorOk = report.floor.filter((run) => run.ok).length;
  const latencyOk = report.latency.filter((run) => run.ok).length;
  return [
    `### ${setup.label}: ${setup.agencies} agencies, ${formatNumber(setup.bets, 0)} bets, ` +
    `${formatNumber(setup.bytes / 1e6, 1)} MB, fsync ${setup.fsync}, batch ${setup.batch}`,
    "",
    `Runs verified: system ${systemOk}/${report.system.length}, floor ${floorOk}/${report.floor.length}` +
    (report.latency.length > 0 ? `, latency pass ${latencyOk}/${report.latency.length}` : "") +
    (machine ? `. Machine: ${machine}.` : "."),
  ];
}

/** The Markdown table: one row per metric, then the ratio to the floor. */
function tableLines(report: BenchReport): string[] {
  const lines = ["| metric | min | median | max |", "|---|---:|---:|---:|"];
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
  const ratio = computeMedians(report)["ratio"];
  lines.push(
    `| ratio: median wall / median floor | – | ${
      ratio == null ? "–" : `${formatNumber(ratio, 1)}×`
    } | – |`,
  );
  return lines;
}

/** A blank line and one line per failed run; nothing when every run passed. */
function failureLines(report: BenchReport): string[] {
  const failures = [
    ...report.system.map((run, i) => ({ what: `system run ${i + 1}`, run })),
    ...report.floor.map((run, i) => ({ what: `floor run ${i + 1}`, run })),
    ...report.latency.map((run, i) => ({ what: `latency run ${i + 1}`, run })),
  ].filter(({ run }) => !run.ok);
  if (failures.length === 0) return [];
  return [
    "",
    "Failed runs (not timed):",
    ...failures.map(({ what, run }) => `- ${what}: ${run.failures.join("; ")}`),
  ];
}

/**
 * A limit for a failure message: `0.1 s`, `12.5 s`, `375 s`, enough digits to tell
 * short limits apart.
 *
 * @param ms Milliseconds.
 * @returns The text.
 *
 * @example Usage
 * ```ts
 * formatSeconds(64_000); // "64 s"
 * ```
 */
export function formatSeconds(ms: number): string {
  return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
}
