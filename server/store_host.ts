/**
 * The storage's owner, as the session workers reach it: a monitor in the course's sense. One
 * thread (the main one) holds the `BetStore` and the `Lottery`; workers reach them only by
 * message, and messages are handled one at a time on that thread, so sequence checks, the
 * comparison of retries, group commit and the draw latch run with no other thread inside.
 * What the owner makes durable it publishes to the shared state before it tells anyone.
 *
 * @module
 */
import type { Lottery, WinnersByAgency } from "./draw.ts";
import type { SharedState } from "./shared_state.ts";
import type { BetRows } from "./bets_csv.ts";
import type { BetStore, StoreReceipt } from "./storage.ts";
import { StorageError } from "../shared/errors.ts";
import { type ToOwner, toThreadError, type ToWorker } from "./thread_messages.ts";

/** Sends a message to one worker. */
type Post = (message: ToWorker) => void;

/** The owner's side of every worker: publishes what is durable and the draw's result. */
export class StoreOwner {
  readonly #store: BetStore;
  readonly #lottery: Lottery;
  readonly #state: SharedState;
  readonly #posts = new Set<Post>();
  readonly #watches: Disposable[] = [];
  #statsQueued = false;
  /** The draw's result once it is over (or its failure), for workers that come after. */
  #outcome: ToWorker | undefined;

