/**
 * The storage as a session worker sees it: what a session uses of `BetStore`, answered from
 * the shared state where it can be read (progress, totals) and by asking the owner where
 * only the owner decides (queueing a batch, comparing a retry, recording a DONE). Rows leave
 * as transferred buffers; what is durable comes back per agency, to the sessions watching it.
 *
 * @module
 */
import type { BetFields } from "../shared/bet.ts";
import { StorageError } from "../shared/errors.ts";
import { type BetRows, betRows } from "./bets_csv.ts";
import type { SessionStore } from "./session.ts";
import type { SharedState } from "./shared_state.ts";
import type { AgencyProgress, BatchWatcher, StoreReceipt } from "./storage.ts";
import {
  fromThreadError,
  type RowsMessage,
  type ToOwner,
  type ToWorker,
} from "./thread_messages.ts";

const QUEUED: StoreReceipt = { kind: "queued" };

/** The first size of the buffer the batches of one turn travel in. */
const OUTBOX_BYTES = 64 * 1024;

/** A `BetStore` stand-in in a worker, talking to the owner's `StoreHost`. */
export class RemoteStore implements SessionStore {
  readonly #post: (message: ToOwner, transfer?: Transferable[]) => void;
  readonly #state: SharedState;
  readonly #watchers = new Map<number, Set<BatchWatcher>>();
  /** Per agency, the next sequence this worker handed the owner (durable or not). */
  readonly #taken = new Map<number, number>();
  /**
   * Per agency, the batches the owner confirmed taken from this worker: every one below
   * `upTo`, and those in `ahead` (confirmed out of order); what is durable is told to the
   * sessions only up to `upTo`.
   */
  readonly #confirmed = new Map<number, { upTo: number; readonly ahead: Set<number> }>();
  /** Per agency, the durable sequence the owner last told. */
  readonly #durable = new Map<number, number>();
  readonly #replies = new Map<number, PromiseWithResolvers<void>>();
  #nextId = 0;
  /** New batches not yet sent: five numbers each (see `ToOwner`), their rows in `#rows`. */
  #items: number[] = [];
  #rows = new Uint8Array(OUTBOX_BYTES);
  #filled = 0;

  /** Asks the owner with `post`; reads what is durable from `state`. */
  constructor(post: (message: ToOwner, transfer?: Transferable[]) => void, state: SharedState) {
    this.#post = post;
    this.#state = state;
  }

  /** Where an agency stands durably, as the owner published it. */
  progress(agency: number): AgencyProgress {
    return this.#state.progress(agency);
  }

  /** The durable totals, as the owner published them. */
  get stats(): { readonly winners: number } {
    return this.#state.stats;
  }

  /** Tells `watcher` of the agency's batches, as the owner reports them, until disposed. */
  watch(agency: number, watcher: BatchWatcher): Disposable {
    let watchers = this.#watchers.get(agency);
    if (watchers === undefined) {
      watchers = new Set();
      this.#watchers.set(agency, watchers);
      this.#send({ kind: "watch", agency });
    }
    watchers.add(watcher);
    return {
      [Symbol.dispose]: () => {
        if (!watchers.delete(watcher) || watchers.size > 0) return;
        this.#watchers.delete(agency);
        this.#send({ kind: "unwatch", agency });
      },
    };
  }

  /** Stores validated bets as batch `seq`; see {@linkcode RemoteStore.storeRows}. */
  storeBets(agency: number, seq: number, bets: readonly BetFields[]): StoreReceipt {
    return this.storeRows(agency, seq, betRows(agency, bets));
  }

