/**
 * What a bench invocation measured, and how it is printed: a Markdown table of
 * min/median/max per metric over verified runs, then one JSON line of the medians.
 * Pure: no I/O.
 *
 * @module
 */
import type { FsyncPolicy } from "../../server/storage.ts";

/** One timed run of the system; times in ms from the agencies' start, memory in kB. */
export interface SystemRun {
  /** Whether every check passed; only these runs are summarized. */
  readonly ok: boolean;
  /** Why it failed (empty when ok). */
  readonly failures: readonly string[];
  /** Until the last agency exited. */
  readonly wallMs: number;
  /** Until the last agency's `config` line (process up, config read). */
  readonly startupMs?: number;
  /** Until the last agency's `apuestas_enviadas` (all bets acked, done). */
  readonly ackedMs?: number;
  /** Until the last agency's `consulta_ganadores`. */
  readonly winnersMs?: number;
  /** The server's `sorteo` `ms`. */
  readonly drawMs?: number;
  /** Server peak RSS. */
  readonly serverRssKb?: number;
  /** Largest agency peak RSS. */
  readonly clientRssKb?: number;
  /** Server CPU time (user + system) over its whole life. */
  readonly serverCpuMs?: number;
  /** CPU time of all agencies together. */
  readonly clientCpuMs?: number;
  /** Ack latencies seen by the proxy (latency runs only). */
  readonly ackLatenciesMs?: readonly number[];
}

/** One run of the floor: senders' start to the last sender exited and the fsync done. */
export type FloorRun = Pick<SystemRun, "ok" | "failures" | "wallMs">;

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
  readonly fsync: FsyncPolicy;
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

/**
 * Min, median (the mean of the two middle values for an even count) and max.
 *
 * @param values The samples; non-finite ones are ignored.
 * @returns The spread, or undefined when there is no finite sample.
 */
export function summarize(
  values: readonly number[],
): { min: number; median: number; max: number } | undefined {
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
 *   undefined for no samples.
 */
export function percentile(values: readonly number[], p: number): number | undefined {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(Math.max(1, Math.ceil((p / 100) * sorted.length)), sorted.length) - 1];
}

/** Values of a metric over the verified runs. */
function pick(runs: readonly SystemRun[], get: (run: SystemRun) => number | undefined): number[] {
  return runs.filter((run) => run.ok).map(get).filter((v): v is number => Number.isFinite(v));
}

const s = (ms: number | undefined) => ms === undefined ? undefined : ms / 1000;
const mib = (kb: number | undefined) => kb ? kb / 1024 : undefined;

type Values = (r: BenchReport) => number[];
const sys = (get: (run: SystemRun) => number | undefined): Values => (r) => pick(r.system, get);
const acks = (p: number): Values => (r) =>
  pick(r.latency, (x) => percentile(x.ackLatenciesMs ?? [], p));

/** The table's rows and the JSON line's keys: key, label, digits, values. */
const METRICS: readonly [string, string, number, Values][] = [
  ["wall_s", "wall: client start → all exited (s)", 3, sys((x) => s(x.wallMs))],
  ["bets_per_s", "bets/s", 0, (r) => sys((x) => r.setup.bets / s(x.wallMs)!)(r)],
  [
    "mb_per_s",
    "MB/s (CSV bytes, 10^6)",
    1,
    (r) => sys((x) => r.setup.bytes / 1e6 / s(x.wallMs)!)(r),
  ],
  [
    "floor_s",
    "floor: same bytes and processes, 1 fsync (s)",
    3,
    (r) => pick(r.floor, (x) => s(x.wallMs)),
  ],
  ["startup_s", "phase: last agency started (s)", 3, sys((x) => s(x.startupMs))],
  ["acked_s", "phase: last agency's bets all acked (s)", 3, sys((x) => s(x.ackedMs))],
  ["winners_s", "phase: last agency got its winners (s)", 3, sys((x) => s(x.winnersMs))],
  ["draw_ms", "draw (ms, server's sorteo line)", 0, sys((x) => x.drawMs)],
  ["server_rss_mib", "server peak RSS (MiB)", 1, sys((x) => mib(x.serverRssKb))],
  ["client_rss_mib", "client peak RSS (MiB, largest agency)", 1, sys((x) => mib(x.clientRssKb))],
  ["server_cpu_s", "server CPU, user+sys, whole life (s)", 2, sys((x) => s(x.serverCpuMs))],
  ["clients_cpu_s", "clients CPU, user+sys, all (s)", 2, sys((x) => s(x.clientCpuMs))],
  ["ack_p50_ms", "ack latency p50 (ms, proxy pass)", 2, acks(50)],
  ["ack_p99_ms", "ack latency p99 (ms, proxy pass)", 2, acks(99)],
];

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
 */
