/**
 * The statistics of the report: min/median/max over runs and nearest-rank percentiles.
 *
 * @module
 */

/** The spread of one metric over runs. */
export interface Spread {
  /** The smallest sample. */
  readonly min: number;
  /** The middle sample, or the mean of the two middle ones. */
  readonly median: number;
  /** The largest sample. */
  readonly max: number;
}

/**
 * Min, median (the mean of the two middle values for an even count) and max.
 *
 * @param values The samples; non-finite ones are ignored.
 * @returns The spread, or undefined when there is no finite sample.
 *
 * @example Usage
 * ```ts
 * summarize([3, 1, 2]); // { min: 1, median: 2, max: 3 }
 * ```
 */
export function summarize(values: readonly number[]): Spread | undefined {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return undefined;
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { min: sorted[0]!, median, max: sorted.at(-1)! };
}

/**
 * A nearest-rank percentile.
 *
 * @param values The samples, in any order.
 * @param p The percentile, 0 to 100.
 * @returns The smallest sample with at least `p`% of samples at or below it;
 * undefined for no samples.
 *
 * @example Usage
 * ```ts
 * percentile([5, 1, 4, 2, 3], 50); // 3
 * ```
 */
export function percentile(values: readonly number[], p: number): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1];
}
