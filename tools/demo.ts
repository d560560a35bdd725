/**
 * `deno task demo`: builds, makes data if needed, runs the server and the agencies as local
 * processes on 127.0.0.1 (own temp folder and port), prints the winners, stops with SIGTERM.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { writeAll } from "../shared/bytes.ts";
import { LogAction } from "../shared/log.ts";
import { parseLog } from "../shared/log_line.ts";
import { freePort, integerArg, parseCli, runMain, ToolError } from "./_cli.ts";
import { buildBinaries } from "./build.ts";
import { ensureDataset } from "./dataset/mod.ts";

/** What one agency reported: its exit code, winners, winning DNIs and the total. */
export interface AgencyOutcome {
  readonly agency: number;
  readonly code: number;
  readonly winners?: string;
  readonly documents?: string;
  readonly total?: string;
}

/** The results table: a row per agency, columns aligned, then the total. */
function formatTable(outcomes: readonly AgencyOutcome[]): string {
  const rows = [
    ["agency", "status", "winners", "winning DNIs"],
    ...outcomes.map((o) => [
      String(o.agency),
      o.code === 0 ? "ok" : `exit ${o.code}`,
      o.winners ?? "-",
      o.documents || "-",
    ]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  const total = outcomes.find((o) => o.total !== undefined)?.total ?? "unknown";
  return [...rows.map((row) => row.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd())]
    .concat(`total winners across agencies: ${total}`).join("\n");
}

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/**
 * Starts a program with its stdout and stderr going, as they come, to one log file;
 * `code` resolves once it exited and its log is whole.
 */
async function spawnLogged(
  program: string,
  env: Record<string, string>,
  logPath: string,
): Promise<{ child: Deno.ChildProcess; code: Promise<number> }> {
  const log = await Deno.open(logPath, { write: true, create: true, truncate: true });
  const child = new Deno.Command(program, { env, stdin: "null", stdout: "piped", stderr: "piped" })
    .spawn();
  const pump = async (stream: ReadableStream<Uint8Array>): Promise<void> => {
    for await (const chunk of stream) await writeAll(log, chunk);
  };
  const logged = Promise.all([pump(child.stdout), pump(child.stderr)]).finally(() => log.close());
  return { child, code: Promise.all([child.status, logged]).then(([status]) => status.code) };
}

async function waitForLine(path: string, needle: string, timeoutMs: number): Promise<boolean> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline;) {
    if ((await Deno.readTextFile(path).catch(() => "")).includes(needle)) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

/**
 * Options of {@linkcode runDemo}: how many agencies (5), where their CSVs live (`.data`,
 * made there when it holds none), and where the demo's lines go (`console.log`).
 */
export interface DemoOptions {
  readonly agencies?: number;
  readonly dataDir?: string;
  readonly say?: (line: string) => void;
}

/**
 * What a demo run gave: the exit code (0 when every agency and the server exited 0), each
 * agency's outcome, and the run's own folder of logs and bets.
 */
export interface DemoResult {
  readonly code: number;
  readonly outcomes: readonly AgencyOutcome[];
  readonly runDir: string;
}

/**
 * Runs the demo end to end, in a folder and on a port of its own.
 *
 * @throws {ToolError} When data is missing or the server does not start.
 */
export async function runDemo(options: DemoOptions = {}): Promise<DemoResult> {
  const { agencies = 5, dataDir = ".data", say = console.log } = options;
  const ensured = await ensureDataset(dataDir, agencies);
  if (ensured.missing.length > 0) {
    throw new ToolError(
      `Cannot run the demo: no data for agencies ${ensured.missing.join(", ")} in ${dataDir}`,
    );
  }
  const runDir = await Deno.makeTempDir({ prefix: "tp0-demo-" });
  say(await buildBinaries({ root: ROOT }));
  const port = freePort();
  const env = Deno.env.toObject();
  const serverLog = `${runDir}/server.log`;
  say(`demo: server on 127.0.0.1:${port}, ${agencies} agencies, logs and bets in ${runDir}/`);
  const server = await spawnLogged(`${ROOT}bin/server`, {
    ...env,
    SERVER_PORT: String(port),
    SERVER_LISTEN_ADDRESS: "127.0.0.1",
    SERVER_AGENCIES: String(agencies),
    SERVER_STORAGE_PATH: `${runDir}/bets.csv`,
  }, serverLog);
  let outcomes: AgencyOutcome[] = [];
  let serverCode: number;
  try {
    if (!(await waitForLine(serverLog, "accept_connections | result: in_progress", 10_000))) {
      throw new ToolError(`Cannot run the demo: the server did not start; see ${serverLog}`);
    }
    const started = performance.now();
    outcomes = await Promise.all(
      Array.from({ length: agencies }, async (_, i): Promise<AgencyOutcome> => {
        const agency = i + 1;
        const logPath = `${runDir}/client${agency}.log`;
        const client = await spawnLogged(`${ROOT}bin/client`, {
          ...env,
          CLI_ID: String(agency),
          CLI_MODE: "agency",
          CLI_SERVER_ADDRESS: `127.0.0.1:${port}`,
          CLI_DATA_PATH: `${dataDir}/agency-${agency}.csv`,
        }, logPath);
        const code = await client.code;
        say(`demo: agency ${agency} exited ${code}`);
        const log = parseLog(await Deno.readTextFile(logPath));
        const last = (action: string, key: string) =>
          log.findLast((line) => line.action === action)?.fields.get(key);
        return {
          agency,
          code,
          winners: last(LogAction.CONSULTA_GANADORES, "cant_ganadores"),
          total: last(LogAction.CONSULTA_TOTAL_GANADORES, "cant_ganadores"),
          documents: last(LogAction.GANADORES, "dnis"),
        };
      }),
    );
    say(formatTable(outcomes));
    say(`agencies finished in ${((performance.now() - started) / 1000).toFixed(2)} s`);
  } finally {
    try {
      server.child.kill("SIGTERM");
    } catch {
      // Exited already: its status tells how.
    }
    serverCode = await server.code;
    say(`demo: server stopped with SIGTERM, exit code ${serverCode}`);
  }
  const code = outcomes.every((o) => o.code === 0) && serverCode === 0 ? 0 : 1;
  return { code, outcomes, runDir };
}

if (import.meta.main) {
  await runMain("demo", () => {
    const { values } = parseCli(Deno.args, { agencies: { type: "string", default: "5" } });
    return runDemo({ agencies: integerArg("--agencies", values.agencies, 1, 100) })
      .then((result) => result.code);
  });
}
