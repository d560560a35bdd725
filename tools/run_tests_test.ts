import assert from "node:assert/strict";
import { readSummary } from "./run_tests.ts";

/** The end of Deno 2.9.6's output, colours and all, for a module that fails to load and a failing test. */
const FAILED = `\x1b[0m\x1b[1m\x1b[37m\x1b[41m FAILURES \x1b[0m

./a/load_test.ts (uncaught error)
fails \x1b[0m\x1b[38;5;245m=> ./a/z_test.ts:1:6\x1b[0m

\x1b[0m\x1b[31mFAILED\x1b[0m | 2 passed (2 steps) | 2 failed | 1 ignored \x1b[0m\x1b[38;5;245m(56ms)\x1b[0m

\x1b[0m\x1b[1m\x1b[31merror\x1b[0m: Test failed
`;

Deno.test("readSummary() reads Deno's counts and the tests it names as failed", () => {
  assert.deepEqual(readSummary(FAILED), {
    passed: 2,
    failed: 2,
    failures: ["./a/load_test.ts (uncaught error)", "fails => ./a/z_test.ts:1:6"],
  });
  assert.deepEqual(readSummary("running 1 test\nok | 1 passed | 0 failed (5ms)\n"), {
    passed: 1,
    failed: 0,
    failures: [],
  });
});

Deno.test("readSummary() is undefined when deno test stopped before its summary", () => {
  assert.equal(readSummary("error: Type checking failed.\n"), undefined);
});
