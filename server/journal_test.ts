import assert from "node:assert/strict";
import { crc32 } from "node:zlib";
import type { JournalEntry, JournalHeader, JournalRecord } from "./journal.ts";
import {
  checksum,
  claimedFormat,
  decodeJournal,
  encodeHeader,
  encodeRecord,
  loadNativeChecksum,
  newDrawId,
  RECORD_SIZE,
  RecordKind,
  rowsChecksum,
} from "./journal.ts";

const HEADER: JournalHeader = {
  kind: RecordKind.HEADER,
  format: 3,
  agencies: 5,
  drawId: "00a1b2c3d4e5f607",
  createdAt: 1_796_000_000,
};

const RECORDS: JournalRecord[] = [
  { kind: RecordKind.BATCH, agency: 1, seq: 0, bets: 100, winners: 2, end: 6500, rowsCrc: 1 },
  {
    kind: RecordKind.BATCH,
    agency: 2,
    seq: 0,
    bets: 1,
    winners: 0,
    end: 6560,
    rowsCrc: 2 ** 32 - 1,
  },
  {
    kind: RecordKind.BATCH,
    agency: 1,
    seq: 1,
    bets: 65535,
    winners: 65535,
    end: 5_000_000_000,
    rowsCrc: 0x80000000,
  },
  {
    kind: RecordKind.DONE,
    agency: 65535,
    seq: 0,
    bets: 0,
    winners: 0,
    end: 5_000_000_000,
    rowsCrc: 0,
  },
  {
    kind: RecordKind.EXCLUDE,
    agency: 3,
    seq: 0,
    bets: 0,
    winners: 0,
    end: 5_000_000_000,
    rowsCrc: 0,
  },
];

const ENTRIES: JournalEntry[] = [HEADER, ...RECORDS];

function encodeAll(entries: readonly JournalEntry[]): Uint8Array {
  const out = new Uint8Array(entries.length * RECORD_SIZE);
  entries.forEach((entry, i) => {
    if (entry.kind === RecordKind.HEADER) out.set(encodeHeader(entry), i * RECORD_SIZE);
    else encodeRecord(entry, out, i * RECORD_SIZE);
  });
  return out;
}

function fnv1a(bytes: Uint8Array): number {
  let hash = 0x811c9dc5;
  for (const byte of bytes) hash = Math.imul(hash ^ byte, 0x01000193);
  return hash >>> 0;
}

Deno.test("encodeRecord() writes the documented 28-byte layout", () => {
  assert.equal(RECORD_SIZE, 28);
  const out = new Uint8Array(RECORD_SIZE);
  encodeRecord(
    {
      kind: RecordKind.BATCH,
      agency: 0x0102,
      seq: 0x03040506,
      bets: 0x0708,
      winners: 0x090a,
      end: 0x0b0c0d0e,
      rowsCrc: 0xf1f2f3f4,
    },
    out,
  );
  assert.deepEqual(
    [...out.subarray(0, 24)],
    [0x4a, 0x01, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0, 0, 0, 0]
      .concat([0x0b, 0x0c, 0x0d, 0x0e, 0xf1, 0xf2, 0xf3, 0xf4]),
  );
  assert.equal(new DataView(out.buffer).getUint32(24), fnv1a(out.subarray(0, 24)));
});

Deno.test("encodeHeader() writes the documented 28-byte layout", () => {
  const out = encodeHeader({
    format: 3,
    agencies: 0x0105,
    drawId: "0102030405060708",
    createdAt: 0x11223344,
  });
  assert.deepEqual(
    [...out.subarray(0, 24)],
    [0x4a, 0x03, 0x00, 0x03, 0x01, 0x05, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0x11, 0x22, 0x33, 0x44]
      .concat([0, 0, 0, 0]),
  );
  assert.equal(new DataView(out.buffer).getUint32(24), fnv1a(out.subarray(0, 24)));
});

Deno.test("claimedFormat() reads the format of any header, not only this version's", () => {
  assert.equal(claimedFormat(encodeHeader({ ...HEADER, format: 3 })), 3);
  // A format-2 header: 24 bytes, the format at the same place.
  const older = new Uint8Array([0x4a, 0x03, 0x00, 0x02, 0x00, 0x05, ...new Uint8Array(18)]);
  assert.equal(claimedFormat(older), 2);
  assert.equal(claimedFormat(new Uint8Array([0x4a, 0x01, 0, 2])), undefined);
  assert.equal(claimedFormat(new Uint8Array([0x4a])), undefined);
});

Deno.test("rowsChecksum() is zlib's CRC-32 of the bytes, continued over pieces", async (t) => {
  await t.step("the standard check value", () => {
    assert.equal(rowsChecksum(new TextEncoder().encode("123456789")), 0xcbf43926);
    assert.equal(rowsChecksum(new Uint8Array(0)), 0);
  });
  const bytes = new Uint8Array(1000).map((_, i) => (i * 2654435761) >>> 24);
  await t.step("the same as node:zlib's at every length, in pieces too", () => {
    for (const length of [1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 100, 1000]) {
      const part = bytes.subarray(0, length);
      assert.equal(rowsChecksum(part), crc32(part) >>> 0, `length ${length}`);
      const half = Math.floor(length / 2);
      assert.equal(
        rowsChecksum(part.subarray(half), rowsChecksum(part.subarray(0, half))),
        crc32(part) >>> 0,
      );
    }
  });
});

