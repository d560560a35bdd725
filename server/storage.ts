/**
 * Bet storage, mirroring the course's helpers: `storeBets` appends rows to `bets.csv`
 * (columns agency, first_name, last_name, document, birthdate, number; minimal quoting;
 * CRLF like Python's `csv.writer`), `loadBets` streams them back.
 *
 * One writer owns the files. Batches queue up while a write is in progress and go out
 * together in the next group: one write and one fsync of `bets.csv`, then one write and
 * one fsync of the journal, then every batch of the group is acknowledged (group
 * commit). A batch is stored whole or not at all: a crash mid-write leaves bytes past the
 * journal's last record, which recovery truncates.
 *
 * @module
 */
import { stringify } from "csv-stringify/sync";
import { type Bet, type BetFields, hasWon, WINNING_NUMBER } from "../shared/bet.ts";
import { splitCsvLine } from "../shared/csv_line.ts";
import { ErrorCode, ProtocolError } from "../shared/errors.ts";
import { writeAll } from "../shared/bytes.ts";
import { type ByteSearch, byteSearch } from "./byte_search.ts";
import { decodeJournal, encodeRecord, RECORD_SIZE, RecordKind } from "./journal.ts";

/** How acknowledgements are made durable: `group` and `batch` fsync, `off` does not. */
export const FSYNC_POLICIES = ["group", "batch", "off"] as const;

/** One of {@linkcode FSYNC_POLICIES}. */
export type FsyncPolicy = typeof FSYNC_POLICIES[number];

/** Where an agency stands. */
export interface AgencyProgress {
  /** The next batch sequence number expected; every lower one is stored. */
  readonly nextSeq: number;
  /** Whether the agency declared it has sent everything. */
  readonly done: boolean;
}

/** Totals of what is stored (durably). */
export interface StoreStats {
  readonly bets: number;
  readonly batches: number;
  readonly winners: number;
  /** Bytes of `bets.csv` cut off during recovery (torn or unacknowledged rows). */
  readonly recoveredBytes: number;
}

/** Whether `storeBets` wrote the batch or had already stored it. */
export type StoreOutcome = "stored" | "duplicate";

/** Options of {@linkcode BetStore.open}. */
export interface BetStoreOptions {
  /** The CSV file, e.g. `./bets.csv`; the journal sits beside it as `<path>.journal`. */
  readonly path: string;
  /**
   * Durability of acknowledgements.
   * @default "group"
   */
  readonly fsync?: FsyncPolicy;
}

/**
 * The promise of one commit, shared by every item in it: thousands of batches a second
 * then cost one promise per group instead of a few each.
 */
type Ticket = PromiseWithResolvers<"stored">;

interface Pending {
  readonly kind: RecordKind;
  readonly agency: number;
  readonly seq: number;
  /** Bytes of rows this item added to the fill buffer. */
  readonly length: number;
  readonly bets: number;
  readonly winners: number;
  readonly ticket: Ticket;
}

