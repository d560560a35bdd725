/**
 * The bet storage's writer: one writer owns the files. Items (batches, DONEs, exclusions)
 * queue up while a write is in progress and go out together in the next group: one write and
 * one fsync of `bets.csv`, then one write and one fsync of the journal, then a check that the
 * paths still name the files written, and only then are they committed (group commit). A failed
 * write is undone; a failed fsync, a failed undo or a changed path is for good.
 *
 * @module
 */
import { errorText, StorageError } from "../../shared/errors.ts";
import { writeAll } from "../../shared/bytes.ts";
import {
  checksum,
  encodeRecord,
  type JournalRecord,
  loadNativeChecksum,
  NATIVE_CHECKSUM_FROM,
  RECORD_SIZE,
} from "../journal.ts";
import { pathChange, type StorageFiles } from "../open_storage.ts";

/** How acknowledgements are made durable: `group` and `batch` fsync, `off` does not. */
export const FSYNC_POLICIES = ["group", "batch", "off"] as const;

/** One of {@linkcode FSYNC_POLICIES}. */
export type FsyncPolicy = typeof FSYNC_POLICIES[number];

/** A failed write, fsync or path check of `path`, as the store's `onFailure` hears of it. */
export interface StorageFailure {
  readonly path: string;
  readonly error: unknown;
  /**
   * Whether the store goes on by itself (a failed write is undone and the next batch
   * tried), or refuses every batch until a restart (a failed fsync, undo, or path check).
   */
  readonly recovers: boolean;
}

/** A committed item: its record, with where its rows now are in `bets.csv`. */
export type Committed = JournalRecord & { readonly start: number };

/** What the writer reports to the store that owns it. */
export interface GroupCommitOptions {
  readonly files: StorageFiles;
  readonly path: string;
  readonly fsync: FsyncPolicy;
  /** Durable sizes of `bets.csv` and of the journal. */
  readonly size: number;
  readonly journalSize: number;
  /** A group is durable: apply it (called before its promises resolve). */
  readonly onCommitted: (group: readonly Committed[]) => void;
  /** The items of these agencies were refused with `error` (called after their promises reject). */
  readonly onRefused: (agencies: ReadonlySet<number>, error: StorageError) => void;
  readonly onFailure?: (failure: StorageFailure) => void;
  readonly onRecovery?: () => void;
}

/** One commit's promise, shared by its items: one promise per group, not a few per batch. */
type Ticket = PromiseWithResolvers<void>;

/** A queued item, with the bytes of rows it added to the fill buffer. */
interface Pending extends Omit<JournalRecord, "end" | "rowsCrc"> {
  readonly length: number;
  readonly ticket: Ticket;
}

/** A commit's write, fsync or path check failed. */
class CommitFailure extends Error {
  constructor(
    readonly path: string,
    readonly during: "write" | "sync" | "check",
    cause: unknown,
  ) {
    super(`Cannot ${during} ${path}`, { cause });
  }
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

const NO_ROWS = new Uint8Array(0);

/** The group-commit writer of `bets.csv` and its journal. */
export class GroupCommit {
  readonly #options: GroupCommitOptions;
  readonly #path: string;
  /** Durable size of `bets.csv` and of the journal. */
  #size: number;
  #journalSize: number;
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
  /** A failure the writer cannot recover from: every later item is refused. */
  #failure: StorageError | undefined;
  #closed = false;

  constructor(options: GroupCommitOptions) {
    this.#options = options;
    this.#path = options.path;
    this.#size = options.size;
    this.#journalSize = options.journalSize;
  }

  /** Group commits (one write and fsync each) so far. */
  get groups(): number {
    return this.#groups;
  }

  /** Settles once everything queued so far has. */
  get latest(): Promise<void> {
    return this.#latest;
  }

