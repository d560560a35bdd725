/**
 * One-shot timers for connection timeouts, as `start(ms, onTimeout)` returning a cancel
 * function, so a program can pick the kind that suits it.
 *
 * @module
 */
import { MAX_TIMER_MS } from "../duration.ts";

/**
 * Starts a one-shot timer: `onTimeout` runs once `ms` have passed, unless the function
 * returned cancels it first (calling that again, or after it fired, does nothing).
 */
export type Timer = (ms: number, onTimeout: () => void) => () => void;

/**
 * A {@linkcode Timer} on the global `setTimeout`: a cancelled timer is gone at once, so it
 * suits a long-lived server that starts one per read on thousands of connections.
 */
export function globalTimer(ms: number, onTimeout: () => void): () => void {
  const id = setTimeout(onTimeout, ms);
  return () => clearTimeout(id);
}

/**
 * A {@linkcode Timer} on `AbortSignal.timeout`: the global `setTimeout` loads `node:timers`
 * on first use, a large share of an agency's start-up. A cancelled one runs nothing and no
 * longer keeps the process alive, but stays queued until it would have fired: it suits
 * programs with a few hundred timers, not a server.
 */
export function signalTimer(ms: number, onTimeout: () => void): () => void {
  const signal = AbortSignal.timeout(Math.max(0, Math.ceil(ms)));
  const listener = (): void => onTimeout();
  signal.addEventListener("abort", listener, { once: true });
  return () => signal.removeEventListener("abort", listener);
}

/**
 * A deadline set and cleared around every wait (each socket read of a connection) at the cost of a
 * clock read: one timer is armed for the earliest deadline and, firing before the current one,
 * re-arms for the rest. `dispose` cancels it, so a closed connection keeps no timer pending.
 */
export class Deadline {
  readonly #timer: Timer;
  readonly #onExpire: () => void;
  readonly #now: () => number;
  /** The current deadline (a {@linkcode Deadline} clock time), Infinity when cleared. */
  #at = Infinity;
  /** When the armed timer fires, Infinity when none is armed. */
  #firesAt = Infinity;
  #cancel: (() => void) | undefined;
  #expired = false;

  /** `onExpire` runs once a deadline passes, not cleared or moved; tests pass their own `now`. */
  constructor(timer: Timer, onExpire: () => void, now: () => number = () => performance.now()) {
    this.#timer = timer;
    this.#onExpire = onExpire;
    this.#now = now;
  }

  /** Expires `ms` from now unless cleared, set again or disposed first. */
  set(ms: number): void {
    const at = this.#now() + ms;
    this.#at = at;
    this.#expired = false;
    // An armed timer that fires sooner re-checks then; only a later one must be replaced.
    if (this.#firesAt <= at) return;
    this.#cancel?.();
    this.#arm(at);
  }

  /** Whether the last deadline set passed (and `onExpire` ran); false again on `set`. */
  get expired(): boolean {
    return this.#expired;
  }

  /** No deadline until the next {@linkcode Deadline.set}; an armed timer finds none. */
  clear(): void {
    this.#at = Infinity;
  }

  /** Clears the deadline and cancels the armed timer. */
  dispose(): void {
    this.#at = Infinity;
    this.#firesAt = Infinity;
    this.#cancel?.();
    this.#cancel = undefined;
  }

  #arm(at: number): void {
    this.#firesAt = at;
    // A longer timer fires at once; one this long re-arms for the rest when it fires.
    const ms = Math.min(Math.max(0, at - this.#now()), MAX_TIMER_MS);
    this.#cancel = this.#timer(ms, () => this.#fire());
  }

  #fire(): void {
    this.#cancel = undefined;
    this.#firesAt = Infinity;
    if (this.#at === Infinity) return;
    if (this.#now() < this.#at) {
      this.#arm(this.#at);
      return;
    }
    this.#at = Infinity;
    this.#expired = true;
    this.#onExpire();
  }
}
