/**
 * Substring search over bytes (Boyer-Moore-Horspool): the draw's scan for winning rows
 * in `bets.csv`, run on the file's bytes as read. Decoding each chunk to a string for a
 * native `indexOf` cost more than the search itself.
 *
 * @module
 */

/** Finds the next occurrence of a fixed needle in some bytes. */
export type ByteSearch = (haystack: Uint8Array, from?: number) => number;

/**
 * Prepares a search for `needle` (the index of its first occurrence at or after `from`, or
 * -1): a table of how far each byte lets it skip, so most positions are never looked at.
 *
 * @throws {RangeError} If the needle is empty.
 *
 * @example Usage
 * ```ts
 * const find = byteSearch(new TextEncoder().encode(",7574\r\n"));
 * find(new TextEncoder().encode("1,x,7574\r\n")); // 3
 * ```
 */
export function byteSearch(needle: Uint8Array): ByteSearch {
  const m = needle.length;
  if (m === 0) throw new RangeError("Cannot search for an empty needle");
  const needleCopy = needle.slice();
  const skip = new Int32Array(256).fill(m);
  for (let i = 0; i < m - 1; i++) skip[needleCopy[i]!] = m - 1 - i;
  const last = needleCopy[m - 1]!;
  return (haystack, from = 0) => {
    const end = haystack.length - m;
    let i = Math.max(0, from);
    while (i <= end) {
      const byte = haystack[i + m - 1]!;
      if (byte === last) {
        let j = m - 2;
        while (j >= 0 && haystack[i + j] === needleCopy[j]) j--;
        if (j < 0) return i;
      }
      i += skip[byte]!;
    }
    return -1;
  };
}
