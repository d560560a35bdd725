/**
 * The lottery server's wiring: opens the storage and the draw (the owner, on this thread),
 * then serves sessions on `SERVER_WORKERS` threads: this one, whose sessions use the store
 * and the draw themselves, and `SERVER_WORKERS` − 1 workers, each accepting on the same port
 * (SO_REUSEPORT) and reaching the owner by message. It logs progress, and shuts down
 * gracefully, logging every resource it closes.
 *
 * @module
 */
import { WINNING_NUMBER } from "../shared/bet.ts";
import { errorText, StorageError } from "../shared/errors.ts";
import { type ActionLogger, LogAction } from "../shared/log.ts";
import type { ConnectionSlots } from "./accept_loop.ts";
import type { ServerConfig } from "./config.ts";
import { collectWinners, Lottery } from "./draw.ts";
import { listIds, startProgress } from "./progress.ts";
import { type SessionContext, sessionContext } from "./session.ts";
import { SharedState } from "./shared_state.ts";
import { sessionAcceptLoop } from "./sniff.ts";
import { StoreOwner } from "./store_host.ts";
import { openStore } from "./store_opening.ts";
import { WorkerPool } from "./worker_pool.ts";

/** The settings {@linkcode startServer} uses. */
export type ServerOptions = Omit<ServerConfig, "ip" | "listenBacklog" | "logLevel" | "secretsPath">;

/** What {@linkcode startServer} serves with besides its settings. */
export interface ServerContext {
  readonly log: ActionLogger;
  /** Per-agency secrets; empty means agencies are not authenticated. */
  readonly secrets: ReadonlyMap<number, string>;
  /**
   * The module a session worker runs (the server's entry point); without it, or with
   * `workers` 1, sessions run on this thread.
   */
  readonly workerUrl?: string | URL;
  /** The log level workers log at. @default "INFO" */
  readonly logLevel?: string;
  /** Called once if the server can no longer serve (a worker failed): it should be closed. */
  readonly onFailure?: (reason: string) => void;
}

/** A running server. */
export interface LotteryServer extends AsyncDisposable {
  /** Stops accepting, closes every connection, flushes and closes the storage; idempotent. */
  close(): Promise<void>;
}

/** Where sessions run. */
interface Sessions {
  /** Stops accepting, closes the connections and waits for their sessions; each logged. */
  readonly stop: () => Promise<void>;
}

/**
 * Opens the storage (recovering from a crash), runs the draw at once if every agency was
 * done, and starts accepting connections; without `secrets`, agencies are not checked.
 *
 * @throws {StorageError} When the storage is refused (see `BetStore.open`).
 * @throws {Deno.errors.AddrInUse} Or another error of `Deno.listen`, the storage closed.
 */
