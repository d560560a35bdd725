import assert from "node:assert/strict";
import { COURSE_BET } from "../../testing/course_data.ts";
import { ConnectionError, ErrorCode, ProtocolError } from "../errors.ts";
import { decodeMessage, encodeMessage } from "../protocol/codec.ts";
import { FrameDecoder } from "../protocol/frame_decoder.ts";
import { type Message, MessageType } from "../protocol/messages.ts";
import { type ByteStream, FramedConnection, isConnectionLost } from "./framed_conn.ts";
import { globalTimer, signalTimer } from "./timer.ts";
import { concatBytes } from "../bytes.ts";

const BET = COURSE_BET;

const MESSAGES: Message[] = [
  { type: MessageType.HELLO, agency: 1, secret: "s" },
  { type: MessageType.BATCH, agency: 1, seq: 0, bets: Array.from({ length: 50 }, () => BET) },
  { type: MessageType.TOTAL_QUERY },
  { type: MessageType.ERROR, code: 3, retryAfterMs: 0, message: "ñ".repeat(500) },
  { type: MessageType.BYE },
];

/** Waits a macrotask, so other sends get a chance to run between bytes. */
function tick(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** A peer that moves one byte per read() and per write() call. */
class TrickleStream implements ByteStream {
  readonly #input: Uint8Array;
  #pos = 0;
  readonly output: number[] = [];
  reads = 0;
  writes = 0;
  closed = false;
  readonly #yieldEvery: number;

  constructor(input: Uint8Array = new Uint8Array(0), yieldEvery = 1024) {
    this.#input = input;
    this.#yieldEvery = yieldEvery;
  }

  async read(p: Uint8Array): Promise<number | null> {
    this.reads++;
    await Promise.resolve();
    if (this.closed) throw new Deno.errors.BadResource("Bad resource ID");
    if (this.#pos >= this.#input.length) return null;
    p[0] = this.#input[this.#pos++]!;
    return 1;
  }

  async write(p: Uint8Array): Promise<number> {
    this.writes++;
    if (this.writes % this.#yieldEvery === 0) await tick();
    else await Promise.resolve();
    if (this.closed) throw new Deno.errors.BadResource("Bad resource ID");
    if (p.length === 0) return 0;
    this.output.push(p[0]!);
    return 1;
  }

  close(): void {
    this.closed = true;
  }
}

/** A peer that never sends anything: a pending read fails only when the stream is closed. */
class SilentStream implements ByteStream {
  closed = false;
  #pending: ((error: Error) => void) | undefined;

  read(_p: Uint8Array): Promise<number | null> {
    if (this.closed) return Promise.reject(new Deno.errors.BadResource("Bad resource ID"));
    return new Promise((_resolve, reject) => (this.#pending = reject));
  }

  write(p: Uint8Array): Promise<number> {
    return Promise.resolve(p.length);
  }

  close(): void {
    this.closed = true;
    // What Deno does to a read pending on a closed TcpConn.
    this.#pending?.(new Deno.errors.Interrupted("operation canceled"));
    this.#pending = undefined;
  }
}

function decodeAll(bytes: Uint8Array): Message[] {
  const decoder = new FrameDecoder();
  decoder.push(bytes);
  const out: Message[] = [];
  for (let frame = decoder.next(); frame; frame = decoder.next()) {
    out.push(decodeMessage(frame.type, frame.body));
  }
  assert.equal(decoder.buffered, 0, "no partial frame left");
  return out;
}

Deno.test("FramedConnection.read() returns whole messages from 1-byte reads", async () => {
  const stream = new TrickleStream(concatBytes(MESSAGES.map(encodeMessage)));
  const conn = new FramedConnection(stream);
  const got: Message[] = [];
  for (let msg = await conn.read(); msg !== null; msg = await conn.read()) got.push(msg);
  assert.deepEqual(got, MESSAGES);
  assert.ok(stream.reads > 1000, "it really was fed byte by byte");
  assert.equal(await conn.read(), null, "still null after EOF");
  conn.close();
});

Deno.test("FramedConnection.read() returns null on EOF between frames", async () => {
  assert.equal(await new FramedConnection(new TrickleStream()).read(), null);
  const conn = new FramedConnection(new TrickleStream(encodeMessage({ type: MessageType.BYE })));
  assert.deepEqual(await conn.read(), { type: MessageType.BYE });
  assert.equal(await conn.read(), null);
});

Deno.test("FramedConnection.read() throws ConnectionError on EOF inside a frame", async (t) => {
  const frame = encodeMessage(MESSAGES[1]!);
  for (const cut of [1, 3, 4, 5, frame.length - 1]) {
    await t.step(`after ${cut} bytes`, async () => {
      const conn = new FramedConnection(new TrickleStream(frame.subarray(0, cut)));
      await assert.rejects(conn.read(), (error: unknown) => {
        assert.ok(error instanceof ConnectionError);
        assert.equal(
          error.message,
          `Cannot read frame: connection closed inside a frame (${cut} bytes pending)`,
        );
        return true;
      });
    });
  }
});

Deno.test("FramedConnection.read() surfaces protocol errors", async (t) => {
  await t.step("bad magic", async () => {
    const conn = new FramedConnection(new TrickleStream(new TextEncoder().encode("hello\n")));
    await assert.rejects(conn.read(), (error: unknown) => {
      assert.ok(error instanceof ProtocolError);
      assert.equal(error.code, ErrorCode.MALFORMED);
      return true;
    });
  });
  await t.step("oversized length, before any body byte is read", async () => {
    const stream = new TrickleStream(new Uint8Array([0xfb, 0x04, 0x20, 0x00, 1, 2, 3]));
    const conn = new FramedConnection(stream);
    await assert.rejects(conn.read(), (error: unknown) => {
      assert.ok(error instanceof ProtocolError);
      assert.equal(error.code, ErrorCode.LIMIT_EXCEEDED);
      return true;
    });
    assert.equal(stream.reads, 4, "only the header was read");
  });
  await t.step("a lower maxBodySize", async () => {
    const conn = new FramedConnection(new TrickleStream(encodeMessage(MESSAGES[1]!)), {
      maxBodySize: 100,
    });
    await assert.rejects(conn.read(), /exceeds the maximum of 100/);
  });
  await t.step("a malformed body", async () => {
    const conn = new FramedConnection(
      new TrickleStream(new Uint8Array([0xfb, 0x0e, 0x00, 0x01, 0])),
    );
    await assert.rejects(conn.read(), /1 unexpected bytes after the message/);
  });
});

Deno.test("FramedConnection reads `initial` bytes before the stream", async () => {
  const frames = concatBytes(MESSAGES.slice(0, 3).map(encodeMessage));
  const conn = new FramedConnection(new TrickleStream(frames.subarray(5)), {
    initial: frames.subarray(0, 5),
  });
  const got: Message[] = [];
  for (let msg = await conn.read(); msg !== null; msg = await conn.read()) got.push(msg);
  assert.deepEqual(got, MESSAGES.slice(0, 3));
});

Deno.test("FramedConnection.send() writes every byte through 1-byte writes", async () => {
  const stream = new TrickleStream();
  const conn = new FramedConnection(stream);
  for (const msg of MESSAGES) await conn.send(msg);
  assert.deepEqual(new Uint8Array(stream.output), concatBytes(MESSAGES.map(encodeMessage)));
  assert.equal(stream.writes, stream.output.length);
});

Deno.test("FramedConnection.send() never interleaves concurrent frames", async () => {
  // Every write awaits (a macrotask now and then), so unserialized sends would interleave.
  const stream = new TrickleStream(new Uint8Array(0), 997);
  const conn = new FramedConnection(stream);
  const sent = Array.from({ length: 12 }, (_, i) => MESSAGES[i % MESSAGES.length]!);
  const order: number[] = [];
  await Promise.all(sent.map((msg, i) => conn.send(msg).then(() => order.push(i))));
  assert.deepEqual(decodeAll(new Uint8Array(stream.output)), sent);
  assert.deepEqual(order, sent.map((_, i) => i), "sends complete in call order");
});

Deno.test("FramedConnection.send() accepts pre-encoded frames", async () => {
  const stream = new TrickleStream();
  const conn = new FramedConnection(stream);
  const frame = encodeMessage(MESSAGES[0]!);
  await Promise.all([conn.send(frame), conn.send(MESSAGES[2]!)]);
  assert.deepEqual(decodeAll(new Uint8Array(stream.output)), [MESSAGES[0], MESSAGES[2]]);
});

Deno.test("FramedConnection.send() fails after close, and one failure does not break the queue", async () => {
  let failNext = true;
  const written: number[] = [];
  const stream: ByteStream = {
    read: () => Promise.resolve(null),
    write(p) {
      if (failNext) {
        failNext = false;
        return Promise.reject(new Deno.errors.BrokenPipe("broken pipe"));
      }
      written.push(...p);
      return Promise.resolve(p.length);
    },
    close() {},
  };
  const conn = new FramedConnection(stream);
  const first = conn.send({ type: MessageType.BYE });
  const second = conn.send({ type: MessageType.TOTAL_QUERY });
  await assert.rejects(first, (error: unknown) => {
    assert.ok(error instanceof ConnectionError);
    assert.equal(error.message, "Cannot write: connection lost");
    assert.ok(error.cause instanceof Deno.errors.BrokenPipe);
    return true;
  });
  await second;
  assert.deepEqual(written, [0xfb, 0x0b, 0, 0]);
  conn.close();
  assert.equal(conn.closed, true);
  await assert.rejects(conn.send({ type: MessageType.BYE }), (error: unknown) => {
    assert.ok(error instanceof ConnectionError);
    assert.equal(error.message, "Cannot write: connection is closed");
    return true;
  });
});

for (const [name, timer] of [["globalTimer", globalTimer], ["signalTimer", signalTimer]] as const) {
  Deno.test(`FramedConnection.read() times out an idle peer with ConnectionError (${name})`, async () => {
    const stream = new SilentStream();
    const conn = new FramedConnection(stream, { idleTimeoutMs: 20, timer });
    const started = performance.now();
    await assert.rejects(conn.read(), (error: unknown) => {
      assert.ok(error instanceof ConnectionError);
      assert.equal(error.message, "Cannot read: idle for more than 20 ms");
      assert.ok(error.cause instanceof Deno.errors.TimedOut);
      return true;
    });
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= 15 && elapsed < 500, `timed out after ${elapsed} ms`);
    assert.equal(conn.timedOut, true);
    assert.equal(conn.closed, true);
    assert.equal(stream.closed, true);
  });
}

Deno.test("FramedConnection.read() without idle timeout reports a closed stream as lost", async () => {
  const stream = new SilentStream();
  const conn = new FramedConnection(stream);
  const reading = conn.read();
  setTimeout(() => conn.close(), 5);
  await assert.rejects(reading, (error: unknown) => {
    assert.ok(error instanceof ConnectionError);
    assert.equal(error.message, "Cannot read: connection lost");
    return true;
  });
  assert.equal(conn.timedOut, false);
});

for (const [name, timer] of [["globalTimer", globalTimer], ["signalTimer", signalTimer]] as const) {
  Deno.test(`FramedConnection.read() resets the idle timer on every chunk (${name})`, async () => {
    const frame = encodeMessage({ type: MessageType.DONE, agency: 1, batches: 2 });
    let index = 0;
    const stream: ByteStream = {
      async read(p) {
        await new Promise((resolve) => setTimeout(resolve, 8));
        if (index >= frame.length) return null;
        p[0] = frame[index++]!;
        return 1;
      },
      write: (p) => Promise.resolve(p.length),
      close() {},
    };
    // 10 one-byte reads of 8 ms each: 80 ms in all, but never 40 ms without a byte.
    const conn = new FramedConnection(stream, { idleTimeoutMs: 40, timer });
    assert.deepEqual(await conn.read(), { type: MessageType.DONE, agency: 1, batches: 2 });
    assert.equal(conn.timedOut, false);
  });
}

Deno.test("FramedConnection.expect() checks the reply type", async (t) => {
  const connFor = (...messages: Message[]) =>
    new FramedConnection(new TrickleStream(concatBytes(messages.map(encodeMessage))));
  await t.step("an expected type is returned", async () => {
    const conn = connFor({ type: MessageType.DONE_ACK, pending: 2 });
    assert.deepEqual(await conn.expect(MessageType.WELCOME, MessageType.DONE_ACK), {
      type: MessageType.DONE_ACK,
      pending: 2,
    });
  });
  const cases: [string, Message, ErrorCode, string, number][] = [
    [
      "an ERROR frame becomes a ProtocolError with its code",
      { type: MessageType.ERROR, code: ErrorCode.DRAW_CLOSED, retryAfterMs: 0, message: "late" },
      ErrorCode.DRAW_CLOSED,
      "Peer error: late",
      0,
    ],
    [
      "an ERROR frame's retry hint travels in the ProtocolError",
      {
        type: MessageType.ERROR,
        code: ErrorCode.LIMIT_EXCEEDED,
        retryAfterMs: 12_345,
        message: "Too many connections",
      },
      ErrorCode.LIMIT_EXCEEDED,
      "Peer error: Too many connections",
      12_345,
    ],
    [
      "another type is UNEXPECTED_MESSAGE",
      { type: MessageType.BYE },
      ErrorCode.UNEXPECTED_MESSAGE,
      "Cannot use reply: unexpected message type 0xe",
      0,
    ],
  ];
  for (const [name, reply, code, message, retryAfterMs] of cases) {
    await t.step(name, async () => {
      await assert.rejects(connFor(reply).expect(MessageType.BATCH_ACK), (error: unknown) => {
        assert.ok(error instanceof ProtocolError);
        assert.equal(error.code, code);
        assert.equal(error.message, message);
        assert.equal(error.retryAfterMs, retryAfterMs);
        return true;
      });
    });
  }
  await t.step("EOF is a ConnectionError", async () => {
    await assert.rejects(connFor().expect(MessageType.WELCOME), (error: unknown) => {
      assert.ok(error instanceof ConnectionError);
      assert.equal(error.message, "Cannot read reply: connection closed by peer");
      return true;
    });
  });
});

Deno.test("FramedConnection.close() is idempotent and survives a throwing stream", () => {
  let closes = 0;
  const conn = new FramedConnection({
    read: () => Promise.resolve(null),
    write: (p) => Promise.resolve(p.length),
    close() {
      closes++;
      throw new Deno.errors.BadResource("already closed");
    },
  });
  conn.close();
  conn.close();
  conn[Symbol.dispose]();
  assert.equal(closes, 1);
  assert.equal(conn.closed, true);
});

Deno.test("isConnectionLost() recognizes connection-level failures only", () => {
  assert.equal(isConnectionLost(new ConnectionError("x")), true);
  assert.equal(isConnectionLost(new Deno.errors.ConnectionReset("x")), true);
  assert.equal(isConnectionLost(new Deno.errors.BrokenPipe("x")), true);
  assert.equal(isConnectionLost(new Deno.errors.BadResource("x")), true);
  assert.equal(isConnectionLost(new Deno.errors.Interrupted("x")), true);
  assert.equal(isConnectionLost(new Deno.errors.TimedOut("x")), true);
  assert.equal(isConnectionLost(new ProtocolError(ErrorCode.MALFORMED, "x")), false);
  assert.equal(isConnectionLost(new Error("x")), false);
  assert.equal(isConnectionLost("x"), false);
});

Deno.test("FramedConnection works over a real loopback socket", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepting = listener.accept();
  const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  const server = await accepting;
  const a = new FramedConnection(client);
  const b = new FramedConnection(server);
  try {
    await Promise.all(MESSAGES.map((msg) => a.send(msg)));
    const got: Message[] = [];
    for (let i = 0; i < MESSAGES.length; i++) got.push((await b.read())!);
    assert.deepEqual(got, MESSAGES);
    a.close();
    assert.equal(await b.read(), null);
  } finally {
    a.close();
    b.close();
  }
});
