/**
 * What a bench invocation measured, and how it is printed: a Markdown table of
 * min/median/max per metric over verified runs, then one JSON line of the medians.
 * Pure: no I/O.
 *
 * @module
 */
import type { BenchOptions } from "./args.ts";
import { formatThreadShares } from "./proc.ts";

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
  /** CPU time of all agencies together (the load's generator). */
  readonly clientCpuMs?: number;
  /** The server's SERVER_WORKERS (`default`: its own). */
  readonly workers?: string;
  /** Server CPU per thread while the agencies ran (see `threadCpuMs`). */
  readonly threadCpuMs?: Readonly<Record<string, number>>;
}

/** One run of the floor: senders' start to the last sender exited and the fsync done. */
export type FloorRun = Pick<SystemRun, "ok" | "failures" | "wallMs">;

/**
 * What was benchmarked: the options that shape a run, and the data of one run (its
 * `label`, e.g. `course dataset ×10`, agencies, bets, CSV bytes and winners).
 */
export interface BenchSetup extends Pick<BenchOptions, "repeat" | "fsync" | "batch"> {
  readonly label: string;
  readonly agencies: number;
  readonly bets: number;
  readonly bytes: number;
  readonly winners: number;
}

/**
 * Everything a bench invocation measured: its setup, the timed runs of the system and of
 * the floor, and facts about the machine
 * (`{ cpu: "…", cores: "2", deno: "2.9.6", … }`).
 */
export interface BenchReport {
  readonly setup: BenchSetup;
  readonly system: readonly SystemRun[];
  readonly floor: readonly FloorRun[];
  readonly machine: Readonly<Record<string, string>>;
}

/**
 * Min, median (the mean of the two middle values for an even count) and max of the
 * finite values; undefined when there is none.
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

const s = (ms: number | undefined) => ms === undefined ? undefined : ms / 1000;
const mib = (kb: number | undefined) => kb ? kb / 1024 : undefined;

/** A row of the table and a key of the JSON line: over the system runs unless it names others. */
type Metric = readonly [
  key: string,
  label: string,
  digits: number,
  value: (run: SystemRun, setup: BenchSetup) => number | undefined,
  runs?: "floor",
];

const METRICS: readonly Metric[] = [
  ["wall_s", "wall: client start → all exited (s)", 3, (x) => s(x.wallMs)],
  ["bets_per_s", "bets/s", 0, (x, setup) => setup.bets / s(x.wallMs)!],
  ["mb_per_s", "MB/s (CSV bytes, 10^6)", 1, (x, setup) => setup.bytes / 1e6 / s(x.wallMs)!],
  ["floor_s", "floor: same bytes and processes, 1 fsync (s)", 3, (x) => s(x.wallMs), "floor"],
  ["startup_s", "phase: last agency started (s)", 3, (x) => s(x.startupMs)],
  ["acked_s", "phase: last agency's bets all acked (s)", 3, (x) => s(x.ackedMs)],
  ["winners_s", "phase: last agency got its winners (s)", 3, (x) => s(x.winnersMs)],
  ["draw_ms", "draw (ms, server's sorteo line)", 0, (x) => x.drawMs],
  ["server_rss_mib", "server peak RSS (MiB)", 1, (x) => mib(x.serverRssKb)],
  ["client_rss_mib", "client peak RSS (MiB, largest agency)", 1, (x) => mib(x.clientRssKb)],
  ["server_cpu_s", "server CPU, user+sys, whole life (s)", 2, (x) => s(x.serverCpuMs)],
  ["clients_cpu_s", "clients CPU, user+sys, all (s)", 2, (x) => s(x.clientCpuMs)],
];

/** A metric's values over the verified runs. */
function valuesOf(report: BenchReport, [, , , value, runs]: Metric): number[] {
  return report[runs ?? "system"].filter((run) => run.ok).map((run) => value(run, report.setup))
    .filter((v): v is number => Number.isFinite(v));
}