interface AgencyState {
  nextSeq: number;
  done: boolean;
  readonly inflight: Map<number, Promise<unknown>>;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const LF = 0x0a;

/** Bytes read at once by {@linkcode BetStore.loadBets}. */
const LOAD_CHUNK = 1024 * 1024;

/** Options of {@linkcode BetStore.loadBets}. */
export interface LoadOptions {
  /** Keeps only rows playing this number (e.g. the winning number). */
  readonly number?: number;
}

/** Every row of `rows` (whole CRLF-terminated rows) as a bet. */
function* everyRow(rows: Uint8Array): Generator<Bet> {
  let start = 0;
  for (let lf = rows.indexOf(LF); lf !== -1; lf = rows.indexOf(LF, start)) {
    yield parseRow(decoder.decode(rows.subarray(start, lf - 1)));
    start = lf + 1;
  }
}

/** The rows of `rows` ending in the needle `,<number>\r\n` that `find` finds, as bets. */
function* rowsMatching(rows: Uint8Array, find: ByteSearch, needleLength: number): Generator<Bet> {
  for (let at = find(rows); at !== -1; at = find(rows, at + 1)) {
    const start = rows.lastIndexOf(LF, at) + 1;
    yield parseRow(decoder.decode(rows.subarray(start, at + needleLength - 2)));
  }
}

/**
 * Parses one `bets.csv` row (without its line ending).
 *
 * @param line The row.
 * @returns The bet.
 * @throws {SyntaxError} If it does not have the six columns.
 */
export function parseRow(line: string): Bet {
  const fields = splitCsvLine(line);
  if (fields === undefined || fields.length !== 6) {
    throw new SyntaxError(`Cannot parse bets.csv row "${line}": expected 6 columns`);
  }
  return {
    agency: Number(fields[0]),
    firstName: fields[1]!,
    lastName: fields[2]!,
    document: fields[3]!,
    birthdate: fields[4]!,
    number: Number(fields[5]),
  };
}

/**
 * Formats bets as `bets.csv` rows, the way the course's `store_bets` writes them.
 *
 * @param agency The agency id.
 * @param bets The bets.
 * @returns CSV text, one CRLF-terminated row per bet.
 */
export function formatBetRows(agency: number, bets: readonly BetFields[]): string {
  return stringify(
    bets.map((b) => [agency, b.firstName, b.lastName, b.document, b.birthdate, b.number]),
    // csv-stringify alone quotes only a whole CRLF; Python quotes a lone CR or LF too.
    { record_delimiter: "windows", quoted_match: /[\r\n]/ },
  );
}

/**
 * A growable byte buffer, reused across group commits so steady ingestion allocates
 * nothing per batch (per-batch buffers made the process's memory creep upward).
 */
class ByteBuffer {
  #bytes = new Uint8Array(64 * 1024);
  #length = 0;

  append(bytes: Uint8Array): void {
    if (this.#length + bytes.length > this.#bytes.length) {
      const grown = new Uint8Array(Math.max(this.#bytes.length * 2, this.#length + bytes.length));
      grown.set(this.#bytes.subarray(0, this.#length));
      this.#bytes = grown;
    }
    this.#bytes.set(bytes, this.#length);
    this.#length += bytes.length;
  }

  view(): Uint8Array {
    return this.#bytes.subarray(0, this.#length);
  }

  clear(): void {
    this.#length = 0;
  }
}

/** The bet storage: `bets.csv` plus its journal, owned by one writer. */
export class BetStore {
  readonly #path: string;
  readonly #fsync: FsyncPolicy;
  readonly #data: Deno.FsFile;
  readonly #journal: Deno.FsFile;
  readonly #agencies = new Map<number, AgencyState>();
  #size: number;
  #stats: StoreStats;
  #groups = 0;
  #queue: Pending[] = [];
  /** The ticket of the next commit in `group` mode: items queued until it starts share it. */
  #ticket: Ticket | undefined;
  /** Rows of queued items, in queue order; swapped with the spare at each commit. */
  #fill = new ByteBuffer();
  #spare = new ByteBuffer();
  #writer: Promise<void> | undefined;
  #failure: unknown;
  #closed = false;
  /**
   * Where winners may be: `[start, end)` byte ranges of `bets.csv`, flat and ascending,
   * one per stored batch that holds a bet on {@linkcode WINNING_NUMBER} (adjacent ones
   * merged). The journal records each batch's winners, so the ranges survive a restart.
   */
  readonly #winnerRanges: number[] = [];

  private constructor(
    path: string,
    fsync: FsyncPolicy,
    files: { data: Deno.FsFile; journal: Deno.FsFile; size: number },
  ) {
    this.#path = path;
    this.#fsync = fsync;
    this.#data = files.data;
    this.#journal = files.journal;
    this.#size = files.size;
    this.#stats = { bets: 0, batches: 0, winners: 0, recoveredBytes: 0 };
  }

  /**
   * Opens (creating if needed) the storage and recovers from a crash: bytes of
   * `bets.csv` past the last journal record, and torn journal records, are cut off.
   *
   * @param options The path and fsync policy.
   * @returns The store.
   */
  static async open(options: BetStoreOptions): Promise<BetStore> {
    const journalPath = `${options.path}.journal`;
    const data = await Deno.open(options.path, { read: true, append: true, create: true });
    const journal = await Deno.open(journalPath, { read: true, append: true, create: true });
    try {
      const dataSize = (await data.stat()).size;
      const journalBytes = await Deno.readFile(journalPath);
      const all = decodeJournal(journalBytes);
      // Keep records whose rows made it to disk; without fsync the data may lag the journal.
      let kept = all.length;
      while (kept > 0 && all[kept - 1]!.end > dataSize) kept--;
      const records = all.slice(0, kept);
      const hadJournal = journalBytes.length > 0;
      const committed = records.at(-1)?.end ?? (hadJournal ? 0 : dataSize);
      if (dataSize > committed) await data.truncate(committed);
      if (journalBytes.length > kept * RECORD_SIZE) await journal.truncate(kept * RECORD_SIZE);
      const store = new BetStore(options.path, options.fsync ?? "group", {
        data,
        journal,
        size: committed,
      });
      store.#replay(records, dataSize - committed);
      return store;
    } catch (error) {
      data.close();
      journal.close();
      throw error;
    }
  }

  #replay(records: ReturnType<typeof decodeJournal>, recoveredBytes: number): void {
    let bets = 0;
    let batches = 0;
    let winners = 0;
    let start = 0;
    for (const record of records) {
      const state = this.#state(record.agency);
      if (record.kind === RecordKind.DONE) {
        state.done = true;
      } else {
        state.nextSeq = Math.max(state.nextSeq, record.seq + 1);
        bets += record.bets;
        winners += record.winners;
        // Rows before the first batch (written without a journal) are searched always.
        if (batches === 0) this.#markWinners(0, record.end);
        else if (record.winners > 0) this.#markWinners(start, record.end);
        batches++;
      }
      start = record.end;
    }
    if (batches === 0) this.#markWinners(0, this.#size);
    this.#stats = { bets, batches, winners, recoveredBytes };
  }

  /** Notes that `bets.csv[start, end)` may hold winners. */
  #markWinners(start: number, end: number): void {
    const ranges = this.#winnerRanges;
    if (end <= start) return;
    if (ranges.length > 0 && ranges[ranges.length - 1] === start) ranges[ranges.length - 1] = end;
    else ranges.push(start, end);
  }

  #state(agency: number): AgencyState {
    let state = this.#agencies.get(agency);
    if (!state) {
      state = { nextSeq: 0, done: false, inflight: new Map() };
      this.#agencies.set(agency, state);
    }
    return state;
  }

