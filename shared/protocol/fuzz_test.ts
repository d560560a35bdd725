import assert from "node:assert/strict";
import { ErrorCode, ProtocolError } from "../errors.ts";
import { Random } from "../../testing/random.ts";
import { type FuzzFrame, fuzzFrame, MUTATIONS, randomFrame } from "../../testing/fuzz.ts";
import { decodeMessage, encodeMessage } from "./codec.ts";
import { FrameDecoder } from "./frame_decoder.ts";
import { HEADER_SIZE, MAX_BODY_SIZE, MAX_FRAME_SIZE, type Message } from "./messages.ts";
import { concatBytes } from "../bytes.ts";

/** Change it to explore other cases; a failure names the case to replay. */
const SEED = 0x7c0_2024;
const MIN_FRAMES = 200_000;
/** Share of cases decoded a second time in random chunks (1 to 3000 bytes). */
const SPLIT_SHARE = 0.3;
const ALLOWED_CODES: ReadonlySet<number> = new Set([
  ErrorCode.MALFORMED,
  // A BATCH line that parses as CSV but not as a bet (a damaged field count or number).
  ErrorCode.INVALID_BET,
  ErrorCode.UNEXPECTED_MESSAGE,
  ErrorCode.LIMIT_EXCEEDED,
]);

/** What a connection would see: the messages decoded, then an error or a wait. */
interface Outcome {
  readonly messages: Message[];
  /** The first protocol error (the connection ends there). */
  readonly error?: ProtocolError;
  /** Stream bytes handed to the decoder when it stopped. */
  readonly fed: number;
  /** Bytes held back waiting for the rest of a frame. */
  readonly buffered: number;
}

/**
 * Feeds `stream` the way `FramedConnection.read()` does (into `space()`, then `commit()`),
 * in chunks of `chunk()` bytes, decoding every frame; stops at the first error.
 */
function decodeStream(stream: Uint8Array, chunk: () => number, maxBodySize: number): Outcome {
  // A decoder left empty by a clean stream is as good as new; reusing it saves allocations.
  const decoder = maxBodySize === MAX_BODY_SIZE && spare
    ? spare
    : new FrameDecoder({ maxBodySize, bufferSize: 0 });
  spare = undefined;
  const messages: Message[] = [];
  let fed = 0;
  try {
    while (fed < stream.length) {
      const space = decoder.space();
      assert.ok(space.length >= 1, "the decoder always has room after draining");
      const n = Math.min(space.length, chunk(), stream.length - fed);
      space.set(stream.subarray(fed, fed + n));
      decoder.commit(n);
      fed += n;
      for (let frame = decoder.next(); frame; frame = decoder.next()) {
        messages.push(decodeMessage(frame.type, frame.body));
      }
      assert.ok(
        decoder.buffered < HEADER_SIZE + maxBodySize,
        `after draining, less than a frame is held (${decoder.buffered} bytes)`,
      );
    }
  } catch (error) {
    if (!(error instanceof ProtocolError)) throw error;
    return { messages, error, fed, buffered: decoder.buffered };
  }
  if (decoder.buffered === 0 && maxBodySize === MAX_BODY_SIZE) spare = decoder;
  return { messages, fed, buffered: decoder.buffered };
}

let spare: FrameDecoder | undefined;

/** `assert.deepEqual` for plain messages, with a cheap comparison first. */
function sameMessages(actual: unknown, expected: unknown, message: string): void {
  if (JSON.stringify(actual) !== JSON.stringify(expected)) {
    assert.deepEqual(actual, expected, message);
  }
}

function hex(bytes: Uint8Array): string {
  const head = [...bytes.subarray(0, 48)].map((b) => b.toString(16).padStart(2, "0")).join("");
  return bytes.length > 48 ? `${head}… (${bytes.length} bytes)` : head;
}

/** One fuzz case: 0–2 valid frames, then a fuzz frame, as one connection's bytes. */
interface Case {
  readonly prefix: Message[];
  readonly stream: Uint8Array;
  /** Where the fuzz frame starts in `stream`. */
  readonly start: number;
  readonly fuzz: FuzzFrame;
}

function makeCase(random: Random, maxBody: number): Case {
  const prefix: Message[] = [];
  const parts: Uint8Array[] = [];
  for (let i = random.int(0, 2); i > 0; i--) {
    const { message, bytes } = randomFrame(random, { maxBody });
    prefix.push(message);
    parts.push(bytes);
  }
  const start = parts.reduce((n, p) => n + p.length, 0);
  const fuzz = fuzzFrame(random, maxBody);
  parts.push(fuzz.bytes);
  return { prefix, stream: concatBytes(parts), start, fuzz };
}

