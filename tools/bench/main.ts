/**
 * The benchmark: `deno task bench`.
 *
 * It prepares agency files (generated, or the course's zip, each file repeated `--repeat`
 * times) and builds the programs, then for every run starts `bin/server` on 127.0.0.1
 * with a fresh storage folder, waits for `accept_connections`, starts every agency
 * (`bin/client`) at once and measures the wall time until the last agency has exited. A
 * run counts only when it is correct: every agency exits 0, `bets.csv` holds one line
 * per bet, each agency's `cant_ganadores` is its number of 7574 rows, the server logs
 * `sorteo` once, no line says `result: fail`, and the server exits 0 on SIGTERM.
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
import { runMain } from "../_cli.ts";
import { parseBenchArgs, USAGE } from "./args.ts";
import { killAll } from "./processes.ts";
import { formatJsonLine, formatReport } from "./report.ts";
import { runBench, scratchDirs } from "./run.ts";

/**
 * Runs the CLI.
 *
 * @param args The command-line arguments.
 * @returns The exit code: 0 all runs verified, 1 a run failed.
 * @throws {UsageError} For bad arguments or a missing dataset.
 */
export async function main(args: readonly string[]): Promise<number> {
  const options = parseBenchArgs(args);
  if (options.help) {
    console.log(USAGE);
    return 0;
  }
  const log = (message: string): void => console.error(`bench: ${message}`);
  const onSignal = (): void => {
    log("interrupted; stopping the processes it started");
    killAll();
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
    return [...report.system, ...report.floor, ...report.latency].every((run) => run.ok) ? 0 : 1;
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }
}

if (import.meta.main) await runMain("bench", () => main(Deno.args));
