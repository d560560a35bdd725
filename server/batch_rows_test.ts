import assert from "node:assert/strict";
import { COURSE_BET } from "../testing/course_data.ts";
import { seeded } from "../testing/random.ts";
import type { BetFields } from "../shared/bet.ts";
import { ErrorCode, InvalidBetError, ProtocolError } from "../shared/errors.ts";
import { encodeMessage, MessageType } from "../shared/protocol/mod.ts";
import { batchRows, referenceRows } from "./batch_rows.ts";
import { readBatchHeader } from "../shared/protocol/mod.ts";

const GOOD: BetFields = COURSE_BET;

function body(bets: readonly BetFields[], agency = 2, seq = 9): Uint8Array {
  return encodeMessage({ type: MessageType.BATCH, agency, seq, bets }).subarray(4);
}

/** The same body with CRLF line endings, as a Windows-made agency file has them. */
function crlf(lf: Uint8Array): Uint8Array {
  const lines = new TextDecoder().decode(lf.subarray(8)).replaceAll("\n", "\r\n");
  return new Uint8Array([...lf.subarray(0, 8), ...new TextEncoder().encode(lines)]);
}

/** Either the rows or the error's class, code and message: what a caller can observe. */
function outcome(fn: () => ReturnType<typeof batchRows>): unknown {
  try {
    const r = fn();
    return { ...r, rows: new TextDecoder().decode(r.rows) };
  } catch (error) {
    if (!(error instanceof ProtocolError)) throw error;
    return { error: error.constructor.name, code: error.code, message: error.message };
  }
}

Deno.test("batchRows() writes rows exactly as csv.writer does", () => {
  const rows = batchRows(body([GOOD, { ...GOOD, firstName: 'Ana "Pocha", Jr', number: 5 }]));
  assert.equal(
    new TextDecoder().decode(rows.rows),
    '2,Santiago Lionel,Lorca,30904465,1999-03-17,7574\r\n2,"Ana ""Pocha"", Jr",Lorca,30904465,1999-03-17,5\r\n',
  );
  assert.deepEqual([rows.count, rows.winners], [2, 1]);
});

Deno.test("batchRows() turns CRLF or LF lines into rows, numbers without leading zeros", () => {
  const lines = "Ana,Lorca,1,2000-01-02,0042\r\nJosé,Núñez,30904465,1999-03-17,7574\n";
  const b = new Uint8Array([0, 2, 0, 0, 0, 9, 0, 2, ...new TextEncoder().encode(lines)]);
  const rows = batchRows(b);
  assert.equal(
    new TextDecoder().decode(rows.rows),
    "2,Ana,Lorca,1,2000-01-02,42\r\n2,José,Núñez,30904465,1999-03-17,7574\r\n",
  );
  assert.deepEqual([rows.count, rows.winners], [2, 1]);
  assert.deepEqual(outcome(() => batchRows(b)), outcome(() => referenceRows(b)));
});

Deno.test("batchRows() agrees with the reference path on numbers and dates written oddly", () => {
  const iso = (d: Date) => d.toISOString().slice(0, 10);
  const now = new Date();
  const day = 86_400_000;
  const numbers = ["0", "00", "0000", "0007", "0757", "7574", "07574", "75740", "9999", ""];
  const dates = [
    "1999-12-28",
    "1999-12-29",
    "1999-12-00",
    "1999-00-15",
    "2024-02-29",
    "2023-02-29",
    "2023-04-31",
    "2023-04-30",
    "1900-01-01",
    "1899-12-31",
    iso(new Date(now.getTime() - day)),
    iso(new Date(now.getTime() + day)),
    "1999-1a-01",
    "a999-01-01",
  ];
  const utf8 = new TextEncoder();
  for (const number of numbers) {
    for (const date of dates) {
      const lines = `Ana,Lorca,1,${date},${number}\r\nB,C,2,1999-03-17,7574\n`;
      const b = new Uint8Array([0, 3, 0, 0, 0, 1, 0, 2, ...utf8.encode(lines)]);
      assert.deepEqual(outcome(() => batchRows(b)), outcome(() => referenceRows(b)), lines);
    }
  }
});

