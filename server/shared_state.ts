/**
 * What every session thread reads without asking the storage's owner, in one
 * `SharedArrayBuffer`: each agency's durable progress, the totals, the open connections, the
 * agencies in trouble, and the draw's barrier. Only the owner writes progress, totals and the
 * barrier (after the storage made them durable); sessions read them with `Atomics.load`, so a
 * read is never torn and never ahead of the disk.
 *
 * The draw is a barrier: `drawn` turns 1 once, after the owner's draw; a session holding a
 * winners query waits on it with `Atomics.waitAsync` and is woken by the owner's
 * `Atomics.notify` the moment the draw ends.
 *
 * @module
 */
import { ConnectionSlots } from "./accept_loop.ts";
import type { AgencySet } from "./session.ts";
import type { AgencyProgress, StoreStats } from "./storage.ts";

/** Slots of the control array. */
const Slot = {
  DRAWN: 0,
  CONNECTIONS: 1,
  TROUBLED: 2,
  BETS: 3,
  BATCHES: 4,
  WINNERS: 5,
  CLOSED: 6,
  DONE_COUNT: 7,
} as const;
const CONTROL_SLOTS = 8;

/** Bits of an agency's flags byte. */
const DONE = 1;
const EXCLUDED = 2;
const TROUBLED = 4;

/** The state every thread shares; made by the owner, rebuilt from its buffer in each worker. */
export class SharedState {
  /** The buffer, for `postMessage` to a worker. */
  readonly buffer: SharedArrayBuffer;
  readonly #control: Int32Array;
  /** Per agency: the next sequence expected, every lower one durable. */
  readonly #nextSeq: Uint32Array;
  readonly #flags: Uint8Array;
  /** The agencies marked in trouble, as a set every thread adds to and reads. */
  readonly troubled: AgencySet;

  /** A new state for agencies 1..`agencies` (`buffer` to rebuild one another thread made). */
  constructor(agencies: number, buffer?: SharedArrayBuffer) {
    const slots = agencies + 1;
    this.buffer = buffer ?? new SharedArrayBuffer(CONTROL_SLOTS * 4 + slots * 4 + slots);
    this.#control = new Int32Array(this.buffer, 0, CONTROL_SLOTS);
    this.#nextSeq = new Uint32Array(this.buffer, CONTROL_SLOTS * 4, slots);
    this.#flags = new Uint8Array(this.buffer, CONTROL_SLOTS * 4 + slots * 4, slots);
    this.troubled = troubledSet(this.#control, this.#flags);
  }

  /** The owner: where an agency stands durably. */
  setProgress(agency: number, { nextSeq, done, excluded }: AgencyProgress): void {
    Atomics.store(this.#nextSeq, agency, nextSeq);
    const set = (done ? DONE : 0) | (excluded ? EXCLUDED : 0);
    if ((Atomics.or(this.#flags, agency, set) & set) !== set) {
      Atomics.add(this.#control, Slot.DONE_COUNT, 1);
    }
  }

  /** Where an agency stands durably (all zero outside the draw), as `BetStore.progress`. */
  progress(agency: number): AgencyProgress {
    if (agency < 1 || agency >= this.#flags.length) {
      return { nextSeq: 0, done: false, excluded: false };
    }
    const flags = Atomics.load(this.#flags, agency);
    return {
      nextSeq: Atomics.load(this.#nextSeq, agency),
      done: (flags & DONE) !== 0,
      excluded: (flags & EXCLUDED) !== 0,
    };
  }

  /** The owner: the durable totals. */
  setStats({ bets, batches, winners }: StoreStats): void {
    Atomics.store(this.#control, Slot.BETS, bets);
    Atomics.store(this.#control, Slot.BATCHES, batches);
    Atomics.store(this.#control, Slot.WINNERS, winners);
  }

  /** The durable totals, as the owner last published them. */
  get stats(): StoreStats {
    return {
      bets: Atomics.load(this.#control, Slot.BETS),
      batches: Atomics.load(this.#control, Slot.BATCHES),
      winners: Atomics.load(this.#control, Slot.WINNERS),
    };
  }

  /** How many times an agency turned done or excluded: the pending list changed when it did. */
  get doneCount(): number {
    return Atomics.load(this.#control, Slot.DONE_COUNT);
  }

  /** The agencies neither done nor excluded, ascending: those the draw waits for. */
  pendingAgencies(): number[] {
    const ids: number[] = [];
    for (let agency = 1; agency < this.#flags.length; agency++) {
      if ((Atomics.load(this.#flags, agency) & (DONE | EXCLUDED)) === 0) ids.push(agency);
    }
    return ids;
  }

  /** The counter of connections open across every thread, at most `max`. */
  slots(max: number): ConnectionSlots {
    return new ConnectionSlots(this.#control, Slot.CONNECTIONS, max);
  }

  /** The owner, once: the draw is over; every waiting thread wakes. */
  markDrawn(): void {
    Atomics.store(this.#control, Slot.DRAWN, 1);
    Atomics.notify(this.#control, Slot.DRAWN);
  }

  /** The owner, at shutdown: every held query is released, drawn or not. */
  close(): void {
    Atomics.store(this.#control, Slot.CLOSED, 1);
    Atomics.notify(this.#control, Slot.DRAWN);
  }

  /** Whether the draw is over. */
  get drawn(): boolean {
    return Atomics.load(this.#control, Slot.DRAWN) === 1;
  }

  /**
   * Waits until the draw is over, the server closes, or `maxMs` pass, without blocking the
   * thread (`Atomics.waitAsync`); resolves to whether the draw is over.
   */
  async waitForDrawn(maxMs: number): Promise<boolean> {
    const deadline = performance.now() + maxMs;
    while (!this.drawn && Atomics.load(this.#control, Slot.CLOSED) === 0) {
      const left = deadline - performance.now();
      if (left <= 0) break;
      const wait = Atomics.waitAsync(this.#control, Slot.DRAWN, 0, left);
      if (!wait.async) continue;
      // Deno's event loop does not wait for `waitAsync` alone: a timer keeps it turning (and
      // a notify is then taken within a millisecond).
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([wait.value, new Promise((resolve) => timer = setTimeout(resolve, left))]);
      clearTimeout(timer);
    }
    return this.drawn;
  }
}

/** The trouble flags as a set: `Atomics.or`/`and` flip an agency's bit, a counter keeps the size. */
function troubledSet(control: Int32Array, flags: Uint8Array): AgencySet {
  return {
    get size() {
      return Atomics.load(control, Slot.TROUBLED);
    },
    add(agency: number) {
      if ((Atomics.or(flags, agency, TROUBLED) & TROUBLED) === 0) {
        Atomics.add(control, Slot.TROUBLED, 1);
      }
    },
    delete(agency: number) {
      if ((Atomics.and(flags, agency, ~TROUBLED & 0xff) & TROUBLED) !== 0) {
        Atomics.sub(control, Slot.TROUBLED, 1);
      }
    },
    *[Symbol.iterator]() {
      for (let agency = 1; agency < flags.length; agency++) {
        if ((Atomics.load(flags, agency) & TROUBLED) !== 0) yield agency;
      }
    },
  };
}
