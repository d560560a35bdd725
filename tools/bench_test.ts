import assert from "node:assert/strict";
import {
  BENCH_DEFAULTS,
  BenchArgError,
  type BenchReport,
  computeMedians,
  countRows,
  defaultRunTimeoutMs,
  formatJsonLine,
  formatNumber,
  formatReport,
  FrameScanner,
  parseBenchArgs,
  parseDurationMs,
  parseLogLine,
  parseProcStat,
  parseProcStatus,
  percentile,
  summarize,
  type SystemRun,
} from "./bench.ts";
import { encodeMessage, MessageType } from "../shared/protocol/mod.ts";

const encoder = new TextEncoder();

Deno.test("parseBenchArgs() applies defaults", () => {
  const options = parseBenchArgs([]);
  assert.equal(options.dataset, undefined);
  assert.equal(options.agencies, BENCH_DEFAULTS.agencies);
  assert.equal(options.betsPerAgency, BENCH_DEFAULTS.betsPerAgency);
  assert.equal(options.repeat, 1);
  assert.equal(options.runs, 3);
  assert.equal(options.latencyRuns, 1);
  assert.equal(options.fsync, "group");
  assert.equal(options.batch, 100);
  assert.equal(options.timeoutMs, undefined);
  assert.equal(options.help, false);
});

Deno.test("parseBenchArgs() reads every option", () => {
  const options = parseBenchArgs([
    "--dataset",
    "../shared/data/dataset.zip",
    "--repeat",
    "10",
    "--runs",
    "5",
    "--latency-runs",
    "0",
    "--fsync",
    "off",
    "--batch",
    "80",
    "--timeout",
    "90s",
  ]);
  assert.equal(options.dataset, "../shared/data/dataset.zip");
  assert.equal(options.repeat, 10);
  assert.equal(options.runs, 5);
  assert.equal(options.latencyRuns, 0);
  assert.equal(options.fsync, "off");
  assert.equal(options.batch, 80);
  assert.equal(options.timeoutMs, 90_000);
});

Deno.test("parseBenchArgs() skips the `--` that deno task passes on", () => {
  const options = parseBenchArgs(["--", "--agencies", "3", "--bets-per-agency", "7"]);
  assert.equal(options.agencies, 3);
  assert.equal(options.betsPerAgency, 7);
});

Deno.test("parseBenchArgs() rejects bad command lines with one clear message", async (t) => {
  const cases: [string, string[], RegExp][] = [
    ["unknown option", ["--bogus"], /unknown option "--bogus"/],
    ["missing value", ["--runs"], /option "--runs" needs a value/],
    ["zero runs", ["--runs", "0"], /--runs must be a whole number from 1 to 100, got "0"/],
    ["fraction", ["--repeat", "1.5"], /--repeat must be a whole number/],
    ["negative", ["--batch=-3"], /--batch must be a whole number/],
    ["fsync mode", ["--fsync", "always"], /--fsync must be one of group, batch, off/],
    ["timeout", ["--timeout", "soon"], /--timeout must be a positive duration/],
    ["agencies with zip", ["--dataset", "d.zip", "--agencies", "3"], /does not apply/],
    ["bets with zip", ["--dataset", "d.zip", "--bets-per-agency", "3"], /does not apply/],
    ["empty dataset", ["--dataset", ""], /--dataset needs a path/],
    ["positional", ["extra"], /unexpected argument/],
  ];
  for (const [name, args, message] of cases) {
    await t.step(name, () => {
      assert.throws(() => parseBenchArgs(args), (error: unknown) => {
        assert.ok(error instanceof BenchArgError);
        assert.match(error.message, /^Cannot run bench: /);
        assert.match(error.message, message);
        assert.ok(!error.message.includes("\n"), "one line");
        return true;
      });
    });
  }
});

Deno.test("parseDurationMs() reads seconds, milliseconds and minutes", () => {
  assert.equal(parseDurationMs("90"), 90_000);
  assert.equal(parseDurationMs("90s"), 90_000);
  assert.equal(parseDurationMs("1500ms"), 1500);
  assert.equal(parseDurationMs("2m"), 120_000);
  assert.equal(parseDurationMs("0.5s"), 500);
  assert.equal(parseDurationMs("0"), undefined);
  assert.equal(parseDurationMs("-1s"), undefined);
  assert.equal(parseDurationMs("5h"), undefined);
});

Deno.test("defaultRunTimeoutMs() grows with the data", () => {
  assert.equal(defaultRunTimeoutMs(0), 60_000);
  assert.equal(defaultRunTimeoutMs(78_697), 64_000);
  assert.ok(defaultRunTimeoutMs(7_869_700) > 300_000);
});

Deno.test("summarize() gives min, median and max", () => {
  assert.deepEqual(summarize([3, 1, 2]), { min: 1, median: 2, max: 3 });
  assert.deepEqual(summarize([4, 1, 3, 2]), { min: 1, median: 2.5, max: 4 });
  assert.deepEqual(summarize([7]), { min: 7, median: 7, max: 7 });
  assert.deepEqual(summarize([NaN, 5, Infinity]), { min: 5, median: 5, max: 5 });
  assert.equal(summarize([]), undefined);
});

Deno.test("percentile() uses the nearest rank", () => {
  const values = Array.from({ length: 100 }, (_, i) => 100 - i); // 100 … 1, unsorted
  assert.equal(percentile(values, 50), 50);
  assert.equal(percentile(values, 99), 99);
  assert.equal(percentile(values, 100), 100);
  assert.equal(percentile(values, 0), 1);
  assert.equal(percentile([5, 1, 4, 2, 3], 50), 3);
  assert.equal(percentile([], 50), undefined);
});

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

