/**
 * Helpers for the fault-injection tests: the fault report's rows, the exactly-once
 * accounting of `bets.csv` against the agencies' files, raw protocol peers, and process
 * facts read from `/proc`.
 *
 * @module
 */
import { FramedConnection } from "../../shared/net/framed_conn.ts";
import { MessageType } from "../../shared/protocol/mod.ts";
import { FAULT_ROW_PREFIX, type FaultRow } from "../../tools/fault_report.ts";
import { type ClientProcess, parseLog, readRows, type ServerProcess } from "../lottery/_harness.ts";
export { COURSE_BET as GOOD_BET } from "../../testing/course_data.ts";
/** The harness calls a fault scenario drives a server and its agencies with. */
export { runServerToExit, startClient, startServer, waitFor } from "../lottery/_harness.ts";
export { parseLog };
import { generateDataset } from "../../tools/dataset/mod.ts";

export type { FaultRow };

/**
 * Prints a report row, and appends it to `$FAULT_REPORT_FILE` when that is set (as
 * `tools/fault_report.ts` does, to print the table at the end).
 *
 * @param row The row.
 */
export async function reportFault(row: FaultRow): Promise<void> {
  const line = FAULT_ROW_PREFIX + JSON.stringify(row);
  console.log(line);
  const file = Deno.env.get("FAULT_REPORT_FILE");
  if (file) await Deno.writeTextFile(file, line + "\n", { append: true });
}

/**
 * {@linkcode reportFault} for a passing scenario that sends no bets (hostile peers, limits),
 * with the outcome it expects and saw, if given.
 */
export function reportNoBets(scenario: string, faults: number, outcome?: string): Promise<void> {
  return reportFault({
    scenario,
    faults,
    sent: 0,
    stored: 0,
    lost: 0,
    duplicated: 0,
    result: "pass",
    ...(outcome === undefined ? {} : { outcome }),
  });
}

/**
 * {@linkcode reportFault} for a scenario whose bets were accounted for: its counts come
 * from the accounting, and it passes when nothing was lost or duplicated.
 *
 * @param scenario What was done.
 * @param faults How many faults were injected.
 * @param result The accounting of `bets.csv`.
 * @param outcome The refusal or recovery the scenario expects (and saw).
 */
export function reportAccounted(
  scenario: string,
  faults: number,
  result: Accounting,
  outcome?: string,
): Promise<void> {
  const { sent, stored, lost, duplicated } = result;
  const pass = lost === 0 && duplicated === 0;
  return reportFault({
    scenario,
    faults,
    sent,
    stored,
    lost,
    duplicated,
    result: pass ? "pass" : "fail",
    ...(outcome === undefined ? {} : { outcome }),
  });
}

/** What `bets.csv` holds compared with what the agencies sent. */
export interface Accounting {
  readonly sent: number;
  readonly stored: number;
  /** Expected rows absent from the file. */
  readonly lost: number;
  /** Extra copies of expected rows. */
  readonly duplicated: number;
  /** Rows that are no agency's bet (a torn or corrupt row). */
  readonly foreign: number;
  /** Whether the file is empty or ends with a whole row (CRLF). */
  readonly endsWhole: boolean;
}

/**
 * Generates agency CSVs into `dir`: `bets` rows for each of `agencies`, from `seed`, a
 * share `winners` of them winning.
 *
 * @returns `paths[i]` is agency i+1's CSV.
 */
export async function agencyFiles(
  dir: string,
  options: { agencies: number; bets: number; seed: number; winners: number },
): Promise<string[]> {
  const { agencies, bets: betsPerAgency, seed, winners: winnerShare } = options;
  const summary = await generateDataset({ dir, agencies, betsPerAgency, seed, winnerShare });
  return summary.files.map((f) => f.path);
}

/**
 * The rows `bets.csv` must hold for these agency files: `<agency>,<row>` each.
 *
 * @param paths `paths[i]` is agency i+1's CSV.
 * @returns The expected rows.
 */
export async function expectedRows(paths: readonly string[]): Promise<string[]> {
  const rows: string[] = [];
  for (const [i, path] of paths.entries()) {
    for (const row of await readRows(path)) rows.push(`${i + 1},${row}`);
  }
  return rows;
}

/**
 * Counts lost, duplicated and foreign rows of `bets.csv` against the expected rows.
 *
 * @param betsCsv The file's path.
 * @param expected The expected rows (see {@linkcode expectedRows}).
 * @returns The accounting.
 */
export async function account(betsCsv: string, expected: readonly string[]): Promise<Accounting> {
  const text = await Deno.readTextFile(betsCsv).catch(() => "");
  const lines = text.split("\r\n");
  const endsWhole = lines.pop() === "";
  const want = new Map<string, number>();
  for (const row of expected) want.set(row, (want.get(row) ?? 0) + 1);
  const got = new Map<string, number>();
  for (const row of lines) got.set(row, (got.get(row) ?? 0) + 1);
  let lost = 0;
  let duplicated = 0;
  let foreign = 0;
  for (const [row, n] of want) lost += Math.max(0, n - (got.get(row) ?? 0));
  for (const [row, n] of got) {
    const expectedCount = want.get(row);
    if (expectedCount === undefined) foreign += n;
    else duplicated += Math.max(0, n - expectedCount);
  }
  return {
    sent: expected.length,
    stored: lines.length,
    lost,
    duplicated: duplicated + foreign,
    foreign,
    endsWhole,
  };
}

