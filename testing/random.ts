/**
 * Seeded randomness for tests and the tools' data generator: the same seed gives the
 * same sequence on every machine, so a failing case can be replayed and a generated
 * file is the same everywhere. Nothing in the programs imports it.
 *
 * @module
 */

/**
 * A mulberry32 generator: small, fast, and good enough for test data.
 *
 * @param seed The seed; its low 32 bits are used.
 * @returns A function giving the next unsigned 32-bit value of the sequence.
 *
 * @example Usage
 * ```ts
 * const next = mulberry32(42);
 * next(); // the same for every run with seed 42
 * ```
 */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return function next(): number {
    state = (state + 0x6d2b_79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** A seeded source of randomness on {@linkcode mulberry32}, so a failing case can be replayed. */
export class Random {
  readonly #next: () => number;

  /** @param seed Any 32-bit integer. */
  constructor(seed: number) {
    this.#next = mulberry32(seed);
  }

  /** A float in [0, 1). */
  next(): number {
    return this.#next() / 0x1_0000_0000;
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
