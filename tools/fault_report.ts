/**
 * Runs the fault-injection tests and prints the fault report: one row per scenario
 * with the faults injected, the bets sent and stored, and how many were lost or
 * duplicated (both must be 0).
 *
 * ```sh
 * deno run -A tools/fault_report.ts e2e/faults/
 * ```
 *
 * Each scenario test appends a row (a line `fault_report_row {json}`) to the file named
 * by `FAULT_REPORT_FILE`, which this script sets. Test modules run one at a time
 * (`DENO_JOBS=1`), so kill timings are not skewed by another scenario's load. The
 * output ends with the table and then `tools/run_tests.ts`'s `N passed, N failed` line
 * again; the exit code is non-zero when a test failed or a row shows a loss.
 *
 * @module
 */
import { join } from "node:path";
import { tee } from "./run_tests.ts";

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
  /** The refusal or recovery the scenario expects and saw, e.g. `second server exits 2`. */
  readonly outcome?: string;
  /** `pass` when every invariant of the scenario held. */
  readonly result: "pass" | "fail";
}

/** Starts a report row in test output and in the report file. */
export const FAULT_ROW_PREFIX = "fault_report_row ";

const SUMMARY = /^\d+ passed, \d+ failed$/;

/**
 * Collects the report rows from text: lines `fault_report_row {json}`, and a failed row
 * for each `run_tests: failed: <test>` line.
 *
 * @param text Test output or the report file.
 * @returns The rows, in order.
 *
 * @example Usage
 * ```ts
 * parseFaultRows('fault_report_row {"scenario":"x","faults":1,"sent":2,"stored":2,"lost":0,"duplicated":0,"result":"pass"}');
 * ```
 */
export function parseFaultRows(text: string): FaultRow[] {
  const rows: FaultRow[] = [];
  for (const line of text.split("\n")) {
    const at = line.indexOf(FAULT_ROW_PREFIX);
    if (at !== -1) {
      const row = JSON.parse(line.slice(at + FAULT_ROW_PREFIX.length)) as FaultRow;
      rows.push(row);
      continue;
    }
    const failed = /^run_tests: failed: (?:\S+: )?(.*)$/.exec(line.trim());
    if (failed) {
      rows.push({
        scenario: `${failed[1]} (test failed)`,
        faults: NaN,
        sent: NaN,
        stored: NaN,
        lost: NaN,
        duplicated: NaN,
        result: "fail",
      });
    }
  }
  return rows;
}

/**
 * Whether a row shows a problem: a failed result, or any bet lost or duplicated.
 *
 * @param row The row.
 * @returns `true` when something went wrong.
 */
export function isBad(row: FaultRow): boolean {
  return row.result !== "pass" || row.lost !== 0 || row.duplicated !== 0;
}

const COLUMNS: readonly { title: string; cell: (row: FaultRow) => string; right: boolean }[] = [
  { title: "scenario", cell: (r) => r.scenario, right: false },
  { title: "faults injected", cell: (r) => count(r.faults), right: true },
  { title: "bets sent", cell: (r) => count(r.sent), right: true },
  { title: "bets stored", cell: (r) => count(r.stored), right: true },
  { title: "lost", cell: (r) => count(r.lost), right: true },
  { title: "duplicated", cell: (r) => count(r.duplicated), right: true },
  { title: "outcome", cell: (r) => r.outcome ?? "", right: false },
  { title: "result", cell: (r) => (isBad(r) ? "FAIL" : "pass"), right: false },
];

function count(n: number): string {
  return Number.isFinite(n) ? n.toLocaleString("en-US") : "-";
}

/**
 * Formats rows as an aligned Markdown table.
 *
 * @param rows The rows.
 * @returns The table, one line per row after the header and rule.
 */
export function formatFaultTable(rows: readonly FaultRow[]): string {
  const cells = rows.map((row) => COLUMNS.map((column) => column.cell(row)));
  const widths = COLUMNS.map((column, i) =>
    Math.max(column.title.length, ...cells.map((line) => line[i]!.length))
  );
  const pad = (text: string, i: number) =>
    COLUMNS[i]!.right ? text.padStart(widths[i]!) : text.padEnd(widths[i]!);
  const line = (texts: readonly string[]) => `| ${texts.map(pad).join(" | ")} |`;
  const rule = `|${
    widths.map((w, i) => (COLUMNS[i]!.right ? `${"-".repeat(w + 1)}:` : "-".repeat(w + 2))).join(
      "|",
    )
  }|`;
  return [line(COLUMNS.map((c) => c.title)), rule, ...cells.map(line)].join("\n");
}

/**
 * Runs `tools/run_tests.ts` on `paths` with a report file, then prints the table.
 *
 * @param paths The test paths, e.g. `e2e/faults/`.
 * @returns The exit code: the tests', or 1 when a row shows a problem.
 */
export async function runFaultReport(paths: readonly string[]): Promise<number> {
  const dir = await Deno.makeTempDir({ prefix: "fault_report_" });
  const file = join(dir, "rows.jsonl");
  try {
    await Deno.writeTextFile(file, "");
    const runTests = new URL("./run_tests.ts", import.meta.url).pathname;
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", runTests, ...paths],
      env: { FAULT_REPORT_FILE: file, DENO_JOBS: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const [output, status] = await Promise.all([tee(child.stdout, Deno.stdout), child.status]);
    const failures = output.split("\n").filter((l) => l.startsWith("run_tests: failed: "));
    const rows = [
      ...parseFaultRows(await Deno.readTextFile(file)),
      ...parseFaultRows(failures.join("\n")),
    ];
    console.log("");
    console.log("Fault report");
    console.log(rows.length > 0 ? formatFaultTable(rows) : "(no scenario reported a row)");
    const bad = rows.filter(isBad);
    const summary = output.split("\n").map((l) => l.trim()).findLast((l) => SUMMARY.test(l));
    console.log(
      bad.length === 0 && rows.length > 0
        ? `fault report: ${rows.length} scenarios, 0 bets lost, 0 duplicated`
        : `fault report: ${bad.length} of ${rows.length} scenarios failed`,
    );
    // Keep the summary line last, where CI looks for it.
    if (summary !== undefined) console.log(summary);
    if (status.code !== 0) return status.code;
    return bad.length > 0 || rows.length === 0 ? 1 : 0;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) {
  Deno.exit(await runFaultReport(Deno.args.length > 0 ? Deno.args : ["e2e/faults/"]));
}
