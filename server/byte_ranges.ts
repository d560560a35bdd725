/**
 * Byte ranges of a file, ascending, as the draw needs them: the parts of `bets.csv` that
 * may hold a winner.
 *
 * @module
 */

/**
 * `[start, end)` byte ranges added in ascending order; a range that starts where the
 * last one ends extends it. Flat in one array: a stored batch with a winner costs two
 * numbers at most.
 */
export class ByteRanges {
  readonly #edges: number[] = [];

  /**
   * Adds `[start, end)`; an empty range is ignored.
   *
   * @param start The first byte.
   * @param end Just past the last byte; at least the end of every range added before.
   */
  add(start: number, end: number): void {
    const edges = this.#edges;
    if (end <= start) return;
    if (edges.length > 0 && edges[edges.length - 1] === start) edges[edges.length - 1] = end;
    else edges.push(start, end);
  }

  /** How many ranges there are (adjacent ones count as one). */
  get size(): number {
    return this.#edges.length / 2;
  }

  /**
   * The `i`-th range.
   *
   * @param i From 0 to `size - 1`.
   * @returns Its start and end.
   */
  at(i: number): readonly [start: number, end: number] {
    return [this.#edges[2 * i]!, this.#edges[2 * i + 1]!];
  }
}
