/**
 * For tests of the programs' configuration: a file written in a folder of its own, and the
 * problems a `ConfigError` lists.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ConfigError } from "../shared/errors.ts";

/** Runs `fn` on `text` written to `name` in a new folder, which is removed afterwards. */
export async function withFile(
  name: string,
  text: string,
  fn: (path: string, dir: string) => void | Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "config_test_" });
  try {
    const path = join(dir, name);
    await Deno.writeTextFile(path, text);
    await fn(path, dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The problems of the `ConfigError` that `fn` throws; fails the test if it throws none. */
export function problemsOf(fn: () => unknown): readonly string[] {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${error}`);
    return error.problems;
  }
  assert.fail("expected a ConfigError");
}