  /**
   * Hands the owner an agency's batch `seq`. A sequence this worker already handed it (or
   * durable) is a retry, whose comparison the owner answers; any other is queued, and the
   * owner's checks (order, DONE, storage failures) come back as `failed` to the watchers.
   */
  storeRows(agency: number, seq: number, batch: BetRows): StoreReceipt {
    const taken = Math.max(this.#taken.get(agency) ?? 0, this.#state.progress(agency).nextSeq);
    if (seq < taken) {
      // A copy the size of the rows: `batch.rows` may be a view of a reused buffer.
      const rows = batch.rows.slice().buffer;
      const message: RowsMessage = {
        agency,
        seq,
        count: batch.count,
        winners: batch.winners,
        rows,
      };
      const id = this.#nextId++;
      const reply = Promise.withResolvers<void>();
      this.#replies.set(id, reply);
      this.#send({ kind: "retry", id, ...message }, [rows]);
      return { kind: "retry", same: reply.promise };
    }
    this.#taken.set(agency, seq + 1);
    if (!this.#confirmed.has(agency)) {
      // What is durable now was confirmed long ago; this worker's batches start at `seq`.
      this.#confirmed.set(agency, { upTo: seq, ahead: new Set() });
    }
    const { rows } = batch;
    if (this.#filled + rows.length > this.#rows.length) {
      const grown = new Uint8Array(Math.max(2 * this.#rows.length, this.#filled + rows.length));
      grown.set(this.#rows.subarray(0, this.#filled));
      this.#rows = grown;
    }
    this.#rows.set(rows, this.#filled);
    this.#filled += rows.length;
    // Batches leave together: those read before the next turn of the timers (every
    // message costs both threads more than a batch's rows do).
    if (this.#items.length === 0) setTimeout(() => this.#flush(), 0);
    this.#items.push(agency, seq, batch.count, batch.winners, rows.length);
    return QUEUED;
  }

  /** Tells an agency's sessions what is durable of the batches the owner confirmed taken. */
  #tellDurable(agency: number): void {
    const durable = this.#durable.get(agency);
    if (durable === undefined) return;
    const upTo = this.#confirmed.get(agency)?.upTo ?? durable;
    for (const watcher of this.#watchers.get(agency) ?? []) {
      watcher.durable(Math.min(durable, upTo));
    }
  }

  /** Sends the batches held, in one message, their rows' buffer moved (not copied). */
  #flush(): void {
    if (this.#items.length === 0) return;
    // An exact-size copy moves; the outbox buffer stays for the next batches.
    const rows = this.#rows.buffer.slice(0, this.#filled);
    this.#post({ kind: "store", items: this.#items, rows }, [rows]);
    this.#items = [];
    this.#filled = 0;
  }

  /** Sends a message behind the batches held, so the owner sees everything in order. */
  #send(message: ToOwner, transfer: Transferable[] = []): void {
    this.#flush();
    this.#post(message, transfer);
  }

  /** Records an agency's DONE through the owner; resolves once durable and counted. */
  markDone(agency: number): Promise<void> {
    const id = this.#nextId++;
    const reply = Promise.withResolvers<void>();
    this.#replies.set(id, reply);
    this.#send({ kind: "done", id, agency });
    return reply.promise;
  }

  /** Takes the owner's answers meant for the store; `false` for a message it does not handle. */
  receive(message: ToWorker): boolean {
    switch (message.kind) {
      case "durable": {
        const { progress } = message;
        for (let i = 0; i < progress.length; i += 2) {
          this.#durable.set(progress[i]!, progress[i + 1]!);
          this.#tellDurable(progress[i]!);
        }
        return true;
      }
      case "taken": {
        const { progress } = message;
        for (let i = 0; i < progress.length; i += 2) {
          const confirmed = this.#confirmed.get(progress[i]!);
          if (confirmed === undefined) continue;
          confirmed.ahead.add(progress[i + 1]!);
          while (confirmed.ahead.delete(confirmed.upTo)) confirmed.upTo++;
          this.#tellDurable(progress[i]!);
        }
        return true;
      }
      case "failed": {
        // The owner set the agency back to what is durable: so does this worker.
        this.#taken.delete(message.agency);
        this.#confirmed.delete(message.agency);
        const thrown = fromThreadError(message.error);
        const error = thrown instanceof StorageError
          ? thrown
          : new StorageError("", thrown.message, { kind: "failed", cause: thrown });
        for (const watcher of this.#watchers.get(message.agency) ?? []) {
          watcher.failed(message.fromSeq, error);
        }
        return true;
      }
      case "reply": {
        const reply = this.#replies.get(message.id);
        this.#replies.delete(message.id);
        if (message.error === undefined) reply?.resolve();
        else reply?.reject(fromThreadError(message.error));
        return true;
      }
      default:
        return false;
    }
  }
}
