/**
 * The storage journal: a header that says which draw the storage holds, then one fixed-size,
 * checksummed record per stored batch, `done` or exclusion, each written after the rows it accounts
 * for are durable in `bets.csv`. On start-up the records say how many bytes of `bets.csv` are
 * committed, where each batch's rows are, and which sequence each agency reached.
 *
 * Every record is 28 bytes, big-endian, and ends in an FNV-1a u32 of its first 24:
 *
 * - header (record 0): magic u8 (0x4a) · kind u8 (3) · format u16 (3) · agencies u16 ·
 *   reserved u16 (0) · draw id 8 bytes · created u32 (Unix seconds) · reserved u32 (0) ·
 *   checksum;
 * - batch (1), done (2), exclusion (4): magic u8 · kind u8 · agency u16 · seq u32 ·
 *   bets u16 · winners u16 · data end offset u64 · rows u32 (the CRC-32, as zlib's, of the batch's bytes
 *   of `bets.csv`, see {@linkcode rowsChecksum}; 0 for the other kinds) · checksum.
 *
 * @module
 */

/** Bytes per journal record. */
export const RECORD_SIZE = 28;

/** The journal format this version writes and reads; older formats are refused. */
export const JOURNAL_FORMAT = 3;

/** Bytes of a record its own checksum covers (the rest is that checksum). */
const CHECKED = RECORD_SIZE - 4;

const RECORD_MAGIC = 0x4a;

/** What a record says happened. */
export const RecordKind = { BATCH: 1, DONE: 2, HEADER: 3, EXCLUDE: 4 } as const;

/** One of {@linkcode RecordKind}. */
export type RecordKind = typeof RecordKind[keyof typeof RecordKind];

/**
 * The journal's first record: which draw the storage holds (`drawId`, 16 random hex digits), its
 * {@linkcode JOURNAL_FORMAT}, the `SERVER_AGENCIES` it was created for, and when, in Unix seconds.
 */
export interface JournalHeader {
  readonly kind: typeof RecordKind.HEADER;
  readonly format: number;
  readonly agencies: number;
  readonly drawId: string;
  readonly createdAt: number;
}

/**
 * A batch, `done` or exclusion record: the batch's sequence number (0 for the other
 * kinds), bets and winners, the size of `bets.csv` once its rows were written, and the
 * {@linkcode rowsChecksum} of those rows (0 for the other kinds).
 */
export interface JournalRecord {
  readonly kind: typeof RecordKind.BATCH | typeof RecordKind.DONE | typeof RecordKind.EXCLUDE;
  readonly agency: number;
  readonly seq: number;
  readonly bets: number;
  readonly winners: number;
  readonly end: number;
  readonly rowsCrc: number;
}

/** Any record. */
export type JournalEntry = JournalHeader | JournalRecord;

/** A journal as read back. */
export interface DecodedJournal {
  /** Every record before the first that fails its checks (or is cut short). */
  readonly entries: readonly JournalEntry[];
  /** Bytes from the first failing or incomplete record to the end. */
  readonly tailBytes: number;
  /**
   * The index of a failing record that a good record follows: damage, not a torn write
   * (a torn write leaves failing or incomplete records only at the end).
   */
  readonly corruptRecord?: number;
}

/** CRC-32 lookup tables for slicing by 16: table `t` at `t * 256`. */
const CRC_TABLES = (() => {
  const tables = new Int32Array(16 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    tables[n] = c;
  }
  for (let t = 1; t < 16; t++) {
    for (let n = 0; n < 256; n++) {
      const previous = tables[(t - 1) * 256 + n]!;
      tables[t * 256 + n] = (previous >>> 8) ^ tables[previous & 0xff]!;
    }
  }
  return tables;
})();

/**
 * The CRC-32 (zlib's polynomial) of a batch's rows, as its journal record holds it:
 * `previous` continues a checksum over bytes read in pieces. Written here, slicing by 16
 * (about 1.5 GB/s), because importing `node:zlib` costs some 25 ms at every start; see
 * {@linkcode checksum} for what storage code calls.
 */
