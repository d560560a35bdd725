/**
 * Seeded randomness for the generator, on the project's one seeded generator
 * (`mulberry32`, testing/random.ts): a 32-bit mixer to derive seeds, uniform integers, and
 * a keyed permutation that gives every row of a dataset its own 8-digit DNI. Pure and
 * deterministic: the same seed gives the same numbers on every machine.
 *
 * @module
 */

/** The smallest DNI the permutation gives. */
const DNI_MIN = 10_000_000;
/** How many 8-digit DNIs exist; also the most rows a dataset can have. */
export const DNI_COUNT = 90_000_000;

/** Mixes the low 32 bits of a number into an unsigned 32-bit integer (MurmurHash3's finalizer). */
export function mix32(value: number): number {
  let h = value >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85eb_ca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2_ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** A uniform integer in `[0, n)`, `n` at least 1, from the next value of a `mulberry32`. */
export function below(random: () => number, n: number): number {
  return Math.floor((random() / 0x1_0000_0000) * n);
}

/**
 * A keyed permutation from a row's index in the dataset, `[0, DNI_COUNT)`, to its DNI: a
 * 4-round Feistel network on 28 bits with cycle walking, its round keys derived from the
 * seed, so every row of a dataset gets a distinct, random-looking DNI.
 */
export function createDniPermutation(seed: number): (index: number) => number {
  const keys = [1, 2, 3, 4].map((round) => mix32(seed ^ Math.imul(round, 0x9e37_79b9)));
  function permute28(value: number): number {
    let left = value >>> 14;
    let right = value & 0x3fff;
    for (const key of keys) {
      const next = left ^ (mix32(right ^ key) & 0x3fff);
      left = right;
      right = next;
    }
    return (left << 14) | right;
  }
  return function dniOf(index: number): number {
    let value = index;
    do value = permute28(value); while (value >= DNI_COUNT);
    return DNI_MIN + value;
  };
}
