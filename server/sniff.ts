/**
 * One accepted connection, from its first bytes to its close: the lottery's binary protocol
 * (first byte {@linkcode MAGIC}) goes to an agency session, UTF-8 text to Part 1's echo, and
 * anything else is logged and closed.
 *
 * @module
 */
import { type ActionLogger, LogAction } from "../shared/log.ts";
import { AcceptLoop, type ConnectionSlots } from "./accept_loop.ts";
import { FramedConnection, isConnectionLost, readWithin } from "../shared/net/framed_conn.ts";
import { MAGIC } from "../shared/protocol/mod.ts";
import type { ServerConfig } from "./config.ts";
import { serveEcho } from "./echo.ts";
import { serveAgency, type SessionContext } from "./session.ts";

/** What {@linkcode serveConnection} needs besides the connection. */
export interface ConnectionContext {
  readonly session: SessionContext;
  readonly log: ActionLogger;
  /** Silence, a trickled frame or an unread reply longer than this closes it (0: never). */
  readonly idleTimeoutMs: number;
  /** `SERVER_MAX_FRAME_SIZE`: the largest frame, header included. */
  readonly maxFrameSize: number;
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
 * The first read of a connection, which tells the protocols apart: enough for an agency's
 * HELLO (at most 262 bytes) or a usual echo line; more stays in the socket for later reads.
 * Every connection holds it while its first read waits, so it is kept small.
 */
const SNIFF_BYTES = 1024;

/**
 * Serves a connection by the protocol its first bytes show, until it ends; the caller closes
 * `conn`. Never rejects: a failure is logged (unless the connection was simply lost or the
 * server is closing).
 */
export async function serveConnection(
  conn: Deno.Conn,
  ip: string,
  ctx: ConnectionContext,
): Promise<void> {
  const { log, idleTimeoutMs } = ctx;
  try {
    const buf = new Uint8Array(SNIFF_BYTES);
    const n = await readWithin(conn, buf, idleTimeoutMs || Infinity);
    if (!n) return;
    const first = buf.subarray(0, n);
    if (first[0] === MAGIC) {
      const framed = new FramedConnection(conn, {
        idleTimeoutMs,
        // A frame trickled in byte by byte (slow loris) gets no more time than silence.
        frameTimeoutMs: idleTimeoutMs,
        // A peer that never reads its replies would otherwise hold the session forever.
        writeTimeoutMs: idleTimeoutMs,
        maxBodySize: ctx.maxFrameSize - 4,
        initial: first,
      });
      try {
        await serveAgency(framed, ip, ctx.session);
      } finally {
        // Its timers and buffers go with the connection, not at the idle timeout.
        framed.close();
      }
    } else if (isUtf8Start(first)) {
      await serveEcho(conn, { ip, log, initial: first, idleTimeoutMs });
    } else {
      log.warning(LogAction.RECEIVE_MESSAGE, "fail", {
        ip,
        error: "first bytes are neither the lottery protocol nor UTF-8 text",
      });
    }
  } catch (error) {
    if (!ctx.session.closing() && !isConnectionLost(error)) {
      log.error(LogAction.CONNECTION, "fail", { ip, detail: String(error) });
    }
  }
}

/**
 * The accept loop of one session thread on `listener`: each connection it admits is served
 * by {@linkcode serveConnection} with `session` and the limits in `config`.
 */
export function sessionAcceptLoop(
  listener: Deno.TcpListener,
  options: {
    readonly session: SessionContext;
    readonly config: Pick<ServerConfig, "maxConnections" | "idleTimeout" | "maxFrameSize">;
    readonly slots: ConnectionSlots;
  },
): AcceptLoop {
  const { session, config, slots } = options;
  const { log } = session;
  const idleTimeoutMs = config.idleTimeout.ms;
  return new AcceptLoop(listener, {
    log,
    slots,
    maxConnections: config.maxConnections,
    idleTimeoutMs,
    serve: (conn, ip) =>
      serveConnection(conn, ip, { session, log, idleTimeoutMs, maxFrameSize: config.maxFrameSize }),
  });
}
