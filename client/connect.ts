/**
 * Connecting to the server with bounded retries: exponential backoff with jitter, so N
 * agencies started before the server do not hammer it in lockstep.
 *
 * @module
 */
import { ConnectionError, ProtocolError } from "../shared/errors.ts";
import { signalTimer } from "../shared/net/timer.ts";
import { type ActionLogger, LogAction } from "../shared/log.ts";
import { FramedConnection } from "../shared/net/framed_conn.ts";
import type { Duration } from "../shared/duration.ts";
import type { ClientConfig } from "./config.ts";

/** Options of {@linkcode connectWithRetry}. */
export interface ConnectOptions {
  readonly hostname: string;
  readonly port: number;
  /** Attempts before giving up. */
  readonly attempts: number;
  /** Wait before the second attempt; doubles each time, jittered, capped at 5 s. */
  readonly backoffMs: number;
  /**
   * The longest one attempt may take (a server that drops SYNs would otherwise hold it
   * for the kernel's two minutes of retransmissions); 0 or absent = unbounded.
   */
  readonly timeout?: Duration;
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

/** The longest wait a server's retry hint may impose at once. */
const MAX_HINT_MS = 60_000;

/**
 * The wait a server's retry hint asks for (an ERROR's `retry_after_ms`), capped at a
 * minute, plus up to a fifth more (at most {@linkcode MAX_BACKOFF_MS}) so
 * the agencies it refused do not all come back at the same instant.
 *
 * @param hintMs The server's hint.
 * @param random A number in [0, 1).
 * @returns Milliseconds.
 */
export function hintedDelay(hintMs: number, random: number = Math.random()): number {
  const hint = Math.min(hintMs, MAX_HINT_MS);
  return Math.round(hint + random * Math.min(hint / 5, MAX_BACKOFF_MS));
}

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

/** Retry lines closer together than this go out at DEBUG: one INFO line a second at most. */
const INFO_EVERY_MS = 1000;

/**
 * Connects over TCP, retrying refused, unresolvable or unanswered addresses. Each failed
 * attempt but the last logs one `connect | result: in_progress` line (attempt n of m, the
 * address, the wait and why), at INFO at most once a second and at DEBUG otherwise, so a
 * server that stays unreachable is visible long before the agency gives up.
 *
 * @param options Address, attempts, backoff, attempt timeout, logger and abort signal.
 * @returns The connection.
 * @throws {ConnectionError} After the last attempt, or at once when `signal` aborts.
 */
export async function connectWithRetry(options: ConnectOptions): Promise<Deno.TcpConn> {
  const { hostname, port, timeout } = options;
  let lastError: unknown;
  let lastInfo = -Infinity;
  for (let attempt = 1; attempt <= options.attempts; attempt++) {
    if (options.signal?.aborted) break;
    try {
      const conn = await Deno.connect({ hostname, port, signal: attemptSignal(options) });
      conn.setNoDelay(true);
      return conn;
    } catch (error) {
      if (options.signal?.aborted) break;
      lastError = isTimeout(error) ? new Error(`no answer within ${timeout?.text}`) : error;
      if (attempt === options.attempts) break;
      const wait = backoffDelay(attempt, options.backoffMs);
      const now = performance.now();
      const visible = now - lastInfo >= INFO_EVERY_MS;
      if (visible) lastInfo = now;
      (visible ? options.log.info : options.log.debug)(LogAction.CONNECT, "in_progress", {
        ...options.fields,
        host: hostname,
        port,
        attempt,
        attempts: options.attempts,
        retry_in_ms: wait,
        detail: errorText(lastError),
      });
      await sleep(wait, options.signal);
    }
  }
  if (options.signal?.aborted) {
    throw new ConnectionError(`Cannot connect to ${hostname}:${port}: stopped`);
  }
  throw new ConnectionError(
    `Cannot connect to ${hostname}:${port} after ${options.attempts} attempts: ${
      errorText(lastError)
    }`,
    { cause: lastError },
  );
}

/** The signal one attempt runs under: the caller's stop, and the attempt's timeout. */
function attemptSignal(options: ConnectOptions): AbortSignal | undefined {
  const signals: AbortSignal[] = [];
  if (options.signal !== undefined) signals.push(options.signal);
  if (options.timeout !== undefined && options.timeout.ms > 0) {
    signals.push(AbortSignal.timeout(options.timeout.ms));
  }
  return signals.length > 1 ? AbortSignal.any(signals) : signals[0];
}

function isTimeout(error: unknown): boolean {
  return error instanceof DOMException && error.name === "TimeoutError";
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * The error to report for a failure on an open connection to the server: the server's
 * refusals as they are, anything else (a reset, a timeout, a closed socket: the transport
 * does not know whom it talks to) as a {@linkcode ConnectionError} naming the server.
 *
 * @param server The server's address.
 * @param error What the exchange threw.
 * @returns A `ProtocolError` unchanged, otherwise a `ConnectionError`.
 */
export function lostServer(server: { readonly text: string }, error: unknown): Error {
  if (error instanceof ProtocolError) return error;
  return new ConnectionError(
    `Cannot go on with server ${server.text}: ${errorText(error)}`,
    { cause: error },
  );
}

/** What {@linkcode openServerConnection} needs of the client's configuration. */
export type ServerConnectionConfig = Pick<
  ClientConfig,
  "id" | "serverAddress" | "connectAttempts" | "connectBackoff" | "connectTimeout" | "timeout"
>;

/**
 * Connects to the server as the configured agency (retrying with backoff) and frames the
 * connection, with the configured idle timeout on every read. The timeouts run on
 * `signalTimer`: the global `setTimeout` would load `node:timers`, a third of a
 * short-lived agency's start-up.
 *
 * @param config Address, attempts, backoff, connect and idle timeouts, the agency id for logs.
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
    timeout: config.connectTimeout,
    log: options.log,
    signal: options.signal,
    fields: { client_id: config.id },
  });
  return new FramedConnection(socket, {
    idleTimeoutMs: config.timeout.ms,
    timer: signalTimer,
  });
}
