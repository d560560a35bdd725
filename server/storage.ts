/**
 * Bet storage, mirroring the course's helpers: `storeBets` appends rows to `bets.csv`
 * (see `bets_csv.ts` for the format), `loadBets` streams them back.
 *
 * One server owns a storage, and the storage knows what it is: `open_storage.ts` takes
 * its lock and checks it. Its journal (`<path>.journal`, see `journal.ts`) names the draw
 * and accounts for every byte of `bets.csv`; the store rebuilds from it where each
 * agency's batches are, so a retried sequence is compared with what was stored.
 *
 * One writer owns the files. Batches queue up while a write is in progress and go out
 * together in the next group: one write and one fsync of `bets.csv`, then one write and
 * one fsync of the journal, then each agency's watchers hear how far it is durable
 * (group commit). A batch is stored whole or not at all.
 *
 * @module
 */
import { type Bet, type BetFields, WINNING_NUMBER } from "../shared/bet.ts";
import { ErrorCode, ProtocolError, StorageError } from "../shared/errors.ts";
import { writeAll } from "../shared/bytes.ts";
import { type BetRows, betRows, parseRow } from "./bets_csv.ts";
import { type ByteSearch, byteSearch } from "./byte_search.ts";
import { encodeRecord, type JournalRecord, RECORD_SIZE, RecordKind } from "./journal.ts";
import {
  freshDraw,
  type OpenedStorage,
  openStorage,
  type StorageFiles,
  type StorageOpening,
} from "./open_storage.ts";

/** How acknowledgements are made durable: `group` and `batch` fsync, `off` does not. */
export const FSYNC_POLICIES = ["group", "batch", "off"] as const;

/** One of {@linkcode FSYNC_POLICIES}. */
export type FsyncPolicy = typeof FSYNC_POLICIES[number];

/**
 * Where an agency stands, durably: the next batch sequence number expected (every lower
 * one is durable), whether its DONE is, and whether the operator closed the draw without it.
 */
export interface AgencyProgress {
  readonly nextSeq: number;
  readonly done: boolean;
  readonly excluded: boolean;
}

/** Totals of what is durably stored for the agencies the draw counts. */
export interface StoreStats {
  readonly bets: number;
  readonly batches: number;
  readonly winners: number;
}

/** A failed write or fsync of `path`, as {@linkcode BetStoreOptions.onFailure} hears of it. */
export interface StorageFailure {
  readonly path: string;
  readonly error: unknown;
  /**
   * Whether the store goes on by itself (a failed write is undone and the next batch
   * tried), or refuses every batch until a restart (a failed fsync, or undo).
   */
  readonly recovers: boolean;
}

/** Options of {@linkcode BetStore.open}. */
export interface BetStoreOptions {
  /** The CSV file, e.g. `./bets.csv`; `<path>.journal` and `<path>.lock` sit beside it. */
  readonly path: string;
  /** The agencies of the draw (ids 1..agencies); a stored draw must have been made for as many. */
  readonly agencies: number;
  /** Durability of acknowledgements: `group` unless given. */
  readonly fsync?: FsyncPolicy;
  /** Called once when writing starts failing, and again if the failure turns permanent. */
  readonly onFailure?: (failure: StorageFailure) => void;
  /** Called when a write succeeds again after a failure the store recovers from. */
  readonly onRecovery?: () => void;
}

/** What a session hears about its agency's batches, explicitly, as groups commit. */
export interface BatchWatcher {
  /** Every batch of the agency below `nextSeq` is durable. */
  durable(nextSeq: number): void;
  /** The queued batches of the agency from `fromSeq` on were not stored. */
  failed(fromSeq: number, error: ProtocolError): void;
}

/**
 * How the store took a batch: `queued` (its agency's watchers hear when it is durable),
 * or `retry` for a sequence already taken, whose `same` resolves once the first is durable
 * and holds the same rows, and rejects with `CONFLICT` (or `STORAGE_FAILED`) otherwise.
 */
export type StoreReceipt =
  | { readonly kind: "queued" }
  | { readonly kind: "retry"; readonly same: Promise<void> };

const QUEUED: StoreReceipt = { kind: "queued" };
const NO_ROWS = new Uint8Array(0);

/** One commit's promise, shared by its items: one promise per group, not a few per batch. */
type Ticket = PromiseWithResolvers<void>;

/** A queued record, with the bytes of rows it added to the fill buffer. */
interface Pending extends Omit<JournalRecord, "end"> {
  readonly length: number;
  readonly ticket: Ticket;
}

