/**
 * Defaults and limits of the dataset options, and the range checks every entry point
 * applies before writing anything.
 *
 * @module
 */

/** Defaults of `generate` and `ensure`. */
export const DATASET_DEFAULTS = {
  /** Where agency files live. */
  dir: ".data",
  /** Number of agency files. */
  agencies: 5,
  /** Rows in each file. */
  betsPerAgency: 20_000,
  /** PRNG seed. */
  seed: 42,
  /** Share of rows whose number is the winning number, 7574. */
  winnerShare: 0.001,
} as const;

/** The most agency files of a dataset. */
export const MAX_AGENCIES = 10_000;
/** The most rows of one agency file. */
export const MAX_BETS_PER_AGENCY = 10_000_000;
/** The largest seed (seeds are unsigned 32-bit). */
export const MAX_SEED = 0xffff_ffff;

/**
 * Checks that an option is a whole number in a range.
 *
 * @param name The option, as the message names it (e.g. `bets per agency`).
 * @param value The value.
 * @param min The smallest allowed value.
 * @param max The largest allowed value.
 * @throws {RangeError} If the value is not a safe integer in `[min, max]`.
 *
 * @example Usage
 * ```ts
 * checkInteger("agencies", 5, 1, MAX_AGENCIES); // passes
 * ```
 */
export function checkInteger(name: string, value: number, min: number, max: number): void {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new RangeError(
      `Cannot generate dataset: ${name} must be a whole number from ${min} to ${max}, got ${value}`,
    );
  }
}

/**
 * Checks a winner share.
 *
 * @param value The share of winning rows.
 * @throws {RangeError} If it is not a finite number from 0 to 1.
 *
 * @example Usage
 * ```ts
 * checkShare(0.001); // passes
 * ```
 */
export function checkShare(value: number): void {
  if (!Number.isFinite(value) || value < 0 || value > 1) {
    throw new RangeError(
      `Cannot generate dataset: winner share must be a number from 0 to 1, got ${value}`,
    );
  }
}