export function computeMedians(report: BenchReport): Record<string, number | null> {
  const out: Record<string, number | null> = {};
  for (const [key, , , values] of METRICS) out[key] = summarize(values(report))?.median ?? null;
  const { wall_s: wall, floor_s: floor } = out;
  out["ratio"] = wall != null && floor ? wall / floor : null;
  return out;
}

/**
 * The JSON line that ends the output: the setup and the medians (rounded), on one line.
 *
 * @param report The measurements.
 * @returns One line of JSON (no newline).
 */
export function formatJsonLine(report: BenchReport): string {
  const digitsOf = new Map(METRICS.map(([key, , digits]) => [key, digits + 2]));
  const rounded = Object.entries(computeMedians(report)).map(([key, value]) => {
    const scale = 10 ** (digitsOf.get(key) ?? 3);
    return [key, value === null ? null : Math.round(value * scale) / scale];
  });
  const { label, agencies, bets, bytes, repeat, fsync, batch } = report.setup;
  return JSON.stringify({
    bench: "loteria",
    ...{ label, agencies, bets, bytes, repeat, fsync, batch },
    runs_ok: report.system.filter((run) => run.ok).length,
    runs_failed: report.system.filter((run) => !run.ok).length,
    ...Object.fromEntries(rounded),
  });
}

/**
 * The human part of the output: a heading, the runs verified with the machine facts, a
 * Markdown table of min/median/max per metric over verified runs, the ratio to the
 * floor, and any failures.
 *
 * @param report The measurements.
 * @returns Markdown text ending with a newline.
 */
export function formatReport(report: BenchReport): string {
  const { setup, system, floor, latency } = report;
  const verified = (runs: readonly FloorRun[]) =>
    `${runs.filter((r) => r.ok).length}/${runs.length}`;
  const machine = Object.entries(report.machine).map(([k, v]) => `${k} ${v}`).join(", ");
  const lines = [
    `### ${setup.label}: ${setup.agencies} agencies, ${formatNumber(setup.bets, 0)} bets, ` +
    `${formatNumber(setup.bytes / 1e6, 1)} MB, fsync ${setup.fsync}, batch ${setup.batch}`,
    "",
    `Runs verified: system ${verified(system)}, floor ${verified(floor)}` +
    (latency.length > 0 ? `, latency pass ${verified(latency)}` : "") +
    (machine ? `. Machine: ${machine}.` : "."),
    "",
    "| metric | min | median | max |",
    "|---|---:|---:|---:|",
  ];
  for (const [, label, digits, values] of METRICS) {
    const spread = summarize(values(report));
    const cells = spread
      ? [spread.min, spread.median, spread.max].map((v) => formatNumber(v, digits))
      : ["–", "–", "–"];
    lines.push(`| ${label} | ${cells.join(" | ")} |`);
  }
  const ratio = computeMedians(report)["ratio"];
  lines.push(
    `| ratio: median wall / median floor | – | ${
      ratio == null ? "–" : `${formatNumber(ratio, 1)}×`
    } | – |`,
  );
  const failed = [
    ...system.map((run, i) => [`system run ${i + 1}`, run] as const),
    ...floor.map((run, i) => [`floor run ${i + 1}`, run] as const),
    ...latency.map((run, i) => [`latency run ${i + 1}`, run] as const),
  ].filter(([, run]) => !run.ok);
  if (failed.length > 0) lines.push("", "Failed runs (not timed):");
  for (const [what, run] of failed) lines.push(`- ${what}: ${run.failures.join("; ")}`);
  return lines.join("\n") + "\n";
}
