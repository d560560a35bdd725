import assert from "node:assert/strict";
import {
  decodeJournal,
  encodeRecord,
  type JournalRecord,
  RECORD_SIZE,
  RecordKind,
} from "./journal.ts";

const RECORDS: JournalRecord[] = [
  { kind: RecordKind.BATCH, agency: 1, seq: 0, bets: 100, winners: 2, end: 6500 },
  { kind: RecordKind.BATCH, agency: 2, seq: 0, bets: 1, winners: 0, end: 6560 },
  { kind: RecordKind.BATCH, agency: 1, seq: 1, bets: 65535, winners: 65535, end: 5_000_000_000 },
  { kind: RecordKind.DONE, agency: 65535, seq: 0, bets: 0, winners: 0, end: 5_000_000_000 },
  { kind: RecordKind.BATCH, agency: 3, seq: 0xffffffff, bets: 0, winners: 0, end: 0 },
];

function encodeAll(records: readonly JournalRecord[]): Uint8Array {
  const out = new Uint8Array(records.length * RECORD_SIZE);
  records.forEach((record, i) => encodeRecord(record, out, i * RECORD_SIZE));
  return out;
}

Deno.test("encodeRecord() writes the documented 24-byte layout", () => {
  assert.equal(RECORD_SIZE, 24);
  const out = new Uint8Array(RECORD_SIZE);
  encodeRecord(
    {
      kind: RecordKind.BATCH,
      agency: 0x0102,
      seq: 0x03040506,
      bets: 0x0708,
      winners: 0x090a,
      end: 0x0b0c0d0e,
    },
    out,
  );
  assert.deepEqual(
    [...out.subarray(0, 20)],
    [
      0x4a,
      0x01,
      0x01,
      0x02,
      0x03,
      0x04,
      0x05,
      0x06,
      0x07,
      0x08,
      0x09,
      0x0a,
      0,
      0,
      0,
      0,
      0x0b,
      0x0c,
      0x0d,
      0x0e,
    ],
  );
  // FNV-1a over the first 20 bytes.
  let hash = 0x811c9dc5;
  for (const byte of out.subarray(0, 20)) hash = Math.imul(hash ^ byte, 0x01000193);
  assert.equal(new DataView(out.buffer).getUint32(20), hash >>> 0);
});

Deno.test("encodeRecord() writes at the offset and nowhere else", () => {
  const out = new Uint8Array(RECORD_SIZE * 3).fill(0xee);
  encodeRecord(RECORDS[0]!, out, RECORD_SIZE);
  assert.ok(out.subarray(0, RECORD_SIZE).every((b) => b === 0xee));
  assert.ok(out.subarray(2 * RECORD_SIZE).every((b) => b === 0xee));
  assert.deepEqual(decodeJournal(out.subarray(RECORD_SIZE, 2 * RECORD_SIZE)), [RECORDS[0]]);
});

Deno.test("decodeJournal() round-trips records", async (t) => {
  await t.step("empty journal", () => assert.deepEqual(decodeJournal(new Uint8Array(0)), []));
  await t.step("every record, in order", () => {
    assert.deepEqual(decodeJournal(encodeAll(RECORDS)), RECORDS);
  });
  await t.step("a view into a larger buffer", () => {
    const bytes = encodeAll(RECORDS);
    const padded = new Uint8Array(bytes.length + 10);
    padded.set(bytes, 5);
    assert.deepEqual(decodeJournal(padded.subarray(5, 5 + bytes.length)), RECORDS);
  });
});

Deno.test("decodeJournal() stops at a torn tail", async (t) => {
  const bytes = encodeAll(RECORDS);
  for (const extra of [1, 12, RECORD_SIZE - 1]) {
    await t.step(`${extra} bytes of a partial record`, () => {
      const torn = bytes.subarray(0, 2 * RECORD_SIZE + extra);
      assert.deepEqual(decodeJournal(torn), RECORDS.slice(0, 2));
    });
  }
  await t.step("zeros after the records (preallocated space)", () => {
    const zeros = new Uint8Array(bytes.length + 2 * RECORD_SIZE);
    zeros.set(bytes);
    assert.deepEqual(decodeJournal(zeros), RECORDS);
  });
});

Deno.test("decodeJournal() stops at the first corrupt record", async (t) => {
  const corrupt = (index: number, byte: number, value?: number) => {
    const bytes = encodeAll(RECORDS);
    const at = index * RECORD_SIZE + byte;
    bytes[at] = value ?? bytes[at]! ^ 0x01;
    return decodeJournal(bytes);
  };
  await t.step("a flipped bit in the checksum", () => {
    assert.deepEqual(corrupt(2, 23), RECORDS.slice(0, 2));
  });
  await t.step("a flipped bit in the data end offset", () => {
    assert.deepEqual(corrupt(1, 19), RECORDS.slice(0, 1));
  });
  await t.step("a flipped bit in the agency", () => {
    assert.deepEqual(corrupt(0, 3), []);
  });
  await t.step("a bad magic byte", () => {
    assert.deepEqual(corrupt(3, 0, 0x4b), RECORDS.slice(0, 3));
  });
  await t.step("an unknown kind with a valid checksum", () => {
    const bytes = encodeAll(RECORDS);
    const record = bytes.subarray(RECORD_SIZE, 2 * RECORD_SIZE);
    record[1] = 3;
    let hash = 0x811c9dc5;
    for (const byte of record.subarray(0, 20)) hash = Math.imul(hash ^ byte, 0x01000193);
    new DataView(record.buffer, record.byteOffset).setUint32(20, hash >>> 0);
    assert.deepEqual(decodeJournal(bytes), RECORDS.slice(0, 1));
  });
  await t.step("records after a corrupt one are ignored even if valid", () => {
    assert.deepEqual(corrupt(1, 23).length, 1);
  });
});
