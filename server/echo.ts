/**
 * Part 1's echo on the lottery port, as the course's own server answers it: one message per
 * connection, its trailing whitespace stripped, sent back with `\n`, then the connection closed.
 *
 * A message ends at its first line break, at the peer's half-close (EOF), or when no more bytes
 * come for {@linkcode MESSAGE_PAUSE_MS} after the first (a message sent without a line break,
 * e.g. `printf msg | nc`). Bytes after the first line break are not answered.
 *
 * @module
 */
import { concatBytes, LF, writeAll } from "../shared/bytes.ts";
import { type ActionLogger, LogAction } from "../shared/log.ts";
import { isConnectionLost } from "../shared/net/framed_conn.ts";
import { Deadline, globalTimer } from "../shared/net/timer.ts";

/** The longest message echoed, line break excluded; a longer one closes the connection. */
export const MAX_ECHO_MESSAGE = 64 * 1024;

/**
 * How long a message without a line break may pause before it counts as whole. Netcats that
 * never close their sending side wait for the answer after their input ends, `nc -w 1` only a
 * second: the answer must come well within that. A sender splitting one message into writes
 * farther apart than this gets the first part answered.
 */
export const MESSAGE_PAUSE_MS = 150;

/**
 * How long, after the answer, the connection waits for the peer to close. Reading on until then
 * keeps the kernel from answering late bytes of the peer with a reset, which can destroy the
 * answer still in flight; a peer that stays longer is closed all the same.
 */
export const LINGER_MS = 2000;

/** The part of `Deno.Conn` the echo uses. */
export type EchoStream = Pick<Deno.Conn, "read" | "write" | "close" | "closeWrite">;

/**
 * Options of {@linkcode serveEcho}: the peer's address, the bytes already read while
 * sniffing the protocol (at least one), the time the message may take from those bytes to its
 * end (0: none), and the pause that ends a message without a line break
 * ({@linkcode MESSAGE_PAUSE_MS} unless given).
 */
export interface EchoOptions {
  readonly ip: string;
  readonly log: ActionLogger;
  readonly initial: Uint8Array;
  readonly idleTimeoutMs: number;
  readonly pauseMs?: number;
}

/** Python's `bytes.rstrip()` set, as the course's server strips: space, \t, \n, \v, \f, \r. */
const WHITESPACE = new Set([0x20, 0x09, 0x0a, 0x0b, 0x0c, 0x0d]);
const TIMED_OUT = Symbol("timed out");

/** A whole message: its bytes (no line break), and the read still waiting when a pause ended it. */
interface Message {
  readonly bytes: Uint8Array;
  readonly reading: Promise<number | null> | undefined;
}

/**
 * Answers one message and closes the connection's sending side; the caller closes the rest.
 * A peer that leaves once it has its answer (a reset, a broken pipe) is no failure.
 *
 * @throws {Error} A socket error before the answer went out (e.g. `ConnectionReset`).
 */
export async function serveEcho(stream: EchoStream, options: EchoOptions): Promise<void> {
  const { ip, log } = options;
  const buf = new Uint8Array(8192);
  const message = await receiveMessage(stream, buf, options);
  if (typeof message === "string") {
    log.warning(LogAction.RECEIVE_MESSAGE, "fail", { ip, error: message });
    return;
  }
  if (message === TIMED_OUT) {
    const detail = `message not whole within ${options.idleTimeoutMs} ms`;
    log.warning(LogAction.IDLE_TIMEOUT, "fail", { ip, detail });
    return;
  }
  const text = stripTrailingWhitespace(message.bytes);
  let msg: string;
  try {
    msg = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(text);
  } catch {
    log.warning(LogAction.RECEIVE_MESSAGE, "fail", { ip, error: "the message is not UTF-8" });
    return;
  }
  log.info(LogAction.RECEIVE_MESSAGE, "success", { ip, msg });
  await answer(stream, buf, concatBytes([text, new Uint8Array([LF])]), message.reading);
}

/**
 * Reads until the message is whole: a {@linkcode Message}, an error text for a message over
 * {@linkcode MAX_ECHO_MESSAGE}, or {@linkcode TIMED_OUT} when it took longer than the idle timeout.
 */
