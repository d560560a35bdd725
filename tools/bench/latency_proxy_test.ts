import assert from "node:assert/strict";
import {
  encodeMessage,
  FrameDecoder,
  type Message,
  MessageType,
  type RawFrame,
} from "../../shared/protocol/mod.ts";
import { AckLatencyProxy, AckTimer } from "./latency_proxy.ts";
import { concatBytes, writeAll } from "../../shared/bytes.ts";

const BET = {
  firstName: "Ana",
  lastName: "Sosa",
  document: "30904465",
  birthdate: "1999-03-17",
  number: 7574,
};

function frameOf(message: Message): RawFrame {
  const bytes = encodeMessage(message);
  return { type: bytes[1]!, body: bytes.subarray(4) };
}

function batch(seq: number): Message {
  return { type: MessageType.BATCH, agency: 3, seq, bets: [BET] };
}

function ack(seq: number): Message {
  return { type: MessageType.BATCH_ACK, seq, status: 0, count: 1, reason: "" };
}

async function readAll(conn: Deno.Conn): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const buf = new Uint8Array(4096);
  for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) {
    parts.push(buf.slice(0, n));
  }
  return concatBytes(parts);
}

/**
 * A fake server on port 0 for one connection: it acks every BATCH (when `acks`), and
 * resolves with every byte it received once the peer closes.
 */
function fakeServer(acks: boolean): { port: number; received: Promise<Uint8Array> } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const received = (async () => {
    const conn = await listener.accept();
    listener.close();
    const decoder = new FrameDecoder();
    const parts: Uint8Array[] = [];
    const buf = new Uint8Array(4096);
    let framed = true;
    try {
      for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) {
        const chunk = buf.slice(0, n);
        parts.push(chunk);
        if (!acks || !framed) continue;
        try {
          decoder.push(chunk);
          for (let frame = decoder.next(); frame; frame = decoder.next()) {
            if (frame.type !== MessageType.BATCH) continue;
            const seq = new DataView(frame.body.buffer, frame.body.byteOffset).getUint32(2);
            await writeAll(conn, encodeMessage(ack(seq)));
          }
        } catch {
          framed = false;
        }
      }
    } finally {
      conn.close();
    }
    return concatBytes(parts);
  })();
  return { port: (listener.addr as Deno.NetAddr).port, received };
}

Deno.test("AckTimer pairs each BATCH with its BATCH_ACK by sequence", () => {
  const timer = new AckTimer();
  timer.sent(frameOf({ type: MessageType.HELLO, agency: 3, secret: "" }), 1);
  timer.sent(frameOf(batch(70_000)), 100);
  timer.sent(frameOf(batch(70_001)), 105);
  assert.equal(timer.acked(frameOf(ack(69_999)), 110), undefined, "an unknown batch");
  assert.equal(timer.acked(frameOf(ack(70_001)), 110), 5);
  assert.equal(timer.acked(frameOf(ack(70_000)), 112.5), 12.5);
  assert.equal(timer.acked(frameOf(ack(70_000)), 120), undefined, "acked once only");
  assert.equal(timer.acked(frameOf({ type: MessageType.BYE }), 130), undefined);
});

Deno.test("AckLatencyProxy forwards bytes unchanged and times each batch", async () => {
  const server = fakeServer(true);
  await using proxy = new AckLatencyProxy(server.port);
  const client = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port });
  const hello = encodeMessage({ type: MessageType.HELLO, agency: 3, secret: "" });
  const first = encodeMessage(batch(0));
  const second = encodeMessage(batch(1));
  const bye = encodeMessage({ type: MessageType.BYE });
  // The first batch arrives in two pieces, so the proxy sees a frame cut in half.
  const started = performance.now();
  await writeAll(client, concatBytes([hello, first.subarray(0, 7)]));
  await new Promise((done) => setTimeout(done, 20));
  await writeAll(client, concatBytes([first.subarray(7), second]));
  const acks = new FrameDecoder();
  const seen: number[] = [];
  const buf = new Uint8Array(4096);
  while (seen.length < 2) {
    const n = await client.read(buf);
    assert.notEqual(n, null, "the acks arrive");
    acks.push(buf.subarray(0, n!));
    for (let frame = acks.next(); frame; frame = acks.next()) seen.push(frame.type);
  }
  const exchangeMs = performance.now() - started;
  await writeAll(client, bye);
  await client.closeWrite();
  assert.equal((await readAll(client)).length, 0);
  client.close();
  assert.deepEqual(await server.received, concatBytes([hello, first, second, bye]));
  assert.deepEqual(seen, [MessageType.BATCH_ACK, MessageType.BATCH_ACK]);
  assert.equal(proxy.latenciesMs.length, 2);
  // Each batch's time lies within the exchange that carried it.
  for (const ms of proxy.latenciesMs) assert.ok(ms >= 0 && ms <= exchangeMs, String(ms));
});

Deno.test("AckLatencyProxy still forwards a stream that is not frames", async () => {
  const server = fakeServer(false);
  await using proxy = new AckLatencyProxy(server.port);
  const client = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port });
  const bytes = concatBytes([new TextEncoder().encode("hello\n"), encodeMessage(batch(0))]);
  await writeAll(client, bytes);
  await client.closeWrite();
  await readAll(client);
  client.close();
  assert.deepEqual(await server.received, bytes);
  assert.deepEqual(proxy.latenciesMs, []);
});
