/**
 * Bet storage, mirroring the course's helpers: `storeBets` appends rows to `bets.csv`
 * (see `bets_csv.ts` for the format), `loadBets` streams them back.
 *
 * One server owns a storage, and the storage knows what it is: `open_storage.ts` takes
 * its lock and checks it. Its journal (`<path>.journal`, see `journal.ts`) names the draw
 * and accounts for every byte of `bets.csv`, with a checksum of each batch's rows.
 * {@linkcode BetStore} composes four parts of one job each, under `storage/`: the agencies'
 * bookkeeping (`agencies.ts`), the group-commit writer with its undo (`group_commit.ts`),
 * the retry comparison (`retry.ts`) and the read path with the winners index (`reader.ts`).
 * Failures are {@linkcode StorageError}s whose `kind` says what went wrong in the
 * storage's words; the session maps them to wire codes.
 *
 * @module
 */
import { type Bet, type BetFields, WINNING_NUMBER } from "../shared/bet.ts";
import { StorageError } from "../shared/errors.ts";
import { type BetRows, betRows } from "./bets_csv.ts";
import { RecordKind } from "./journal.ts";
import { type OpenedStorage, openStorage, type StorageOpening } from "./open_storage.ts";
import {
  Agencies,
  type AgencyProgress,
  type AgencyState,
  type BatchWatcher,
  type StoreStats,
} from "./storage/agencies.ts";
import {
  type Committed,
  FSYNC_POLICIES,
  type FsyncPolicy,
  GroupCommit,
  type StorageFailure,
} from "./storage/group_commit.ts";
import { BatchReader } from "./storage/reader.ts";
import { compareRetry } from "./storage/retry.ts";

export { leftOut } from "./storage/agencies.ts";
export { FSYNC_POLICIES };
export type { AgencyProgress, BatchWatcher, FsyncPolicy, StorageFailure, StoreStats };

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

/**
 * How the store took a batch: `queued` (its agency's watchers hear when it is durable),
 * or `retry` for a sequence already taken, whose `same` resolves once the first is durable
 * and holds the same rows, and rejects with a `conflict` {@linkcode StorageError} (or another
 * kind when the storage failed) otherwise.
 */
export type StoreReceipt =
  | { readonly kind: "queued" }
  | { readonly kind: "retry"; readonly same: Promise<void> };

const QUEUED: StoreReceipt = { kind: "queued" };

/** The bet storage: `bets.csv` plus its journal, owned by one writer. */
export class BetStore {
  readonly #path: string;
  readonly #files: OpenedStorage["files"];
  readonly #opening: StorageOpening;
  readonly #agencies: Agencies;
  readonly #reader: BatchReader;
  readonly #writer: GroupCommit;
  #closed = false;

