import assert from "node:assert/strict";
import type { BetFields } from "../bet.ts";
import { COURSE_BET } from "../../testing/course_data.ts";
import { ErrorCode, InvalidBetError, ProtocolError } from "../errors.ts";
import { decodeMessage, encodeBatchHeader, encodeMessage, readBatchHeader } from "./codec.ts";
import {
  BATCH_BODY,
  BATCH_HEADER_SIZE,
  HEADER_SIZE,
  MAGIC,
  MAX_BODY_SIZE,
  MAX_FRAME_SIZE,
  MAX_LISTED_AGENCIES,
  type Message,
  MessageType,
} from "./messages.ts";

const BET: BetFields = COURSE_BET;

const ACCENTED: BetFields = {
  firstName: "José María",
  lastName: 'Núñez, "Pepe"',
  document: "1",
  birthdate: "1900-01-01",
  number: 0,
};

/** One example of every message type, with edge values. */
const EXAMPLES: Message[] = [
  { type: MessageType.HELLO, agency: 3, secret: "s3cr3t" },
  { type: MessageType.HELLO, agency: 65535, secret: "" },
  { type: MessageType.WELCOME, nextSeq: 0, done: false },
  { type: MessageType.WELCOME, nextSeq: 0xffffffff, done: true },
  { type: MessageType.BET, seq: 7, bet: BET },
  { type: MessageType.BATCH, agency: 1, seq: 0, bets: [ACCENTED] },
  { type: MessageType.BATCH, agency: 5, seq: 123456, bets: [BET, ACCENTED, BET] },
  { type: MessageType.BATCH_ACK, seq: 4, status: 0, count: 100, reason: "" },
  {
    type: MessageType.BATCH_ACK,
    seq: 5,
    status: ErrorCode.INVALID_BET,
    count: 2,
    reason: "Invalid bet: número 10000 is outside 0-9999",
  },
  { type: MessageType.DONE, agency: 2, batches: 812 },
  { type: MessageType.DONE_ACK, pending: 4 },
  { type: MessageType.WINNERS_QUERY, agency: 4 },
  { type: MessageType.WINNERS, total: 0, last: true, documents: [] },
  { type: MessageType.WINNERS, total: 5, last: false, documents: ["30904465", "1", "12345678"] },
  { type: MessageType.NOT_READY, pending: 2, retryAfterMs: 100, pendingAgencies: [3, 5] },
  { type: MessageType.NOT_READY, pending: 9000, retryAfterMs: 0, pendingAgencies: [] },
  { type: MessageType.TOTAL_QUERY },
  { type: MessageType.TOTAL, winners: 42, pending: 0, retryAfterMs: 0 },
  { type: MessageType.TOTAL, winners: 3, pending: 2, retryAfterMs: 250 },
  {
    type: MessageType.ERROR,
    code: ErrorCode.UNAUTHORIZED,
    retryAfterMs: 0,
    message: "Wrong secret for agency 3",
  },
  {
    type: MessageType.ERROR,
    code: ErrorCode.LIMIT_EXCEEDED,
    retryAfterMs: 27_500,
    message: "Too many connections",
  },
  { type: MessageType.BYE },
];

const TYPE_NAMES = new Map<number, string>(
  Object.entries(MessageType).map(([name, code]) => [code, name]),
);

function headerOf(frame: Uint8Array): { magic: number; type: number; length: number } {
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  return { magic: view.getUint8(0), type: view.getUint8(1), length: view.getUint16(2) };
}

function roundTrip(msg: Message): Message {
  const frame = encodeMessage(msg);
  const { type } = headerOf(frame);
  return decodeMessage(type, frame.subarray(HEADER_SIZE));
}

function assertProtocolError(fn: () => unknown, code: ErrorCode, message: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof ProtocolError, `expected ProtocolError, got ${error}`);
    assert.equal(error.code, code);
    assert.match(error.message, message);
    return true;
  });
}

Deno.test("encodeMessage() and decodeMessage() round-trip every message type", async (t) => {
  const covered = new Set<number>();
  for (const msg of EXAMPLES) {
    covered.add(msg.type);
    await t.step(`${TYPE_NAMES.get(msg.type)} ${JSON.stringify(msg).slice(0, 60)}`, () => {
      const frame = encodeMessage(msg);
      const header = headerOf(frame);
      assert.equal(header.magic, MAGIC);
      assert.equal(header.type, msg.type);
      assert.equal(header.length, frame.length - HEADER_SIZE);
      assert.deepEqual(roundTrip(msg), msg);
    });
  }
  assert.deepEqual([...covered].sort((a, b) => a - b), Object.values(MessageType));
});