  /**
   * Throws unless items may be queued now.
   *
   * @throws {StorageError} `closed` after close, `failed` after a failure for good, `busy`
   * while a failed write is undone.
   */
  check(): void {
    const path = this.#path;
    if (this.#closed) throw new StorageError(path, "Storage is closed", { kind: "closed" });
    if (this.#failure !== undefined) throw this.#failure;
    if (this.#undoing) {
      throw new StorageError(
        path,
        "Cannot store bets now, a failed write is being undone; send them again later",
        { kind: "busy" },
      );
    }
  }

  /** Queues an item (its `rows` copied at once); resolves once it is durable. */
  enqueue(
    kind: JournalRecord["kind"],
    agency: number,
    seq = 0,
    rows: Uint8Array = NO_ROWS,
    counts: { readonly bets: number; readonly winners: number } = { bets: 0, winners: 0 },
  ): Promise<void> {
    let ticket = this.#ticket;
    if (ticket === undefined) {
      ticket = Promise.withResolvers<void>();
      // Its callers handle a failure; this only keeps a ticket nobody awaits from being unhandled.
      ticket.promise.catch(() => {});
      if (this.#options.fsync !== "batch") this.#ticket = ticket;
      this.#latest = ticket.promise;
    }
    // Rows are copied at once: callers may reuse their buffer (batch_rows.ts does).
    this.#fill.append(rows);
    const { bets, winners } = counts;
    this.#queue.push({ kind, agency, seq, length: rows.length, bets, winners, ticket });
    this.#writer ??= this.#drain();
    return ticket.promise;
  }

  async #drain(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        const group = this.#options.fsync === "batch"
          ? this.#queue.splice(0, 1)
          : this.#queue.splice(0);
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
    const { files } = this.#options;
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
    const committed: Committed[] = [];
    let offset = 0;
    group.forEach((item, i) => {
      const rows = data.subarray(offset, offset + item.length);
      const start = this.#size + offset;
      offset += item.length;
      const record = {
        kind: item.kind,
        agency: item.agency,
        seq: item.seq,
        bets: item.bets,
        winners: item.winners,
        end: this.#size + offset,
        rowsCrc: item.length > 0 ? checksum(rows) : 0,
      };
      encodeRecord(record, journal, i * RECORD_SIZE);
      committed.push({ ...record, start });
    });
    if (length > 0) await this.#write(files.data, this.#path, data);
    // Nothing is acknowledged for bytes a restart would not find where the paths point;
    // checked before the journal too, so a swapped bets.csv leaves the journal matching it.
    this.#checkPaths(false);
    // The journal goes second: a record never points past rows that are not on disk.
    await this.#write(files.journal, `${this.#path}.journal`, journal);
    written.clear();
    this.#checkPaths(true);
    this.#journalSize += journal.length;
    this.#size += length;
    // A large storage pays for the faster checksum's import (the same values).
    if (this.#size >= NATIVE_CHECKSUM_FROM) void loadNativeChecksum();
    this.#groups++;
    if (this.#failing) {
      this.#failing = false;
      this.#options.onRecovery?.();
    }
    this.#options.onCommitted(committed);
  }

  /** Throws a `check` failure unless the paths still name the files (the journal's too if `both`). */
  #checkPaths(both: boolean): void {
    const changed = pathChange(this.#path, this.#options.files, both);
    if (changed !== undefined) throw new CommitFailure(this.#path, "check", new Error(changed));
  }

  /** Writes every byte, then fsyncs per the policy; says which step failed. */
  async #write(file: Deno.FsFile, path: string, bytes: Uint8Array): Promise<void> {
    try {
      await writeAll(file, bytes);
    } catch (error) {
      throw new CommitFailure(path, "write", error);
    }
    if (this.#options.fsync === "off") return;
    try {
      await file.syncData();
    } catch (error) {
      throw new CommitFailure(path, "sync", error);
    }
  }

  /**
   * A commit failed: every queued item is refused. A failed write is undone (both files cut
   * to their durable size); a failed fsync, or undo, is for good (the kernel may have dropped
   * the unwritten pages: only a restart, which checks the files, knows what is on disk), and
   * so is a path that no longer names the files (a restart would read other files).
   */
  async #fail(group: readonly Pending[], failure: CommitFailure): Promise<void> {
    this.#undoing = true;
    const items = [...group, ...this.#queue.splice(0)];
    this.#ticket = undefined;
    this.#fill.clear();
    this.#spare.clear();
    const { files } = this.#options;
    let recovers = failure.during === "write";
    if (recovers) {
      try {
        await files.data.truncate(this.#size);
        await files.journal.truncate(this.#journalSize);
      } catch {
        recovers = false;
      }
    }
    this.#undoing = false;
    const path = this.#path;
    const why = failure.during === "check"
      ? `because ${errorText(failure.cause)} since this server opened it, so a restart ` +
        "would not find them"
      : `because writing ${failure.path} failed`;
    const next = recovers ? "send them again later" : "the server needs a restart";
    const refused = new StorageError(path, `Cannot store bets ${why}; ${next}`, {
      kind: recovers ? "busy" : "failed",
      cause: failure.cause,
    });
    if (!recovers) this.#failure = refused;
    // Reported before anything is refused, so the log says why first.
    if (!this.#failing || !recovers) {
      this.#failing = true;
      const error = failure.during === "check" ? refused : failure.cause;
      this.#options.onFailure?.({ path: failure.path, error, recovers });
    }
    let rejected: Ticket | undefined;
    for (const item of items) {
      if (item.ticket === rejected) continue;
      rejected = item.ticket;
      rejected.reject(refused);
    }
    this.#options.onRefused(new Set(items.map((item) => item.agency)), refused);
  }

  /** Resolves once everything queued so far is written (or refused). */
  async flush(): Promise<void> {
    while (this.#writer) await this.#writer;
  }

  /** Refuses anything queued from now on, then writes what is queued. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.flush();
  }
}
