/**
 * What the dataset, compose and bench tests share: a temporary folder, and an agency file's rows.
 *
 * @module
 */
import assert from "node:assert/strict";

/** Runs `fn` with a fresh temporary directory, removed afterwards. */
export async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "dataset_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Splits a whole agency file into rows without line endings, asserting each ends in CRLF. */
export function crlfRows(text: string): string[] {
  assert.ok(text.endsWith("\r\n"), "the file ends with CRLF");
  const rows = text.slice(0, -2).split("\r\n");
  for (const row of rows) assert.ok(!row.includes("\n") && !row.includes("\r"), row);
  return rows;
}