export function rowsChecksum(bytes: Uint8Array, previous = 0): number {
  const t = CRC_TABLES;
  const b = bytes;
  let c = ~previous;
  let i = 0;
  const whole = b.length - (b.length % 16);
  for (; i < whole; i += 16) {
    const a = c ^ (b[i]! | b[i + 1]! << 8 | b[i + 2]! << 16 | b[i + 3]! << 24);
    c = t[3840 + (a & 0xff)]! ^ t[3584 + ((a >>> 8) & 0xff)]! ^ t[3328 + ((a >>> 16) & 0xff)]! ^
      t[3072 + (a >>> 24)]! ^ t[2816 + b[i + 4]!]! ^ t[2560 + b[i + 5]!]! ^
      t[2304 + b[i + 6]!]! ^ t[2048 + b[i + 7]!]! ^ t[1792 + b[i + 8]!]! ^
      t[1536 + b[i + 9]!]! ^ t[1280 + b[i + 10]!]! ^ t[1024 + b[i + 11]!]! ^
      t[768 + b[i + 12]!]! ^ t[512 + b[i + 13]!]! ^ t[256 + b[i + 14]!]! ^ t[b[i + 15]!]!;
  }
  for (; i < b.length; i++) c = t[(c ^ b[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/** `node:zlib`'s CRC-32 once loaded (about ten times faster), else `undefined`. */
let nativeChecksum: ((bytes: Uint8Array, previous: number) => number) | undefined;
let loadingNative: Promise<void> | undefined;

/** Bytes of rows from which loading `node:zlib`'s CRC-32 pays for its import. */
export const NATIVE_CHECKSUM_FROM = 64 * 1024 * 1024;

/**
 * Loads `node:zlib`'s CRC-32, which {@linkcode checksum} then uses: for a storage of
 * {@linkcode NATIVE_CHECKSUM_FROM} bytes or more. Idempotent; a failed load leaves
 * {@linkcode rowsChecksum} in use.
 */
export function loadNativeChecksum(): Promise<void> {
  return loadingNative ??= import("node:zlib").then(({ crc32 }) => {
    nativeChecksum = (bytes, previous) => crc32(bytes, previous) >>> 0;
  }, () => {});
}

/** {@linkcode rowsChecksum}'s value, from `node:zlib` once {@linkcode loadNativeChecksum} has loaded it. */
export function checksum(bytes: Uint8Array, previous = 0): number {
  return nativeChecksum ? nativeChecksum(bytes, previous) : rowsChecksum(bytes, previous);
}

function fnv1a(bytes: Uint8Array, length: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < length; i++) {
    hash ^= bytes[i]!;
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** Encodes a batch, `done` or exclusion record into the {@linkcode RECORD_SIZE} bytes of `out` at `offset`. */
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
  view.setUint32(20, record.rowsCrc);
  view.setUint32(CHECKED, fnv1a(bytes, CHECKED));
}

/** Encodes the journal's header record (its `drawId` is 16 hex digits). */
export function encodeHeader(header: Omit<JournalHeader, "kind">): Uint8Array {
  const bytes = new Uint8Array(RECORD_SIZE);
  const view = new DataView(bytes.buffer);
  view.setUint8(0, RECORD_MAGIC);
  view.setUint8(1, RecordKind.HEADER);
  view.setUint16(2, header.format);
  view.setUint16(4, header.agencies);
  view.setBigUint64(8, BigInt(`0x${header.drawId}`));
  view.setUint32(16, header.createdAt);
  view.setUint32(CHECKED, fnv1a(bytes, CHECKED));
  return bytes;
}

/** A new draw id: 16 random hex digits. */
export function newDrawId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** One record, or `undefined` when it fails its checks. */
function decodeEntry(chunk: Uint8Array): JournalEntry | undefined {
  const view = new DataView(chunk.buffer, chunk.byteOffset, RECORD_SIZE);
  if (view.getUint8(0) !== RECORD_MAGIC || view.getUint32(CHECKED) !== fnv1a(chunk, CHECKED)) {
    return undefined;
  }
  const kind = view.getUint8(1);
  if (kind === RecordKind.HEADER) {
    return {
      kind,
      format: view.getUint16(2),
      agencies: view.getUint16(4),
      drawId: view.getBigUint64(8).toString(16).padStart(16, "0"),
      createdAt: view.getUint32(16),
    };
  }
  if (kind !== RecordKind.BATCH && kind !== RecordKind.DONE && kind !== RecordKind.EXCLUDE) {
    return undefined;
  }
  return {
    kind,
    agency: view.getUint16(2),
    seq: view.getUint32(4),
    bets: view.getUint16(8),
    winners: view.getUint16(10),
    end: Number(view.getBigUint64(12)),
    rowsCrc: view.getUint32(20),
  };
}

/**
 * The format a journal's first bytes claim, whatever its record size: magic and header kind
 * followed by the format (the same in every format), or `undefined` when they are not a header.
 * It tells an older journal from a damaged one.
 */
export function claimedFormat(bytes: Uint8Array): number | undefined {
  if (bytes.length < 4 || bytes[0] !== RECORD_MAGIC || bytes[1] !== RecordKind.HEADER) {
    return undefined;
  }
  return (bytes[2]! << 8) | bytes[3]!;
}

/**
 * Decodes a journal: the records up to the first that fails its checks, and whether what
 * follows is a torn tail (nothing good after it) or damage (a good record after it).
 */
export function decodeJournal(bytes: Uint8Array): DecodedJournal {
  const entries: JournalEntry[] = [];
  const whole = Math.floor(bytes.length / RECORD_SIZE);
  for (let i = 0; i < whole; i++) {
    const entry = decodeEntry(bytes.subarray(i * RECORD_SIZE, (i + 1) * RECORD_SIZE));
    if (entry !== undefined) {
      entries.push(entry);
      continue;
    }
    const tailBytes = bytes.length - i * RECORD_SIZE;
    for (let j = i + 1; j < whole; j++) {
      if (decodeEntry(bytes.subarray(j * RECORD_SIZE, (j + 1) * RECORD_SIZE))) {
        return { entries, tailBytes, corruptRecord: i };
      }
    }
    return { entries, tailBytes };
  }
  return { entries, tailBytes: bytes.length - whole * RECORD_SIZE };
}
