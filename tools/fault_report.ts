/**
 * Runs the fault-injection tests and prints the fault report: one row per scenario (each
 * test appends `fault_report_row {json}` to `FAULT_REPORT_FILE`), modules one at a time so
 * kill timings are not skewed; non-zero exit when a test failed or a row shows a loss.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { run } from "./_cli.ts";

/** One row of the fault report. */
export interface FaultRow {
  /** What was done, e.g. `kill -9 server during ingestion`. */
  readonly scenario: string;
  /** How many faults were injected (kills, hostile frames, idle connections, …). */
  readonly faults: number;
  /** Bets the agencies had to deliver. */
  readonly sent: number;
  /** Rows found in `bets.csv` at the end. */
  readonly stored: number;
  /** Expected rows missing from `bets.csv`. */
  readonly lost: number;
  /** Rows stored more than once, or rows that are no agency's bet. */
  readonly duplicated: number;
  /** `pass` when every invariant of the scenario held. */
  readonly result: "pass" | "fail";
  /** The refusal or recovery the scenario expects and saw, in a few words. */
  readonly outcome?: string;
}

/** Starts a report row in test output and in the report file. */
export const FAULT_ROW_PREFIX = "fault_report_row ";

/** A failed test's row: nothing was counted. */
const NO_COUNTS = { faults: NaN, sent: NaN, stored: NaN, lost: NaN, duplicated: NaN } as const;

/**
 * The report rows of test output or the report file, in order: lines
 * `fault_report_row {json}`, and a failed row for each `run_tests: failed: <test> => <place>`.
 */
export function parseFaultRows(text: string): FaultRow[] {
  const rows: FaultRow[] = [];
  for (const line of text.split("\n")) {
    const at = line.indexOf(FAULT_ROW_PREFIX);
    const failed = /^run_tests: failed: (.*?)(?: => \S+)?$/.exec(line.trim());
    if (at !== -1) rows.push(JSON.parse(line.slice(at + FAULT_ROW_PREFIX.length)));
    else if (failed) {
      rows.push({ scenario: `${failed[1]} (test failed)`, ...NO_COUNTS, result: "fail" });
    }
  }
  return rows;
}

/** Whether a row shows a problem: a failed result, or any bet lost or duplicated. */
export function isBad(row: FaultRow): boolean {
  return row.result !== "pass" || row.lost !== 0 || row.duplicated !== 0;
}

const TITLES = ["scenario", "faults injected", "bets sent", "bets stored", "lost", "duplicated"];

/** Formats rows as an aligned Markdown table, one line per row after the header and rule. */
export function formatFaultTable(rows: readonly FaultRow[]): string {
  const count = (n: number) => Number.isFinite(n) ? n.toLocaleString("en-US") : "-";
  const cells = rows.map((r) =>
    [r.scenario, ...[r.faults, r.sent, r.stored, r.lost, r.duplicated].map(count)]
      .concat(isBad(r) ? "FAIL" : "pass", r.outcome ?? "")
  );
  const titles = [...TITLES, "result", "outcome"];
  const widths = titles.map((t, i) => Math.max(t.length, ...cells.map((c) => c[i]!.length)));
  const numeric = (i: number) => i > 0 && i < TITLES.length;
  const line = (texts: readonly string[]) =>
    `| ${
      texts.map((t, i) => numeric(i) ? t.padStart(widths[i]!) : t.padEnd(widths[i]!)).join(" | ")
    } |`;
  const rule = `|${
    widths.map((w, i) => numeric(i) ? `${"-".repeat(w + 1)}:` : "-".repeat(w + 2)).join("|")
  }|`;
  return [line(titles), rule, ...cells.map(line)].join("\n");
}

/** Runs `tools/run_tests.ts` on `paths`, then prints the table; returns the exit code. */
async function runFaultReport(paths: readonly string[]): Promise<number> {
  const file = await Deno.makeTempFile({ prefix: "fault_report_", suffix: ".jsonl" });
  try {
    const runTests = fileURLToPath(new URL("./run_tests.ts", import.meta.url));
    const result = await run([Deno.execPath(), "run", "-A", runTests, ...paths], {
      env: { FAULT_REPORT_FILE: file, DENO_JOBS: "1" },
      output: "tee",
    });
    const lines = result.stdout.split("\n");
    const rows = [
      ...parseFaultRows(await Deno.readTextFile(file)),
      ...parseFaultRows(lines.filter((l) => l.startsWith("run_tests: failed: ")).join("\n")),
    ];
    const bad = rows.filter(isBad);
    console.log(`\nFault report\n${rows.length > 0 ? formatFaultTable(rows) : "(no rows)"}`);
    console.log(
      bad.length === 0 && rows.length > 0
        ? `fault report: ${rows.length} scenarios, 0 bets lost, 0 duplicated`
        : `fault report: ${bad.length} of ${rows.length} scenarios failed`,
    );
    // Keep the summary line last, where CI looks for it.
    const summary = lines.findLast((l) => /^\d+ passed, \d+ failed$/.test(l));
    if (summary !== undefined) console.log(summary);
    if (result.code !== 0) return result.code;
    return bad.length > 0 || rows.length === 0 ? 1 : 0;
  } finally {
    await Deno.remove(file);
  }
}

if (import.meta.main) {
  Deno.exit(await runFaultReport(Deno.args.length > 0 ? Deno.args : ["e2e/faults/"]));
}
