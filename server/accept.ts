/**
 * The accept loop: one failed accept (a peer that reset before it was taken, a full file
 * table) is logged, rate-limited, and the loop goes on; only the listener's closing ends it.
 *
 * @module
 */
import { errorText } from "../shared/errors.ts";
import { type ActionLogger, LogAction } from "../shared/log.ts";
import { isConnectionLost } from "../shared/net/framed_conn.ts";

/** Options of {@linkcode acceptEach}. */
export interface AcceptOptions {
  readonly log: ActionLogger;
  /** Whether the server is shutting down: then a failed accept ends the loop, silently. */
  readonly closing: () => boolean;
  /**
   * How long to wait after a failure that is not one connection's (no file descriptors left,
   * EMFILE/ENFILE), so the loop does not spin while the condition lasts: 100 ms unless given.
   */
  readonly backoffMs?: number;
  /** After the first failure is logged, the others within this time are one summary line. */
  readonly summaryMs?: number;
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

/** Whether a failed accept means the listener itself is gone. */
function listenerGone(error: unknown): boolean {
  return error instanceof Deno.errors.BadResource;
}

/**
 * Accepts connections until the listener closes, handing each to `each`; a failure of one
 * accept, or of `each` (e.g. reading the address of a connection already reset), is logged
 * (see {@linkcode acceptFailureLog}), that connection closed, and the loop goes on.
 */
export async function acceptEach<C extends Deno.Conn>(
  listener: Deno.Listener<C>,
  each: (conn: C) => void,
  options: AcceptOptions,
): Promise<void> {
  const backoffMs = options.backoffMs ?? 100;
  const failures = acceptFailureLog(options.log, options.summaryMs ?? 10_000);
  try {
    for (;;) {
      let conn: C;
      try {
        conn = await listener.accept();
      } catch (error) {
        if (options.closing()) return;
        if (listenerGone(error)) {
          options.log.error(LogAction.ACCEPT_CONNECTIONS, "fail", {
            error: errorText(error),
            detail: "the listener is closed: no more connections are accepted",
          });
          return;
        }
        failures.failure(error);
        if (!isConnectionLost(error)) await new Promise((r) => setTimeout(r, backoffMs));
        continue;
      }
      try {
        each(conn);
      } catch (error) {
        failures.failure(error);
        try {
          conn.close();
        } catch {
          // Gone already.
        }
      }
    }
  } finally {
    failures.close();
  }
}
