/**
 * The server's entry point: `deno task server` or `./bin/server`.
 *
 * Reads the configuration, logs it, serves until SIGTERM, SIGINT or SIGHUP, then closes every
 * resource (each logged) and exits 0. A bad configuration prints one line and exits 2.
 *
 * @module
 */
import { type ConfigWarning, logConfigWarnings } from "../shared/config.ts";
import { ConfigError, osErrorReason, StorageError } from "../shared/errors.ts";
import { actionLogger as log, LogAction, setupLogging } from "../shared/log.ts";
import { onStopSignal, runProgram } from "../shared/program.ts";
import { loadServerConfig, type ServerConfig } from "./config.ts";
import { loadSecrets } from "./secrets.ts";
import { startServer } from "./server.ts";
import { inWorker, runWorker } from "./worker.ts";

const { AddrInUse, AddrNotAvailable, PermissionDenied, NotCapable } = Deno.errors;

/**
 * Exit code when the server cannot start: a bad configuration, a storage it refuses
 * (locked, another draw, damaged, not writable) or an address it cannot listen on.
 */
const EXIT_CONFIG = 2;

function logConfig(config: ServerConfig, secrets: number): void {
  log.info(LogAction.CONFIG, "success", {
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
    workers: config.workers,
  });
}

/** Logs in one line why the server cannot start: the storage, the address; else `false`. */
function logStartFailure(config: ServerConfig, error: unknown): boolean {
  if (error instanceof StorageError) {
    log.error(LogAction.OPEN_STORAGE, "fail", { path: error.path, error: error.message });
    return true;
  }
  const reason = osErrorReason(error, [
    [AddrInUse, "the address is already in use (another server listens there)"],
    [AddrNotAvailable, "the address is not one of this machine's (SERVER_LISTEN_ADDRESS)"],
    [PermissionDenied, "the OS denies listening there (a port below 1024 needs privileges)"],
    [NotCapable, "this server's Deno permissions do not allow listening there (--allow-net)"],
  ]);
  if (reason === undefined) return false;
  log.error(LogAction.ACCEPT_CONNECTIONS, "fail", {
    ip: config.listenAddress,
    port: config.port,
    error: reason,
  });
  return true;
}

/** Runs the server until a signal stops it; returns the process exit code. */
async function main(): Promise<number> {
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
  logConfigWarnings(log, warnings);
  logConfig(config, secrets.size);
  const { promise: stopped, resolve: stop } = Promise.withResolvers<StopReason>();
  let server;
  try {
    server = await startServer(withWorkerSupport(config), {
      log,
      secrets,
      workerUrl: import.meta.url,
      logLevel: config.logLevel,
      onFailure: (reason) => stop({ reason }),
    });
  } catch (error) {
    if (!logStartFailure(config, error)) throw error;
    return EXIT_CONFIG;
  }
  using _signals = onStopSignal((signal) => stop({ signal }));
  const why = await stopped;
  log.info(LogAction.SHUTDOWN, "in_progress", why);
  await server.close();
  log.info(LogAction.SHUTDOWN, "success");
  return "reason" in why ? 1 : 0;
}

/** Why the server stops: a signal, or a failure it cannot serve on with. */
type StopReason = { readonly signal: string } | { readonly reason: string };

/**
 * The configuration, with one session thread when more cannot be had: workers share the
 * port through `Deno.listen({ reusePort: true })`, which needs `--unstable-net` (deno.json's
 * `"unstable": ["net"]`); without it Deno would end the process at the first listen.
 */
function withWorkerSupport(config: ServerConfig): ServerConfig {
  if (config.workers === 1 || "listenDatagram" in Deno) return config;
  log.warning(LogAction.CONFIG_WARNING, "success", {
    key: "SERVER_WORKERS",
    workers: 1,
    detail: `${config.workers} session threads need Deno's --unstable-net (deno.json's ` +
      '"unstable" with "net"); serving on one',
  });
  return { ...config, workers: 1 };
}

// The same module serves as each session worker (in a bundle too): see server/worker.ts.
if (inWorker()) runWorker();
else if (import.meta.main) await runProgram("server", main);
