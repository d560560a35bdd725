/**
 * A dying agency, for the client-fault test: says HELLO as agency `<id>`, sends the
 * first half of its next BATCH frame, prints `partial_batch_sent <bytes>` and waits to
 * be killed (`kill -9`), leaving the server with a frame cut in the middle.
 *
 * ```sh
 * deno run --allow-net=127.0.0.1 e2e/faults/_partial_batch.ts <port> <id> [secret]
 * ```
 *
 * @module
 */
import { FramedConnection } from "../../shared/net/framed_conn.ts";
import { encodeMessage, MessageType } from "../../shared/protocol/mod.ts";
import { GOOD_BET } from "./_faults.ts";

if (import.meta.main) {
  const [port, id, secret = ""] = Deno.args;
  const agency = Number(id);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: Number(port) });
  const framed = new FramedConnection(conn);
  await framed.send({ type: MessageType.HELLO, agency, secret });
  const welcome = await framed.expect(MessageType.WELCOME);
  const bets = Array.from({ length: 50 }, (_, i) => ({ ...GOOD_BET, document: String(i + 1) }));
  const frame = encodeMessage({ type: MessageType.BATCH, agency, seq: welcome.nextSeq, bets });
  const half = frame.subarray(0, frame.length >> 1);
  await framed.send(half);
  console.log(`partial_batch_sent ${half.length}`);
  // Wait for SIGKILL.
  setInterval(() => {}, 1000);
}