  private constructor(options: BetStoreOptions, opened: OpenedStorage) {
    this.#path = options.path;
    this.#files = opened.files;
    this.#opening = opened.opening;
    this.#agencies = new Agencies(options.path, options.agencies);
    this.#reader = new BatchReader(opened.files.reader, options.path);
    let size = 0;
    for (const record of opened.records) {
      this.#apply({ ...record, start: size });
      size = record.end;
    }
    this.#writer = new GroupCommit({
      files: opened.files,
      path: options.path,
      fsync: options.fsync ?? "group",
      size,
      journalSize: opened.journalSize,
      onCommitted: (group) => this.#committed(group),
      onRefused: (agencies, error) => {
        for (const state of this.#agencies.rollBack(agencies)) {
          for (const watcher of state.watchers) watcher.failed(state.durableSeq, error);
        }
      },
      ...(options.onFailure ? { onFailure: options.onFailure } : {}),
      ...(options.onRecovery ? { onRecovery: options.onRecovery } : {}),
    });
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

  /** Applies a durable record to its agency and, for a batch, to the reader's index. */
  #apply(record: Committed): AgencyState {
    const { kind, seq, bets, winners } = record;
    const state = this.#agencies.get(record.agency)!;
    if (kind === RecordKind.BATCH) {
      state.batches[seq] = this.#reader.add(record.start, record.end, record.rowsCrc, winners > 0);
      state.durableSeq = seq + 1;
      // Sequences queued behind this one stay taken.
      state.nextSeq = Math.max(state.nextSeq, state.durableSeq);
      state.bets += bets;
      state.winners += winners;
    } else if (kind === RecordKind.DONE) {
      state.done = state.durableDone = true;
    } else {
      state.excluded = true;
    }
    return state;
  }

  #committed(group: readonly Committed[]): void {
    const touched = new Set<AgencyState>();
    for (const record of group) touched.add(this.#apply(record));
    // Told in a microtask: the writer first starts the next group's write, and the acks
    // (logging, encoding, sending) are made while the disk works.
    queueMicrotask(() => {
      for (const state of touched) {
        for (const watcher of state.watchers) watcher.durable(state.durableSeq);
      }
    });
  }

  /** What opening found: the draw's id, whether it is new, what was cut. */
  get opening(): StorageOpening {
    return this.#opening;
  }

  /** Durable totals of the agencies the draw counts (excluded agencies left out). */
  get stats(): StoreStats {
    return this.#agencies.stats();
  }

  /** Group commits (one write and fsync each) since open: batches per group is the gain. */
  get groups(): number {
    return this.#writer.groups;
  }

  /** Where an agency stands durably, what `WELCOME` reports; all zero outside the draw. */
  progress(agency: number): AgencyProgress {
    return this.#agencies.progress(agency);
  }

  /** The agencies whose DONE is durable, ascending. */
  doneAgencies(): number[] {
    return this.#agencies.ids((state) => state.durableDone);
  }

  /** The agencies the operator closed the draw without, ascending. */
  excludedAgencies(): number[] {
    return this.#agencies.ids((state) => state.excluded);
  }

  /** Tells `watcher` as each of the agency's batches becomes durable (or fails), until disposed. */
  watch(agency: number, watcher: BatchWatcher): Disposable {
    const watchers = this.#agencies.get(agency)?.watchers;
    watchers?.add(watcher);
    return { [Symbol.dispose]: () => watchers?.delete(watcher) };
  }

  /** Stores validated bets as batch `seq` (the course's `store_bets`); see `storeRows`. */
  storeBets(agency: number, seq: number, bets: readonly BetFields[]): StoreReceipt {
    return this.storeRows(agency, seq, betRows(agency, bets));
  }

  /**
   * Queues the rows of an agency's batch `seq` (from `batch_rows.ts`), whole or not at all.
   * Batches come in sequence order; a sequence taken is a retry, of the same rows or none.
   *
   * @throws {StorageError} `outOfOrder` for a sequence gap, `afterDone` after the
   * agency's DONE, `unknownAgency` or `excluded` for an agency outside the draw, `failed`
   * or `busy` while the storage fails, `closed` after close.
   */
  storeRows(agency: number, seq: number, batch: BetRows): StoreReceipt {
    this.#writer.check();
    const state = this.#agencies.active(agency);
    if (this.#agencies.take(agency, state, seq)) {
      this.#writer.enqueue(RecordKind.BATCH, agency, seq, batch.rows, {
        bets: batch.count,
        winners: batch.winners,
      });
      return QUEUED;
    }
    // The caller may reuse its buffer (batch_rows.ts does); retries are rare.
    const retry = { path: this.#path, agency, seq, rows: batch.rows.slice(), count: batch.count };
    const compare = () =>
      compareRetry(
        retry,
        seq < state.durableSeq ? () => this.#reader.batch(state.batches[seq]!) : undefined,
      );
    const durable = seq < state.durableSeq;
    const same = durable ? compare() : this.#writer.latest.then(compare, compare);
    return { kind: "retry", same };
  }

  /**
   * Records durably that an agency has sent everything; resolves once durable.
   *
   * @throws {StorageError} At once, writing nothing: `unknownAgency` or `excluded` for an
   * agency outside the draw, `failed` or `busy` while the storage fails, `closed` after close.
   */
  markDone(agency: number): Promise<void> {
    this.#writer.check();
    const state = this.#agencies.active(agency);
    if (state.done) return this.flush();
    state.done = true;
    return this.#writer.enqueue(RecordKind.DONE, agency);
  }

  /**
   * Refuses, writing nothing, a set of exclusions (`SERVER_EXCLUDED_AGENCIES`) that names an
   * agency already done or that, with the exclusions the journal holds, leaves the draw
   * without agencies. Call it before {@linkcode BetStore.exclude}.
   *
   * @throws {StorageError} What is wrong with the set, one line.
   */
  checkExclusions(agencies: readonly number[]): void {
    for (const agency of agencies) {
      if (this.#agencies.get(agency)?.durableDone && !this.#agencies.get(agency)!.excluded) {
        throw this.#alreadyDone(agency);
      }
    }
    const stored = this.excludedAgencies();
    const all = new Set([...stored, ...agencies]);
    if (all.size < this.#agencies.count) return;
    throw new StorageError(
      this.#path,
      `SERVER_EXCLUDED_AGENCIES names agencies ${agencies.join(" ")}, and the journal of ` +
        `${this.#path} already excludes ${stored.join(" ") || "none"}, so every agency of the ` +
        "draw would be excluded and no draw could run; leave at least one agency in (the " +
        "exclusions stored stay), or start a fresh draw",
    );
  }

  #alreadyDone(agency: number): StorageError {
    return new StorageError(
      this.#path,
      `SERVER_EXCLUDED_AGENCIES names agency ${agency}, which has already sent all its bets ` +
        "(its DONE is stored), so the draw counts them; remove it from the setting",
    );
  }

  /**
   * Closes the draw without an agency, durably (`SERVER_EXCLUDED_AGENCIES`): its bets stay
   * in `bets.csv` but leave the totals, and it is refused. `false` if it already was.
   *
   * @throws {StorageError} When the agency is already done (its bets count), or the last
   * agency not excluded.
   */
  async exclude(agency: number): Promise<boolean> {
    this.#writer.check();
    // The configuration holds the ids to 1..agencies.
    const state = this.#agencies.get(agency)!;
    if (state.excluded) return false;
    if (state.done) throw this.#alreadyDone(agency);
    this.checkExclusions([agency]);
    state.excluded = true;
    await this.#writer.enqueue(RecordKind.EXCLUDE, agency);
    return true;
  }

  /** Resolves once everything queued so far is written (or refused). */
  flush(): Promise<void> {
    return this.#writer.flush();
  }

  /**
   * Streams stored bets back in order (the course's `load_bets`), reading through the
   * handle opened at start-up and checking every batch read against its journal checksum.
   * With `number`, only rows playing it: a draw (the winning number) reads only the batches
   * the journal says hold a winner.
   *
   * @throws {StorageError} `damaged` when what is read is not what was stored, `failed`
   * when reading fails.
   */
  async *loadBets(number?: number): AsyncGenerator<Bet> {
    await this.flush();
    yield* this.#reader.bets(number, number === WINNING_NUMBER);
  }

  /** Writes what is queued, then closes the files, which releases the lock; idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#writer.close();
    this.#files.reader.close();
    this.#files.journal.close();
    this.#files.data.close();
  }

  /** Same as {@linkcode BetStore.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
