/**
 * The bet storage's retry comparison: a batch sent again under a sequence already taken is
 * acknowledged only if it holds the very bytes stored under that sequence.
 *
 * @module
 */
import { LF } from "../../shared/bytes.ts";
import { StorageError } from "../../shared/errors.ts";
import { freshDraw } from "../open_storage.ts";

/** Whether two byte arrays hold the same bytes. */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** What {@linkcode compareRetry} compares: a batch sent again and how to read the stored one. */
export interface Retry {
  readonly path: string;
  readonly agency: number;
  readonly seq: number;
  /** The rows sent again (a copy: the sender may reuse its buffer). */
  readonly rows: Uint8Array;
  readonly count: number;
}

/**
 * Resolves when `retry` holds the rows `stored` reads back (`undefined`: the first was not
 * stored, the storage failed).
 *
 * @throws {StorageError} `conflict` for other rows, `notStored` when the first was not
 * stored, or what reading the stored batch throws.
 */
export async function compareRetry(
  retry: Retry,
  stored: (() => Promise<Uint8Array>) | undefined,
): Promise<void> {
  const { path, agency, seq } = retry;
  if (stored === undefined) {
    throw new StorageError(
      path,
      `Batch ${seq} of agency ${agency} was not stored (the storage failed); send it again`,
      { kind: "notStored" },
    );
  }
  const bytes = await stored();
  if (sameBytes(bytes, retry.rows)) return;
  let storedBets = 0;
  for (const byte of bytes) if (byte === LF) storedBets++;
  throw new StorageError(
    path,
    `Batch ${seq} of agency ${agency} is not the batch stored under that sequence ` +
      `(${storedBets} bet${storedBets === 1 ? "" : "s"} stored, ${retry.count} sent), so ` +
      `this agency's bets were already loaded from other data; ${freshDraw(path)}`,
    { kind: "conflict" },
  );
}