  /** The file path of `bets.csv`. */
  get path(): string {
    return this.#path;
  }

  /** Totals stored so far. */
  get stats(): StoreStats {
    return this.#stats;
  }

  /** Group commits (one write and fsync each) since open: batches per group is the gain. */
  get groups(): number {
    return this.#groups;
  }

  /**
   * Where an agency stands (sequences queued for writing count as taken).
   *
   * @param agency The agency id.
   * @returns Its progress.
   */
  progress(agency: number): AgencyProgress {
    const state = this.#agencies.get(agency);
    return { nextSeq: state?.nextSeq ?? 0, done: state?.done ?? false };
  }

  /** The agencies whose `done` is stored. */
  doneAgencies(): number[] {
    return [...this.#agencies].filter(([, state]) => state.done).map(([agency]) => agency);
  }

  #check(): void {
    if (this.#closed) throw new ProtocolError(ErrorCode.SHUTTING_DOWN, "Storage is closed");
    if (this.#failure !== undefined) {
      throw new ProtocolError(ErrorCode.STORAGE_FAILED, "Storage failed earlier", {
        cause: this.#failure,
      });
    }
  }

  /**
   * Stores a batch durably (per the fsync policy), whole or not at all. Batches of an
   * agency must come in sequence order; a sequence already taken is acknowledged
   * again without storing (idempotent retries).
   *
   * @param agency The agency id.
   * @param seq The batch's sequence number.
   * @param bets The (already validated) bets.
   * @returns Once durable: whether it was stored now or before.
   * @throws {ProtocolError} `OUT_OF_ORDER` for a sequence gap, `STORAGE_FAILED` when
   * the write failed, `SHUTTING_DOWN` after close.
   */
  storeBets(agency: number, seq: number, bets: readonly BetFields[]): Promise<StoreOutcome> {
    let winners = 0;
    for (const bet of bets) if (hasWon(bet)) winners++;
    const rows = encoder.encode(formatBetRows(agency, bets));
    return this.storeRows(agency, seq, { rows, count: bets.length, winners });
  }

  /**
   * Like {@linkcode BetStore.storeBets}, for rows already formatted (see
   * `batch_rows.ts`).
   *
   * @param agency The agency id.
   * @param seq The batch's sequence number.
   * @param batch The CSV rows, how many bets they hold and how many win.
   * @returns Once durable: whether it was stored now or before.
   */
  storeRows(
    agency: number,
    seq: number,
    batch: { readonly rows: Uint8Array; readonly count: number; readonly winners: number },
  ): Promise<StoreOutcome> {
    this.#check();
    const state = this.#state(agency);
    if (seq < state.nextSeq) {
      const inflight = state.inflight.get(seq);
      return inflight ? inflight.then(() => "duplicate") : Promise.resolve("duplicate");
    }
    if (seq > state.nextSeq) {
      throw new ProtocolError(
        ErrorCode.OUT_OF_ORDER,
        `Batch ${seq} of agency ${agency} is out of order: expected ${state.nextSeq}`,
      );
    }
    if (state.done) {
      throw new ProtocolError(ErrorCode.UNEXPECTED_MESSAGE, `Agency ${agency} is already done`);
    }
    state.nextSeq = seq + 1;
    const stored = this.#enqueue(
      RecordKind.BATCH,
      agency,
      seq,
      batch.rows,
      batch.count,
      batch.winners,
    );
    state.inflight.set(seq, stored);
    return stored;
  }