export async function startServer(
  config: ServerOptions,
  context: ServerContext,
): Promise<LotteryServer> {
  const { log } = context;
  const { store, health } = await openStore(config, log);
  const excluded = new Set(store.excludedAgencies());
  const counted = new Set(
    Array.from({ length: config.agencies }, (_, i) => i + 1).filter((id) => !excluded.has(id)),
  );
  let owner: StoreOwner | undefined;
  /** Until the server listens: a draw due at start-up that fails stops the start instead. */
  let starting = true;
  const lottery = new Lottery({
    agencies: [...counted],
    // Only rows playing the winning number become objects; hasWon still decides.
    draw: () => collectWinners(store.loadBets(WINNING_NUMBER), counted),
    onDrawn: (winners, elapsedMs) => {
      let total = 0;
      for (const list of winners.values()) total += list.length;
      log.info(LogAction.SORTEO, "success", { ganadores: total, ms: Math.round(elapsedMs) });
      owner?.drawn(winners);
    },
    onFailed: (error) => {
      // At start-up the failure stops the start, and that one line says it.
      if (starting) return;
      owner?.drawFailed(error);
      log.error(LogAction.SORTEO, "fail", {
        path: config.storagePath,
        error: errorText(error),
        detail: "no winners are answered; every winners query gets this failure",
      });
    },
  });
  for (const agency of store.doneAgencies()) lottery.markDone(agency);
  // A draw already due runs before the server listens: one it cannot run stops the start.
  const startDraw = lottery.whenDrawn();
  if (startDraw !== undefined) {
    try {
      await startDraw;
    } catch (error) {
      await store.close();
      health.close();
      throw error instanceof StorageError
        ? error
        : new StorageError(config.storagePath, errorText(error), { cause: error });
    }
  }
  starting = false;
  const state = new SharedState(config.agencies);
  const closeStore = async (): Promise<void> => {
    lottery.close();
    owner?.close();
    await lottery.whenDrawn()?.catch(() => {});
    await store.close();
    health.close();
  };

  let closing: Promise<void> | undefined;
  let sessions: Sessions;
  try {
    // This thread's sessions use the store and the draw themselves.
    const session = sessionContext(config, {
      store,
      lottery,
      log,
      secrets: context.secrets,
      closing: () => closing !== undefined,
      troubled: state.troubled,
    });
    const slots = state.slots(config.maxConnections);
    if (config.workers > 1 && context.workerUrl !== undefined) {
      owner = new StoreOwner(store, lottery, state, config.agencies);
      const status = lottery.status;
      if (status.drawn) owner.drawn(status.winners);
      sessions = await startWorkers(config, { ...context, session, slots, owner, state });
    } else {
      sessions = startSessions(config, session, slots);
    }
  } catch (error) {
    await closeStore();
    throw error;
  }

  const slots = state.slots(config.maxConnections);
  const stopProgress = startProgress(log, {
    intervalMs: config.progressInterval.ms,
    fields: () => {
      const status = lottery.status;
      if (status.drawn) return undefined;
      const stats = store.stats;
      return {
        "apuestas": stats.bets,
        "lotes": stats.batches,
        "agencias_listas": counted.size - status.pending,
        "agencias_pendientes": listIds(status.pendingAgencies),
        ...(state.troubled.size > 0 ? { "agencias_con_error": listIds(state.troubled) } : {}),
        "conexiones": slots.open,
      };
    },
  });

  async function shutdown(): Promise<void> {
    // Held queries are answered at once, on every thread; what is durable is still published
    // while the sessions drain (the owner closes with the store).
    lottery.close();
    state.close();
    await sessions.stop();
    stopProgress();
    log.info(LogAction.CLOSE_PROGRESS_TIMER, "success");
    await closeStore();
    log.info(LogAction.CLOSE_STORAGE, "success", {
      path: config.storagePath,
      apuestas: store.stats.bets,
      grupos: store.groups,
    });
  }

  const close = (): Promise<void> => (closing ??= shutdown());
  return { close, [Symbol.asyncDispose]: close };
}

/** One session thread, this one: an accept loop serving sessions against the store itself. */
function startSessions(
  config: ServerOptions,
  session: SessionContext,
  slots: ConnectionSlots,
  reusePort = false,
): Sessions {
  const { log } = session;
  const listener = Deno.listen({ hostname: config.listenAddress, port: config.port, reusePort });
  const addr = listener.addr;
  if (!reusePort) {
    log.info(LogAction.ACCEPT_CONNECTIONS, "in_progress", { ip: addr.hostname, port: addr.port });
  }
  const loop = sessionAcceptLoop(listener, { session, config, slots });
  loop.run();
  return {
    async stop() {
      await loop.stop();
      log.info(LogAction.CLOSE_LISTENER, "success", { port: config.port });
      await loop.closeConnections();
    },
  };
}

/**
 * `SERVER_WORKERS` session threads on one port: this one (the owner's) and `SERVER_WORKERS`
 * − 1 workers. The address is first taken without SO_REUSEPORT, which fails if any server
 * (ours or not) listens there and resolves port 0; then released for the session threads,
 * which all bind it with SO_REUSEPORT.
 */
async function startWorkers(
  config: ServerOptions,
  context: ServerContext & {
    readonly session: SessionContext;
    readonly slots: ConnectionSlots;
    readonly owner: StoreOwner;
    readonly state: SharedState;
  },
): Promise<Sessions> {
  const { owner, state } = context;
  const probe = Deno.listen({ hostname: config.listenAddress, port: config.port });
  const addr = probe.addr;
  probe.close();
  const own = startSessions({ ...config, port: addr.port }, context.session, context.slots, true);
  let pool: WorkerPool;
  try {
    pool = await WorkerPool.start({
      url: context.workerUrl!,
      count: config.workers - 1,
      config: { ...config, port: addr.port },
      logLevel: context.logLevel ?? "INFO",
      secrets: context.secrets,
      owner,
      state,
      log: context.log,
      onFailure: context.onFailure ?? (() => {}),
    });
  } catch (error) {
    await own.stop();
    throw error;
  }
  context.log.info(LogAction.ACCEPT_CONNECTIONS, "in_progress", {
    ip: addr.hostname,
    port: addr.port,
    workers: config.workers,
  });
  return { stop: () => Promise.all([own.stop(), pool.stop()]).then(() => {}) };
}
