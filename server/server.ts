/**
 * The lottery server: accepts connections concurrently, tells the binary protocol from
 * Part 1's echo by the first byte, and shuts down gracefully, logging every resource it
 * closes.
 *
 * @module
 */
import { WINNING_NUMBER } from "../shared/bet.ts";
import { ErrorCode } from "../shared/errors.ts";
import type { ActionLogger } from "../shared/log.ts";
import { FramedConnection, isConnectionLost, readWithin } from "../shared/net/framed_conn.ts";
import { MAGIC, MessageType } from "../shared/protocol/mod.ts";
import type { ServerConfig } from "./config.ts";
import { collectWinners, Lottery } from "./draw.ts";
import { serveEcho } from "./echo.ts";
import { serveAgency, type SessionContext } from "./session.ts";
import { BetStore } from "./storage.ts";

/** The settings {@linkcode startServer} uses. */
export type ServerOptions = Pick<
  ServerConfig,
  | "port"
  | "listenAddress"
  | "agencies"
  | "storagePath"
  | "fsync"
  | "maxConnections"
  | "idleTimeout"
  | "maxFrameSize"
  | "drawWait"
  | "progressInterval"
>;

/** A running server. */
export interface LotteryServer {
  /** Where it listens (the real port when configured with 0). */
  readonly addr: Deno.NetAddr;
  /** The bet storage. */
  readonly store: BetStore;
  /** The draw's latch. */
  readonly lottery: Lottery;
  /** Stops accepting, closes every connection, flushes and closes storage; idempotent. */
  close(): Promise<void>;
  /** Same as `close()`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** Options of {@linkcode startServer} besides the configuration. */
export interface StartOptions {
  readonly log: ActionLogger;
  /** Per-agency secrets; empty disables authentication. */
  readonly secrets?: ReadonlyMap<number, string>;
}

function peerIp(conn: Deno.Conn): string {
  const addr = conn.remoteAddr as Deno.NetAddr;
  return addr.hostname ?? "unknown";
}

async function readFirst(conn: Deno.Conn, timeoutMs: number): Promise<Uint8Array | null> {
  const buf = new Uint8Array(8192);
  const n = await readWithin(conn, buf, timeoutMs || Infinity);
  return n === null ? null : buf.subarray(0, n);
}

function isUtf8Start(bytes: Uint8Array): boolean {
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(bytes, { stream: true });
    return true;
  } catch {
    return false;
  }
}

/**
 * Opens the storage (recovering from a crash), runs the draw at once if every agency
 * was already done, and starts accepting connections.
 *
 * @param config The server settings.
 * @param options Logger and agency secrets.
 * @returns The running server.
 */