Deno.test("newDrawId() makes 16 hex digits, different each time", () => {
  const ids = new Set(Array.from({ length: 100 }, newDrawId));
  assert.equal(ids.size, 100);
  for (const id of ids) assert.match(id, /^[0-9a-f]{16}$/);
});

Deno.test("encodeRecord() writes at the offset and nowhere else", () => {
  const out = new Uint8Array(RECORD_SIZE * 3).fill(0xee);
  encodeRecord(RECORDS[0]!, out, RECORD_SIZE);
  assert.ok(out.subarray(0, RECORD_SIZE).every((b) => b === 0xee));
  assert.ok(out.subarray(2 * RECORD_SIZE).every((b) => b === 0xee));
  assert.deepEqual(decodeJournal(out.subarray(RECORD_SIZE, 2 * RECORD_SIZE)), {
    entries: [RECORDS[0]],
    tailBytes: 0,
  });
});

Deno.test("decodeJournal() round-trips the header and records", async (t) => {
  await t.step("empty journal", () => {
    assert.deepEqual(decodeJournal(new Uint8Array(0)), { entries: [], tailBytes: 0 });
  });
  await t.step("every entry, in order", () => {
    assert.deepEqual(decodeJournal(encodeAll(ENTRIES)), { entries: ENTRIES, tailBytes: 0 });
  });
  await t.step("a view into a larger buffer", () => {
    const bytes = encodeAll(ENTRIES);
    const padded = new Uint8Array(bytes.length + 10);
    padded.set(bytes, 5);
    assert.deepEqual(decodeJournal(padded.subarray(5, 5 + bytes.length)).entries, ENTRIES);
  });
  await t.step("a draw id with leading zero digits", () => {
    const header = { ...HEADER, drawId: "0000000000000001" };
    assert.deepEqual(decodeJournal(encodeAll([header])).entries, [header]);
  });
});

Deno.test("decodeJournal() reports a torn tail: failing records with nothing good after", async (t) => {
  const bytes = encodeAll(ENTRIES);
  for (const extra of [1, 12, RECORD_SIZE - 1]) {
    await t.step(`${extra} bytes of a partial record`, () => {
      const torn = bytes.subarray(0, 2 * RECORD_SIZE + extra);
      assert.deepEqual(decodeJournal(torn), { entries: ENTRIES.slice(0, 2), tailBytes: extra });
    });
  }
  await t.step("zeros after the records (preallocated space)", () => {
    const zeros = new Uint8Array(bytes.length + 2 * RECORD_SIZE);
    zeros.set(bytes);
    assert.deepEqual(decodeJournal(zeros), { entries: ENTRIES, tailBytes: 2 * RECORD_SIZE });
  });
  await t.step("the last records fail their checksum (a torn group commit)", () => {
    const torn = bytes.slice();
    torn[4 * RECORD_SIZE + 3]! ^= 1;
    torn[5 * RECORD_SIZE + 7]! ^= 1;
    assert.deepEqual(decodeJournal(torn), {
      entries: ENTRIES.slice(0, 4),
      tailBytes: 2 * RECORD_SIZE,
    });
  });
});

Deno.test("decodeJournal() reports damage: a failing record that good ones follow", async (t) => {
  const damage = (index: number, byte: number, value?: number) => {
    const bytes = encodeAll(ENTRIES);
    const at = index * RECORD_SIZE + byte;
    bytes[at] = value ?? bytes[at]! ^ 0x01;
    return decodeJournal(bytes);
  };
  await t.step("a flipped bit in a checksum", () => {
    assert.deepEqual(damage(2, 23), {
      entries: ENTRIES.slice(0, 2),
      tailBytes: 4 * RECORD_SIZE,
      corruptRecord: 2,
    });
  });
  await t.step("a flipped bit in a data end offset", () => {
    assert.equal(damage(1, 19).corruptRecord, 1);
  });
  await t.step("a flipped bit in the header", () => {
    assert.deepEqual(damage(0, 5).corruptRecord, 0);
    assert.deepEqual(damage(0, 5).entries, []);
  });
  await t.step("a bad magic byte", () => {
    assert.equal(damage(3, 0, 0x4b).corruptRecord, 3);
  });
  await t.step("an unknown kind with a valid checksum", () => {
    const bytes = encodeAll(ENTRIES);
    const record = bytes.subarray(RECORD_SIZE, 2 * RECORD_SIZE);
    record[1] = 9;
    new DataView(record.buffer, record.byteOffset).setUint32(20, fnv1a(record.subarray(0, 20)));
    assert.deepEqual(decodeJournal(bytes), {
      entries: ENTRIES.slice(0, 1),
      tailBytes: 5 * RECORD_SIZE,
      corruptRecord: 1,
    });
  });
  await t.step("a flipped bit in the last record is a torn tail, not damage", () => {
    assert.deepEqual(damage(5, 10), { entries: ENTRIES.slice(0, 5), tailBytes: RECORD_SIZE });
  });
});

Deno.test("checksum() gives rowsChecksum()'s values, before and after loadNativeChecksum()", async () => {
  const bytes = new Uint8Array(5000).map((_, i) => (i * 40503) >>> 8);
  const expected = rowsChecksum(bytes);
  assert.equal(checksum(bytes), expected);
  await loadNativeChecksum();
  await loadNativeChecksum();
  assert.equal(checksum(bytes), expected);
  assert.equal(checksum(bytes.subarray(100), checksum(bytes.subarray(0, 100))), expected);
});
