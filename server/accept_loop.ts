/**
 * The accept loop: takes connections from one listener until that listener is closed, counts
 * them against `SERVER_MAX_CONNECTIONS` (on a counter every session thread shares), refuses
 * those over the limit with `LIMIT_EXCEEDED`, and hands the rest to a session. A failed accept
 * (a peer that reset before it was taken, no file descriptors left) is one event to log and
 * survive, never the loop's end.
 *
 * @module
 */
import { ErrorCode, errorText } from "../shared/errors.ts";
import { type ActionLogger, LogAction } from "../shared/log.ts";
import { FramedConnection, isConnectionLost } from "../shared/net/framed_conn.ts";
import { MessageType } from "../shared/protocol/mod.ts";

/**
 * The open connections of the whole server, counted in one slot of an `Int32Array` (shared
 * by every worker when the buffer is a `SharedArrayBuffer`): `Atomics.add` takes a slot,
 * and gives it back when the server is full, so the limit holds across threads.
 */
export class ConnectionSlots {
  readonly #counts: Int32Array;
  readonly #index: number;
  readonly #max: number;

  /** Counts in `counts[index]`, at most `max` at once. */
  constructor(counts: Int32Array, index: number, max: number) {
    this.#counts = counts;
    this.#index = index;
    this.#max = max;
  }

