/**
 * The bet storage's agency bookkeeping: where each agency of the draw stands (sequences
 * taken and durable, DONE, exclusion, durable totals, where its batches are) and the rules
 * a batch or DONE must follow to be taken. Pure state: no files here.
 *
 * @module
 */
import { StorageError } from "../../shared/errors.ts";

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

/** What a session hears about its agency's batches, explicitly, as groups commit. */
export interface BatchWatcher {
  /** Every batch of the agency below `nextSeq` is durable. */
  durable(nextSeq: number): void;
  /** The queued batches of the agency from `fromSeq` on were not stored. */
  failed(fromSeq: number, error: StorageError): void;
}

/** What the store knows of one agency. */
export class AgencyState {
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
  /** The reader's index of durable batch `seq`, at `seq`. */
  readonly batches: number[] = [];
  readonly watchers = new Set<BatchWatcher>();
}

/** The refusal of an agency the operator closed the draw without (`path`: the storage's). */
export function leftOut(agency: number, path = ""): StorageError {
  return new StorageError(
    path,
    `Agency ${agency} was left out of this draw by the operator (SERVER_EXCLUDED_AGENCIES)`,
    { kind: "excluded" },
  );
}

/** The agencies of a draw (ids 1..count) and the rules their batches follow. */
export class Agencies {
  readonly #path: string;
  /** Index = agency id; index 0 unused. */
  readonly #states: AgencyState[];

  /** `path` is the storage's, named in refusals. */
  constructor(path: string, count: number) {
    this.#path = path;
    this.#states = Array.from({ length: count + 1 }, () => new AgencyState());
  }

  /** How many agencies the draw has. */
  get count(): number {
    return this.#states.length - 1;
  }

  /** The state of an agency of the draw (1..count), or `undefined`. */
  get(agency: number): AgencyState | undefined {
    return agency === 0 ? undefined : this.#states[agency];
  }

  /**
   * The state of an agency that may store now.
   *
   * @throws {StorageError} `unknownAgency` outside the draw, `excluded` when left out.
   */
  active(agency: number): AgencyState {
    const state = this.get(agency);
    if (state === undefined) {
      throw new StorageError(
        this.#path,
        `Agency ${agency} is not part of this draw (agencies 1 to ${this.count})`,
        { kind: "unknownAgency" },
      );
    }
    if (state.excluded) throw leftOut(agency, this.#path);
    return state;
  }

  /**
   * Takes batch `seq` of an agency: `true` for the next sequence, `false` for one already
   * taken (a retry).
   *
   * @throws {StorageError} `outOfOrder` for a gap, `afterDone` after its DONE.
   */
  take(agency: number, state: AgencyState, seq: number): boolean {
    if (seq < state.nextSeq) return false;
    if (seq > state.nextSeq) {
      throw new StorageError(
        this.#path,
        `Batch ${seq} of agency ${agency} is out of order, expected ${state.nextSeq}`,
        { kind: "outOfOrder" },
      );
    }
    if (state.done) {
      throw new StorageError(this.#path, `Agency ${agency} is already done`, {
        kind: "afterDone",
      });
    }
    state.nextSeq = seq + 1;
    return true;
  }

  /** Where an agency stands durably; all zero outside the draw. */
  progress(agency: number): AgencyProgress {
    const { durableSeq = 0, durableDone = false, excluded = false } = this.get(agency) ?? {};
    return { nextSeq: durableSeq, done: durableDone, excluded };
  }

  /** Durable totals of the agencies the draw counts (excluded agencies left out). */
  stats(): StoreStats {
    const stats = { bets: 0, batches: 0, winners: 0 };
    for (let agency = 1; agency < this.#states.length; agency++) {
      const { excluded, bets, durableSeq, winners } = this.#states[agency]!;
      if (excluded) continue;
      stats.bets += bets;
      stats.batches += durableSeq;
      stats.winners += winners;
    }
    return stats;
  }

  /** The agencies for which `test` holds, ascending. */
  ids(test: (state: AgencyState) => boolean): number[] {
    const ids: number[] = [];
    for (let agency = 1; agency < this.#states.length; agency++) {
      if (test(this.#states[agency]!)) ids.push(agency);
    }
    return ids;
  }

  /** Sets the agencies of `agencies` back to what is durable (their queued work refused). */
  rollBack(agencies: Iterable<number>): Set<AgencyState> {
    const touched = new Set<AgencyState>();
    for (const agency of agencies) {
      const state = this.#states[agency]!;
      state.nextSeq = state.durableSeq;
      state.done = state.durableDone;
      touched.add(state);
    }
    return touched;
  }
}
