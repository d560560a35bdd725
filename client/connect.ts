/**
 * Connecting to the server with bounded retries: exponential backoff with jitter, so N
 * agencies started before the server do not hammer it in lockstep.
 *
 * @module
 */
import { ConnectionError } from "../shared/errors.ts";
import { signalTimer } from "../shared/net/timer.ts";
import type { ActionLogger } from "../shared/log.ts";
import { FramedConnection } from "../shared/net/framed_conn.ts";
import type { ClientConfig } from "./config.ts";

/** Options of {@linkcode connectWithRetry}. */
export interface ConnectOptions {
  readonly hostname: string;
  readonly port: number;
  /** Attempts before giving up. */
  readonly attempts: number;
  /** Wait before the second attempt; doubles each time, jittered, capped at 5 s. */
  readonly backoffMs: number;
  readonly log: ActionLogger;
  /** Stops waiting (SIGTERM). */
  readonly signal?: AbortSignal;
  /**
   * Fields added to the retry log lines.
   * @default {}
   */
  readonly fields?: Readonly<Record<string, string | number>>;
}

/** The longest wait between attempts. */
export const MAX_BACKOFF_MS = 5000;

/**
 * Waits `ms`, or less if `signal` aborts.
 *
 * @param ms How long.
 * @param signal Cuts the wait short.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const cancel = signalTimer(ms, done);
    function done(): void {
      cancel();
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

/**
 * The wait before attempt `attempt + 1`: `base · 2^(attempt-1)` with ±50% jitter, never
 * over {@linkcode MAX_BACKOFF_MS}.
 *
 * @param attempt Attempts made so far (from 1).
 * @param baseMs The first wait.
 * @param random A number in [0, 1).
 * @returns Milliseconds.
 */
export function backoffDelay(
  attempt: number,
  baseMs: number,
  random: number = Math.random(),
): number {
  const capped = Math.min(baseMs * 2 ** (attempt - 1), MAX_BACKOFF_MS);
  return Math.min(Math.round(capped * (0.5 + random)), MAX_BACKOFF_MS);
}

/**
 * Settles with `connecting`, or rejects as soon as `signal` aborts (`Deno.connect` itself
 * cannot be cancelled: a connection that completes afterwards is closed).
 */
function abortable(
  connecting: Promise<Deno.TcpConn>,
  signal: AbortSignal | undefined,
): Promise<Deno.TcpConn> {
  if (signal === undefined) return connecting;
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      connecting.then((conn) => conn.close(), () => {});
      reject(signal.reason);
    };
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    connecting.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/**
 * Connects over TCP, retrying refused or unresolvable addresses.
 *
 * @param options Address, attempts, backoff, logger and abort signal.
 * @returns The connection.
 * @throws {ConnectionError} After the last attempt, or at once when `signal` aborts.
 */
export async function connectWithRetry(options: ConnectOptions): Promise<Deno.TcpConn> {
  let lastError: unknown;
  for (let attempt = 1; attempt <= options.attempts; attempt++) {
    if (options.signal?.aborted) break;
    try {
      const conn = await abortable(
        Deno.connect({ hostname: options.hostname, port: options.port }),
        options.signal,
      );
      conn.setNoDelay(true);
      return conn;
    } catch (error) {
      if (options.signal?.aborted) break;
      lastError = error;
      if (attempt === options.attempts) break;
      const wait = backoffDelay(attempt, options.backoffMs);
      options.log.debug("connect", "in_progress", {
        ...options.fields,
        attempt,
        retry_in_ms: wait,
        detail: error instanceof Error ? error.message : String(error),
      });
      await sleep(wait, options.signal);
    }
  }
  if (options.signal?.aborted) {
    throw new ConnectionError(`Cannot connect to ${options.hostname}:${options.port}: stopped`);
  }
  const reason = lastError instanceof Error ? lastError.message : String(lastError);
  throw new ConnectionError(
    `Cannot connect to ${options.hostname}:${options.port} after ${options.attempts} attempts: ${reason}`,
    { cause: lastError },
  );
}

/** What {@linkcode openServerConnection} needs of the client's configuration. */
export type ServerConnectionConfig = Pick<
  ClientConfig,
  "id" | "serverAddress" | "connectAttempts" | "connectBackoff" | "timeout"
>;

/**
 * Connects to the server as the configured agency (retrying with backoff) and frames the
 * connection, with the configured idle timeout on every read. The timeouts run on
 * `signalTimer`: the global `setTimeout` would load `node:timers`, a third of a
 * short-lived agency's start-up.
 *
 * @param config Address, attempts, backoff, idle timeout and the agency id for logs.
 * @param options Logger and abort signal (SIGTERM).
 * @returns The framed connection; the caller closes it.
 * @throws {ConnectionError} After the last attempt, or at once when `signal` aborts.
 */
export async function openServerConnection(
  config: ServerConnectionConfig,
  options: { readonly log: ActionLogger; readonly signal: AbortSignal },
): Promise<FramedConnection> {
  const socket = await connectWithRetry({
    hostname: config.serverAddress.hostname,
    port: config.serverAddress.port,
    attempts: config.connectAttempts,
    backoffMs: config.connectBackoff.ms,
    log: options.log,
    signal: options.signal,
    fields: { client_id: config.id },
  });
  return new FramedConnection(socket, {
    idleTimeoutMs: config.timeout.ms,
    timer: signalTimer,
  });
}
