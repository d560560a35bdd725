/**
 * The client's entry point: `CLI_ID=3 deno task client` or `./bin/client`.
 *
 * `CLI_MODE` picks Part 1's echo loop (`echo`), exercise 5's single bet (`bet`) or a
 * full agency (`agency`, the default). SIGTERM, SIGINT or SIGHUP stops it after the current
 * batch or message; it then closes its socket, logs, and exits 0. Exit codes: 0 done,
 * 1 refused by the server or unreachable, 2 bad configuration or data (one `config` or
 * `agencia` line with `result: fail` says which and where).
 *
 * @module
 */
import { type ConfigWarning, logConfigWarnings } from "../shared/config.ts";
import { ConfigError, ConnectionError } from "../shared/errors.ts";
import { actionLogger as log, LogAction, setupLogging } from "../shared/log.ts";
import { onStopSignal, runProgram } from "../shared/program.ts";
import { describeFailure, runAgency } from "./agency.ts";
import { BetsFileError } from "./csv_batches.ts";
import { type ClientConfig, loadClientConfig } from "./config.ts";
import { runEcho } from "./echo.ts";
import { betFromEnv, sendSingleBet } from "./single_bet.ts";

/** Exit code for a bad configuration or data file. */
const EXIT_BAD_INPUT = 2;

/** Exit code when the server refused the work or could not be reached. */
const EXIT_FAILED = 1;

/** The action a mode's failure is logged under. */
const MODE_ACTION = { agency: LogAction.AGENCIA, bet: LogAction.BET, echo: LogAction.ECHO };

function logConfig(config: ClientConfig): void {
  log.info(LogAction.CONFIG, "success", {
    client_id: config.id,
    server_address: config.serverAddress.text,
    loop_amount: config.loopAmount,
    loop_period: config.loopPeriod.text,
    log_level: config.logLevel,
    batch_max_amount: config.batchMaxAmount,
    mode: config.mode,
    data_path: config.dataPath,
  });
}

function runMode(config: ClientConfig, signal: AbortSignal): Promise<unknown> {
  if (config.mode === "echo") return runEcho(config, { log, signal });
  if (config.mode === "bet") {
    return sendSingleBet(config, betFromEnv(Deno.env.toObject()), { log, signal });
  }
  return runAgency(config, { log, signal });
}

/** Runs the client in its configured mode; returns the process exit code. */
async function main(): Promise<number> {
  const warnings: ConfigWarning[] = [];
  let config: ClientConfig;
  try {
    config = loadClientConfig({ env: Deno.env.toObject(), onWarning: (w) => warnings.push(w) });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    // No level was read: log at INFO, warnings first (a typo'd key often explains the error).
    setupLogging("INFO");
    logConfigWarnings(log, warnings);
    log.error(LogAction.CONFIG, "fail", { error: error.message });
    return EXIT_BAD_INPUT;
  }
  setupLogging(config.logLevel);
  logConfigWarnings(log, warnings);
  logConfig(config);
  const idField = { "client_id": config.id };
  const controller = new AbortController();
  using _signals = onStopSignal((signal) => {
    if (controller.signal.aborted) return;
    log.info(LogAction.SHUTDOWN, "in_progress", { ...idField, signal });
    controller.abort();
  });
  try {
    await runMode(config, controller.signal);
    const action = controller.signal.aborted ? LogAction.SHUTDOWN : LogAction.EXIT;
    log.info(action, "success", idField);
    return 0;
  } catch (error) {
    if (controller.signal.aborted && error instanceof ConnectionError) {
      // The connection was lost after a stop was asked for (e.g. the server stopped too).
      log.info(LogAction.SHUTDOWN, "success", idField);
      return 0;
    }
    // Any other failure too is one log line (its message never holds a secret), not a trace.
    const badInput = error instanceof ConfigError || error instanceof BetsFileError;
    log.error(MODE_ACTION[config.mode], "fail", { ...idField, error: describeFailure(error) });
    return badInput ? EXIT_BAD_INPUT : EXIT_FAILED;
  }
}

if (import.meta.main) await runProgram("client", main);
