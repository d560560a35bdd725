/**
 * Connecting to the server with bounded retries: exponential backoff with jitter, so N
 * agencies started before the server do not hammer it in lockstep.
 *
 * @module
 */
import { ConnectionError, errorText, ProtocolError } from "../shared/errors.ts";
import { signalTimer } from "../shared/net/timer.ts";
import { type ActionLogger, LogAction } from "../shared/log.ts";
import { FramedConnection } from "../shared/net/framed_conn.ts";
import type { ClientConfig } from "./config.ts";

/** What connecting needs of the client's configuration. */
export type ConnectConfig = Pick<
  ClientConfig,
  "id" | "serverAddress" | "connectAttempts" | "connectBackoff" | "connectTimeout"
>;

/** The logger, and the signal that stops waiting (SIGTERM). */
export interface ConnectOptions {
  readonly log: ActionLogger;
  readonly signal?: AbortSignal;
}

/** The longest wait between attempts. */
export const MAX_BACKOFF_MS = 5000;

/** The longest wait a server's retry hint may impose at once. */
const MAX_HINT_MS = 60_000;

/**
 * The wait a server's retry hint asks for, at most a minute, plus up to a fifth more (at
 * most {@linkcode MAX_BACKOFF_MS}, `random` in [0, 1)) so refused agencies do not return at once.
 */
export function hintedDelay(hintMs: number, random: number = Math.random()): number {
  const hint = Math.min(hintMs, MAX_HINT_MS);
  return Math.round(hint + random * Math.min(hint / 5, MAX_BACKOFF_MS));
}

/** Waits `ms`, or less if `signal` aborts. */
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
 * The wait in ms after `attempt` attempts (from 1): `base · 2^(attempt-1)` with ±50% jitter
 * (`random` in [0, 1)), never over {@linkcode MAX_BACKOFF_MS}.
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
 * Connects to the server, retrying refused, unresolvable or unanswered addresses up to
 * `connect.attempts` times with backoff from `connect.backoff`, each attempt bounded by
 * `connect.timeout` (0: none; a server that drops SYNs would hold it for minutes). Each
 * failed attempt but the last logs a `connect | result: in_progress` line, at INFO at most
 * once a second, so a server that stays unreachable is visible long before the end.
 *
 * @throws {ConnectionError} After the last attempt, or at once when `signal` aborts.
 */
export async function connectWithRetry(
  config: ConnectConfig,
  { log, signal }: ConnectOptions,
): Promise<Deno.TcpConn> {
  const { hostname, port } = config.serverAddress;
  const attempts = config.connectAttempts;
  const timeout = config.connectTimeout;
  let lastError: unknown;
  let lastInfo = -Infinity;
  for (let attempt = 1; attempt <= attempts && !signal?.aborted; attempt++) {
    // The caller's stop, and this attempt's timeout.
    const limits = [signal, timeout.ms > 0 ? AbortSignal.timeout(timeout.ms) : undefined];
    try {
      const stop = AbortSignal.any(limits.filter((s) => s !== undefined));
      const conn = await Deno.connect({ hostname, port, signal: stop });
      conn.setNoDelay(true);
      return conn;
    } catch (error) {
      if (signal?.aborted) break;
      const timedOut = error instanceof DOMException && error.name === "TimeoutError";
      lastError = timedOut ? new Error(`no answer within ${timeout.text}`) : error;
      if (attempt === attempts) break;
      const wait = backoffDelay(attempt, config.connectBackoff.ms);
      const now = performance.now();
      const visible = now - lastInfo >= INFO_EVERY_MS;
      if (visible) lastInfo = now;
      (visible ? log.info : log.debug)(LogAction.CONNECT, "in_progress", {
        client_id: config.id,
        host: hostname,
        port,
        attempt,
        attempts,
        retry_in_ms: wait,
        detail: errorText(lastError),
      });
      await sleep(wait, signal);
    }
  }
  if (signal?.aborted) throw new ConnectionError(`Cannot connect to ${hostname}:${port}: stopped`);
  throw new ConnectionError(
    `Cannot connect to ${hostname}:${port} after ${attempts} attempts: ${errorText(lastError)}`,
    { cause: lastError },
  );
}

/**
 * The error to report for a failure on an open connection to the server: the server's
 * refusals as they are, anything else (a reset, a timeout, a closed socket: the transport
 * does not know whom it talks to) as a {@linkcode ConnectionError} naming the server.
 */
export function lostServer(server: { readonly text: string }, error: unknown): Error {
  if (error instanceof ProtocolError) return error;
  return new ConnectionError(
    `Cannot go on with server ${server.text}: ${errorText(error)}`,
    { cause: error },
  );
}

/**
 * Connects (see {@linkcode connectWithRetry}) and frames the connection, which the caller
 * closes, a reply slower than `timeout` failing it. Its timeouts run on `signalTimer`
 * (the global `setTimeout` loads `node:timers`, a third of an agency's start-up).
 *
 * @throws {ConnectionError} After the last attempt, or at once when `signal` aborts.
 */
export async function openServerConnection(
  config: ConnectConfig & Pick<ClientConfig, "timeout">,
  options: ConnectOptions,
): Promise<FramedConnection> {
  const socket = await connectWithRetry(config, options);
  return new FramedConnection(socket, { idleTimeoutMs: config.timeout.ms, timer: signalTimer });
}