export async function startServer(
  config: ServerOptions,
  options: StartOptions,
): Promise<LotteryServer> {
  const { log } = options;
  const store = await BetStore.open({ path: config.storagePath, fsync: config.fsync });
  const recovered = store.stats;
  log.info("open_storage", "success", {
    path: config.storagePath,
    apuestas: recovered.bets,
    fsync: config.fsync,
    bytes_descartados: recovered.recoveredBytes,
  });
  const lottery = new Lottery({
    agencies: config.agencies,
    // Only rows playing the winning number become objects; hasWon still decides.
    draw: () => collectWinners(store.loadBets({ number: WINNING_NUMBER })),
    onDrawn: (winners, elapsedMs) => {
      let total = 0;
      for (const list of winners.values()) total += list.length;
      log.info("sorteo", "success", { ganadores: total, ms: Math.round(elapsedMs) });
    },
  });
  for (const agency of store.doneAgencies()) lottery.markDone(agency);

  const listener = Deno.listen({ hostname: config.listenAddress, port: config.port });
  const ctx: SessionContext = {
    agencies: config.agencies,
    drawWaitMs: config.drawWait.ms,
    store,
    lottery,
    log,
    secrets: options.secrets ?? new Map(),
    closing: () => closing !== undefined,
  };
  const connections = new Map<Deno.Conn, Accepted>();
  const handlers = new Set<Promise<void>>();
  let closing: Promise<void> | undefined;

  const progress = setInterval(() => {
    const stats = store.stats;
    log.info("progreso", "in_progress", {
      apuestas: stats.bets,
      lotes: stats.batches,
      agencias_listas: config.agencies - lottery.pending,
      conexiones: connections.size,
      ...memoryFields(),
    });
  }, config.progressInterval.ms || 5000);

  async function handle(conn: Deno.Conn, ip: string): Promise<void> {
    try {
      const first = await readFirst(conn, config.idleTimeout.ms);
      if (first === null || first.length === 0) return;
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
        log.warning("receive_message", "fail", {
          ip,
          error: "first bytes are neither the lottery protocol nor UTF-8 text",
        });
      }
    } catch (error) {
      if (closing === undefined && !isConnectionLost(error)) {
        log.error("connection", "fail", { ip, detail: String(error) });
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
    log.info("accept_connections", "in_progress", {
      address: `${(listener.addr as Deno.NetAddr).hostname}:${
        (listener.addr as Deno.NetAddr).port
      }`,
    });
    try {
      for await (const conn of listener) {
        const ip = peerIp(conn);
        if (connections.size >= config.maxConnections) {
          const retryAfterMs = slotHintMs(connections.values(), config.idleTimeout.ms);
          log.warning("accept_connections", "fail", {
            ip,
            error: "LIMIT_EXCEEDED",
            max_connections: config.maxConnections,
            retry_after_ms: retryAfterMs,
          });
          refuseOverLimit(conn, retryAfterMs);
          continue;
        }
        log.info("accept_connections", "success", { ip });
        // Acks are small writes: without this, Nagle's algorithm holds each one back until
        // the agency's delayed ACK of the previous (tens of ms per batch window).
        conn.setNoDelay(true);
        connections.set(conn, { ip, at: performance.now() });
        const handler = handle(conn, ip);
        handlers.add(handler);
        handler.finally(() => handlers.delete(handler));
      }
    } catch (error) {
      if (closing === undefined) log.error("accept_connections", "fail", { detail: String(error) });
    }
  }
  const accepting = acceptLoop();

  async function shutdown(): Promise<void> {
    listener.close();
    lottery.close();
    await accepting;
    log.info("close_listener", "success", { port: config.port });
    clearInterval(progress);
    log.info("close_progress_timer", "success");
    for (const [conn, { ip }] of [...connections]) {
      connections.delete(conn);
      try {
        conn.close();
      } catch {
        // The handler closed it first.
      }
      log.info("close_connection", "success", { ip });
    }
    await Promise.allSettled([...handlers]);
    await lottery.whenDrawn()?.catch(() => {});
    await store.close();
    log.info("close_storage", "success", {
      path: config.storagePath,
      apuestas: store.stats.bets,
      grupos: store.groups,
    });
  }

  const close = (): Promise<void> => (closing ??= shutdown());
  return {
    addr: listener.addr as Deno.NetAddr,
    store,
    lottery,
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** Memory in MiB, for the progress line: ingestion should keep it flat. */
function memoryFields(): { rss_mb: number; heap_mb: number; external_mb: number } {
  const usage = Deno.memoryUsage();
  const mib = (bytes: number): number => Math.round(bytes / 104857.6) / 10;
  return {
    rss_mb: mib(usage.rss),
    heap_mb: mib(usage.heapUsed),
    external_mb: mib(usage.external),
  };
}

/** An open connection: the peer's address and when it was accepted (`performance.now()`). */
interface Accepted {
  readonly ip: string;
  readonly at: number;
}

/** The shortest wait a refused peer is told: a sooner hint would only meet a full server again. */
const MIN_SLOT_HINT_MS = 250;

/**
 * When the idle timeout can next free a slot: the oldest connection that may have been
 * silent since it was accepted times out `idleMs` after its accept. Connections accepted
 * longer ago than that are alive by their own activity and free nothing predictable, so
 * they are skipped (they come first: the map keeps accept order). With none left, a whole
 * idle timeout (by then every connection silent now is gone); 0 when there is no timeout.
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
  framed.send({
    type: MessageType.ERROR,
    code: ErrorCode.LIMIT_EXCEEDED,
    retryAfterMs,
    message: retryAfterMs > 0
      ? `Too many connections, retry in ${retryAfterMs} ms`
      : "Too many connections",
  }).catch(() => {}).finally(() => framed.close());
}
