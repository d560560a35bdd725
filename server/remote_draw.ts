/**
 * The draw as a session worker sees it: before the draw, the pending agencies from the shared
 * state; a held query waits on the shared barrier (`Atomics.waitAsync`), opened by the owner
 * the moment its draw ends; the winners per agency come by message just before it opens.
 *
 * @module
 */
import type { DrawStatus, WinnersByAgency } from "./draw.ts";
import type { SessionDraw } from "./session.ts";
import type { SharedState } from "./shared_state.ts";

/** A `Lottery` stand-in in a worker: the owner runs the draw, this one reports it. */
export class RemoteLottery implements SessionDraw {
  readonly #state: SharedState;
  /** Resolved by the owner's `drawn` message. */
  readonly #result = Promise.withResolvers<DrawStatus & { drawn: true }>();
  #drawn: (DrawStatus & { drawn: true }) | undefined;
  readonly #closed = Promise.withResolvers<void>();
  #isClosed = false;
  /** The owner's draw failure, from its `drawFailed` message: every query gets it. */
  #failure: Error | undefined;
  readonly #failed = Promise.withResolvers<void>();
  /** The status before the draw, as of `#doneCount` (sessions ask for it with every batch). */
  #waiting: DrawStatus = { drawn: false, pending: 0, pendingAgencies: [] };
  #doneCount = -1;

  constructor(state: SharedState) {
    this.#state = state;
  }

  /** The owner's draw result, from its `drawn` message. */
  receiveWinners(winners: WinnersByAgency, total: number): void {
    this.#drawn = { drawn: true, winners, total };
    this.#result.resolve(this.#drawn);
  }

  /** The owner's draw failed: held and later queries get `error`. */
  receiveFailure(error: Error): void {
    this.#failure = error;
    this.#failed.resolve();
  }

  /** Drawn once both the barrier is open and its result is here; else what is pending. */
  get status(): DrawStatus {
    if (this.#drawn !== undefined && this.#state.drawn) return this.#drawn;
    const doneCount = this.#state.doneCount;
    if (doneCount !== this.#doneCount) {
      // Read the count first: a change while the list is read shows at the next call.
      this.#doneCount = doneCount;
      const pendingAgencies = this.#state.pendingAgencies();
      this.#waiting = { drawn: false, pending: pendingAgencies.length, pendingAgencies };
    }
    return this.#waiting;
  }

  /** Counted agencies still loading, as the owner last published. */
  get pending(): number {
    const status = this.status;
    return status.drawn ? 0 : status.pending;
  }

  /** Nothing to do: the owner's draw heard of the DONE when it made it durable. */
  markDone(_agency: number): undefined {
    return undefined;
  }

  /**
   * Where the draw stands once it is over, or after `maxMs` (or {@linkcode close}): a held
   * query is answered the moment the owner opens the barrier.
   */
  async waitForDraw(maxMs: number): Promise<DrawStatus> {
    if (this.#failure !== undefined) throw this.#failure;
    if (this.status.drawn || this.#isClosed || maxMs <= 0) return this.status;
    const drawn = await Promise.race([
      this.#state.waitForDrawn(maxMs),
      this.#closed.promise,
      this.#failed.promise,
    ]);
    if (this.#failure !== undefined) throw this.#failure;
    // The result message may trail the barrier by a turn of the event loop.
    if (drawn === true) {
      return await Promise.race([
        this.#result.promise,
        this.#closed.promise.then(() => this.status),
      ]);
    }
    return this.status;
  }

  /** Releases every held query (shutdown). */
  close(): void {
    this.#isClosed = true;
    this.#closed.resolve();
  }
}
