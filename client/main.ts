/**
 * The client's entry point: `CLI_ID=3 deno task client` or `./bin/client`.
 *
 * `CLI_MODE` picks Part 1's echo loop (`echo`), exercise 5's single bet (`bet`) or a
 * full agency (`agency`, the default). SIGTERM or SIGINT stops it after the current
 * batch or message; it then closes its socket, logs, and exits 0. Exit codes: 0 done,
 * 1 refused by the server or unreachable, 2 bad configuration or data (one `config` or
 * `agencia` line with `result: fail` says which and where).
 *
 * @module
 */
import { type ConfigWarning, logConfigWarnings } from "../shared/config.ts";
import { ConfigError, ConnectionError, ProtocolError } from "../shared/errors.ts";
import { type ActionLogger, getActionLogger, setupLogging } from "../shared/log.ts";
import { describeFailure, runAgency } from "./agency.ts";
import { BetsFileError } from "./csv_batches.ts";
import { type ClientConfig, loadClientConfig } from "./config.ts";
import { runEcho } from "./echo.ts";
import { betFromEnv, sendSingleBet } from "./single_bet.ts";

/** Exit code for a bad configuration or data file. */
export const EXIT_BAD_INPUT = 2;

/** Exit code when the server refused the work or could not be reached. */
export const EXIT_FAILED = 1;

function logConfig(log: ActionLogger, config: ClientConfig): void {
  log.info("config", "success", {
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

async function runMode(
  config: ClientConfig,
  log: ActionLogger,
  signal: AbortSignal,
): Promise<void> {
  switch (config.mode) {
    case "echo":
      await runEcho(config, { log, signal });
      return;
    case "bet":
      await sendSingleBet(config, betFromEnv(Deno.env.toObject()), { log, signal });
      return;
    case "agency":
      await runAgency(config, { log, signal });
      return;
  }
}

/**
 * Runs the client in its configured mode.
 *
 * @returns The process exit code.
 */
export async function main(): Promise<number> {
  const warnings: ConfigWarning[] = [];
  let config: ClientConfig;
  try {
    config = loadClientConfig({ env: Deno.env.toObject(), onWarning: (w) => warnings.push(w) });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    // No level was read: log at INFO, warnings first (a typo'd key often explains the error).
    setupLogging("INFO");
    const log = getActionLogger("client");
    logConfigWarnings(log, warnings);
    log.error("config", "fail", { error: error.message });
    return EXIT_BAD_INPUT;
  }
  setupLogging(config.logLevel);
  const log = getActionLogger("client");
  logConfigWarnings(log, warnings);
  logConfig(log, config);
  const controller = new AbortController();
  const signals = ["SIGTERM", "SIGINT"] as const;
  const handlers = signals.map((signal) =>
    [signal, () => {
      if (controller.signal.aborted) return;
      log.info("shutdown", "in_progress", { client_id: config.id, signal });
      controller.abort();
    }] as const
  );
  for (const [signal, handler] of handlers) Deno.addSignalListener(signal, handler);
  try {
    await runMode(config, log, controller.signal);
    log.info(controller.signal.aborted ? "shutdown" : "exit", "success", {
      client_id: config.id,
    });
    return 0;
  } catch (error) {
    if (controller.signal.aborted && error instanceof ConnectionError) {
      // The connection was lost after a stop was asked for (e.g. the server stopped too).
      log.info("shutdown", "success", { client_id: config.id });
      return 0;
    }
    const badInput = error instanceof ConfigError || error instanceof BetsFileError;
    if (!badInput && !(error instanceof ProtocolError) && !(error instanceof ConnectionError)) {
      throw error;
    }
    log.error(config.mode === "agency" ? "agencia" : config.mode, "fail", {
      client_id: config.id,
      error: describeFailure(error),
    });
    return badInput ? EXIT_BAD_INPUT : EXIT_FAILED;
  } finally {
    for (const [signal, handler] of handlers) Deno.removeSignalListener(signal, handler);
  }
}

if (import.meta.main) {
  try {
    Deno.exit(await main());
  } catch (error) {
    console.error(`client: ${error instanceof Error ? error.message : String(error)}`);
    Deno.exit(EXIT_FAILED);
  }
}
