/**
 * The draw: a latch on every counted agency being done, then one pass over the stored bets that
 * groups winners by agency. Nothing partial is ever handed out: before the draw, a winners query
 * learns only which agencies are still loading (a total query gets a count flagged as partial).
 * A draw that fails (the storage cannot be read, or is not what it stored) answers no winners at
 * all: every query from then on gets the failure.
 *
 * @module
 */
import { type Bet, hasWon } from "../shared/bet.ts";

/** Winning documents by agency. */
export type WinnersByAgency = ReadonlyMap<number, readonly string[]>;

/**
 * Collects the winners' documents per agency in one pass over the stored bets, leaving out
 * agencies not `counted` (when given): memory grows with the winners, not the bets.
 */
export async function collectWinners(
  bets: AsyncIterable<Bet>,
  counted?: ReadonlySet<number>,
): Promise<WinnersByAgency> {
  const winners = new Map<number, string[]>();
  for await (const bet of bets) {
    if (!hasWon(bet) || (counted !== undefined && !counted.has(bet.agency))) continue;
    const list = winners.get(bet.agency);
    if (list) list.push(bet.document);
    else winners.set(bet.agency, [bet.document]);
  }
  return winners;
}

/** Where the draw stands: drawn, with its result, or not, with the counted agencies not done. */
export type DrawStatus =
  | { readonly drawn: false; readonly pending: number; readonly pendingAgencies: readonly number[] }
  | { readonly drawn: true; readonly winners: WinnersByAgency; readonly total: number };

/**
 * Options of {@linkcode Lottery}: the agencies the draw counts (each must be done before
 * it; others are ignored), the draw over the stored bets (run once), and what to call with
 * its result (e.g. to log `sorteo`).
 */
export interface LotteryOptions {
  readonly agencies: readonly number[];
  readonly draw: () => Promise<WinnersByAgency>;
  readonly onDrawn?: (winners: WinnersByAgency, elapsedMs: number) => void;
  /** Called once if the draw fails (e.g. to log `sorteo | result: fail`). */
  readonly onFailed?: (error: unknown) => void;
}

/**
 * The draw's latch. `markDone` is idempotent per agency; the draw runs exactly once,
 * when the last expected agency is marked, and every caller shares its result.
 */
export class Lottery {
  readonly #options: LotteryOptions;
  /** Counted agencies not done yet. */
  readonly #pending: Set<number>;
  #result: Promise<WinnersByAgency> | undefined;
  readonly #waiters = new Set<() => void>();
  #closed = false;
  #status: DrawStatus;
  /** Why the draw failed, once it has. */
  #failure: { readonly error: unknown } | undefined;

  constructor(options: LotteryOptions) {
    this.#options = options;
    this.#pending = new Set(options.agencies);
    this.#status = this.#waiting();
  }

  #waiting(): DrawStatus {
    const pendingAgencies = [...this.#pending].sort((a, b) => a - b);
    return { drawn: false, pending: pendingAgencies.length, pendingAgencies };
  }

  /** Whether the draw has finished, and its result or which agencies are pending. */
  get status(): DrawStatus {
    return this.#status;
  }

  /** Counted agencies still loading. */
  get pending(): number {
    return this.#pending.size;
  }

  /**
   * Marks an agency done (one the draw does not count changes nothing); the last counted
   * one starts the draw, whose result it returns from then on.
   */
  markDone(agency: number): Promise<WinnersByAgency> | undefined {
    if (this.#pending.delete(agency) && !this.#status.drawn) this.#status = this.#waiting();
    if (this.#pending.size > 0 || !this.#options.agencies.includes(agency)) return undefined;
    if (this.#result === undefined) {
      this.#result = this.#run();
      // Its failure is reported through onFailed and to every query, not left unhandled.
      this.#result.catch(() => {});
    }
    return this.#result;
  }

  /** The running or finished draw, once every agency is done. */
  whenDrawn(): Promise<WinnersByAgency> | undefined {
    return this.#result;
  }

  /**
   * Where the draw stands once it is over, or after `maxMs` (or {@linkcode Lottery.close}):
   * agencies asking early get their answer the moment it exists, not at their next poll.
   *
   * @throws What the draw failed with, if it did.
   */
  async waitForDraw(maxMs: number): Promise<DrawStatus> {
    this.#throwIfFailed();
    if (this.#status.drawn || this.#closed || maxMs <= 0) return this.#status;
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#waiters.add(resolve);
    const timer = setTimeout(resolve, maxMs);
    try {
      await promise;
    } finally {
      clearTimeout(timer);
      this.#waiters.delete(resolve);
    }
    this.#throwIfFailed();
    return this.#status;
  }

  #throwIfFailed(): void {
    if (this.#failure !== undefined) throw this.#failure.error;
  }

  /** Releases every {@linkcode Lottery.waitForDraw} at once (shutdown). */
  close(): void {
    this.#closed = true;
    this.#wake();
  }

  #wake(): void {
    for (const resolve of this.#waiters) resolve();
  }

  async #run(): Promise<WinnersByAgency> {
    const started = performance.now();
    let winners: WinnersByAgency;
    try {
      winners = await this.#options.draw();
    } catch (error) {
      this.#failure = { error };
      this.#options.onFailed?.(error);
      this.#wake();
      throw error;
    }
    let total = 0;
    for (const list of winners.values()) total += list.length;
    this.#status = { drawn: true, winners, total };
    this.#options.onDrawn?.(winners, performance.now() - started);
    this.#wake();
    return winners;
  }
}
