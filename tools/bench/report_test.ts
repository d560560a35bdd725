import assert from "node:assert/strict";
import {
  type BenchReport,
  computeMedians,
  formatJsonLine,
  formatNumber,
  formatReport,
  formatWorkersTable,
  summarize,
  type SystemRun,
} from "./report.ts";

function run(wallMs: number, extra: Partial<SystemRun> = {}): SystemRun {
  return {
    ok: true,
    failures: [],
    wallMs,
    startupMs: 300,
    ackedMs: wallMs - 300,
    winnersMs: wallMs - 10,
    drawMs: 250,
    serverRssKb: 100 * 1024,
    clientRssKb: 55 * 1024,
    serverCpuMs: 1300,
    clientCpuMs: 1600,
    ...extra,
  };
}

function sampleReport(): BenchReport {
  return {
    setup: {
      label: "course dataset ×1",
      agencies: 5,
      bets: 78_697,
      bytes: 3_657_029,
      winners: 10,
      repeat: 1,
      fsync: "group",
      batch: 100,
    },
    system: [
      run(1600),
      run(2000),
      run(1800),
      { ok: false, failures: ["agency 2 exited with code 1"], wallMs: 100 },
    ],
    floor: [
      { ok: true, failures: [], wallMs: 80 },
      { ok: true, failures: [], wallMs: 100 },
      { ok: true, failures: [], wallMs: 90 },
    ],
    machine: { cores: "2", deno: "2.9.6" },
  };
}

Deno.test("computeMedians() summarizes verified runs only", () => {
  const medians = computeMedians(sampleReport());
  assert.equal(medians["wall_s"], 1.8);
  assert.equal(medians["floor_s"], 0.09);
  assert.ok(Math.abs(medians["ratio"]! - 20) < 1e-9);
  assert.equal(Math.round(medians["bets_per_s"]!), Math.round(78_697 / 1.8));
  assert.equal(medians["server_rss_mib"], 100);
  assert.equal(medians["client_rss_mib"], 55);
  assert.equal(medians["draw_ms"], 250);
});

Deno.test("computeMedians() gives null where nothing was measured", () => {
  const report = { ...sampleReport(), floor: [] };
  const medians = computeMedians(report);
  assert.equal(medians["floor_s"], null);
  assert.equal(medians["ratio"], null);
});

Deno.test("formatReport() prints a Markdown table and the failed runs", () => {
  const text = formatReport(sampleReport());
  const lines = text.trimEnd().split("\n");
  assert.match(lines[0]!, /^### course dataset ×1: 5 agencies, 78,697 bets, 3\.7 MB/);
  assert.ok(lines.includes("| metric | min | median | max |"));
  assert.ok(lines.includes("| wall: client start → all exited (s) | 1.600 | 1.800 | 2.000 |"));
  assert.ok(lines.includes("| ratio: median wall / median floor | – | 20.0× | – |"));
  assert.ok(lines.some((line) => line.startsWith("| bets/s | 39,349 | 43,721 | 49,186 |")));
  assert.match(text, /Runs verified: system 3\/4, floor 3\/3/);
  assert.match(text, /- system run 4: agency 2 exited with code 1/);
  // Every table row has the same number of cells.
  const rows = lines.filter((line) => line.startsWith("|"));
  assert.ok(rows.every((row) => row.split("|").length === 6));
});

Deno.test("formatJsonLine() is one line of rounded medians with the setup", () => {
  const line = formatJsonLine(sampleReport());
  assert.ok(!line.includes("\n"));
  const json = JSON.parse(line);
  assert.equal(json.bench, "loteria");
  assert.equal(json.bets, 78_697);
  assert.equal(json.runs_ok, 3);
  assert.equal(json.runs_failed, 1);
  assert.equal(json.wall_s, 1.8);
  assert.equal(json.ratio, 20);
  assert.equal(json.draw_ms, 250);
});

Deno.test("formatNumber() groups thousands and fixes digits", () => {
  assert.equal(formatNumber(1_234_567.891, 0), "1,234,568");
  assert.equal(formatNumber(0.2014, 3), "0.201");
});

Deno.test("summarize() gives min, median and max", () => {
  assert.deepEqual(summarize([3, 1, 2]), { min: 1, median: 2, max: 3 });
  assert.deepEqual(summarize([4, 1, 3, 2]), { min: 1, median: 2.5, max: 4 });
  assert.deepEqual(summarize([7]), { min: 7, median: 7, max: 7 });
  assert.deepEqual(summarize([NaN, 5, Infinity]), { min: 5, median: 5, max: 5 });
  assert.equal(summarize([]), undefined);
});

Deno.test("formatWorkersTable() puts the settings side by side with paired ratios of interleaved runs", () => {
  const run = (
    workers: string,
    wallMs: number,
    threadCpuMs: Record<string, number>,
    clientCpuMs: number,
  ) => ({ ok: true, failures: [], wallMs, workers, threadCpuMs, clientCpuMs });
  const table = formatWorkersTable([
    run("default", 1000, { main: 300, "worker-1": 100, other: 100 }, 1000),
    run("1", 500, { main: 400 }, 700),
    run("default", 2000, { main: 100, "worker-1": 300 }, 2000),
    run("1", 3000, { main: 400 }, 900),
  ], { workers: ["default", "1"], bets: 1000 });
  // Server CPU: the median of each run's threads together; clients': the median of runs.
  assert.match(
    table,
    /^\| default \| 2\/2 \| 1\.500 \| 667 \| 0\.45 \| 1\.50 \| main 50%, worker-1 50% \|$/m,
  );
  assert.match(table, /^\| 1 \| 2\/2 \| 1\.750 \| 571 \| 0\.40 \| 0\.80 \| main 100% \|$/m);
  // Ratios 0.5 and 1.5: their median.
  assert.match(table, /wall with 1 \/ wall with default: 1\.00×/);
});