Deno.test("batchRows() agrees with the reference path on 20,000 random batches", () => {
  const random = seeded(2024);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const names = [
    "Ana",
    "José",
    "Zoë Ñandú",
    "a,b",
    'q"q',
    " ",
    "",
    "x".repeat(64),
    "x".repeat(65),
    "😀".repeat(32),
    "😀".repeat(33),
    "\ufeffAna",
    "\u0085x",
    "\u2003",
    "é".repeat(64),
    "é".repeat(65),
    "tab\there",
    "\u00a0",
    "del\u007f",
    "Li",
  ];
  const documents = ["30904465", "1", "0", "00000000", "123456789", "12a4", "", "٣٤٥", "00000001"];
  const dates = [
    "1999-03-17",
    "2000-02-29",
    "1900-02-29",
    "2023-02-30",
    "1899-12-31",
    "1900-01-01",
    "2999-01-01",
    "1999-3-17",
    "1999/03/17",
    "19990317",
    "1999-13-01",
    "1999-00-10",
    "1999-01-32",
  ];
  const numbers = [0, 1, 7574, 9999, 10000, 65535];
  for (let i = 0; i < 20_000; i++) {
    const count = 1 + Math.floor(random() * 4);
    const bets = Array.from({ length: count }, () =>
      random() < 0.7 ? GOOD : {
        firstName: pick(names),
        lastName: pick(names),
        document: pick(documents),
        birthdate: pick(dates),
        number: pick(numbers),
      });
    const b = random() < 0.3 ? crlf(body(bets, 1 + Math.floor(random() * 20), i)) : body(
      bets,
      1 + Math.floor(random() * 20),
      i,
    );
    assert.deepEqual(
      outcome(() => batchRows(b)),
      outcome(() => referenceRows(b)),
      JSON.stringify(bets),
    );
  }
});

Deno.test("batchRows() agrees with the reference path on names of random bytes", () => {
  const random = seeded(99);
  const interesting = [
    0x00,
    0x1f,
    0x20,
    0x41,
    0x7e,
    0x7f,
    0x80,
    0xbf,
    0xc0,
    0xc1,
    0xc2,
    0xdf,
    0xe0,
    0xed,
    0xef,
    0xbb,
    0xf0,
    0xf4,
    0xf5,
    0xff,
    0x9f,
    0xa0,
    0x8f,
    0x90,
  ];
  const good = body([GOOD]);
  for (let i = 0; i < 30_000; i++) {
    const length = Math.floor(random() * 70);
    const name = Uint8Array.from(
      { length },
      () =>
        random() < 0.5
          ? interesting[Math.floor(random() * interesting.length)]!
          : Math.floor(random() * 256),
    );
    // The first name of GOOD replaced by raw bytes, unquoted; the rest of the line kept.
    const rest = good.subarray(8 + GOOD.firstName.length);
    const b = new Uint8Array([...good.subarray(0, 8), ...name, ...rest]);
    assert.deepEqual(
      outcome(() => batchRows(b)),
      outcome(() => referenceRows(b)),
      Array.from(name).join(","),
    );
  }
});

