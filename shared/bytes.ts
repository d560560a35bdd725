/**
 * Byte-array helpers shared by the programs, the tests and the tools.
 *
 * @module
 */

/** The line feed byte, `\n`: ends every line the programs read or write. */
export const LF = 0x0a;

/** The carriage return byte, `\r`: the first half of a CRLF line end. */
export const CR = 0x0d;

/**
 * Joins byte arrays into a new one, e.g. frames for one write.
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

/**
 * Writes every byte to a socket, a file, anything with `write`, looping over short writes
 * (a `write()` may take only a prefix). An error of the writer is thrown as it is.
 */
export async function writeAll(
  writer: { write(p: Uint8Array): Promise<number> },
  bytes: Uint8Array,
): Promise<void> {
  for (let written = 0; written < bytes.length;) {
    written += await writer.write(bytes.subarray(written));
  }
}
