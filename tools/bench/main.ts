/**
 * The benchmark, `deno task bench -- [options]` (`--help` lists them): it prepares the
 * agency files and builds the programs, alternates runs of the floor and of the system
 * (`--runs` of each, so both see the same machine state). docs/performance.md tells what a run measures and which checks make
 * it count.
 *
 * Progress goes to stderr; stdout gets a Markdown table of min/median/max per metric
 * and ends with one JSON line of the medians. Exit code: 0 every run verified, 1 a run
 * failed, 2 bad arguments.
 *
 * @module
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { runMain } from "../_cli.ts";
import { buildBinaries } from "../build.ts";
import { type BenchOptions, parseBenchArgs, USAGE } from "./args.ts";
import { BENCH_DIR, prepareData, type PreparedData } from "./data.ts";
import { runFloor } from "./floor.ts";
import { loadAverage, machineFacts } from "./proc.ts";
import { killAll } from "./processes.ts";
import {
  type BenchReport,
  type FloorRun,
  formatJsonLine,
  formatNumber,
  formatReport,
  formatWorkersTable,
  type SystemRun,
} from "./report.ts";
import { runLoad } from "./load.ts";
import { runSystem } from "./system.ts";

/**
 * Runs the CLI; returns the exit code: 0 all runs verified, 1 a run failed.
 *
 * @throws {UsageError} For bad arguments or a missing dataset.
 */
export async function main(args: readonly string[]): Promise<number> {
  const options = parseBenchArgs(args);
  if (options.help) {
    console.log(USAGE);
    return 0;
  }
  const log = (message: string): void => console.error(`bench: ${message}`);
  let scratch: string | undefined;
  const onSignal = (): void => {
    log("interrupted; stopping the processes it started");
    killAll();
    try {
      if (scratch !== undefined) Deno.removeSync(scratch, { recursive: true });
    } catch {
      // Best effort: the processes may still hold files for a moment.
    }
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  try {
    const data = options.load ? undefined : await prepareData(options, log);
    // The programs as the sources are now (not timed).
    log(await buildBinaries());
    await Deno.mkdir(BENCH_DIR, { recursive: true });
    scratch = await Deno.makeTempDir({ dir: BENCH_DIR, prefix: "run-" });
    if (data === undefined) return await runLoads(options, scratch, log);
    const report = await runAll(options, data, scratch, log);
    for (const workers of options.workers) {
      const own = { ...report, system: report.system.filter((run) => run.workers === workers) };
      const label = `${report.setup.label}, SERVER_WORKERS=${workers}`;
      console.log(formatReport({ ...own, setup: { ...report.setup, label } }));
    }
    console.log(formatWorkersTable(report.system, { ...options, bets: report.setup.bets }));
    for (const workers of options.workers) {
      const own = { ...report, system: report.system.filter((run) => run.workers === workers) };
      console.log(formatJsonLine(own).replace(/^\{/, `{"workers":"${workers}",`));
    }
    return [...report.system, ...report.floor].every((run) => run.ok) ? 0 : 1;
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
    if (scratch !== undefined) await Deno.remove(scratch, { recursive: true }).catch(() => {});
  }
}

/** The many-agencies load: `--runs` rounds of every `--workers` setting in turn; the exit code. */
async function runLoads(
  options: BenchOptions,
  scratch: string,
  log: (message: string) => void,
): Promise<number> {
  const { agencies, betsPerAgency } = options;
  const ctx = {
    serverBin: fileURLToPath(new URL("../../bin/server", import.meta.url)),
    scratch,
    agencies,
    betsPerAgency,
    timeoutMs: options.timeoutMs ?? 120_000,
  };
  const runs: SystemRun[] = [];
  for (let i = 1; i <= options.runs; i++) {
    for (const workers of options.workers) {
      runs.push(await runLoad(ctx, workers));
      log(`load ${i}/${options.runs}, SERVER_WORKERS=${workers}: ${describeRun(runs.at(-1)!)}`);
    }
  }
  const bets = agencies * betsPerAgency;
  console.log(`### Load: ${agencies} agencies × ${betsPerAgency} bets from one generator\n`);
  console.log(formatWorkersTable(runs, { workers: options.workers, bets }));
  for (const [i, run] of runs.entries()) {
    if (!run.ok) console.log(`- load run ${i + 1}: ${run.failures.join("; ")}`);
  }
  return runs.every((run) => run.ok) ? 0 : 1;
}

/** `1.234 s`, or why the run failed. */
function describeRun(run: FloorRun): string {
  return run.ok ? `${(run.wallMs / 1000).toFixed(3)} s` : `FAILED: ${run.failures.join("; ")}`;
}

/** The floor and system runs in turn, gathered into a report. */
async function runAll(
  options: BenchOptions,
  data: PreparedData,
  scratch: string,
  log: (message: string) => void,
): Promise<BenchReport> {
  const loadAtStart = await loadAverage();
  const sum = (get: (file: PreparedData["files"][number]) => number) =>
    data.files.reduce((total, file) => total + get(file), 0);
  const { repeat, fsync, batch, runs } = options;
  const setup = {
    label: data.label,
    agencies: data.files.length,
    bets: sum((file) => file.rows),
    bytes: sum((file) => file.bytes),
    winners: sum((file) => file.winners),
    ...{ repeat, fsync, batch },
  };
  log(
    `${setup.label}: ${setup.agencies} agencies, ${formatNumber(setup.bets, 0)} bets, ` +
      `${formatNumber(setup.bytes / 1e6, 1)} MB, ${setup.winners} winners`,
  );
  const root = fileURLToPath(new URL("../../bin/", import.meta.url));
  const ctx = {
    data,
    fsync,
    batch,
    serverBin: join(root, "server"),
    clientBin: join(root, "client"),
    scratch,
    // Default: 60 s plus 1 s per 25,000 bets.
    timeoutMs: options.timeoutMs ?? 60_000 + Math.ceil(setup.bets / 25_000) * 1000,
    log,
  };
  const system: SystemRun[] = [];
  const floor: FloorRun[] = [];
  for (let i = 1; i <= runs; i++) {
    floor.push(await runFloor(data, ctx));
    log(`floor ${i}/${runs}: ${describeRun(floor.at(-1)!)}`);
    // Each setting in turn, so every one sees the same machine state.
    for (const workers of options.workers) {
      const name = `run ${i}/${runs}, SERVER_WORKERS=${workers}`;
      const run = await runSystem(ctx, { name, workers });
      system.push(run);
      const rate = run.ok ? ` (${formatNumber(setup.bets / (run.wallMs / 1000), 0)} bets/s)` : "";
      log(`${name}: ${describeRun(run)}${rate}`);
    }
  }
  return { setup, system, floor, machine: await machineFacts(loadAtStart) };
}

if (import.meta.main) await runMain("bench", () => main(Deno.args));