Deno.test("batchRows() agrees with the reference path on names of plausible characters", () => {
  const random = seeded(7);
  // Pieces of real names and their edge cases: accents and ñ (two bytes), a no-break
  // space and a C1 control (two bytes, not visible ASCII), a three-byte letter, a
  // four-byte emoji (two UTF-16 units), comma, quote, space.
  const pieces = ["a", "Z", " ", "á", "Ñ", "ü", "\u00a0", "\u0085", "ẞ", "😀", ",", '"', "-"];
  const utf8 = new TextEncoder();
  const good = body([GOOD]);
  const rest = good.subarray(8 + GOOD.firstName.length);
  for (let i = 0; i < 20_000; i++) {
    // Mostly near the 64-unit limit, where counting units instead of bytes matters.
    const count = random() < 0.7 ? 58 + Math.floor(random() * 10) : Math.floor(random() * 8);
    let text = "";
    for (let k = 0; k < count; k++) {
      text += random() < 0.6 ? "a" : pieces[Math.floor(random() * pieces.length)]!;
    }
    const b = new Uint8Array([...good.subarray(0, 8), ...utf8.encode(text), ...rest]);
    assert.deepEqual(outcome(() => batchRows(b)), outcome(() => referenceRows(b)), text);
  }
});

Deno.test("batchRows() refuses a malformed body like the codec does", async (t) => {
  const whole = body([GOOD, GOOD]);
  const cases: Array<[string, Uint8Array]> = [
    ["truncated", whole.subarray(0, whole.length - 3)],
    ["trailing bytes", new Uint8Array([...whole, 0])],
    [
      "count larger than the bets",
      (() => {
        const b = whole.slice();
        b[7] = 3;
        return b;
      })(),
    ],
  ];
  for (const [name, b] of cases) {
    await t.step(name, () => {
      assert.throws(() => batchRows(b), (error: unknown) => {
        assert.ok(error instanceof ProtocolError);
        assert.equal(error.code, ErrorCode.MALFORMED);
        return true;
      });
    });
  }
  await t.step("an invalid bet is an InvalidBetError naming it", () => {
    assert.throws(
      () => batchRows(body([GOOD, { ...GOOD, birthdate: "2023-02-30" }])),
      (error: unknown) =>
        error instanceof InvalidBetError && /bet 2 of 2: birthdate/.test(error.message),
    );
  });
  await t.step("a line that is not UTF-8 is an InvalidBetError naming it", () => {
    const line = body([GOOD]).subarray(8);
    // As a Latin-1 file holds it: one byte per character, é is 0xE9.
    const latin1 = Uint8Array.from(
      "Ana,Pérez,30904465,1999-03-17,7574\r\n",
      (c) => c.charCodeAt(0),
    );
    const b = new Uint8Array([
      ...body([GOOD, GOOD, GOOD]).subarray(0, 8),
      ...line,
      ...latin1,
      ...line,
    ]);
    for (const path of [batchRows, referenceRows]) {
      assert.throws(
        () => path(b),
        (error: unknown) =>
          error instanceof InvalidBetError &&
          error.message === "Invalid bet 2 of 3: not UTF-8 text",
      );
    }
  });
  await t.step("a body shorter than the header", () => {
    assert.throws(() => readBatchHeader(new Uint8Array(5)), /shorter than its header/);
  });
  await t.step("a batch of no bets: it would take a sequence for nothing", () => {
    const empty = new Uint8Array([0, 4, 0, 0, 0, 0, 0, 0]);
    for (const path of [readBatchHeader, batchRows, referenceRows]) {
      assert.throws(() => path(empty), (error: unknown) => {
        assert.ok(error instanceof ProtocolError);
        assert.equal(error.code, ErrorCode.MALFORMED);
        assert.equal(error.message, "Cannot decode batch: it holds no bets");
        return true;
      });
    }
  });
});

Deno.test("batchRows() names the server's date for a birthdate after it", () => {
  const late = { ...GOOD, birthdate: "2000-05-10" };
  assert.throws(
    () => batchRows(body([GOOD, late]), undefined, new Date("2000-01-01T00:00:00Z")),
    (error: unknown) => {
      assert.ok(error instanceof InvalidBetError);
      assert.equal(
        error.message,
        'Invalid bet 2 of 2: birthdate "2000-05-10" is after the server\'s date 2000-01-01',
      );
      return true;
    },
  );
});
