import assert from "node:assert/strict";
import {
  formatThreadShares,
  parseProcStat,
  parseProcStatus,
  threadCpuMs,
  threadCpuSince,
} from "./proc.ts";

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

Deno.test("threadCpuMs() names this process's main thread and sums the rest as other", () => {
  const cpu = threadCpuMs(Deno.pid);
  assert.ok(cpu !== undefined && "main" in cpu);
  assert.ok(Object.keys(cpu).every((label) => /^(main|other|worker-\d+)$/.test(label)));
});

Deno.test("formatThreadShares() gives each JavaScript thread's share, leaving other out", () => {
  const since = threadCpuSince({ main: 100, "worker-1": 0 }, {
    main: 300,
    "worker-10": 100,
    "worker-1": 100,
    other: 900,
  });
  assert.equal(formatThreadShares(since), "main 50%, worker-1 25%, worker-10 25%");
  assert.equal(formatThreadShares({ other: 5 }), "–");
});
