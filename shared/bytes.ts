/**
 * Byte-array helpers shared by the programs, the tests and the tools.
 *
 * @module
 */

/**
 * Joins byte arrays into one, e.g. frames for one write.
 *
 * @param parts The arrays, in order.
 * @returns Their bytes back to back, in a new array.
 *
 * @example Usage
 * ```ts
 * concatBytes([new Uint8Array([1]), new Uint8Array([2, 3])]); // Uint8Array [1, 2, 3]
 * ```
 */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.length;
  const bytes = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    bytes.set(part, offset);
    offset += part.length;
  }
  return bytes;
}