async function receiveMessage(
  stream: EchoStream,
  buf: Uint8Array,
  options: EchoOptions,
): Promise<Message | string | typeof TIMED_OUT> {
  const pauseMs = options.pauseMs ?? MESSAGE_PAUSE_MS;
  // A message trickled in faster than the pause (slow loris) gets no more time than silence.
  const endsBy = performance.now() + (options.idleTimeoutMs || Infinity);
  const parts: Uint8Array[] = [];
  let length = 0;
  let chunk = options.initial;
  for (;;) {
    const newline = chunk.indexOf(LF);
    const part = newline === -1 ? chunk : chunk.subarray(0, newline);
    length += part.length;
    if (length > MAX_ECHO_MESSAGE) return `message longer than ${MAX_ECHO_MESSAGE} bytes`;
    parts.push(part.slice());
    if (newline !== -1) return { bytes: concatBytes(parts), reading: undefined };
    const reading = stream.read(buf);
    let n: number | null | typeof TIMED_OUT;
    for (;;) {
      const left = endsBy - performance.now();
      n = await within(reading, Math.min(pauseMs, left));
      if (n !== TIMED_OUT) break;
      if (pauseMs >= left) {
        // Whatever the read brings now is dropped with the connection.
        reading.catch(() => {});
        return TIMED_OUT;
      }
      const bytes = concatBytes(parts);
      // A character cut between writes is not the end: wait for the rest, up to the deadline.
      if (!endsMidCharacter(bytes)) return { bytes, reading };
    }
    if (n === null) return { bytes: concatBytes(parts), reading: undefined };
    chunk = buf.subarray(0, n);
  }
}

/**
 * Writes the answer, closes the sending side (a netcat waiting for the server to close returns
 * now) and reads whatever still comes until the peer closes, for at most {@linkcode LINGER_MS}.
 */
async function answer(
  stream: EchoStream,
  buf: Uint8Array,
  reply: Uint8Array,
  reading: Promise<number | null> | undefined,
): Promise<void> {
  const linger = new Deadline(globalTimer, () => closeQuietly(stream));
  linger.set(LINGER_MS);
  try {
    await writeAll(stream, reply);
    await stream.closeWrite();
    // Dropped: only the first message of a connection is answered.
    let n = await (reading ?? stream.read(buf));
    while (n !== null) n = await stream.read(buf);
  } catch (error) {
    if (!isConnectionLost(error)) throw error;
  } finally {
    linger.dispose();
    reading?.catch(() => {});
  }
}

/** `promise`'s value, or {@linkcode TIMED_OUT} once `ms` have passed first (Infinity: never). */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | typeof TIMED_OUT> {
  if (ms === Infinity) return await promise;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<typeof TIMED_OUT>((resolve) => {
    timer = setTimeout(() => resolve(TIMED_OUT), Math.max(0, ms));
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function closeQuietly(stream: EchoStream): void {
  try {
    stream.close();
  } catch {
    // Closed already.
  }
}

/** `bytes` without its trailing whitespace (a view, not a copy). */
export function stripTrailingWhitespace(bytes: Uint8Array): Uint8Array {
  let end = bytes.length;
  while (end > 0 && WHITESPACE.has(bytes[end - 1]!)) end--;
  return bytes.subarray(0, end);
}

/**
 * Whether `bytes` end inside a UTF-8 character: its lead byte is there, some of the
 * continuation bytes it announces are not.
 *
 * @example Usage
 * ```ts
 * endsMidCharacter(new Uint8Array([0x4e, 0xc2])); // true: "N" and the first byte of "°"
 * endsMidCharacter(new Uint8Array([0x4e, 0xc2, 0xb0])); // false: "N°"
 * ```
 */
export function endsMidCharacter(bytes: Uint8Array): boolean {
  for (let back = 1; back <= Math.min(4, bytes.length); back++) {
    const byte = bytes[bytes.length - back]!;
    if ((byte & 0xc0) === 0x80) continue;
    const size = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1;
    return size > back;
  }
  return false;
}