/** Checks one case against its expectation and the properties every outcome must have. */
function checkCase(c: Case, random: Random, maxBody: number): Outcome {
  const whole = decodeStream(c.stream, () => c.stream.length, maxBody);
  const context = c.fuzz.mutation;

  if (random.chance(SPLIT_SHARE)) {
    // The chunking never changes what is decoded.
    const split = decodeStream(
      c.stream,
      () => (random.chance(0.5) ? random.int(1, 8) : random.int(1, 3000)),
      maxBody,
    );
    sameMessages(
      split.messages,
      whole.messages,
      `same messages whatever the chunking; ${context}`,
    );
    assert.equal(
      split.error?.code,
      whole.error?.code,
      `same error whatever the chunking; ${context}`,
    );
    if (whole.error === undefined) assert.equal(split.buffered, whole.buffered, context);
  }

  // Errors are protocol errors with a known code and a message.
  if (whole.error) {
    assert.ok(
      ALLOWED_CODES.has(whole.error.code),
      `unexpected code ${whole.error.code}; ${context}`,
    );
    assert.ok(whole.error.message.length > 0, context);
  }

  // The valid frames before the fuzz frame always come through.
  assert.ok(whole.messages.length >= c.prefix.length, `prefix decoded; ${context}`);
  sameMessages(whole.messages.slice(0, c.prefix.length), c.prefix, `prefix intact; ${context}`);

  // Whatever decodes is a well-formed message: encoding it and decoding again is stable.
  for (const message of whole.messages) {
    const again = encodeMessage(message);
    assert.ok(again.length <= MAX_FRAME_SIZE, context);
    sameMessages(decodeMessage(again[1]!, again.subarray(HEADER_SIZE)), message, context);
  }

  const rest = whole.messages.slice(c.prefix.length);
  const expect = c.fuzz.expect;
  switch (expect.kind) {
    case "message":
      sameMessages(rest[0], expect.message, `the valid frame decodes; ${context}`);
      if (c.fuzz.mutation === "none") {
        assert.equal(rest.length, 1, context);
        assert.equal(whole.error, undefined, context);
        assert.equal(whole.buffered, 0, context);
        assert.deepEqual(
          encodeMessage(expect.message),
          c.fuzz.bytes,
          `canonical bytes; ${context}`,
        );
      }
      break;
    case "incomplete":
      assert.equal(whole.error, undefined, `a cut frame is not an error yet; ${context}`);
      assert.equal(rest.length, 0, context);
      assert.equal(whole.buffered, c.fuzz.bytes.length, `the cut frame waits; ${context}`);
      break;
    case "error":
      assert.equal(rest.length, 0, `nothing decodes from a broken frame; ${context}`);
      assert.equal(whole.error?.code, expect.code, `error ${expect.code}; ${context}`);
      break;
    case "any":
      break;
  }

  if (c.fuzz.mutation === "oversized_length") {
    // Rejected as soon as the header is in: the body is never waited for.
    const header = decodeStream(c.stream.subarray(0, c.start + HEADER_SIZE), () => 1, maxBody);
    assert.equal(
      header.error?.code,
      ErrorCode.LIMIT_EXCEEDED,
      `rejected from the header; ${context}`,
    );
  }
  return whole;
}

Deno.test("FrameDecoder and decodeMessage() survive 200,000 seeded random and mutated frames", () => {
  const byMutation = new Map<string, number>();
  const byCode = new Map<number, number>();
  let frames = 0;
  let cases = 0;
  while (frames < MIN_FRAMES) {
    const where = `case ${cases} (seed ${SEED})`;
    const random = new Random(SEED ^ Math.imul(cases + 1, 0x9e3779b9));
    // One case in five uses a lower frame limit, as SERVER_MAX_FRAME_SIZE allows.
    const maxBody = random.chance(0.2) ? random.int(200, MAX_BODY_SIZE) : MAX_BODY_SIZE;
    const c = makeCase(random, maxBody);
    let outcome: Outcome;
    try {
      outcome = checkCase(c, random, maxBody);
    } catch (error) {
      throw new Error(`Fuzz ${where} failed on ${hex(c.stream)}: ${error}`, { cause: error });
    }
    frames += c.prefix.length + 1;
    cases++;
    byMutation.set(c.fuzz.mutation, (byMutation.get(c.fuzz.mutation) ?? 0) + 1);
    if (outcome.error) byCode.set(outcome.error.code, (byCode.get(outcome.error.code) ?? 0) + 1);
  }
  assert.ok(frames >= MIN_FRAMES);
  for (const mutation of MUTATIONS) {
    assert.ok((byMutation.get(mutation) ?? 0) > 1000, `${mutation} was exercised`);
  }
  for (const code of ALLOWED_CODES) {
    // Damage rarely leaves a BATCH line valid CSV but not a bet; codec_test covers those.
    const least = code === ErrorCode.INVALID_BET ? 1 : 100;
    assert.ok((byCode.get(code) ?? 0) >= least, `code ${code} seen`);
  }
});

Deno.test("decodeMessage() rejects a huge count in a tiny body as MALFORMED", () => {
  // BATCH: agency 1, seq 0, count 65535 and no bets; WINNERS: count 65535 and no documents.
  const batch = new Uint8Array([0, 1, 0, 0, 0, 0, 0xff, 0xff]);
  const winners = new Uint8Array([0, 0, 0, 1, 1, 0xff, 0xff]);
  for (const [type, body] of [[0x04, batch], [0x09, winners]] as const) {
    assert.throws(() => decodeMessage(type, body), (error: unknown) => {
      assert.ok(error instanceof ProtocolError);
      assert.equal(error.code, ErrorCode.MALFORMED);
      return true;
    });
  }
});

Deno.test("FrameDecoder rejects every impossible length from the header alone", () => {
  for (let length = MAX_BODY_SIZE + 1; length <= 0xffff; length++) {
    const decoder = new FrameDecoder({ bufferSize: 0 });
    decoder.push(new Uint8Array([0xfb, 0x04, length >> 8, length & 0xff]));
    assert.throws(() => decoder.next(), (error: unknown) => {
      assert.ok(error instanceof ProtocolError);
      assert.equal(error.code, ErrorCode.LIMIT_EXCEEDED);
      return true;
    });
  }
});

Deno.test("FrameDecoder rejects every first byte but the magic at once", () => {
  for (let byte = 0; byte <= 0xff; byte++) {
    const decoder = new FrameDecoder();
    decoder.push(new Uint8Array([byte]));
    if (byte === 0xfb) {
      assert.equal(decoder.next(), undefined);
      continue;
    }
    assert.throws(() => decoder.next(), (error: unknown) => {
      assert.ok(error instanceof ProtocolError);
      assert.equal(error.code, ErrorCode.MALFORMED);
      return true;
    });
  }
});