/** What the store knows of one agency. */
class AgencyState {
  /** Sequences taken: durable or queued. */
  nextSeq = 0;
  /** Sequences durable, as many as its durable batches. */
  durableSeq = 0;
  /** DONE queued or durable. */
  done = false;
  durableDone = false;
  excluded = false;
  /** Durable totals. */
  bets = 0;
  winners = 0;
  /** `[start, end)` in `bets.csv` of durable batch `seq` at `2·seq`, `2·seq+1`. */
  spans = new Float64Array(64);
  readonly watchers = new Set<BatchWatcher>();
}

/** The refusal of an agency the operator closed the draw without. */
export function leftOut(agency: number): ProtocolError {
  return new ProtocolError(
    ErrorCode.INVALID_AGENCY,
    `Agency ${agency} was left out of this draw by the operator (SERVER_EXCLUDED_AGENCIES)`,
  );
}

/** A `STORAGE_FAILED` refusal: `Cannot store bets <why>`. */
function cannotStore(why: string, cause?: unknown): ProtocolError {
  const options = cause === undefined ? undefined : { cause };
  return new ProtocolError(ErrorCode.STORAGE_FAILED, `Cannot store bets ${why}`, options);
}

/** A commit's write or fsync failed. */
class CommitFailure extends Error {
  constructor(readonly path: string, readonly during: "write" | "sync", cause: unknown) {
    super(`Cannot ${during} ${path}`, { cause });
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const LF = 0x0a;

/** Bytes read at once from `bets.csv`. */
const LOAD_CHUNK = 1024 * 1024;

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

/** Whether two byte arrays hold the same bytes. */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** `[start, end)` byte ranges of `bets.csv`, ascending and flat: `[s0, e0, s1, e1, …]`. */
type ByteRanges = number[];

/** Adds `[start, end)` to `ranges`, joining it to the last range when the two touch. */
function addRange(ranges: ByteRanges, start: number, end: number): void {
  if (ranges.at(-1) === start) ranges[ranges.length - 1] = end;
  else ranges.push(start, end);
}

/** Reads `[start, end)` of a file. */
async function readRange(path: string, start: number, end: number): Promise<Uint8Array> {
  using file = await Deno.open(path, { read: true });
  await file.seek(start, Deno.SeekMode.Start);
  const bytes = new Uint8Array(end - start);
  for (let filled = 0; filled < bytes.length;) {
    const n = await file.read(bytes.subarray(filled));
    if (n === null) throw new RangeError(`Cannot read ${path}: it ends before byte ${end}`);
    filled += n;
  }
  return bytes;
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
  readonly #options: BetStoreOptions;
  readonly #files: StorageFiles;
  /** Index = agency id; index 0 unused. */
  readonly #agencies: AgencyState[];
  readonly #opening: StorageOpening;
  /** Durable size of `bets.csv` and of the journal. */
  #size = 0;
  #journalSize = 0;
  #groups = 0;
  #queue: Pending[] = [];
  /** The ticket of the next commit in `group` mode: items queued until it starts share it. */
  #ticket: Ticket | undefined;
  /** The ticket of the last item queued: once it settles, every earlier one has. */
  #latest: Promise<void> = Promise.resolve();
  /** Rows of queued items, in queue order; swapped with the spare at each commit. */
  #fill = new ByteBuffer();
  #spare = new ByteBuffer();
  #writer: Promise<void> | undefined;
  /** Set while a failed write is being undone: nothing is queued meanwhile. */
  #undoing = false;
  /** Set when writes fail; cleared by the next successful commit. */
  #failing = false;
  /** A failure the store cannot recover from: every later batch is refused. */
  #failure: unknown;
  #closed = false;
  /** The batches holding a winner: rebuilt from the journal, which records their winners. */
  readonly #winnerRanges: ByteRanges = [];

  private constructor(options: BetStoreOptions, opened: OpenedStorage) {
    this.#options = options;
    this.#path = options.path;
    this.#fsync = options.fsync ?? "group";
    this.#agencies = Array.from({ length: options.agencies + 1 }, () => new AgencyState());
    this.#files = opened.files;
    this.#opening = opened.opening;
    this.#journalSize = opened.journalSize;
    for (const record of opened.records) {
      this.#apply(record, record.end - this.#size);
      this.#size = record.end;
    }
  }

  /**
   * Opens the storage, creating a new draw when there is none (see `openStorage`), and
   * rebuilds each agency's state from the journal.
   *
   * @throws {StorageError} When `openStorage` refuses the storage.
   */
  static async open(options: BetStoreOptions): Promise<BetStore> {
    const sync = (options.fsync ?? "group") !== "off";
    const opened = await openStorage({ path: options.path, agencies: options.agencies, sync });
    return new BetStore(options, opened);
  }

  /** Applies a durable record of `length` bytes of rows to its agency. */
  #apply(record: Omit<JournalRecord, "end">, length: number): AgencyState {
    const { kind, seq, bets, winners } = record;
    const state = this.#agencies[record.agency]!;
    if (kind === RecordKind.BATCH) {
      if (state.spans.length < 2 * seq + 2) {
        const grown = new Float64Array(state.spans.length * 2);
        grown.set(state.spans);
        state.spans = grown;
      }
      state.spans[2 * seq] = this.#size;
      state.spans[2 * seq + 1] = this.#size + length;
      state.durableSeq = seq + 1;
      // Sequences queued behind this one stay taken.
      state.nextSeq = Math.max(state.nextSeq, state.durableSeq);
      state.bets += bets;
      state.winners += winners;
      if (winners > 0) addRange(this.#winnerRanges, this.#size, this.#size + length);
    } else if (kind === RecordKind.DONE) {
      state.done = state.durableDone = true;
    } else {
      state.excluded = true;
    }
    return state;
  }

  /** What opening found: the draw's id, whether it is new, what was cut. */
  get opening(): StorageOpening {
    return this.#opening;
  }

  /** Durable totals of the agencies the draw counts (excluded agencies left out). */
  get stats(): StoreStats {
    const stats = { bets: 0, batches: 0, winners: 0 };
    for (const { excluded, bets, durableSeq, winners } of this.#agencies) {
      if (excluded) continue;
      stats.bets += bets;
      stats.batches += durableSeq;
      stats.winners += winners;
    }
    return stats;
  }

  /** Group commits (one write and fsync each) since open: batches per group is the gain. */
  get groups(): number {
    return this.#groups;
  }

  /** Where an agency stands durably, what `WELCOME` reports; all zero outside the draw. */
  progress(agency: number): AgencyProgress {
    const { durableSeq = 0, durableDone = false, excluded = false } = this.#agencies[agency] ?? {};
    return { nextSeq: durableSeq, done: durableDone, excluded };
  }

  /** The agencies whose DONE is durable, ascending. */
  doneAgencies(): number[] {
    return this.#ids((state) => state.durableDone);
  }

  /** The agencies the operator closed the draw without, ascending. */
  excludedAgencies(): number[] {
    return this.#ids((state) => state.excluded);
  }

  #ids(test: (state: AgencyState) => boolean): number[] {
    const ids: number[] = [];
    for (let agency = 1; agency < this.#agencies.length; agency++) {
      if (test(this.#agencies[agency]!)) ids.push(agency);
    }
    return ids;
  }

  /** Tells `watcher` as each of the agency's batches becomes durable (or fails), until disposed. */
  watch(agency: number, watcher: BatchWatcher): Disposable {
    const watchers = this.#agencies[agency]?.watchers;
    watchers?.add(watcher);
    return { [Symbol.dispose]: () => watchers?.delete(watcher) };
  }

  #check(): void {
    if (this.#closed) throw new ProtocolError(ErrorCode.SHUTTING_DOWN, "Storage is closed");
    if (this.#failure !== undefined) {
      throw cannotStore("because the storage failed; the server needs a restart", this.#failure);
    }
    if (this.#undoing) {
      throw cannotStore("now, a failed write is being undone; send them again later");
    }
  }

  #agency(agency: number): AgencyState {
    const state = this.#agencies[agency];
    if (agency === 0 || state === undefined) {
      throw new ProtocolError(
        ErrorCode.INVALID_AGENCY,
        `Agency ${agency} is not part of this draw (agencies 1 to ${this.#options.agencies})`,
      );
    }
    if (state.excluded) throw leftOut(agency);
    return state;
  }

  /** Stores validated bets as batch `seq` (the course's `store_bets`); see `storeRows`. */
  storeBets(agency: number, seq: number, bets: readonly BetFields[]): StoreReceipt {
    return this.storeRows(agency, seq, betRows(agency, bets));
  }

  /**
   * Queues the rows of an agency's batch `seq` (from `batch_rows.ts`), whole or not at all.
   * Batches come in sequence order; a sequence taken is a retry, of the same rows or none.
   *
   * @throws {ProtocolError} `OUT_OF_ORDER` for a sequence gap, `UNEXPECTED_MESSAGE`
   * after the agency's DONE, `INVALID_AGENCY` for an agency outside the draw,
   * `STORAGE_FAILED` while the storage fails, `SHUTTING_DOWN` after close.
   */
  storeRows(agency: number, seq: number, batch: BetRows): StoreReceipt {
    this.#check();
    const state = this.#agency(agency);
    if (seq < state.nextSeq) return this.#retry(agency, state, seq, batch);
    if (seq > state.nextSeq) {
      throw new ProtocolError(
        ErrorCode.OUT_OF_ORDER,
        `Batch ${seq} of agency ${agency} is out of order, expected ${state.nextSeq}`,
      );
    }
    if (state.done) {
      throw new ProtocolError(ErrorCode.UNEXPECTED_MESSAGE, `Agency ${agency} is already done`);
    }
    state.nextSeq = seq + 1;
    this.#enqueue(RecordKind.BATCH, agency, seq, batch.rows, batch.count, batch.winners);
    return QUEUED;
  }

  /** A sequence already taken: once the first is durable, the same rows or a conflict. */
  #retry(agency: number, state: AgencyState, seq: number, batch: BetRows): StoreReceipt {
    // The caller may reuse its buffer (batch_rows.ts does); retries are rare.
    const rows = batch.rows.slice();
    const compare = async (): Promise<void> => {
      if (seq >= state.durableSeq) {
        throw new ProtocolError(
          ErrorCode.STORAGE_FAILED,
          `Batch ${seq} of agency ${agency} was not stored (the storage failed); send it again`,
        );
      }
      const stored = await readRange(this.#path, state.spans[2 * seq]!, state.spans[2 * seq + 1]!);
      if (sameBytes(stored, rows)) return;
      let storedBets = 0;
      for (const byte of stored) if (byte === LF) storedBets++;
      throw new ProtocolError(
        ErrorCode.CONFLICT,
        `Batch ${seq} of agency ${agency} is not the batch stored under that sequence ` +
          `(${storedBets} bet${storedBets === 1 ? "" : "s"} stored, ${batch.count} sent), so ` +
          "this agency's bets were " +
          `already loaded from other data; ${freshDraw(this.#path)}`,
      );
    };
    const same = seq < state.durableSeq ? compare() : this.#latest.then(compare, compare);
    return { kind: "retry", same };
  }

  /** Records durably that an agency has sent everything; resolves once durable. */
  markDone(agency: number): Promise<void> {
    this.#check();
    const state = this.#agency(agency);
    if (state.done) return this.flush();
    state.done = true;
    return this.#enqueue(RecordKind.DONE, agency);
  }

  /**
   * Closes the draw without an agency, durably (`SERVER_EXCLUDED_AGENCIES`): its bets stay
   * in `bets.csv` but leave the totals, and it is refused. `false` if it already was.
   *
   * @throws {StorageError} When the agency is already done (its bets count).
   */
  async exclude(agency: number): Promise<boolean> {
    this.#check();
    // The configuration holds the ids to 1..agencies.
    const state = this.#agencies[agency]!;
    if (state.excluded) return false;
    if (state.done) {
      throw new StorageError(
        this.#path,
        `SERVER_EXCLUDED_AGENCIES names agency ${agency}, which has already sent all its bets ` +
          "(its DONE is stored), so the draw counts them; remove it from the setting",
      );
    }
    state.excluded = true;
    await this.#enqueue(RecordKind.EXCLUDE, agency);
    return true;
  }

  #enqueue(
    kind: JournalRecord["kind"],
    agency: number,
    seq = 0,
    rows: Uint8Array = NO_ROWS,
    bets = 0,
    winners = 0,
  ): Promise<void> {
    let ticket = this.#ticket;
    if (ticket === undefined) {
      ticket = Promise.withResolvers<void>();
      // Its callers handle a failure; this only keeps a ticket nobody awaits from being unhandled.
      ticket.promise.catch(() => {});
      if (this.#fsync !== "batch") this.#ticket = ticket;
      this.#latest = ticket.promise;
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
        } catch (error) {
          if (!(error instanceof CommitFailure)) throw error;
          await this.#fail(group, error);
          continue;
        }
        let resolved: Ticket | undefined;
        for (const item of group) {
          if (item.ticket === resolved) continue;
          resolved = item.ticket;
          resolved.resolve();
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
    const files = this.#files;
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
    group.forEach((item, i) => {
      offset += item.length;
      encodeRecord({ ...item, end: this.#size + offset }, journal, i * RECORD_SIZE);
    });
    if (length > 0) await this.#write(files.data, this.#path, data);
    // The journal goes second: a record never points past rows that are not on disk.
    await this.#write(files.journal, `${this.#path}.journal`, journal);
    written.clear();
    this.#journalSize += journal.length;
    const touched = new Set<AgencyState>();
    for (const item of group) {
      touched.add(this.#apply(item, item.length));
      this.#size += item.length;
    }
    this.#groups++;
    if (this.#failing) {
      this.#failing = false;
      this.#options.onRecovery?.();
    }
    // Told in a microtask: the writer first starts the next group's write, and the acks
    // (logging, encoding, sending) are made while the disk works.
    queueMicrotask(() => {
      for (const state of touched) {
        for (const watcher of state.watchers) watcher.durable(state.durableSeq);
      }
    });
  }

  /** Writes every byte, then fsyncs per the policy; says which step failed. */
  async #write(file: Deno.FsFile, path: string, bytes: Uint8Array): Promise<void> {
    try {
      await writeAll(file, bytes);
    } catch (error) {
      throw new CommitFailure(path, "write", error);
    }
    if (this.#fsync === "off") return;
    try {
      await file.syncData();
    } catch (error) {
      throw new CommitFailure(path, "sync", error);
    }
  }

  /**
   * A commit failed: every queued item is refused, its agency set back to what is durable.
   * A failed write is undone (both files cut to their durable size); a failed fsync, or
   * undo, is for good (the kernel may have dropped the unwritten pages: only a restart,
   * which checks the files, knows what is on disk).
   */
  async #fail(group: readonly Pending[], failure: CommitFailure): Promise<void> {
    this.#undoing = true;
    const items = [...group, ...this.#queue.splice(0)];
    this.#ticket = undefined;
    this.#fill.clear();
    this.#spare.clear();
    const touched = new Set(items.map((item) => this.#agencies[item.agency]!));
    for (const state of touched) {
      state.nextSeq = state.durableSeq;
      state.done = state.durableDone;
    }
    let recovers = failure.during === "write";
    if (recovers) {
      try {
        await this.#files.data.truncate(this.#size);
        await this.#files.journal.truncate(this.#journalSize);
      } catch {
        recovers = false;
      }
    }
    this.#undoing = false;
    if (!recovers) this.#failure = failure.cause;
    // Reported before anything is refused, so the log says why first.
    if (!this.#failing || !recovers) {
      this.#failing = true;
      this.#options.onFailure?.({ path: failure.path, error: failure.cause, recovers });
    }
    const next = recovers ? "send them again later" : "the server needs a restart";
    const refused = cannotStore(`because writing ${failure.path} failed; ${next}`, failure.cause);
    let rejected: Ticket | undefined;
    for (const item of items) {
      if (item.ticket === rejected) continue;
      rejected = item.ticket;
      rejected.reject(refused);
    }
    for (const state of touched) {
      for (const watcher of state.watchers) watcher.failed(state.durableSeq, refused);
    }
  }

  /** Resolves once everything queued so far is written (or refused). */
  async flush(): Promise<void> {
    while (this.#writer) await this.#writer;
  }

  /**
   * Streams stored bets back in order (the course's `load_bets`), reading 1 MiB at a time.
   * With `number`, only rows playing it, found by a byte search for `,<number>\r\n` (names
   * hold no line break) on the bytes as read: a draw decodes only the winners, searching
   * (for the winning number) only the batches the journal says hold one.
   *
   * @throws {SyntaxError} If a row is not one this store wrote.
   */
  async *loadBets(number?: number): AsyncGenerator<Bet> {
    await this.flush();
    const needle = number === undefined ? undefined : encoder.encode(`,${number}\r\n`);
    const find = needle && byteSearch(needle);
    const ranges: ByteRanges = number === WINNING_NUMBER ? this.#winnerRanges : [0, this.#size];
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
      if (!find) yield* everyRow(rows);
      // The ranges overlapping this chunk, cut to it (both end at row boundaries); a range
      // that goes on past the chunk is kept for the next one.
      const chunkEnd = offset + whole;
      for (; find && range < ranges.length; range += 2) {
        const [rangeStart, rangeEnd] = [ranges[range]!, ranges[range + 1]!];
        if (rangeStart >= chunkEnd) break;
        const start = Math.max(rangeStart, offset);
        const end = Math.min(rangeEnd, chunkEnd);
        if (start < end) {
          yield* rowsMatching(rows.subarray(start - offset, end - offset), find, needle!.length);
        }
        if (rangeEnd > chunkEnd) break;
      }
      buf.copyWithin(0, whole, filled);
      filled -= whole;
      offset += whole;
    }
  }

  /** Writes what is queued, then closes the files and releases the lock; idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.flush();
    const files = this.#files;
    files.data.close();
    files.journal.close();
    // Last: no other server may open the storage while this one still has a file open.
    files.lock.close();
  }

  /** Same as {@linkcode BetStore.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
