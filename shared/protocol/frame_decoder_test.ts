import assert from "node:assert/strict";
import { COURSE_BET } from "../../testing/course_data.ts";
import { seeded } from "../../testing/random.ts";
import { ErrorCode, ProtocolError } from "../errors.ts";
import { decodeMessage, encodeMessage } from "./codec.ts";
import { FrameDecoder } from "./frame_decoder.ts";
import {
  HEADER_SIZE,
  MAX_BODY_SIZE,
  MAX_FRAME_SIZE,
  type Message,
  MessageType,
} from "./messages.ts";
import { concatBytes } from "../bytes.ts";

const BET = COURSE_BET;

/** A stream of frames of many sizes, from a bare header to a full 8192-byte frame. */
const MESSAGES: Message[] = [
  { type: MessageType.HELLO, agency: 1, secret: "" },
  { type: MessageType.TOTAL_QUERY },
  { type: MessageType.BATCH, agency: 1, seq: 0, bets: Array.from({ length: 100 }, () => BET) },
  { type: MessageType.ERROR, code: 1, retryAfterMs: 0, message: "e".repeat(MAX_BODY_SIZE - 8) },
  { type: MessageType.BYE },
  { type: MessageType.WINNERS, total: 2, last: true, documents: ["1", "22"] },
  { type: MessageType.BATCH, agency: 2, seq: 1, bets: [BET] },
  { type: MessageType.DONE, agency: 2, batches: 2 },
];

const FRAMES = MESSAGES.map(encodeMessage);
const STREAM = concatBytes(FRAMES);

interface Collected {
  readonly type: number;
  readonly body: Uint8Array;
}

/** Feeds `chunks` one at a time, draining frames (copied) after each push. */
function feed(decoder: FrameDecoder, chunks: Iterable<Uint8Array>): Collected[] {
  const out: Collected[] = [];
  for (const chunk of chunks) {
    decoder.push(chunk);
    for (let frame = decoder.next(); frame; frame = decoder.next()) {
      out.push({ type: frame.type, body: frame.body.slice() });
    }
    assert.ok(decoder.buffered < MAX_FRAME_SIZE, "after draining, less than a frame is held");
  }
  return out;
}

function* split(bytes: Uint8Array, sizes: () => number): Generator<Uint8Array> {
  for (let offset = 0; offset < bytes.length;) {
    const n = Math.max(1, Math.min(sizes(), bytes.length - offset));
    yield bytes.subarray(offset, offset + n);
    offset += n;
  }
}

function expected(): Collected[] {
  return FRAMES.map((frame) => ({ type: frame[1]!, body: frame.subarray(HEADER_SIZE) }));
}

Deno.test("FrameDecoder.next() yields the same frames whatever the chunking", async (t) => {
  await t.step("whole stream in one push", () => {
    const decoder = new FrameDecoder();
    assert.deepEqual(feed(decoder, [STREAM]), expected());
    assert.equal(decoder.buffered, 0);
  });
  await t.step("one byte at a time", () => {
    const decoder = new FrameDecoder();
    assert.deepEqual(feed(decoder, split(STREAM, () => 1)), expected());
    assert.equal(decoder.buffered, 0);
  });
  await t.step("frame by frame", () => {
    assert.deepEqual(feed(new FrameDecoder(), FRAMES), expected());
  });
  for (const seed of [1, 2, 3, 42, 1234, 99999]) {
    await t.step(`random splits, seed ${seed}`, () => {
      const random = seeded(seed);
      const decoder = new FrameDecoder();
      assert.deepEqual(
        feed(decoder, split(STREAM, () => 1 + Math.floor(random() * 3000))),
        expected(),
      );
      assert.equal(decoder.buffered, 0);
    });
  }
  await t.step("the frames decode back to the messages", () => {
    const frames = feed(new FrameDecoder(), split(STREAM, seeded(7)));
    assert.deepEqual(frames.map((f) => decodeMessage(f.type, f.body)), MESSAGES);
  });
});

Deno.test("FrameDecoder.next() returns undefined until a frame is whole", () => {
  const decoder = new FrameDecoder();
  const frame = FRAMES[6]!;
  assert.equal(decoder.next(), undefined);
  for (let i = 0; i < frame.length - 1; i++) {
    decoder.push(frame.subarray(i, i + 1));
    assert.equal(decoder.next(), undefined);
    assert.equal(decoder.buffered, i + 1);
  }
  decoder.push(frame.subarray(frame.length - 1));
  const got = decoder.next();
  assert.ok(got);
  assert.equal(got.type, MessageType.BATCH);
  assert.deepEqual(got.body, frame.subarray(HEADER_SIZE));
  assert.equal(decoder.buffered, 0);
});