  /** Takes a slot; `false` (and nothing taken) when every slot is in use. */
  take(): boolean {
    if (Atomics.add(this.#counts, this.#index, 1) < this.#max) return true;
    Atomics.sub(this.#counts, this.#index, 1);
    return false;
  }

  /** Gives a slot back. */
  release(): void {
    Atomics.sub(this.#counts, this.#index, 1);
  }

  /** Open connections across every thread. */
  get open(): number {
    return Atomics.load(this.#counts, this.#index);
  }
}

/** Options of {@linkcode AcceptLoop}. */
export interface AcceptLoopOptions {
  readonly log: ActionLogger;
  readonly slots: ConnectionSlots;
  /** `SERVER_MAX_CONNECTIONS`, for the refusal's log line. */
  readonly maxConnections: number;
  /** The idle timeout, for the refused peer's retry hint (0: none). */
  readonly idleTimeoutMs: number;
  /** Serves one accepted connection; the loop closes `conn` afterwards. */
  readonly serve: (conn: Deno.TcpConn, ip: string) => Promise<void>;
}

/** An open connection: the peer's address and when it was accepted (`performance.now()`). */
interface Accepted {
  readonly ip: string;
  readonly at: number;
}

/** After a failed accept is logged, the others within this many ms are one summary line. */
const ACCEPT_FAILURE_SUMMARY_MS = 10_000;

/**
 * How long to wait before accepting again after a failure that is not one connection's (no
 * file descriptors left, EMFILE/ENFILE), so the loop does not spin while it lasts.
 */
const ACCEPT_BACKOFF_MS = 100;

/** Accepts connections from one listener and tracks them until they close. */
export class AcceptLoop {
  readonly #listener: Deno.TcpListener;
  readonly #options: AcceptLoopOptions;
  readonly #connections = new Map<Deno.TcpConn, Accepted>();
  readonly #handlers = new Set<Promise<void>>();
  #running: Promise<void> | undefined;
  #stopped = false;
  readonly #failures: ReturnType<typeof acceptFailureLog>;

  constructor(listener: Deno.TcpListener, options: AcceptLoopOptions) {
    this.#listener = listener;
    this.#options = options;
    this.#failures = acceptFailureLog(options.log, ACCEPT_FAILURE_SUMMARY_MS);
  }

  /** Connections this loop accepted that are still open. */
  get size(): number {
    return this.#connections.size;
  }

  /** Starts accepting (once); resolves when the listener is closed. */
  run(): Promise<void> {
    return this.#running ??= this.#loop();
  }

  async #loop(): Promise<void> {
    try {
      while (!this.#stopped) {
        let conn: Deno.TcpConn;
        try {
          conn = await this.#listener.accept();
        } catch (error) {
          if (this.#stopped) return;
          if (error instanceof Deno.errors.BadResource) {
            this.#options.log.error(LogAction.ACCEPT_CONNECTIONS, "fail", {
              error: errorText(error),
              detail: "the listener is closed: no more connections are accepted",
            });
            return;
          }
          this.#failures.failure(error);
          // One peer's reset costs nothing to retry; anything else (EMFILE) lasts a while.
          if (!isConnectionLost(error)) await delay(ACCEPT_BACKOFF_MS);
          continue;
        }
        this.#take(conn);
      }
    } finally {
      this.#failures.close();
    }
  }

  #take(conn: Deno.TcpConn): void {
    let ip = "unknown";
    try {
      ip = (conn.remoteAddr as Deno.NetAddr).hostname;
    } catch {
      // Reset before we looked: the session's first read says so.
    }
    const { log, slots, maxConnections, idleTimeoutMs } = this.#options;
    if (!slots.take()) {
      const retryAfterMs = slotHintMs(this.#connections.values(), idleTimeoutMs);
      log.warning(LogAction.ACCEPT_CONNECTIONS, "fail", {
        ip,
        error: "LIMIT_EXCEEDED",
        max_connections: maxConnections,
        retry_after_ms: retryAfterMs,
      });
      refuseOverLimit(conn, retryAfterMs);
      return;
    }
    log.info(LogAction.ACCEPT_CONNECTIONS, "success", { ip });
    try {
      // Acks are small writes: without this, Nagle's algorithm holds each one back until
      // the agency's delayed ACK of the previous (tens of ms per batch window).
      conn.setNoDelay(true);
    } catch {
      // A reset connection: the session's first read says so.
    }
    this.#connections.set(conn, { ip, at: performance.now() });
    const handler = this.#serve(conn, ip);
    this.#handlers.add(handler);
    handler.finally(() => this.#handlers.delete(handler));
  }

  async #serve(conn: Deno.TcpConn, ip: string): Promise<void> {
    try {
      await this.#options.serve(conn, ip);
    } finally {
      if (this.#connections.delete(conn)) {
        this.#options.slots.release();
        closeQuietly(conn);
      }
    }
  }

  /** Stops accepting: closes the listener and waits for the loop to end. */
  async stop(): Promise<void> {
    this.#stopped = true;
    try {
      this.#listener.close();
    } catch {
      // Closed already.
    }
    await this.#running;
  }

  /** Closes every open connection, each logged, and waits for their sessions to end. */
  async closeConnections(): Promise<void> {
    for (const [conn, { ip }] of [...this.#connections]) {
      this.#connections.delete(conn);
      this.#options.slots.release();
      closeQuietly(conn);
      this.#options.log.info(LogAction.CLOSE_CONNECTION, "success", { ip });
    }
    await Promise.allSettled([...this.#handlers]);
  }
}

function closeQuietly(conn: Deno.TcpConn): void {
  try {
    conn.close();
  } catch {
    // Closed already (timeout, or the session closed it).
  }
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

function refuseOverLimit(conn: Deno.TcpConn, retryAfterMs: number): void {
  const framed = new FramedConnection(conn);
  const message = `Too many connections${retryAfterMs > 0 ? `, retry in ${retryAfterMs} ms` : ""}`;
  framed.send({ type: MessageType.ERROR, code: ErrorCode.LIMIT_EXCEEDED, retryAfterMs, message })
    .catch(() => {}).finally(() => framed.close());
}

/**
 * Logs accept failures: the first as one line, those that follow within `summaryMs` as one
 * line with their count once that time is over (or at `close`).
 */
export function acceptFailureLog(
  log: ActionLogger,
  summaryMs: number,
): { failure(error: unknown): void; close(): void } {
  let window: ReturnType<typeof setTimeout> | undefined;
  let count = 0;
  let last = "";
  const summarize = (): void => {
    window = undefined;
    if (count === 0) return;
    log.warning(LogAction.ACCEPT_CONNECTIONS, "fail", {
      fallos: count,
      ms: summaryMs,
      error: last,
      detail: "accepts that failed since the last line; the server goes on accepting",
    });
    count = 0;
  };
  return {
    failure(error) {
      const text = errorText(error);
      if (window !== undefined) {
        count++;
        last = text;
        return;
      }
      log.warning(LogAction.ACCEPT_CONNECTIONS, "fail", {
        error: text,
        detail: "the connection is dropped; the server goes on accepting (more within " +
          `${summaryMs} ms are counted in one line)`,
      });
      window = setTimeout(summarize, summaryMs);
    },
    close() {
      clearTimeout(window);
      summarize();
    },
  };
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