Deno.test("encodeMessage() writes the documented bytes", async (t) => {
  await t.step("TOTAL_QUERY is a bare header", () => {
    assert.deepEqual(
      encodeMessage({ type: MessageType.TOTAL_QUERY }),
      new Uint8Array([0xfb, 0x0b, 0x00, 0x00]),
    );
  });
  await t.step("HELLO: agency u16, secret str8", () => {
    assert.deepEqual(
      encodeMessage({ type: MessageType.HELLO, agency: 0x0102, secret: "ab" }),
      new Uint8Array([0xfb, 0x01, 0x00, 0x05, 0x01, 0x02, 0x02, 0x61, 0x62]),
    );
  });
  await t.step("BET: seq u32, four str8 fields, number u16", () => {
    const frame = encodeMessage({
      type: MessageType.BET,
      seq: 0x01020304,
      bet: {
        firstName: "A",
        lastName: "Bc",
        document: "123",
        birthdate: "2000-01-02",
        number: 7574,
      },
    });
    const text = (s: string) => [s.length, ...new TextEncoder().encode(s)];
    const body = [
      0x01,
      0x02,
      0x03,
      0x04,
      ...text("A"),
      ...text("Bc"),
      ...text("123"),
      ...text("2000-01-02"),
      0x1d,
      0x96,
    ];
    assert.deepEqual(frame, new Uint8Array([0xfb, 0x03, 0x00, body.length, ...body]));
  });
  await t.step("BATCH: agency u16, seq u32, count u16, then one CSV line per bet", () => {
    const frame = encodeMessage({
      type: MessageType.BATCH,
      agency: 0x0102,
      seq: 0x03040506,
      bets: [BET, ACCENTED],
    });
    const lines = new TextEncoder().encode(
      'Santiago Lionel,Lorca,30904465,1999-03-17,7574\nJosé María,"Núñez, ""Pepe""",1,1900-01-01,0\n',
    );
    const body = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x00, 0x02, ...lines];
    assert.deepEqual(
      frame,
      new Uint8Array([0xfb, 0x04, body.length >> 8, body.length & 0xff, ...body]),
    );
  });
  await t.step("encodeBatchHeader() frames lines already in place the same way", () => {
    const batch = { type: MessageType.BATCH, agency: 7, seq: 300, bets: [BET, BET] } as const;
    const expected = encodeMessage(batch);
    const out = new Uint8Array(expected.length + 5);
    out.set(expected.subarray(BATCH_HEADER_SIZE), 5 + BATCH_HEADER_SIZE);
    const end = encodeBatchHeader(out, 5, { agency: 7, seq: 300, count: 2 }, expected.length - 12);
    assert.equal(end, out.length);
    assert.deepEqual(out.subarray(5), expected);
    assert.throws(
      () => encodeBatchHeader(out, 0, { agency: 7, seq: 0, count: 1 }, MAX_FRAME_SIZE),
      RangeError,
    );
  });
  await t.step("BATCH_ACK: seq u32, status u16, count u16, reason str16", () => {
    assert.deepEqual(
      encodeMessage({ type: MessageType.BATCH_ACK, seq: 1, status: 3, count: 258, reason: "no" }),
      new Uint8Array([
        0xfb,
        0x05,
        0x00,
        0x0c,
        0x00,
        0x00,
        0x00,
        0x01,
        0x00,
        0x03,
        0x01,
        0x02,
        0x00,
        0x02,
        0x6e,
        0x6f,
      ]),
    );
  });
  await t.step("NOT_READY: pending u16, retry u32, count u16, agency u16 × count", () => {
    assert.deepEqual(
      encodeMessage({
        type: MessageType.NOT_READY,
        pending: 3,
        retryAfterMs: 0x01020304,
        pendingAgencies: [2, 0x0105],
      }),
      new Uint8Array([0xfb, 0x0a, 0x00, 0x0c, 0, 3, 1, 2, 3, 4, 0, 2, 0, 2, 1, 5]),
    );
  });
  await t.step("NOT_READY lists as many agencies as fit in a frame", () => {
    const pendingAgencies = Array.from({ length: MAX_LISTED_AGENCIES }, (_, i) => i + 1);
    const message = {
      type: MessageType.NOT_READY,
      pending: 65535,
      retryAfterMs: 0,
      pendingAgencies,
    };
    assert.equal(encodeMessage(message).length, MAX_FRAME_SIZE);
    assert.deepEqual(roundTrip(message), message);
  });
  await t.step("a body over 255 bytes has a big-endian length", () => {
    const frame = encodeMessage({
      type: MessageType.ERROR,
      code: 1,
      retryAfterMs: 0x01020304,
      message: "x".repeat(300),
    });
    assert.deepEqual(
      [...frame.subarray(0, 12)],
      [0xfb, 0x0d, 0x01, 0x34, 0x00, 0x01, 0x01, 0x02, 0x03, 0x04, 0x01, 0x2c],
    );
    assert.equal(frame.length, 4 + 308);
  });
  await t.step("str8 counts UTF-8 bytes, not characters", () => {
    const frame = encodeMessage({ type: MessageType.HELLO, agency: 1, secret: "ñ€" });
    assert.deepEqual([...frame.subarray(6)], [5, 0xc3, 0xb1, 0xe2, 0x82, 0xac]);
  });
});

