/**
 * Part 1's echo loop: `loop.amount` times, every `loop.period`, connect, send
 * `[CLIENT {id}] Message N°{i}`, log the reply, disconnect.
 *
 * @module
 */
import { ConnectionError } from "../shared/errors.ts";
import { type ActionLogger, LogAction } from "../shared/log.ts";
import { concatBytes, LF, writeAll } from "../shared/bytes.ts";
import type { ClientConfig } from "./config.ts";
import { type ConnectConfig, connectWithRetry, lostServer, sleep } from "./connect.ts";

/** The echo loop's settings. */
export type EchoConfig = ConnectConfig & Pick<ClientConfig, "loopAmount" | "loopPeriod">;

async function readLine(conn: Deno.Conn): Promise<string> {
  const chunks: Uint8Array[] = [];
  const buf = new Uint8Array(1024);
  for (;;) {
    const n = await conn.read(buf);
    // The line went out ending in a line break: an echo without one is no echo.
    if (n === null) throw new ConnectionError("the connection closed before the echo came back");
    chunks.push(buf.slice(0, n));
    if (buf.subarray(0, n).includes(LF)) break;
  }
  const text = new TextDecoder().decode(concatBytes(chunks));
  return text.replace(/\r?\n$/, "");
}

/**
 * Runs the echo loop until done or `signal` stops it; returns how many messages were echoed.
 *
 * @throws {ConnectionError} Naming the server, when it cannot be reached or an exchange fails.
 */
export async function runEcho(
  config: EchoConfig,
  options: { readonly log: ActionLogger; readonly signal: AbortSignal },
): Promise<number> {
  const { log, signal } = options;
  let echoed = 0;
  for (let i = 1; i <= config.loopAmount && !signal.aborted; i++) {
    const conn = await connectWithRetry(config, options);
    try {
      await writeAll(conn, new TextEncoder().encode(`[CLIENT ${config.id}] Message N°${i}\n`));
      const reply = await readLine(conn);
      log.info(LogAction.RECEIVE_MESSAGE, "success", { client_id: config.id, msg: reply });
      echoed++;
    } catch (error) {
      throw lostServer(config.serverAddress, error);
    } finally {
      conn.close();
    }
    if (i < config.loopAmount) await sleep(config.loopPeriod.ms, signal);
  }
  if (!signal.aborted) log.info(LogAction.LOOP_FINISHED, "success", { client_id: config.id });
  return echoed;
}
