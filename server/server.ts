/**
 * The lottery server: accepts connections concurrently, tells the binary protocol from Part 1's
 * echo by the first byte, and shuts down gracefully, logging every resource it closes.
 *
 * @module
 */
import { WINNING_NUMBER } from "../shared/bet.ts";
import { ErrorCode } from "../shared/errors.ts";
import { type ActionLogger, LogAction } from "../shared/log.ts";
import { FramedConnection, isConnectionLost, readWithin } from "../shared/net/framed_conn.ts";
import { MAGIC, MessageType } from "../shared/protocol/mod.ts";
import type { ServerConfig } from "./config.ts";
import { collectWinners, Lottery } from "./draw.ts";
import { serveEcho } from "./echo.ts";
import { serveAgency, type SessionContext } from "./session.ts";
import { BetStore, type StorageFailure } from "./storage.ts";

/** The settings {@linkcode startServer} uses. */
export type ServerOptions = Omit<ServerConfig, "ip" | "listenBacklog" | "logLevel" | "secretsPath">;

/** A running server. */
export interface LotteryServer extends AsyncDisposable {
  /** Stops accepting, closes every connection, flushes and closes the storage; idempotent. */
  close(): Promise<void>;
}

function isUtf8Start(bytes: Uint8Array): boolean {
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(bytes, { stream: true });
    return true;
  } catch {
    return false;
  }
}

/** How long writes must work without a failure before the log says storage recovered. */
const RECOVERY_QUIET_MS = 5000;

/**
 * The `store_bets` lines: one ERROR when writes start failing (and again if the failure
 * turns permanent), one INFO once they have worked for {@linkcode RECOVERY_QUIET_MS}, so a
 * disk that stays nearly full, failing and working by turns, is one failure, not a flood.
 */
function storageHealthLog(log: ActionLogger, path: string) {
  let failing = false;
  let quiet: ReturnType<typeof setTimeout> | undefined;
  const stopWaiting = () => {
    clearTimeout(quiet);
    quiet = undefined;
  };
  return {
    failure({ path: file, error, recovers }: StorageFailure): void {
      stopWaiting();
      if (failing && recovers) return;
      failing = true;
      log.error(LogAction.STORE_BETS, "fail", {
        path: file,
        error: error instanceof Error ? error.message : String(error),
        recovery: recovers ? "automatic" : "restart",
        detail: recovers
          ? "the failed write is undone and batches are refused until one can be written again (e.g. once the disk has space); the server recovers by itself"
          : "every batch is refused until the server restarts (start-up then checks the files)",
      });
    },
    recovery(): void {
      if (!failing || quiet !== undefined) return;
      quiet = setTimeout(() => {
        quiet = undefined;
        failing = false;
        log.info(LogAction.STORE_BETS, "success", { path, detail: "writing works again" });
      }, RECOVERY_QUIET_MS);
    },
    close: stopWaiting,
  };
}

/** Agency ids for a log value: space-separated, `-` for none. */
function listIds(ids: Iterable<number>): string {
  return [...ids].sort((a, b) => a - b).join(" ") || "-";
}

/**
 * Opens the storage (taking its lock, checking what it is, cutting a torn tail), leaves
 * out the agencies the operator excluded, and logs what it holds.
 */