Deno.test("encodeMessage() refuses a frame over 8192 bytes", async (t) => {
  await t.step("a frame of exactly 8192 bytes is fine", () => {
    const message = "x".repeat(MAX_FRAME_SIZE - HEADER_SIZE - 8);
    const frame = encodeMessage({ type: MessageType.ERROR, code: 1, retryAfterMs: 0, message });
    assert.equal(frame.length, MAX_FRAME_SIZE);
    assert.equal(headerOf(frame).length, MAX_BODY_SIZE);
    assert.deepEqual(roundTrip({ type: MessageType.ERROR, code: 1, retryAfterMs: 0, message }), {
      type: MessageType.ERROR,
      code: 1,
      retryAfterMs: 0,
      message,
    });
  });
  await t.step("one byte more is a RangeError", () => {
    const message = "x".repeat(MAX_FRAME_SIZE - HEADER_SIZE - 8 + 1);
    assert.throws(
      () => encodeMessage({ type: MessageType.ERROR, code: 1, retryAfterMs: 0, message }),
      (error: unknown) => {
        assert.ok(error instanceof RangeError);
        assert.equal(error.message, "Cannot encode frame: it would exceed 8192 bytes");
        return true;
      },
    );
  });
  await t.step("a batch of no bets is a RangeError", () => {
    assert.throws(
      () => encodeMessage({ type: MessageType.BATCH, agency: 1, seq: 0, bets: [] }),
      /Cannot encode batch: it holds no bets/,
    );
  });
  await t.step("a batch of too many bets is a RangeError", () => {
    const bets = Array.from({ length: 200 }, () => BET);
    assert.throws(
      () => encodeMessage({ type: MessageType.BATCH, agency: 1, seq: 0, bets }),
      RangeError,
    );
  });
  await t.step("a multi-byte character straddling the end is a RangeError", () => {
    const message = "x".repeat(MAX_FRAME_SIZE - HEADER_SIZE - 8 - 1) + "ñ";
    assert.throws(
      () => encodeMessage({ type: MessageType.ERROR, code: 1, retryAfterMs: 0, message }),
      RangeError,
    );
  });
  await t.step("too many winners is a RangeError", () => {
    const documents = Array.from({ length: 1000 }, () => "12345678");
    assert.throws(
      () => encodeMessage({ type: MessageType.WINNERS, total: 1000, last: true, documents }),
      RangeError,
    );
  });
});

Deno.test("encodeMessage() refuses a str8 over 255 bytes", async (t) => {
  await t.step("255 bytes fit", () => {
    const secret = "s".repeat(255);
    assert.deepEqual(roundTrip({ type: MessageType.HELLO, agency: 1, secret }), {
      type: MessageType.HELLO,
      agency: 1,
      secret,
    });
  });
  await t.step("256 ASCII bytes", () => {
    assert.throws(
      () => encodeMessage({ type: MessageType.HELLO, agency: 1, secret: "s".repeat(256) }),
      (error: unknown) => {
        assert.ok(error instanceof RangeError);
        assert.equal(
          error.message,
          "Cannot encode text: 256 bytes exceed the maximum of 255",
        );
        return true;
      },
    );
  });
  await t.step("128 two-byte characters (256 bytes)", () => {
    assert.throws(
      () =>
        encodeMessage({
          type: MessageType.BET,
          seq: 0,
          bet: { ...BET, lastName: "ñ".repeat(128) },
        }),
      RangeError,
    );
  });
});

