/**
 * Seeded randomness for tests: the same seed gives the same sequence, so a failing case
 * can be replayed. Test support only: nothing in the programs imports it.
 *
 * @module
 */

/** A seeded source of randomness (mulberry32), so a failing case can be replayed. */
export class Random {
  #state: number;

  /** @param seed Any 32-bit integer. */
  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /**
   * An integer in [min, max].
   *
   * @param min The smallest value.
   * @param max The largest value.
   * @returns The integer.
   */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  /**
   * One element of a non-empty list.
   *
   * @param items The list.
   * @returns One of its elements.
   */
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }

  /**
   * Whether an event of probability `p` happens.
   *
   * @param p The probability.
   * @returns `true` with probability `p`.
   */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /**
   * Random bytes.
   *
   * @param n How many.
   * @returns The bytes.
   */
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = Math.floor(this.next() * 256);
    return out;
  }
}

/**
 * A seeded generator of floats in [0, 1), for tests that only need `random()`.
 *
 * @param seed Any 32-bit integer.
 * @returns The next value of a {@linkcode Random} each call.
 */
export function seeded(seed: number): () => number {
  const random = new Random(seed);
  return () => random.next();
}