Deno.test("FrameDecoder.next() rejects an oversized length as soon as the header is in", async (t) => {
  await t.step("8189 with the default limit", () => {
    const decoder = new FrameDecoder();
    decoder.push(new Uint8Array([0xfb, 0x04, 0x1f]));
    assert.equal(decoder.next(), undefined, "three header bytes are not enough to judge");
    decoder.push(new Uint8Array([0xfd]));
    assert.throws(() => decoder.next(), (error: unknown) => {
      assert.ok(error instanceof ProtocolError);
      assert.equal(error.code, ErrorCode.LIMIT_EXCEEDED);
      assert.equal(error.message, "Cannot decode frame: length 8189 exceeds the maximum of 8188");
      return true;
    });
  });
  await t.step("8188 is accepted and waits for its body", () => {
    const decoder = new FrameDecoder();
    decoder.push(new Uint8Array([0xfb, 0x0d, 0x1f, 0xfc]));
    assert.equal(decoder.next(), undefined);
  });
  await t.step("65535", () => {
    const decoder = new FrameDecoder();
    decoder.push(new Uint8Array([0xfb, 0x04, 0xff, 0xff]));
    assert.throws(() => decoder.next(), /length 65535 exceeds the maximum of 8188/);
  });
  await t.step("a lower maxBodySize", () => {
    const decoder = new FrameDecoder({ maxBodySize: 100 });
    decoder.push(new Uint8Array([0xfb, 0x04, 0x00, 0x65]));
    assert.throws(() => decoder.next(), (error: unknown) => {
      assert.ok(error instanceof ProtocolError);
      assert.equal(error.code, ErrorCode.LIMIT_EXCEEDED);
      assert.equal(error.message, "Cannot decode frame: length 101 exceeds the maximum of 100");
      return true;
    });
    const ok = new FrameDecoder({ maxBodySize: 100 });
    ok.push(new Uint8Array([0xfb, 0x04, 0x00, 0x64]));
    assert.equal(ok.next(), undefined);
  });
  await t.step("maxBodySize cannot raise the protocol's limit", () => {
    const decoder = new FrameDecoder({ maxBodySize: 100_000 });
    decoder.push(new Uint8Array([0xfb, 0x04, 0x20, 0x00]));
    assert.throws(() => decoder.next(), /length 8192 exceeds the maximum of 8188/);
  });
});

Deno.test("FrameDecoder.next() rejects a bad magic byte at once", async (t) => {
  for (const first of [0x00, 0x41, 0x0a, 0xfa, 0xff]) {
    await t.step(`0x${first.toString(16)}`, () => {
      const decoder = new FrameDecoder();
      decoder.push(new Uint8Array([first]));
      assert.throws(() => decoder.next(), (error: unknown) => {
        assert.ok(error instanceof ProtocolError);
        assert.equal(error.code, ErrorCode.MALFORMED);
        assert.equal(
          error.message,
          `Cannot decode frame: first byte 0x${first.toString(16)} is not 0xfb`,
        );
        return true;
      });
    });
  }
  await t.step("after a good frame", () => {
    const decoder = new FrameDecoder();
    decoder.push(concatBytes([FRAMES[1]!, new Uint8Array([0x47, 0x45, 0x54])]));
    assert.equal(decoder.next()?.type, MessageType.TOTAL_QUERY);
    assert.throws(() => decoder.next(), ProtocolError);
  });
});

Deno.test("FrameDecoder keeps memory bounded", async (t) => {
  await t.step("a long stream through a small buffer never holds more than a frame", () => {
    const many = concatBytes(Array.from({ length: 200 }, (_, i) => FRAMES[i % FRAMES.length]!));
    const decoder = new FrameDecoder({ bufferSize: 1 });
    const random = seeded(5);
    let frames = 0;
    for (const chunk of split(many, () => 1 + Math.floor(random() * MAX_FRAME_SIZE))) {
      decoder.push(chunk);
      assert.ok(decoder.buffered <= 2 * MAX_FRAME_SIZE, `buffered ${decoder.buffered}`);
      while (decoder.next()) frames++;
      assert.ok(decoder.buffered < MAX_FRAME_SIZE);
    }
    assert.equal(frames, 200);
    assert.equal(decoder.buffered, 0);
  });
  await t.step("space() and commit() read in place", () => {
    const decoder = new FrameDecoder();
    let offset = 0;
    let frames = 0;
    while (offset < STREAM.length) {
      const space = decoder.space();
      assert.ok(space.length > 0);
      const n = Math.min(space.length, 777, STREAM.length - offset);
      space.set(STREAM.subarray(offset, offset + n));
      decoder.commit(n);
      offset += n;
      while (decoder.next()) frames++;
    }
    assert.equal(frames, FRAMES.length);
  });
  await t.step("the buffer starts at two frames and grows once a read fills its space", () => {
    const decoder = new FrameDecoder();
    assert.equal(decoder.bufferLength, 2 * MAX_FRAME_SIZE);
    decoder.push(FRAMES[0]!);
    while (decoder.next());
    assert.equal(decoder.bufferLength, 2 * MAX_FRAME_SIZE, "a short read keeps the small buffer");
    const space = decoder.space();
    const many = concatBytes(Array.from({ length: 8 }, () => STREAM));
    assert.ok(many.length > space.length);
    space.set(many.subarray(0, space.length));
    decoder.commit(space.length);
    assert.equal(decoder.bufferLength, 65536, "a full read grows it");
    let frames = 0;
    while (decoder.next()) frames++;
    assert.ok(frames > 0, "the bytes read before growing are kept");
  });
  await t.step("a push larger than the buffer without next() is a RangeError", () => {
    const decoder = new FrameDecoder({ bufferSize: 16_384 });
    const big = concatBytes(Array.from({ length: 4 }, () => FRAMES[3]!));
    assert.throws(() => decoder.push(big), (error: unknown) => {
      assert.ok(error instanceof RangeError);
      assert.equal(error.message, "Cannot buffer chunk: call next() between pushes");
      return true;
    });
  });
});