Deno.test("decodeMessage() rejects malformed bodies with ProtocolError", async (t) => {
  const bodyOf = (msg: Message) => encodeMessage(msg).subarray(HEADER_SIZE);
  await t.step("every truncation of every example is MALFORMED", () => {
    for (const msg of EXAMPLES) {
      const body = bodyOf(msg);
      for (let cut = 0; cut < body.length; cut++) {
        // A BATCH cut inside its lines loses a line ending or a line, not a field.
        const inLines = msg.type === MessageType.BATCH && cut >= 8;
        assertProtocolError(
          () => decodeMessage(msg.type, body.subarray(0, cut)),
          ErrorCode.MALFORMED,
          inLines
            ? /^Cannot decode batch: (its last line does not end in a line break|its header says \d+ bets, its body holds \d+ lines?)$/
            : /^Cannot decode .+: body ends at byte \d+, needed \d+$/,
        );
      }
    }
  });
  await t.step("trailing garbage is MALFORMED", () => {
    for (const msg of EXAMPLES) {
      const body = bodyOf(msg);
      const longer = new Uint8Array(body.length + 3);
      longer.set(body);
      assertProtocolError(
        () => decodeMessage(msg.type, longer),
        ErrorCode.MALFORMED,
        msg.type === MessageType.BATCH
          ? /^Cannot decode batch: its last line does not end in a line break$/
          : /^Cannot decode message type 0x[0-9a-f]{2}: 3 unexpected bytes after the message$/,
      );
    }
  });
  await t.step("a batch whose count promises more bets than it holds", () => {
    const body = bodyOf({ type: MessageType.BATCH, agency: 1, seq: 0, bets: [BET] });
    body[7] = 2;
    assertProtocolError(
      () => decodeMessage(MessageType.BATCH, body),
      ErrorCode.MALFORMED,
      /^Cannot decode batch: its header says 2 bets, its body holds 1 line$/,
    );
  });
  await t.step("a batch line without its line break", () => {
    const body = bodyOf({ type: MessageType.BATCH, agency: 1, seq: 0, bets: [BET] });
    assertProtocolError(
      () => decodeMessage(MessageType.BATCH, body.subarray(0, body.length - 1)),
      ErrorCode.MALFORMED,
      /^Cannot decode batch: its last line does not end in a line break$/,
    );
  });
  await t.step("invalid UTF-8 in a str8", () => {
    const body = new Uint8Array([0x00, 0x01, 0x02, 0xc3, 0x28]);
    assertProtocolError(
      () => decodeMessage(MessageType.HELLO, body),
      ErrorCode.MALFORMED,
      /^Cannot decode hello secret: invalid UTF-8$/,
    );
  });
  await t.step("invalid UTF-8 in a str16", () => {
    const body = new Uint8Array([0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xff]);
    assertProtocolError(
      () => decodeMessage(MessageType.ERROR, body),
      ErrorCode.MALFORMED,
      /^Cannot decode error message: invalid UTF-8$/,
    );
  });
  await t.step("an unknown type is UNEXPECTED_MESSAGE", () => {
    for (const type of [0x00, 0x0f, 0x7f, 0xff]) {
      assertProtocolError(
        () => decodeMessage(type, new Uint8Array(0)),
        ErrorCode.UNEXPECTED_MESSAGE,
        new RegExp(
          `^Cannot decode frame: unknown message type 0x${type.toString(16).padStart(2, "0")}$`,
        ),
      );
    }
  });
  await t.step("a boolean byte other than 1 reads as false", () => {
    const body = new Uint8Array([0, 0, 0, 1, 2]);
    assert.deepEqual(decodeMessage(MessageType.WELCOME, body), {
      type: MessageType.WELCOME,
      nextSeq: 1,
      done: false,
    });
  });
});

