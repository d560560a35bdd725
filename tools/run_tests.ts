/**
 * Runs `deno test -P --parallel` (deno.json's test set, or the paths given), names each
 * failed test, and ends with one line `N passed, N failed`; the exit code is `deno test`'s.
 *
 * @module
 */
import { run, stripAnsi } from "./_cli.ts";

/** Deno's summary line: `ok | 3 passed (2 steps) | 0 failed | 1 ignored (40ms)`. */
const SUMMARY = /^(?:ok|FAILED) \| (\d+) passed(?: \(\d+ steps?\))? \| (\d+) failed/m;

/**
 * The counts in `deno test`'s output and the tests its FAILURES section names
 * (`name => ./file.ts:1:6`, or `./file.ts (uncaught error)`); `undefined` when it stopped
 * before its summary (e.g. a type error).
 */
export function readSummary(
  output: string,
): { passed: number; failed: number; failures: string[] } | undefined {
  const text = stripAnsi(output);
  const counts = SUMMARY.exec(text);
  if (counts === null) return undefined;
  const section = text.split(/^ FAILURES $/m)[1]?.trimStart().split("\n\n")[0] ?? "";
  const failures = section.split("\n").map((line) => line.trim()).filter((line) => line);
  return { passed: Number(counts[1]), failed: Number(counts[2]), failures };
}

/**
 * Runs the tests in `paths` (none: deno.json's test set), streaming their output, then
 * prints the failures and the summary line last; returns `deno test`'s exit code.
 */
export async function runTests(paths: readonly string[]): Promise<number> {
  const result = await run([Deno.execPath(), "test", "-P", "--parallel", ...paths], {
    output: "tee",
  });
  const summary = readSummary(result.stdout + result.stderr);
  for (const name of summary?.failures ?? []) console.log(`run_tests: failed: ${name}`);
  if (summary === undefined) {
    console.log(`run_tests: deno test exited with ${result.code} before its summary`);
  }
  // Never "0 failed" for a failing run.
  const failed = Math.max(summary?.failed ?? 0, result.code === 0 ? 0 : 1);
  console.log(`${summary?.passed ?? 0} passed, ${failed} failed`);
  return result.code;
}

if (import.meta.main) {
  Deno.exit(await runTests(Deno.args));
}
