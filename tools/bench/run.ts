/**
 * The whole benchmark: prepares the data and the programs, alternates floor and system
 * runs (`--runs` of each, so both see the same machine state), then the untimed latency
 * runs, and gathers everything into a {@linkcode BenchReport}.
 *
 * @module
 */
import { join } from "node:path";
import { buildBinaries } from "../build.ts";
import type { BenchOptions } from "./args.ts";
import { BENCH_DIR, prepareData } from "./data.ts";
import { runFloor } from "./floor.ts";
import { loadAverage, machineFacts } from "./proc.ts";
import {
  type BenchReport,
  type FloorRun,
  formatNumber,
  percentile,
  type SystemRun,
} from "./report.ts";
import { runSystem, type SystemRunContext } from "./system.ts";

/** Scratch folders in use, removed on a signal too. */
export const scratchDirs: Set<string> = new Set();

/** `1.234 s`, or why the run failed. */
function describeRun(run: FloorRun): string {
  return run.ok ? `${(run.wallMs / 1000).toFixed(3)} s` : `FAILED: ${run.failures.join("; ")}`;
}

/**
 * Runs the whole benchmark.
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
  // The programs as the sources are now (not timed).
  log(await buildBinaries());
  const loadAtStart = await loadAverage();
  const sum = (get: (file: (typeof data.files)[number]) => number) =>
    data.files.reduce((total, file) => total + get(file), 0);
  const setup = {
    label: data.label,
    agencies: data.files.length,
    bets: sum((file) => file.rows),
    bytes: sum((file) => file.bytes),
    winners: sum((file) => file.winners),
    repeat: options.repeat,
    fsync: options.fsync,
    batch: options.batch,
  };
  log(
    `${setup.label}: ${setup.agencies} agencies, ${formatNumber(setup.bets, 0)} bets, ` +
      `${formatNumber(setup.bytes / 1e6, 1)} MB, ${setup.winners} winners`,
  );
  await Deno.mkdir(BENCH_DIR, { recursive: true });
  const scratch = await Deno.makeTempDir({ dir: BENCH_DIR, prefix: "run-" });
  scratchDirs.add(scratch);
  const root = new URL("../../bin/", import.meta.url).pathname;
  const ctx: SystemRunContext = {
    data,
    fsync: options.fsync,
    batch: options.batch,
    serverBin: join(root, "server"),
    clientBin: join(root, "client"),
    scratch,
    // Default: 60 s plus 1 s per 25,000 bets.
    timeoutMs: options.timeoutMs ?? 60_000 + Math.ceil(setup.bets / 25_000) * 1000,
    log,
  };
  try {
    const system: SystemRun[] = [];
    const floor: FloorRun[] = [];
    for (let i = 1; i <= options.runs; i++) {
      floor.push(await runFloor(data, ctx));
      log(`floor ${i}/${options.runs}: ${describeRun(floor.at(-1)!)}`);
      const run = await runSystem(ctx, { name: `run ${i}/${options.runs}`, withProxy: false });
      system.push(run);
      const rate = run.ok ? ` (${formatNumber(setup.bets / (run.wallMs / 1000), 0)} bets/s)` : "";
      log(`run ${i}/${options.runs}: ${describeRun(run)}${rate}`);
    }
    const latency: SystemRun[] = [];
    for (let i = 1; i <= options.latencyRuns; i++) {
      const run = await runSystem(ctx, {
        name: `latency ${i}/${options.latencyRuns}`,
        withProxy: true,
      });
      latency.push(run);
      const acks = run.ackLatenciesMs ?? [];
      const extra = run.ok
        ? ` (${acks.length} acks, p50 ${percentile(acks, 50)?.toFixed(2)} ms, ` +
          `p99 ${percentile(acks, 99)?.toFixed(2)} ms; not timed)`
        : "";
      log(`latency ${i}/${options.latencyRuns}: ${describeRun(run)}${extra}`);
    }
    return { setup, system, floor, latency, machine: await machineFacts(loadAtStart) };
  } finally {
    await Deno.remove(scratch, { recursive: true }).catch(() => {});
    scratchDirs.delete(scratch);
  }
}
