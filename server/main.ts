/**
 * The server's entry point: `deno task server` or `./bin/server`.
 *
 * Reads the configuration, logs it, serves until SIGTERM or SIGINT, then closes every
 * resource (each logged) and exits 0. A bad configuration prints one line and exits 2.
 *
 * @module
 */
import { type ConfigWarning, logConfigWarnings } from "../shared/config.ts";
import { ConfigError, StorageError } from "../shared/errors.ts";
import { getActionLogger, setupLogging } from "../shared/log.ts";
import { loadServerConfig, type ServerConfig } from "./config.ts";
import { loadSecrets } from "./secrets.ts";
import { startServer } from "./server.ts";

/**
 * Exit code when the server cannot start: a bad configuration, a storage it refuses
 * (locked, another draw, damaged, not writable) or an address it cannot listen on.
 */
export const EXIT_CONFIG = 2;

function logConfig(config: ServerConfig, secrets: number): void {
  getActionLogger("server").info("config", "success", {
    port: config.port,
    listen_backlog: config.listenBacklog,
    logging_level: config.logLevel,
    agencies: config.agencies,
    storage_path: config.storagePath,
    fsync: config.fsync,
    listen_address: config.listenAddress,
    max_connections: config.maxConnections,
    idle_timeout: config.idleTimeout.text,
    secrets,
    agencias_excluidas: config.excludedAgencies.join(" ") || "-",
  });
}

/**
 * Logs why the server cannot start, in one line, when it is the storage or the listening
 * address; `false` for anything else.
 */
function logStartFailure(config: ServerConfig, error: unknown): boolean {
  const log = getActionLogger("server");
  if (error instanceof StorageError) {
    log.error("open_storage", "fail", { path: error.path, error: error.message });
    return true;
  }
  const reason = error instanceof Deno.errors.AddrInUse
    ? "the address is already in use (another server listens there)"
    : error instanceof Deno.errors.AddrNotAvailable
    ? "the address is not one of this machine's (SERVER_LISTEN_ADDRESS)"
    : error instanceof Deno.errors.PermissionDenied
    ? "the OS denies listening there (a port below 1024 needs privileges)"
    : error instanceof Deno.errors.NotCapable
    ? "this server's Deno permissions do not allow listening there (--allow-net)"
    : undefined;
  if (reason === undefined) return false;
  log.error("accept_connections", "fail", {
    ip: config.listenAddress,
    port: config.port,
    error: reason,
  });
  return true;
}

/**
 * Runs the server until a signal stops it.
 *
 * @returns The process exit code.
 */
export async function main(): Promise<number> {
  const warnings: ConfigWarning[] = [];
  let config: ServerConfig;
  let secrets: Map<number, string>;
  try {
    config = loadServerConfig({ env: Deno.env.toObject(), onWarning: (w) => warnings.push(w) });
    secrets = await loadSecrets(config.secretsPath, config.agencies);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(`server: ${error.message}`);
    return EXIT_CONFIG;
  }
  setupLogging(config.logLevel);
  const log = getActionLogger("server");
  logConfigWarnings(log, warnings);
  logConfig(config, secrets.size);
  let server;
  try {
    server = await startServer(config, { log, secrets });
  } catch (error) {
    if (!logStartFailure(config, error)) throw error;
    return EXIT_CONFIG;
  }
  const { promise: stopped, resolve: stop } = Promise.withResolvers<string>();
  const signals = ["SIGTERM", "SIGINT"] as const;
  const handlers = signals.map((signal) => [signal, () => stop(signal)] as const);
  for (const [signal, handler] of handlers) Deno.addSignalListener(signal, handler);
  const signal = await stopped;
  log.info("shutdown", "in_progress", { signal });
  await server.close();
  for (const [name, handler] of handlers) Deno.removeSignalListener(name, handler);
  log.info("shutdown", "success");
  return 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await main());
  } catch (error) {
    console.error(`server: ${error instanceof Error ? error.message : String(error)}`);
    Deno.exit(1);
  }
}