Deno.test("parseLogLine() parses the course's action lines", () => {
  const line = parseLogLine(
    "2026-11-22 12:02:02 INFO     action: sorteo | result: success | ganadores: 10 | ms: 272",
  );
  assert.ok(line);
  assert.equal(line.level, "INFO");
  assert.equal(line.action, "sorteo");
  assert.equal(line.result, "success");
  assert.equal(line.fields["ganadores"], "10");
  assert.equal(line.fields["ms"], "272");

  const address = parseLogLine(
    "2026-11-22 12:02:00 INFO     action: accept_connections | result: in_progress | address: 127.0.0.1:12399",
  );
  assert.equal(address?.fields["address"], "127.0.0.1:12399");
  assert.equal(parseLogLine("client: cannot read config")?.action, undefined);
  assert.equal(parseLogLine("action: x | no result here"), undefined);
});

Deno.test("countRows() counts rows and 7574s with CRLF, LF and no final newline", () => {
  const text = "A,B,1,2000-01-01,7574\r\nC,D,2,2000-01-01,17574\nE,F,3,2000-01-01,7574";
  assert.deepEqual(countRows(encoder.encode(text)), { rows: 3, winners: 2 });
  assert.deepEqual(countRows(new Uint8Array()), { rows: 0, winners: 0 });
});

function sampleStream(): { bytes: Uint8Array; expected: [number, number][] } {
  const frames = [
    encodeMessage({ type: MessageType.HELLO, agency: 3, secret: "" }),
    encodeMessage({
      type: MessageType.BATCH,
      agency: 3,
      seq: 70_000,
      bets: [{
        firstName: "Ana",
        lastName: "Sosa",
        document: "30904465",
        birthdate: "1999-03-17",
        number: 7574,
      }],
    }),
    encodeMessage({ type: MessageType.BATCH_ACK, seq: 70_000, status: 0, count: 1, reason: "" }),
    encodeMessage({ type: MessageType.BYE }),
  ];
  const bytes = new Uint8Array(frames.reduce((sum, frame) => sum + frame.length, 0));
  let offset = 0;
  for (const frame of frames) {
    bytes.set(frame, offset);
    offset += frame.length;
  }
  return {
    bytes,
    expected: [
      [MessageType.HELLO, 0],
      [MessageType.BATCH, 70_000],
      [MessageType.BATCH_ACK, 70_000],
      [MessageType.BYE, -1],
    ],
  };
}

function scanInPieces(bytes: Uint8Array, cuts: number[]): [number, number][] {
  const seen: [number, number][] = [];
  const scanner = new FrameScanner((type, prefix) => {
    const view = new DataView(prefix.buffer, prefix.byteOffset, prefix.length);
    const seq = type === MessageType.BATCH
      ? view.getUint32(2)
      : type === MessageType.BATCH_ACK
      ? view.getUint32(0)
      : prefix.length === 0
      ? -1
      : 0;
    seen.push([type, seq]);
  });
  let from = 0;
  for (const cut of [...cuts, bytes.length]) {
    scanner.push(bytes.subarray(from, cut));
    from = cut;
  }
  assert.equal(scanner.broken, false);
  return seen;
}

Deno.test("FrameScanner reports frames fed whole, byte by byte and at random splits", async (t) => {
  const { bytes, expected } = sampleStream();
  await t.step("whole", () => assert.deepEqual(scanInPieces(bytes, []), expected));
  await t.step("byte by byte", () => {
    const cuts = Array.from({ length: bytes.length - 1 }, (_, i) => i + 1);
    assert.deepEqual(scanInPieces(bytes, cuts), expected);
  });
  await t.step("random splits", () => {
    let seed = 7;
    for (let round = 0; round < 50; round++) {
      const cuts: number[] = [];
      for (let at = 0; at < bytes.length;) {
        seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
        at += 1 + (seed % 9);
        if (at < bytes.length) cuts.push(at);
      }
      assert.deepEqual(scanInPieces(bytes, cuts), expected);
    }
  });
});

Deno.test("FrameScanner stops at a frame without the magic byte", () => {
  const seen: number[] = [];
  const scanner = new FrameScanner((type) => seen.push(type));
  scanner.push(encodeMessage({ type: MessageType.BYE }));
  scanner.push(encoder.encode("hello\n"));
  scanner.push(encodeMessage({ type: MessageType.BYE }));
  assert.deepEqual(seen, [MessageType.BYE]);
  assert.equal(scanner.broken, true);
});

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
    latency: [run(2100, { ackLatenciesMs: [1, 2, 3, 4, 100] })],
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
  assert.equal(medians["ack_p50_ms"], 3);
  assert.equal(medians["ack_p99_ms"], 100);
});

Deno.test("computeMedians() gives null where nothing was measured", () => {
  const report = { ...sampleReport(), latency: [], floor: [] };
  const medians = computeMedians(report);
  assert.equal(medians["ack_p50_ms"], null);
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
  assert.match(text, /Runs verified: system 3\/4, floor 3\/3, latency pass 1\/1/);
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
  assert.equal(json.ack_p99_ms, 100);
});

Deno.test("formatNumber() groups thousands and fixes digits", () => {
  assert.equal(formatNumber(1_234_567.891, 0), "1,234,568");
  assert.equal(formatNumber(0.2014, 3), "0.201");
});