  /**
   * Records durably that an agency has sent everything.
   *
   * @param agency The agency id.
   * @returns Once durable.
   */
  markDone(agency: number): Promise<void> {
    this.#check();
    const state = this.#state(agency);
    if (state.done) return this.flush();
    state.done = true;
    return this.#enqueue(RecordKind.DONE, agency, 0, new Uint8Array(0), 0, 0).then(() => {});
  }

  #enqueue(
    kind: RecordKind,
    agency: number,
    seq: number,
    rows: Uint8Array,
    bets: number,
    winners: number,
  ): Promise<"stored"> {
    let ticket = this.#ticket;
    if (ticket === undefined) {
      ticket = Promise.withResolvers<"stored">();
      // Its callers handle a failure; this only keeps a ticket nobody awaits from being unhandled.
      ticket.promise.catch(() => {});
      if (this.#fsync !== "batch") this.#ticket = ticket;
    }
    // Rows are copied at once: callers may reuse their buffer (batch_rows.ts does).
    this.#fill.append(rows);
    this.#queue.push({ kind, agency, seq, length: rows.length, bets, winners, ticket });
    this.#writer ??= this.#drain();
    return ticket.promise;
  }

  async #drain(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        const group = this.#fsync === "batch" ? this.#queue.splice(0, 1) : this.#queue.splice(0);
        // Items queued from now on wait for the next commit, under a new ticket.
        this.#ticket = undefined;
        try {
          await this.#commit(group);
          for (const item of group) {
            if (item.kind === RecordKind.BATCH) this.#state(item.agency).inflight.delete(item.seq);
            item.ticket.resolve("stored");
          }
        } catch (error) {
          this.#failure = error;
          const failed = new ProtocolError(ErrorCode.STORAGE_FAILED, "Cannot store bets", {
            cause: error,
          });
          for (const item of [...group, ...this.#queue.splice(0)]) {
            if (item.kind === RecordKind.BATCH) this.#state(item.agency).inflight.delete(item.seq);
            item.ticket.reject(failed);
          }
        }
      }
    } finally {
      // Cleared in the same turn the queue is found empty (no await in between): a batch
      // queued by a session woken by this group's acks must start a new drain, not wait
      // behind one that has finished.
      this.#writer = undefined;
    }
  }

  async #commit(group: readonly Pending[]): Promise<void> {
    let length = 0;
    for (const item of group) length += item.length;
    // The group's rows lead the fill buffer; what follows (queued after the group, in
    // "batch" mode) moves to the spare, which becomes the fill for rows arriving meanwhile.
    const written = this.#fill;
    this.#fill = this.#spare;
    this.#fill.append(written.view().subarray(length));
    this.#spare = written;
    const data = written.view().subarray(0, length);
    const journal = new Uint8Array(group.length * RECORD_SIZE);
    let offset = 0;
    let bets = 0;
    let winners = 0;
    let batches = 0;
    group.forEach((item, i) => {
      offset += item.length;
      encodeRecord({ ...item, end: this.#size + offset }, journal, i * RECORD_SIZE);
      bets += item.bets;
      winners += item.winners;
      if (item.kind === RecordKind.BATCH) batches++;
    });
    if (length > 0) {
      await writeAll(this.#data, data);
      if (this.#fsync !== "off") await this.#data.syncData();
    }
    // The journal goes second: a record never points past rows that are not on disk.
    await writeAll(this.#journal, journal);
    if (this.#fsync !== "off") await this.#journal.syncData();
    let rowsAt = this.#size;
    for (const item of group) {
      if (item.winners > 0) this.#markWinners(rowsAt, rowsAt + item.length);
      rowsAt += item.length;
    }
    this.#size += length;
    written.clear();
    const s = this.#stats;
    this.#stats = {
      bets: s.bets + bets,
      batches: s.batches + batches,
      winners: s.winners + winners,
      recoveredBytes: s.recoveredBytes,
    };
    this.#groups++;
  }

  /** Resolves once everything queued so far is written. */
  async flush(): Promise<void> {
    while (this.#writer) await this.#writer;
  }

  /**
   * Streams stored bets back (the course's `load_bets`), in storage order, reading the
   * file in 1 MiB chunks: memory stays flat whatever its size. With `number`, only rows
   * playing that number are returned, found by a byte search for `,<number>\r\n` (a
   * row's last field; names cannot hold a line break) on the bytes as read, so a draw
   * over millions of rows decodes and builds objects only for the winners. For the
   * winning number the search covers only the batches the journal says hold a winner.
   *
   * @param options `number` keeps only rows playing it.
   * @returns The bets.
   * @throws {SyntaxError} If a row is not one this store wrote.
   */
  async *loadBets(options: LoadOptions = {}): AsyncGenerator<Bet> {
    await this.flush();
    const needle = options.number === undefined
      ? undefined
      : encoder.encode(`,${options.number}\r\n`);
    const find = needle && byteSearch(needle);
    const ranges = options.number === WINNING_NUMBER ? this.#winnerRanges : [0, this.#size];
    let range = 0;
    using file = await Deno.open(this.#path, { read: true });
    const buf = new Uint8Array(LOAD_CHUNK);
    let filled = 0;
    let remaining = this.#size;
    /** File offset of `buf[0]`. */
    let offset = 0;
    while (remaining > 0) {
      const n = await file.read(buf.subarray(filled, Math.min(buf.length, filled + remaining)));
      if (n === null) break;
      filled += n;
      remaining -= n;
      // Whole rows only: the tail after the last line break waits for the next chunk.
      const whole = buf.lastIndexOf(LF, filled - 1) + 1;
      if (whole === 0 && filled === buf.length) {
        throw new SyntaxError(
          `Cannot load bets: a row of ${this.#path} exceeds ${LOAD_CHUNK} bytes`,
        );
      }
      const rows = buf.subarray(0, whole);
      if (!find) {
        yield* everyRow(rows);
      } else {
        // The ranges overlapping this chunk, cut to it (both end at row boundaries); a range
        // that goes on past the chunk is kept for the next one.
        const chunkEnd = offset + whole;
        for (; range < ranges.length && ranges[range]! < chunkEnd; range += 2) {
          const start = Math.max(ranges[range]!, offset);
          const end = Math.min(ranges[range + 1]!, chunkEnd);
          if (start < end) {
            yield* rowsMatching(rows.subarray(start - offset, end - offset), find, needle!.length);
          }
          if (ranges[range + 1]! > chunkEnd) break;
        }
      }
      buf.copyWithin(0, whole, filled);
      filled -= whole;
      offset += whole;
    }
  }

  /** Writes what is queued, then closes both files; idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.flush();
    this.#data.close();
    this.#journal.close();
  }

  /** Same as {@linkcode BetStore.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
