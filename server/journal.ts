/**
 * The storage journal: one fixed-size, checksummed record per stored batch or `done`,
 * written after the batch's rows are durable in `bets.csv`. It is what makes batches
 * idempotent across crashes: on start-up the last valid record says how many bytes of
 * `bets.csv` are committed and which sequence each agency reached.
 *
 * Record layout (24 bytes, big-endian): magic u8 (0x4a) · kind u8 (1 batch, 2 done) ·
 * agency u16 · seq u32 · bets u16 · winners u16 · data end offset u64 · FNV-1a u32 of
 * the first 20 bytes.
 *
 * @module
 */

/** Bytes per journal record. */
export const RECORD_SIZE = 24;

const RECORD_MAGIC = 0x4a;

/** What a record says happened. */
export const RecordKind = { BATCH: 1, DONE: 2 } as const;

/** One of {@linkcode RecordKind}. */
export type RecordKind = typeof RecordKind[keyof typeof RecordKind];

/** A decoded journal record. */
export interface JournalRecord {
  readonly kind: RecordKind;
  readonly agency: number;
  /** Batch sequence number (0 for `done`). */
  readonly seq: number;
  /** Bets in the batch. */
  readonly bets: number;
  /** Winning bets in the batch. */
  readonly winners: number;
  /** Size of `bets.csv` once this batch was written. */
  readonly end: number;
}

function fnv1a(bytes: Uint8Array, length: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < length; i++) {
    hash ^= bytes[i]!;
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/**
 * Encodes a record into `out` at `offset`.
 *
 * @param record The record.
 * @param out The destination, with {@linkcode RECORD_SIZE} bytes free at `offset`.
 * @param offset Where to write.
 */
export function encodeRecord(record: JournalRecord, out: Uint8Array, offset = 0): void {
  const bytes = out.subarray(offset, offset + RECORD_SIZE);
  const view = new DataView(bytes.buffer, bytes.byteOffset, RECORD_SIZE);
  view.setUint8(0, RECORD_MAGIC);
  view.setUint8(1, record.kind);
  view.setUint16(2, record.agency);
  view.setUint32(4, record.seq);
  view.setUint16(8, record.bets);
  view.setUint16(10, record.winners);
  view.setBigUint64(12, BigInt(record.end));
  view.setUint32(20, fnv1a(bytes, 20));
}

/**
 * Decodes the valid prefix of a journal: stops at the first torn or corrupt record.
 *
 * @param bytes The journal file's contents.
 * @returns The valid records.
 */
export function decodeJournal(bytes: Uint8Array): JournalRecord[] {
  const records: JournalRecord[] = [];
  for (let offset = 0; offset + RECORD_SIZE <= bytes.length; offset += RECORD_SIZE) {
    const chunk = bytes.subarray(offset, offset + RECORD_SIZE);
    const view = new DataView(chunk.buffer, chunk.byteOffset, RECORD_SIZE);
    const kind = view.getUint8(1);
    if (
      view.getUint8(0) !== RECORD_MAGIC || view.getUint32(20) !== fnv1a(chunk, 20) ||
      (kind !== RecordKind.BATCH && kind !== RecordKind.DONE)
    ) break;
    records.push({
      kind,
      agency: view.getUint16(2),
      seq: view.getUint32(4),
      bets: view.getUint16(8),
      winners: view.getUint16(10),
      end: Number(view.getBigUint64(12)),
    });
  }
  return records;
}
