import assert from "node:assert/strict";
import { parseProcStat, parseProcStatus } from "./proc.ts";

Deno.test("parseProcStatus() reads VmRSS and VmHWM", () => {
  const text = [
    "Name:\tdeno",
    "VmPeak:\t 3000000 kB",
    "VmHWM:\t  114396 kB",
    "VmRSS:\t  100200 kB",
    "RssAnon:\t   60000 kB",
  ].join("\n");
  assert.deepEqual(parseProcStatus(text), { rssKb: 100_200, hwmKb: 114_396 });
  assert.deepEqual(parseProcStatus("Name:\tzombie\nState:\tZ (zombie)\n"), { rssKb: 0, hwmKb: 0 });
});

Deno.test("parseProcStat() counts fields from the last parenthesis", () => {
  const tail = "S 1 42 42 0 -1 4194304 100 0 0 0 150 25 300 40 20 0 1 0 99";
  assert.deepEqual(parseProcStat(`42 (deno) ${tail}`), { selfTicks: 175, childrenTicks: 340 });
  assert.deepEqual(parseProcStat(`42 (a) (b c) ${tail}`), {
    selfTicks: 175,
    childrenTicks: 340,
  });
  assert.equal(parseProcStat("not a stat line"), undefined);
  assert.equal(parseProcStat("42 (deno) S 1 2"), undefined);
});
