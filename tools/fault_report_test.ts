import assert from "node:assert/strict";
import { type FaultRow, formatFaultTable, isBad, parseFaultRows } from "./fault_report.ts";

const ROW: FaultRow = {
  scenario: "kill -9 server during ingestion",
  faults: 39,
  sent: 180_000,
  stored: 180_000,
  lost: 0,
  duplicated: 0,
  result: "pass",
};

Deno.test("parseFaultRows() reads row lines and turns failed tests into failed rows", () => {
  const text = [
    "some test output",
    `fault_report_row ${JSON.stringify(ROW)}`,
    "run_tests: failed: server - kill -9 at random moments => ./e2e/faults/crash_test.ts:91:6",
    "1 passed, 1 failed",
  ].join("\n");
  const rows = parseFaultRows(text);
  assert.equal(rows.length, 2);
  assert.deepEqual(rows[0], ROW);
  assert.equal(rows[1]!.scenario, "server - kill -9 at random moments (test failed)");
  assert.equal(rows[1]!.result, "fail");
  assert.ok(isBad(rows[1]!));
});

Deno.test("isBad() flags a loss or a duplicate even when the result says pass", () => {
  assert.equal(isBad(ROW), false);
  assert.equal(isBad({ ...ROW, lost: 1 }), true);
  assert.equal(isBad({ ...ROW, duplicated: 2 }), true);
});

Deno.test("formatFaultTable() aligns the columns and marks failures", () => {
  const table = formatFaultTable([ROW, { ...ROW, scenario: "x", lost: 3, outcome: "gave up" }])
    .split("\n");
  assert.equal(table.length, 4);
  assert.match(
    table[0]!,
    /^\| scenario +\| faults injected \| bets sent \| bets stored \| lost \|/,
  );
  assert.match(table[1]!, /^\|-+\|-+:\|/);
  assert.match(table[0]!, /\| result \| outcome +\|$/);
  assert.match(table[2]!, /\| +39 \| +180,000 \| +180,000 \| +0 \| +0 \| pass +\| +\|$/);
  assert.match(table[3]!, /\| +3 \| +0 \| FAIL +\| gave up \|$/);
  assert.ok(table.every((line) => line.length === table[0]!.length), "same width");
});

Deno.test("formatFaultTable() prints the outcome a scenario expects, blank when it has none", () => {
  const outcome = "second server refused, exit 2";
  const table = formatFaultTable([{ ...ROW, outcome }, ROW]).split("\n");
  assert.match(table[0]!, /\| duplicated \| result \| outcome +\|$/);
  assert.match(table[2]!, /\| +0 \| pass +\| second server refused, exit 2 \|$/);
  assert.match(table[3]!, /\| +0 \| pass +\| {31}\|$/);
  assert.deepEqual(parseFaultRows(`fault_report_row ${JSON.stringify({ ...ROW, outcome })}`), [
    { ...ROW, outcome },
  ]);
});
