import assert from "node:assert/strict";
import { parseJUnit, summaryLine, uncaughtModules } from "./run_tests.ts";

/** Deno 2.9.6's report for a module with passing, failing, ignored and stepped tests. */
const REPORT = `<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="deno test" tests="11" failures="4" errors="0" time="0.016">
    <testsuite name="./a_test.ts" tests="10" disabled="1" errors="0" failures="4">
        <testcase name="top ok" classname="./a_test.ts" time="0.001" line="1" col="6">
        </testcase>
        <testcase name="top fail" classname="./a_test.ts" time="0.004" line="2" col="6">
            <failure message="Uncaught Error: boom &lt;x&gt; &amp; &quot;q&quot;">Error: boom &lt;x&gt;
    at file:///tmp/jt/a_test.ts:2:37</failure>
        </testcase>
        <testcase name="ign" classname="./a_test.ts" time="0.000" line="3" col="6">
            <skipped/>
        </testcase>
        <testcase name="steps" classname="./a_test.ts" time="0.005" line="4" col="6">
            <failure message="1 test step failed">1 test step failed.</failure>
        </testcase>
        <testcase name="steps ok" classname="./a_test.ts" time="0.000" line="8" col="6">
        </testcase>
        <testcase name="a &gt; b" classname="./a_test.ts" time="0.000" line="9" col="6">
        </testcase>
        <testcase name="steps &gt; s1" classname="./a_test.ts" time="0.000" line="5" col="11">
        </testcase>
        <testcase name="steps &gt; s2" classname="./a_test.ts" time="0.001" line="6" col="11">
            <failure message="1 test step failed">1 test step failed.</failure>
        </testcase>
        <testcase name="steps &gt; s2 &gt; s2a" classname="./a_test.ts" time="0.001" line="6" col="45">
            <failure message="Uncaught Error: inner">Error: inner</failure>
        </testcase>
        <testcase name="steps ok &gt; a" classname="./a_test.ts" time="0.000" line="8" col="46">
        </testcase>
    </testsuite>
    <testsuite name="./b_test.ts" tests="1" disabled="0" errors="0" failures="0">
        <testcase name="b ok" classname="./b_test.ts" time="0.003" line="1" col="6">
        </testcase>
        <testcase name="b error" classname="./b_test.ts" time="0.003" line="2" col="6">
            <error message="x">x</error>
        </testcase>
    </testsuite>
    <testsuite name="./empty_test.ts" tests="0" disabled="0" errors="0" failures="0">
    </testsuite>
</testsuites>`;

Deno.test("parseJUnit() counts top-level tests, not steps", () => {
  const summary = parseJUnit(REPORT);
  assert.equal(summary.passed, 4);
  assert.equal(summary.failed, 3);
  assert.equal(summary.ignored, 1);
  assert.deepEqual(summary.failures, [
    "./a_test.ts: top fail",
    "./a_test.ts: steps",
    "./b_test.ts: b error",
  ]);
  assert.equal(summary.cases.length, 12);
  assert.deepEqual(summary.cases.filter((entry) => entry.step).map((entry) => entry.name), [
    "steps > s1",
    "steps > s2",
    "steps > s2 > s2a",
    "steps ok > a",
  ]);
});

Deno.test("parseJUnit() reads an empty report and rejects other text", () => {
  const empty = parseJUnit(
    `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="deno test" tests="0"></testsuites>`,
  );
  assert.deepEqual([empty.passed, empty.failed, empty.ignored], [0, 0, 0]);
  assert.throws(() => parseJUnit("not xml"), SyntaxError);
});

Deno.test("uncaughtModules() finds modules that failed outside a test", () => {
  const output = `Uncaught error from ./d_test.ts \x1b[0m\x1b[31mFAILED\x1b[0m
 ERRORS \n
./d_test.ts (uncaught error)
error: (in promise) Error: load fail

 FAILURES \n
./d_test.ts (uncaught error)

FAILED | 1 passed | 1 failed (7ms)
`;
  assert.deepEqual(uncaughtModules(output), ["./d_test.ts"]);
  assert.deepEqual(uncaughtModules("ok | 3 passed | 0 failed"), []);
});

Deno.test("summaryLine() prints the counts", () => {
  assert.equal(summaryLine(42, 0), "42 passed, 0 failed");
});