/** A number for the table: `digits` after the point, thousands grouped (`1,234,567`). */
export function formatNumber(value: number, digits: number): string {
  return value.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

/**
 * The median of each metric over verified runs, by the JSON line's keys, plus the ratio of
 * the median wall to the median floor; null where nothing was measured.
 */
export function computeMedians(report: BenchReport): Record<string, number | null> {
  const out: Record<string, number | null> = {};
  for (const metric of METRICS) {
    out[metric[0]] = summarize(valuesOf(report, metric))?.median ?? null;
  }
  const { wall_s: wall, floor_s: floor } = out;
  out["ratio"] = wall != null && floor ? wall / floor : null;
  return out;
}

/** The JSON line that ends the output (no newline): the setup and the medians, rounded. */
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
 * The human part of the output, Markdown ending with a newline: a heading, the runs
 * verified with the machine facts, a table of min/median/max per metric over verified
 * runs, the ratio to the floor, and any failures.
 */
export function formatReport(report: BenchReport): string {
  const { setup, system, floor } = report;
  const verified = (runs: readonly FloorRun[]) =>
    `${runs.filter((r) => r.ok).length}/${runs.length}`;
  const machine = Object.entries(report.machine).map(([k, v]) => `${k} ${v}`).join(", ");
  const lines = [
    `### ${setup.label}: ${setup.agencies} agencies, ${formatNumber(setup.bets, 0)} bets, ` +
    `${formatNumber(setup.bytes / 1e6, 1)} MB, fsync ${setup.fsync}, batch ${setup.batch}`,
    "",
    `Runs verified: system ${verified(system)}, floor ${verified(floor)}` +
    (machine ? `. Machine: ${machine}.` : "."),
    "",
    "| metric | min | median | max |",
    "|---|---:|---:|---:|",
  ];
  for (const metric of METRICS) {
    const [, label, digits] = metric;
    const spread = summarize(valuesOf(report, metric));
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
  const failed = (["system", "floor"] as const).flatMap((kind) =>
    report[kind].flatMap((run, i) =>
      run.ok ? [] : `- ${kind} run ${i + 1}: ${run.failures.join("; ")}`
    )
  );
  if (failed.length > 0) lines.push("", "Failed runs (not timed):", ...failed);
  return lines.join("\n") + "\n";
}

/**
 * The SERVER_WORKERS settings side by side, Markdown: per setting the verified runs, the
 * median wall and bets/s, the median CPU of the server (every thread) and of the clients
 * while they ran, and each JavaScript thread's share of the server's CPU over those runs; then, for each setting after the first, the median of the run-by-run ratios of its
 * wall to the first's (runs were interleaved, so each pair saw the same machine).
 */
export function formatWorkersTable(
  runs: readonly SystemRun[],
  { workers, bets }: { readonly workers: readonly string[]; readonly bets: number },
): string {
  const lines = [
    "| SERVER_WORKERS | runs ok | wall median (s) | bets/s | server CPU (s) | clients' CPU (s) | server JS threads' CPU shares |",
    "|---|---:|---:|---:|---:|---:|---|",
  ];
  const seconds = (ms: number | undefined) => ms === undefined ? "–" : formatNumber(ms / 1000, 2);
  const byWorkers = workers.map((w) => runs.filter((run) => run.workers === w));
  byWorkers.forEach((own, i) => {
    const ok = own.filter((run) => run.ok);
    const wall = summarize(ok.map((run) => run.wallMs))?.median;
    const cpu: Record<string, number> = {};
    for (const run of ok) {
      for (const [label, ms] of Object.entries(run.threadCpuMs ?? {})) {
        cpu[label] = (cpu[label] ?? 0) + ms;
      }
    }
    const rate = wall === undefined ? "–" : formatNumber(bets / (wall / 1000), 0);
    const threads = ok.map((run) =>
      Object.values(run.threadCpuMs ?? {}).reduce((a, b) => a + b, 0)
    );
    const clients = ok.flatMap((run) => run.clientCpuMs === undefined ? [] : [run.clientCpuMs]);
    lines.push(
      `| ${workers[i]} | ${ok.length}/${own.length} | ${
        wall === undefined ? "–" : formatNumber(wall / 1000, 3)
      } | ${rate} | ${seconds(summarize(threads)?.median)} | ${
        seconds(summarize(clients)?.median)
      } | ${formatThreadShares(cpu)} |`,
    );
  });
  const first = byWorkers[0] ?? [];
  byWorkers.slice(1).forEach((own, i) => {
    const ratios = own.flatMap((run, k) => {
      const base = first[k];
      return run.ok && base?.ok ? [run.wallMs / base.wallMs] : [];
    });
    const median = summarize(ratios)?.median;
    lines.push(
      "",
      `Paired: median of ${ratios.length} run-by-run ratios, wall with ${workers[i + 1]} / ` +
        `wall with ${workers[0]}: ${median === undefined ? "–" : `${formatNumber(median, 2)}×`}`,
    );
  });
  return lines.join("\n") + "\n";
}