/**
 * Each agency's winning documents, in file order: what its winners query must return.
 *
 * @param paths `paths[i]` is agency i+1's CSV.
 * @returns The documents by agency id.
 */
export async function expectedWinners(paths: readonly string[]): Promise<Map<number, string[]>> {
  const winners = new Map<number, string[]>();
  for (const [i, path] of paths.entries()) {
    const rows = await readRows(path);
    winners.set(
      i + 1,
      rows.filter((row) => row.endsWith(",7574")).map((row) => row.split(",").at(-3)!),
    );
  }
  return winners;
}

/**
 * Opens a raw protocol connection to the server on 127.0.0.1.
 *
 * @param port The server's port.
 * @param idleTimeoutMs How long a read may wait.
 * @returns The connection.
 */
export async function connectRaw(port: number, idleTimeoutMs = 5000): Promise<FramedConnection> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  return new FramedConnection(conn, { idleTimeoutMs });
}

/**
 * Connects and says HELLO as `agency`; resolves with the WELCOME.
 *
 * @param port The server's port.
 * @param agency The agency id.
 * @param secret Its secret.
 * @returns The connection and where the agency stands.
 */
export async function helloRaw(
  port: number,
  agency: number,
  secret = "",
): Promise<{ conn: FramedConnection; nextSeq: number; done: boolean }> {
  const conn = await connectRaw(port);
  await conn.send({ type: MessageType.HELLO, agency, secret });
  const welcome = await conn.expect(MessageType.WELCOME);
  return { conn, nextSeq: welcome.nextSeq, done: welcome.done };
}

/**
 * Reads a Linux process's memory figures from `/proc/<pid>/status`.
 *
 * @param pid The process.
 * @returns Resident and peak resident set sizes in MiB, or `undefined` when unreadable.
 */
export function memoryOf(pid: number): { rssMiB: number; peakMiB: number } | undefined {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1]);
    return { rssMiB: kib("VmRSS") / 1024, peakMiB: kib("VmHWM") / 1024 };
  } catch {
    return undefined;
  }
}

/**
 * How many file descriptors this process may open (`ulimit -n`), from `/proc`.
 *
 * @returns The soft limit, or `undefined` when unknown.
 */
export function openFileLimit(): number | undefined {
  try {
    const limits = Deno.readTextFileSync("/proc/self/limits");
    const soft = /^Max open files\s+(\d+)/m.exec(limits)?.[1];
    return soft === undefined ? undefined : Number(soft);
  } catch {
    return undefined;
  }
}

/**
 * Resolves after `ms` milliseconds.
 *
 * @param ms How long.
 */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Bets the server has acknowledged so far, from its `apuesta_recibida` lines.
 *
 * @param server The server.
 * @returns The sum of their `cantidad`.
 */
export function received(server: ServerProcess): number {
  return parseLog(server.stdout())
    .filter((l) => l.action === "apuesta_recibida" && l.result === "success")
    .reduce((sum, l) => sum + Number(l.fields.get("cantidad")), 0);
}

/**
 * Connections the server has accepted so far.
 *
 * @param server The server.
 * @returns Its `accept_connections | result: success` lines.
 */
export function accepted(server: ServerProcess): number {
  return parseLog(server.stdout())
    .filter((l) => l.action === "accept_connections" && l.result === "success").length;
}

/**
 * Connections the server holds, from its latest `progreso` line.
 *
 * @param server The server.
 * @returns Its `conexiones`, 0 before the first such line.
 */
export function connections(server: ServerProcess): number {
  const line = parseLog(server.stdout()).findLast((l) => l.action === "progreso");
  return Number(line?.fields.get("conexiones") ?? 0);
}

/**
 * Closes each connection; one the server (or a deadline) closed first is left as it is.
 *
 * @param conns The connections.
 */
export function closeAll(conns: Iterable<Deno.Conn>): void {
  for (const conn of conns) {
    try {
      conn.close();
    } catch {
      // Closed already.
    }
  }
}

/**
 * An agency's winners, from its `ganadores` line.
 *
 * @param client The agency.
 * @returns The DNIs, or `undefined` before it has them.
 */
export function winnersOf(client: ClientProcess): string[] | undefined {
  const line = parseLog(client.stdout()).find((l) => l.action === "ganadores");
  const dnis = line?.fields.get("dnis");
  return dnis === undefined ? undefined : dnis === "" ? [] : dnis.split(" ");
}

/**
 * Waits for every client to exit.
 *
 * @param clients The clients.
 * @param timeoutMs How long at most (a minute by default).
 * @returns Their exit codes.
 */
export async function allExit(
  clients: readonly ClientProcess[],
  timeoutMs = 60_000,
): Promise<number[]> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      Promise.all(clients.map((c) => c.status)),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("Timed out waiting for the clients")), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Kills every client still running and waits for them.
 *
 * @param clients The clients.
 */
export async function killAll(clients: readonly ClientProcess[]): Promise<void> {
  await Promise.all(clients.map((c) => {
    try {
      c.kill("SIGKILL");
    } catch {
      // Exited already.
    }
    return c.status;
  }));
}