  /** Publishes the store's state for agencies 1..`agencies` and keeps it current. */
  constructor(store: BetStore, lottery: Lottery, state: SharedState, agencies: number) {
    this.#store = store;
    this.#lottery = lottery;
    this.#state = state;
    for (let agency = 1; agency <= agencies; agency++) {
      state.setProgress(agency, store.progress(agency));
      // Watching first: the table is current before any worker hears of a commit.
      this.#watches.push(store.watch(agency, {
        durable: () => this.#publish(agency),
        failed: () => {},
      }));
    }
    state.setStats(store.stats);
  }

  #publish(agency: number): void {
    this.#state.setProgress(agency, this.#store.progress(agency));
    if (this.#statsQueued) return;
    this.#statsQueued = true;
    // Once per commit, not once per agency in it.
    queueMicrotask(() => {
      this.#statsQueued = false;
      this.#state.setStats(this.#store.stats);
    });
  }

  /** Answers one worker, which `post` reaches. */
  host(post: Post): StoreHost {
    this.#posts.add(post);
    return new StoreHost(post, {
      store: this.#store,
      lottery: this.#lottery,
      published: (agency) => this.#publish(agency),
      forget: () => this.#posts.delete(post),
    });
  }

  /**
   * Tells a worker just started (after its `init`) of a draw that ended before it was there,
   * e.g. the one a finished storage makes at start-up.
   */
  catchUp(post: Post): void {
    if (this.#outcome !== undefined) post(this.#outcome);
  }

  /** The draw is over: every worker gets the winners, then the barrier opens. */
  drawn(winners: WinnersByAgency): void {
    let total = 0;
    for (const list of winners.values()) total += list.length;
    this.#outcome = { kind: "drawn", winners: [...winners.entries()], total };
    for (const post of this.#posts) post(this.#outcome);
    this.#state.markDrawn();
  }

  /** The draw failed: every worker answers its winners queries with the failure. */
  drawFailed(error: unknown): void {
    this.#outcome = { kind: "drawFailed", error: toThreadError(error) };
    for (const post of this.#posts) post(this.#outcome);
  }

  /** Stops publishing and releases every held query. */
  close(): void {
    for (const watch of this.#watches.splice(0)) watch[Symbol.dispose]();
    this.#state.close();
  }
}

/** What a {@linkcode StoreHost} works with. */
interface HostContext {
  readonly store: BetStore;
  readonly lottery: Lottery;
  /** An agency's DONE is durable and counted. */
  readonly published: (agency: number) => void;
  /** The worker is gone. */
  readonly forget: () => void;
}

/** A worker's batches of one agency waiting for a retry's comparison, or refused after it. */
interface Held {
  readonly batches: Array<[seq: number, batch: BetRows]>;
  conflict?: unknown;
}

/** Answers one worker's requests against the owner's store. */
export class StoreHost {
  readonly #post: Post;
  readonly #ctx: HostContext;
  readonly #watches = new Map<number, Disposable>();
  /** What became durable this turn, per agency, not yet told: one message per turn. */
  readonly #durableNow = new Map<number, number>();
  /** Per agency, the worker's batches held behind a retry being compared, or its conflict. */
  readonly #held = new Map<number, Held>();
  /** This turn's batches taken from the worker (agency, sequence pairs), not yet told. */
  #takenNow: number[] = [];

  constructor(post: Post, ctx: HostContext) {
    this.#post = (message) => {
      this.#flushDurable();
      post(message);
    };
    this.#ctx = ctx;
  }

  #tellDurable(agency: number, nextSeq: number): void {
    if (this.#durableNow.size === 0) queueMicrotask(() => this.#flushDurable());
    this.#durableNow.set(agency, nextSeq);
  }

  #tellTaken(agency: number, seq: number): void {
    if (this.#takenNow.length === 0) queueMicrotask(() => this.#flushDurable());
    this.#takenNow.push(agency, seq);
  }

  #flushDurable(): void {
    if (this.#takenNow.length > 0) {
      const progress = this.#takenNow;
      this.#takenNow = [];
      this.#post({ kind: "taken", progress });
    }
    if (this.#durableNow.size === 0) return;
    const progress = [...this.#durableNow].flat();
    this.#durableNow.clear();
    this.#post({ kind: "durable", progress });
  }

  /** Handles one request of the worker's. */
  handle(message: ToOwner): void {
    const { store } = this.#ctx;
    switch (message.kind) {
      case "store":
        return this.#store(message);
      case "retry":
        return this.#retry(message);
      case "done": {
        const { id, agency } = message;
        let durable: Promise<void>;
        try {
          durable = store.markDone(agency);
        } catch (error) {
          // Refused at once (an agency outside the draw, a failed write being undone): the
          // worker's session answers it as the owner's own sessions do.
          durable = Promise.reject(error);
        }
        durable.then(() => {
          this.#ctx.lottery.markDone(agency);
          this.#ctx.published(agency);
          this.#post({ kind: "reply", id });
        }, (error) => this.#post({ kind: "reply", id, error: toThreadError(error) }));
        return;
      }
      case "watch": {
        const { agency } = message;
        if (this.#watches.has(agency)) return;
        this.#watches.set(
          agency,
          store.watch(agency, {
            durable: (nextSeq) => this.#tellDurable(agency, nextSeq),
            failed: (fromSeq, error) => this.#failed(agency, fromSeq, error),
          }),
        );
        // Commits made before this watch began are told now: the worker read the shared
        // progress before its message got here.
        this.#durable(agency);
        return;
      }
      case "unwatch":
        this.#watches.get(message.agency)?.[Symbol.dispose]();
        this.#watches.delete(message.agency);
        this.#held.delete(message.agency);
        return;
    }
  }

  #durable(agency: number): void {
    this.#tellDurable(agency, this.#ctx.store.progress(agency).nextSeq);
  }

  #failed(agency: number, fromSeq: number, error: unknown): void {
    this.#post({ kind: "failed", agency, fromSeq, error: toThreadError(error) });
  }

  /** New batches: each queued, or refused back to the worker's watchers of its agency. */
  #store({ items, rows }: ToOwner & { kind: "store" }): void {
    let offset = 0;
    for (let i = 0; i < items.length; i += 5) {
      const [agency, seq, count, winners, length] = items.slice(i, i + 5) as [
        number,
        number,
        number,
        number,
        number,
      ];
      this.#storeOne(agency, seq, { count, winners, rows: new Uint8Array(rows, offset, length) });
      offset += length;
    }
  }

  #storeOne(agency: number, seq: number, batch: BetRows): void {
    const held = this.#held.get(agency);
    if (held?.conflict !== undefined) return this.#failed(agency, seq, held.conflict);
    if (held !== undefined) {
      held.batches.push([seq, batch]);
      return;
    }
    let receipt: StoreReceipt;
    try {
      receipt = this.#ctx.store.storeRows(agency, seq, batch);
    } catch (error) {
      return this.#failed(agency, seq, error);
    }
    if (receipt.kind === "queued") return this.#tellTaken(agency, seq);
    // Another session of the agency took the sequence first: a retry after all. As a session
    // does with a retry, nothing after it is taken before it is known to be the same; after a
    // CONFLICT, nothing more of the agency from this worker (until its sessions of it end).
    const hold: Held = { batches: [] };
    this.#held.set(agency, hold);
    receipt.same.then(() => {
      this.#tellTaken(agency, seq);
      // Durable since before, which the worker may have missed hearing.
      this.#durable(agency);
      return undefined;
    }, (error: unknown) => {
      this.#failed(agency, seq, error);
      return error instanceof StorageError && error.kind === "conflict" ? error : undefined;
    }).then((conflict) => {
      if (this.#held.get(agency) !== hold) return;
      if (conflict === undefined) this.#held.delete(agency);
      else hold.conflict = conflict;
      for (const [next, rows] of hold.batches.splice(0)) this.#storeOne(agency, next, rows);
    });
  }

  /** A sequence the worker had taken: answered once compared with the batch stored first. */
  #retry(message: ToOwner & { kind: "retry" }): void {
    const { id, agency, seq } = message;
    const { store } = this.#ctx;
    const reply = (error?: unknown) =>
      this.#post(
        error === undefined
          ? { kind: "reply", id }
          : { kind: "reply", id, error: toThreadError(error) },
      );
    let same: Promise<void>;
    try {
      const receipt = store.storeRows(agency, seq, rowsOf(message));
      // A failure set the agency back: the "retry" was queued as new; done once durable.
      same = receipt.kind === "retry" ? receipt.same : untilDurable(store, agency, seq);
    } catch (error) {
      same = Promise.reject(error);
    }
    same.then(() => reply(), reply);
  }

  /** The worker is gone: its watches end. */
  close(): void {
    for (const watch of this.#watches.values()) watch[Symbol.dispose]();
    this.#watches.clear();
    this.#ctx.forget();
  }
}

/** Resolves once the agency's batch `seq` is durable; rejects if the store says it failed. */
function untilDurable(store: BetStore, agency: number, seq: number): Promise<void> {
  const { promise, resolve, reject } = Promise.withResolvers<void>();
  const watch = store.watch(agency, {
    durable: (nextSeq) => nextSeq > seq && resolve(),
    failed: (fromSeq, error) => fromSeq <= seq && reject(error),
  });
  return promise.finally(() => watch[Symbol.dispose]());
}

function rowsOf({ count, winners, rows }: ToOwner & { kind: "retry" }): BetRows {
  return { count, winners, rows: new Uint8Array(rows) };
}
