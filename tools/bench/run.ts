/**
 * The whole benchmark: prepares the data and the programs, alternates floor and system
 * runs (`--runs` of each, so both see the same machine state), then the untimed latency
 * runs, and gathers everything into a {@linkcode BenchReport}.
 *
 * @module
 */
import { type BenchOptions, defaultRunTimeoutMs } from "./args.ts";
import { prepareData, type PreparedData } from "./data.ts";
import { runFloor } from "./floor.ts";
import { BENCH_DIR } from "./paths.ts";
import { loadAverage, machineFacts } from "./proc.ts";
import { ensurePrograms } from "./programs.ts";
import {
  type BenchReport,
  type BenchSetup,
  type FloorRun,
  formatNumber,
  type SystemRun,
} from "./report.ts";
import { percentile } from "./stats.ts";
import { runSystem, type SystemRunContext } from "./system.ts";

/** Scratch directories in use, removed on a signal too. */
const scratchDirs = new Set<string>();

/**
 * Removes the scratch directories of runs in progress, synchronously (for a signal
 * handler that exits right after). Best effort: a process may still hold files.
 *
 * @example Usage
 * ```ts
 * Deno.addSignalListener("SIGINT", () => {
 *   removeScratchDirsSync();
 *   Deno.exit(130);
 * });
 * ```
 */
export function removeScratchDirsSync(): void {
  for (const dir of scratchDirs) {
    try {
      Deno.removeSync(dir, { recursive: true });
    } catch {
      // Best effort: the processes may still hold files for a moment.
    }
  }
}

/**
 * Runs the whole benchmark: prepares data, then alternates floor and system runs
 * (`runs` of each, so both see the same machine state), then the latency runs.
 *
 * @param options The parsed options.
 * @param log Progress sink (stderr in the CLI).
 * @returns The report.
 *
 * @example Usage
 * ```ts
 * const report = await runBench(parseBenchArgs(["--runs", "1"]), console.error);
 * console.log(formatReport(report));
 * ```
 */
export async function runBench(
  options: BenchOptions,
  log: (message: string) => void,
): Promise<BenchReport> {
  const data = await prepareData(options, log);
  const programs = await ensurePrograms(log);
  const loadAtStart = await loadAverage();
  const setup = describeSetup(data, options);
  log(
    `${setup.label}: ${setup.agencies} agencies, ${formatNumber(setup.bets, 0)} bets, ` +
      `${formatNumber(setup.bytes / 1e6, 1)} MB, ${setup.winners} winners`,
  );
  await Deno.mkdir(BENCH_DIR, { recursive: true });
  const scratch = await Deno.makeTempDir({ dir: BENCH_DIR, prefix: "run-" });
  scratchDirs.add(scratch);
  const ctx: SystemRunContext = {
    data,
    fsync: options.fsync,
    batch: options.batch,
    serverBin: programs.server,
    clientBin: programs.client,
    scratch,
    timeoutMs: options.timeoutMs ?? defaultRunTimeoutMs(setup.bets),
    log,
  };
  try {
    const { system, floor } = await timedRuns(ctx, options.runs);
    const latency = await latencyRuns(ctx, options.latencyRuns);
    return { setup, system, floor, latency, machine: await machineFacts(loadAtStart) };
  } finally {
    await Deno.remove(scratch, { recursive: true }).catch(() => {});
    scratchDirs.delete(scratch);
  }
}

function describeSetup(data: PreparedData, options: BenchOptions): BenchSetup {
  return {
    label: data.label,
    agencies: data.files.length,
    bets: data.files.reduce((sum, file) => sum + file.rows, 0),
    bytes: data.files.reduce((sum, file) => sum + file.bytes, 0),
    winners: data.files.reduce((sum, file) => sum + file.winners, 0),
    repeat: options.repeat,
    fsync: options.fsync,
    batch: options.batch,
  };
}

/** `1.234 s`, or why the run failed. */
function describeRun(run: FloorRun | SystemRun): string {
  return run.ok ? `${(run.wallMs / 1000).toFixed(3)} s` : `FAILED: ${run.failures.join("; ")}`;
}

/** `runs` pairs of a floor run then a system run. */
async function timedRuns(
  ctx: SystemRunContext,
  runs: number,
): Promise<{ system: SystemRun[]; floor: FloorRun[] }> {
  const bets = ctx.data.files.reduce((sum, file) => sum + file.rows, 0);
  const system: SystemRun[] = [];
  const floor: FloorRun[] = [];
  for (let i = 1; i <= runs; i++) {
    const floorRun = await runFloor(ctx.data, ctx);
    floor.push(floorRun);
    ctx.log(`floor ${i}/${runs}: ${describeRun(floorRun)}`);
    const run = await runSystem(ctx, { name: `run ${i}/${runs}`, withProxy: false });
    system.push(run);
    const extra = run.ok
      ? ` (${formatNumber(bets / (run.wallMs / 1000), 0)} bets/s, draw ${run.drawMs ?? "?"} ms)`
      : "";
    ctx.log(`run ${i}/${runs}: ${describeRun(run)}${extra}`);
  }
  return { system, floor };
}

/** `runs` untimed system runs through the ack-latency proxy. */
async function latencyRuns(ctx: SystemRunContext, runs: number): Promise<SystemRun[]> {
  const latency: SystemRun[] = [];
  for (let i = 1; i <= runs; i++) {
    const run = await runSystem(ctx, { name: `latency ${i}/${runs}`, withProxy: true });
    latency.push(run);
    const extra = run.ok
      ? ` (${run.ackLatenciesMs?.length ?? 0} acks, p50 ${
        percentile(run.ackLatenciesMs ?? [], 50)?.toFixed(2)
      } ms, p99 ${percentile(run.ackLatenciesMs ?? [], 99)?.toFixed(2)} ms; not timed)`
      : "";
    ctx.log(`latency ${i}/${runs}: ${describeRun(run)}${extra}`);
  }
  return latency;
}
