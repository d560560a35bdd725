/**
 * Part 1's echo protocol on the lottery port: every newline-terminated UTF-8 line is
 * logged and sent back unchanged (what `nc` sends).
 *
 * @module
 */
import { type ActionLogger, LogAction } from "../shared/log.ts";
import { concatBytes, writeAll } from "../shared/bytes.ts";
import { type ByteStream, readWithin } from "../shared/net/framed_conn.ts";

/** The longest line echoed; a longer one closes the connection. */
const MAX_ECHO_LINE = 64 * 1024;

const NEWLINE = 0x0a;

/**
 * Options of {@linkcode serveEcho}: the peer's address, the bytes already read while
 * sniffing the protocol, and the idle time after which the connection is closed (0: none).
 */
export interface EchoOptions {
  readonly ip: string;
  readonly log: ActionLogger;
  readonly initial: Uint8Array;
  readonly idleTimeoutMs: number;
}

/** Echoes lines, a last one without a newline too, until the peer closes (the caller closes). */
export async function serveEcho(stream: ByteStream, options: EchoOptions): Promise<void> {
  const { ip, log } = options;
  const echo = async (line: Uint8Array): Promise<void> => {
    const msg = new TextDecoder().decode(line).replace(/\r?\n$/, "");
    log.info(LogAction.RECEIVE_MESSAGE, "success", { ip, msg });
    await writeAll(stream, line);
  };
  const validator = new TextDecoder("utf-8", { fatal: true });
  let pending = new Uint8Array(0);
  let chunk: Uint8Array | null = options.initial;
  const buf = new Uint8Array(8192);
  const idleMs = options.idleTimeoutMs || Infinity;
  let lineStarted = performance.now();
  while (chunk !== null) {
    try {
      validator.decode(chunk, { stream: true });
    } catch {
      log.warning(LogAction.RECEIVE_MESSAGE, "fail", { ip, error: "invalid UTF-8" });
      return;
    }
    const joined = concatBytes([pending, chunk]);
    let start = 0;
    for (let i = joined.indexOf(NEWLINE); i !== -1; i = joined.indexOf(NEWLINE, start)) {
      await echo(joined.subarray(start, i + 1));
      start = i + 1;
    }
    pending = joined.slice(start);
    if (pending.length > MAX_ECHO_LINE) {
      const error = `line longer than ${MAX_ECHO_LINE} bytes`;
      log.warning(LogAction.RECEIVE_MESSAGE, "fail", { ip, error });
      return;
    }
    // A line trickled in byte by byte (slow loris) must end within the idle timeout too.
    const lineOpen = pending.length > 0;
    const wait = lineOpen ? idleMs - (performance.now() - lineStarted) : idleMs;
    let n: number | null;
    try {
      if (wait <= 0) throw new Deno.errors.TimedOut("line not whole in time");
      n = await readWithin(stream, buf, wait);
    } catch (error) {
      if (!(error instanceof Deno.errors.TimedOut)) throw error;
      const detail = lineOpen ? `line not whole within ${idleMs} ms` : `idle for ${idleMs} ms`;
      log.warning(LogAction.IDLE_TIMEOUT, "fail", { ip, detail });
      return;
    }
    if (!lineOpen) lineStarted = performance.now();
    chunk = n === null ? null : buf.slice(0, n);
  }
  if (pending.length > 0) await echo(pending);
}
