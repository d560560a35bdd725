/**
 * One-shot timers for connection timeouts, as `start(ms, onTimeout)` returning a cancel
 * function, so a program can pick the kind that suits it.
 *
 * @module
 */

/**
 * Starts a one-shot timer.
 *
 * @param ms Milliseconds to wait.
 * @param onTimeout Called once they have passed, unless cancelled first.
 * @returns Cancels the timer; calling it again, or after it fired, does nothing.
 */
export type Timer = (ms: number, onTimeout: () => void) => () => void;

/**
 * The global `setTimeout`: a cancelled timer is gone at once, so it suits a long-lived
 * server that starts one per read on thousands of connections. A {@linkcode Timer}.
 *
 * @param ms Milliseconds to wait.
 * @param onTimeout Called once they have passed, unless cancelled first.
 * @returns Cancels the timer.
 *
 * @example Usage
 * ```ts
 * const cancel = globalTimer(1000, () => console.log("late"));
 * cancel();
 * ```
 */
export function globalTimer(ms: number, onTimeout: () => void): () => void {
  const id = setTimeout(onTimeout, ms);
  return () => clearTimeout(id);
}

/**
 * A timer on `AbortSignal.timeout`, which Deno runs on its own timers. The global
 * `setTimeout` loads Deno's Node compatibility layer (`node:timers`) on first use: about
 * 17 ms of CPU, a third of a short-lived agency's start-up. A cancelled timer runs
 * nothing and no longer keeps the process alive, but stays queued until it would have
 * fired: it suits programs that start a few hundred timers, not a server. A
 * {@linkcode Timer}.
 *
 * @param ms Milliseconds to wait.
 * @param onTimeout Called once they have passed, unless cancelled first.
 * @returns Cancels the timer.
 *
 * @example Usage
 * ```ts
 * const cancel = signalTimer(1000, () => console.log("late"));
 * cancel();
 * ```
 */
export function signalTimer(ms: number, onTimeout: () => void): () => void {
  const signal = AbortSignal.timeout(Math.max(0, Math.ceil(ms)));
  const listener = (): void => onTimeout();
  signal.addEventListener("abort", listener, { once: true });
  return () => signal.removeEventListener("abort", listener);
}