async function openStore(
  config: ServerOptions,
  log: ActionLogger,
): Promise<{ store: BetStore; health: { close(): void } }> {
  const path = config.storagePath;
  const health = storageHealthLog(log, path);
  const store = await BetStore.open({
    path,
    agencies: config.agencies,
    fsync: config.fsync,
    onFailure: health.failure,
    onRecovery: health.recovery,
  });
  try {
    for (const agency of config.excludedAgencies) {
      const before = store.stats.bets;
      if (!(await store.exclude(agency))) continue;
      log.warning(LogAction.EXCLUIR_AGENCIA, "success", {
        agency,
        apuestas: before - store.stats.bets,
        detail: "the operator closed the draw without it (SERVER_EXCLUDED_AGENCIES); its bets " +
          "are left out of the draw and the totals, and it is refused if it comes back",
      });
    }
  } catch (error) {
    await store.close();
    health.close();
    throw error;
  }
  const { opening, stats } = store;
  const done = store.doneAgencies();
  const excluded = store.excludedAgencies();
  log.info(LogAction.OPEN_STORAGE, "success", {
    path,
    sorteo_id: opening.drawId,
    agencias: config.agencies,
    estado: opening.fresh ? "nuevo" : "existente",
    apuestas: stats.bets,
    lotes: stats.batches,
    agencias_listas: listIds(done),
    agencias_excluidas: listIds(excluded),
    sorteo: done.length + excluded.length === config.agencies ? "realizado" : "pendiente",
    bytes_descartados: opening.cutBytes,
    bytes_journal_descartados: opening.cutJournalBytes,
    fsync: config.fsync,
    ...(opening.fresh ? {} : {
      sorteo_nuevo: `stop the server and move ${path} and ${path}.journal away`,
    }),
  });
  return { store, health };
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
  { log, secrets }: { readonly log: ActionLogger; readonly secrets: ReadonlyMap<number, string> },
): Promise<LotteryServer> {
  const { store, health } = await openStore(config, log);
  const excluded = new Set(store.excludedAgencies());
  const counted = new Set(
    Array.from({ length: config.agencies }, (_, i) => i + 1).filter((id) => !excluded.has(id)),
  );
  const lottery = new Lottery({
    agencies: [...counted],
    // Only rows playing the winning number become objects; hasWon still decides.
    draw: () => collectWinners(store.loadBets(WINNING_NUMBER), counted),
    onDrawn: (winners, elapsedMs) => {
      let total = 0;
      for (const list of winners.values()) total += list.length;
      log.info(LogAction.SORTEO, "success", { ganadores: total, ms: Math.round(elapsedMs) });
    },
  });
  for (const agency of store.doneAgencies()) lottery.markDone(agency);
  const closeStore = async (): Promise<void> => {
    lottery.close();
    await lottery.whenDrawn()?.catch(() => {});
    await store.close();
    health.close();
  };

  let listener: Deno.TcpListener;
  try {
    listener = Deno.listen({ hostname: config.listenAddress, port: config.port });
  } catch (error) {
    await closeStore();
    throw error;
  }
  const troubled = new Set<number>();
  const ctx: SessionContext = {
    agencies: config.agencies,
    drawWaitMs: config.drawWait.ms,
    store,
    lottery,
    log,
    secrets,
    closing: () => closing !== undefined,
    troubled,
  };
  const connections = new Map<Deno.Conn, Accepted>();
  const handlers = new Set<Promise<void>>();
  let closing: Promise<void> | undefined;

  // Said when something changed; nothing once the draw is done.
  let lastProgress = "";
  const progress = setInterval(() => {
    const status = lottery.status;
    if (status.drawn) return;
    const stats = store.stats;
    const fields = {
      "apuestas": stats.bets,
      "lotes": stats.batches,
      "agencias_listas": counted.size - status.pending,
      "agencias_pendientes": listIds(status.pendingAgencies),
      ...(troubled.size > 0 ? { "agencias_con_error": listIds(troubled) } : {}),
      "conexiones": connections.size,
    };
    const key = JSON.stringify(fields);
    if (key === lastProgress) return;
    lastProgress = key;
    log.info(LogAction.PROGRESO, "in_progress", { ...fields, ...memoryFields() });
  }, config.progressInterval.ms || 5000);

  async function handle(conn: Deno.Conn, ip: string): Promise<void> {
    try {
      const buf = new Uint8Array(8192);
      const n = await readWithin(conn, buf, config.idleTimeout.ms || Infinity);
      if (!n) return;
      const first = buf.subarray(0, n);
      if (first[0] === MAGIC) {
        const framed = new FramedConnection(conn, {
          idleTimeoutMs: config.idleTimeout.ms,
          // A frame trickled in byte by byte (slow loris) gets no more time than silence.
          frameTimeoutMs: config.idleTimeout.ms,
          // A peer that never reads its replies would otherwise hold the session forever.
          writeTimeoutMs: config.idleTimeout.ms,
          maxBodySize: config.maxFrameSize - 4,
          initial: first,
        });
        await serveAgency(framed, ip, ctx);
      } else if (isUtf8Start(first)) {
        await serveEcho(conn, { ip, log, initial: first, idleTimeoutMs: config.idleTimeout.ms });
      } else {
        log.warning(LogAction.RECEIVE_MESSAGE, "fail", {
          ip,
          error: "first bytes are neither the lottery protocol nor UTF-8 text",
        });
      }
    } catch (error) {
      if (closing === undefined && !isConnectionLost(error)) {
        log.error(LogAction.CONNECTION, "fail", { ip, detail: String(error) });
      }
    } finally {
      if (connections.delete(conn)) {
        try {
          conn.close();
        } catch {
          // Closed already (timeout or shutdown).
        }
      }
    }
  }

  async function acceptLoop(): Promise<void> {
    const addr = listener.addr as Deno.NetAddr;
    log.info(LogAction.ACCEPT_CONNECTIONS, "in_progress", { ip: addr.hostname, port: addr.port });
    try {
      for await (const conn of listener) {
        const ip = (conn.remoteAddr as Deno.NetAddr).hostname;
        if (connections.size >= config.maxConnections) {
          const retryAfterMs = slotHintMs(connections.values(), config.idleTimeout.ms);
          log.warning(LogAction.ACCEPT_CONNECTIONS, "fail", {
            ip,
            error: "LIMIT_EXCEEDED",
            max_connections: config.maxConnections,
            retry_after_ms: retryAfterMs,
          });
          refuseOverLimit(conn, retryAfterMs);
          continue;
        }
        log.info(LogAction.ACCEPT_CONNECTIONS, "success", { ip });
        // Acks are small writes: without this, Nagle's algorithm holds each one back until
        // the agency's delayed ACK of the previous (tens of ms per batch window).
        conn.setNoDelay(true);
        connections.set(conn, { ip, at: performance.now() });
        const handler = handle(conn, ip);
        handlers.add(handler);
        handler.finally(() => handlers.delete(handler));
      }
    } catch (error) {
      if (closing === undefined) {
        log.error(LogAction.ACCEPT_CONNECTIONS, "fail", { detail: String(error) });
      }
    }
  }
  const accepting = acceptLoop();

  async function shutdown(): Promise<void> {
    listener.close();
    lottery.close();
    await accepting;
    log.info(LogAction.CLOSE_LISTENER, "success", { port: config.port });
    clearInterval(progress);
    log.info(LogAction.CLOSE_PROGRESS_TIMER, "success");
    for (const [conn, { ip }] of [...connections]) {
      connections.delete(conn);
      try {
        conn.close();
      } catch {
        // The handler closed it first.
      }
      log.info(LogAction.CLOSE_CONNECTION, "success", { ip });
    }
    await Promise.allSettled([...handlers]);
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

/** Memory in MiB, for the progress line: ingestion should keep it flat. */
function memoryFields() {
  const { rss, heapUsed, external } = Deno.memoryUsage();
  const mib = (bytes: number): number => Math.round(bytes / 104857.6) / 10;
  return { rss_mb: mib(rss), heap_mb: mib(heapUsed), external_mb: mib(external) };
}

/** An open connection: the peer's address and when it was accepted (`performance.now()`). */
interface Accepted {
  readonly ip: string;
  readonly at: number;
}

/** The shortest wait a refused peer is told: a sooner hint would only meet a full server again. */
const MIN_SLOT_HINT_MS = 250;

/**
 * When the idle timeout can next free a slot: `idleMs` after the accept of the oldest connection
 * that may have been silent since. Older ones live by their own activity and are skipped (the map
 * keeps accept order). With none left, a whole idle timeout; 0 when there is none.
 */
function slotHintMs(open: Iterable<Accepted>, idleMs: number): number {
  if (idleMs <= 0) return 0;
  const now = performance.now();
  for (const { at } of open) {
    const left = at + idleMs - now;
    if (left > 0) return Math.max(MIN_SLOT_HINT_MS, Math.ceil(left));
  }
  return idleMs;
}

function refuseOverLimit(conn: Deno.Conn, retryAfterMs: number): void {
  const framed = new FramedConnection(conn);
  const message = `Too many connections${retryAfterMs > 0 ? `, retry in ${retryAfterMs} ms` : ""}`;
  framed.send({ type: MessageType.ERROR, code: ErrorCode.LIMIT_EXCEEDED, retryAfterMs, message })
    .catch(() => {}).finally(() => framed.close());
}