Deno.test("decodeMessage() reads a BATCH's CSV lines", async (t) => {
  const header = [0x00, 0x03, 0x00, 0x00, 0x00, 0x09];
  const batchOf = (text: string, count: number) =>
    decodeMessage(
      MessageType.BATCH,
      new Uint8Array([...header, count >> 8, count & 0xff, ...new TextEncoder().encode(text)]),
    );
  await t.step("CRLF and LF endings, quoted fields, leading zeros", () => {
    assert.deepEqual(
      batchOf('Ana,"Pérez, ""Tito""",1,2000-01-02,0042\r\nB,C,2,2001-02-03,7\n', 2),
      {
        type: MessageType.BATCH,
        agency: 3,
        seq: 9,
        bets: [
          {
            firstName: "Ana",
            lastName: 'Pérez, "Tito"',
            document: "1",
            birthdate: "2000-01-02",
            number: 42,
          },
          { firstName: "B", lastName: "C", document: "2", birthdate: "2001-02-03", number: 7 },
        ],
      },
    );
  });
  await t.step("a line that is not a bet is an InvalidBetError naming it", async (t) => {
    const good = "A,B,1,2000-01-02,5\n";
    const cases: Array<[string, RegExp]> = [
      ["A,B,1,2000-01-02\n", /^Invalid bet 2 of 2: expected 5 fields, found 4$/],
      ["A,B,1,2000-01-02,5,6\n", /^Invalid bet 2 of 2: expected 5 fields, found 6$/],
      ["A,B,1,2000-01-02,12a\n", /^Invalid bet 2 of 2: number "12a" is not 0-9999$/],
      ["A,B,1,2000-01-02,12345\n", /^Invalid bet 2 of 2: number "12345" is not 0-9999$/],
      ["A,B,1,2000-01-02,\n", /^Invalid bet 2 of 2: number "" is not 0-9999$/],
      ['"A,B,1,2000-01-02,5\n', /^Invalid bet 2 of 2: unbalanced quotes$/],
      ["\n", /^Invalid bet 2 of 2: expected 5 fields, found 1$/],
    ];
    for (const [line, message] of cases) {
      await t.step(JSON.stringify(line), () => {
        assert.throws(() => batchOf(good + line, 2), (error: unknown) => {
          assert.ok(error instanceof InvalidBetError);
          assert.equal(error.code, ErrorCode.INVALID_BET);
          assert.match(error.message, message);
          return true;
        });
      });
    }
  });
  await t.step("a batch of no bets is MALFORMED: it would take a sequence for nothing", () => {
    assertProtocolError(
      () => batchOf("", 0),
      ErrorCode.MALFORMED,
      /^Cannot decode batch: it holds no bets$/,
    );
  });
  await t.step("a line that is not UTF-8 (a Latin-1 file) is an InvalidBetError naming it", () => {
    const good = new TextEncoder().encode("A,B,1,2000-01-02,5\n");
    // As a Latin-1 file holds it: one byte per character, é is 0xE9.
    const latin1 = Uint8Array.from("José,B,1,2000-01-02,5\r\n", (c) => c.charCodeAt(0));
    const body = new Uint8Array([...header, 0, 3, ...good, ...latin1, ...good]);
    assert.throws(() => decodeMessage(MessageType.BATCH, body), (error: unknown) => {
      assert.ok(error instanceof InvalidBetError);
      assert.equal(error.code, ErrorCode.INVALID_BET);
      assert.equal(error.message, "Invalid bet 2 of 3: not UTF-8 text");
      return true;
    });
  });
  await t.step("a BOM is dropped where the batch's text starts, kept on later lines", () => {
    const message = batchOf("\ufeffA,B,1,2000-01-02,5\n\ufeffC,D,2,2000-01-02,6\n", 2);
    assert.equal(message.type, MessageType.BATCH);
    if (message.type !== MessageType.BATCH) return;
    assert.deepEqual(message.bets.map((b) => b.firstName), ["A", "\ufeffC"]);
  });
  await t.step("a bet with a line break cannot be encoded", () => {
    assert.throws(
      () =>
        encodeMessage({
          type: MessageType.BATCH,
          agency: 1,
          seq: 0,
          bets: [{ ...BET, lastName: "Lo\nrca" }],
        }),
      /^RangeError: Cannot encode bet: a field holds a line break$/,
    );
  });
});

Deno.test("readBatchHeader() reads what encodeBatchHeader() wrote, through BATCH_BODY", () => {
  const frame = new Uint8Array(BATCH_HEADER_SIZE + 3);
  frame.set([0x61, 0x62, 0x0a], BATCH_HEADER_SIZE);
  encodeBatchHeader(frame, 0, { agency: 513, seq: 70_000, count: 1 }, 3);
  const body = frame.subarray(HEADER_SIZE);
  assert.deepEqual(readBatchHeader(body), { agency: 513, seq: 70_000, count: 1 });
  assert.equal(body.length - BATCH_BODY.lines, 3);
});
