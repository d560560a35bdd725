/**
 * The main job, `deno task demo` / `make demo`: makes data if `.data/` has none, runs
 * the server and five agencies as local processes on 127.0.0.1, waits for them, prints
 * each agency's winners and the total, then stops the server with SIGTERM.
 *
 * Full logs go to `.data/demo/`; the bets land in `.data/demo/bets.csv`.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { parseLog } from "../shared/log_line.ts";
import { buildBinaries } from "./build.ts";
import { ensureDataset } from "./dataset/mod.ts";

/** What one agency reported. */
export interface AgencyOutcome {
  readonly agency: number;
  readonly code: number;
  readonly winners?: number;
  readonly documents?: string;
  readonly total?: number;
}

/**
 * Formats the results table.
 *
 * @param outcomes One entry per agency.
 * @returns The table's lines.
 */
export function formatTable(outcomes: readonly AgencyOutcome[]): string[] {
  const rows = outcomes.map((o) => [
    String(o.agency),
    o.code === 0 ? "ok" : `exit ${o.code}`,
    o.winners === undefined ? "-" : String(o.winners),
    o.documents || "-",
  ]);
  const header = ["agency", "status", "winners", "winning DNIs"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string =>
    cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join("  ");
  const total = outcomes.find((o) => o.total !== undefined)?.total;
  return [
    line(header),
    line(widths.map((w) => "-".repeat(w))),
    ...rows.map(line),
    `total winners across agencies: ${total ?? "unknown"}`,
  ];
}

async function freePort(): Promise<number> {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  return await Promise.resolve((listener.addr as Deno.NetAddr).port);
}

const ROOT = new URL("..", import.meta.url).pathname;

/** `bin/server` and `bin/client`, built first if missing: the demo runs what users run. */
async function programs(): Promise<{ server: string; client: string }> {
  const server = `${ROOT}bin/server`;
  const client = `${ROOT}bin/client`;
  const present = await Promise.all(
    [server, client].map((p) => Deno.stat(p).then(() => true, () => false)),
  );
  if (!present.every(Boolean)) await buildBinaries({ root: ROOT });
  return { server, client };
}

async function waitForLine(path: string, needle: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const text = await Deno.readTextFile(path).catch(() => "");
    if (text.includes(needle)) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

async function spawnLogged(
  program: string,
  env: Record<string, string>,
  logPath: string,
): Promise<Deno.ChildProcess> {
  const log = await Deno.open(logPath, { write: true, create: true, truncate: true });
  const child = new Deno.Command(program, {
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // Both streams go to one file as they come (a file's `writable` holds data back until
  // it closes, which would hide a slow start from waitForLine).
  const pump = async (stream: ReadableStream<Uint8Array>): Promise<void> => {
    for await (const chunk of stream) {
      for (let written = 0; written < chunk.length;) {
        written += await log.write(chunk.subarray(written));
      }
    }
  };
  Promise.all([pump(child.stdout), pump(child.stderr)]).finally(() => log.close());
  return child;
}

/** Options of {@linkcode runDemo}. */
export interface DemoOptions {
  /**
   * Agencies to run.
   * @default 5
   */
  readonly agencies?: number;
  /**
   * Where agency CSVs live.
   * @default ".data"
   */
  readonly dataDir?: string;
}

/**
 * Runs the demo end to end.
 *
 * @param options Agencies and data folder.
 * @returns The process exit code: 0 when every agency and the server exited 0.
 */
export async function runDemo(options: DemoOptions = {}): Promise<number> {
  const agencies = options.agencies ?? 5;
  const dataDir = options.dataDir ?? ".data";
  const ensured = await ensureDataset(dataDir, agencies);
  if (ensured.missing.length > 0) {
    console.error(`demo: missing data for agencies ${ensured.missing.join(", ")} in ${dataDir}`);
    return 2;
  }
  const runDir = `${dataDir}/demo`;
  await Deno.remove(runDir, { recursive: true }).catch(() => {});
  await Deno.mkdir(runDir, { recursive: true });
  const bin = await programs();
  const port = await freePort();
  const base = Deno.env.toObject();
  const serverLog = `${runDir}/server.log`;
  console.log(`demo: server on 127.0.0.1:${port}, ${agencies} agencies, logs in ${runDir}/`);
  const server = await spawnLogged(
    bin.server,
    {
      ...base,
      SERVER_PORT: String(port),
      SERVER_LISTEN_ADDRESS: "127.0.0.1",
      SERVER_AGENCIES: String(agencies),
      SERVER_STORAGE_PATH: `${runDir}/bets.csv`,
    },
    serverLog,
  );
  try {
    if (!(await waitForLine(serverLog, "accept_connections | result: in_progress", 10_000))) {
      console.error(`demo: the server did not start; see ${serverLog}`);
      return 1;
    }
    const started = performance.now();
    const clients = await Promise.all(
      Array.from({ length: agencies }, async (_, i) => {
        const id = i + 1;
        const logPath = `${runDir}/client${id}.log`;
        const child = await spawnLogged(
          bin.client,
          {
            ...base,
            CLI_ID: String(id),
            CLI_MODE: "agency",
            CLI_SERVER_ADDRESS: `127.0.0.1:${port}`,
            CLI_DATA_PATH: `${dataDir}/agency-${id}.csv`,
          },
          logPath,
        );
        const { code } = await child.status;
        console.error(`demo: agency ${id} exited ${code}`);
        return { id, code, logPath };
      }),
    );
    const elapsed = (performance.now() - started) / 1000;
    const outcomes: AgencyOutcome[] = [];
    for (const { id, code, logPath } of clients) {
      const log = parseLog(await Deno.readTextFile(logPath));
      const last = (action: string) => log.findLast((line) => line.action === action)?.fields;
      const winners = last("consulta_ganadores")?.get("cant_ganadores");
      const total = last("consulta_total_ganadores")?.get("cant_ganadores");
      const documents = last("ganadores")?.get("dnis");
      outcomes.push({
        agency: id,
        code,
        ...(winners === undefined ? {} : { winners: Number(winners) }),
        ...(total === undefined ? {} : { total: Number(total) }),
        ...(documents === undefined ? {} : { documents }),
      });
    }
    console.log(formatTable(outcomes).join("\n"));
    console.log(`agencies finished in ${elapsed.toFixed(2)} s`);
    const serverCode = await stopServer(server);
    return outcomes.every((o) => o.code === 0) && serverCode === 0 ? 0 : 1;
  } finally {
    await stopServer(server);
  }
}

const stopped = new WeakMap<Deno.ChildProcess, Promise<number>>();

/** Sends SIGTERM once and reports the exit code; later calls share the result. */
function stopServer(server: Deno.ChildProcess): Promise<number> {
  let result = stopped.get(server);
  if (!result) {
    try {
      server.kill("SIGTERM");
    } catch {
      // Already exited: its status tells how.
    }
    result = server.status.then(({ code }) => {
      console.log(`demo: server stopped with SIGTERM, exit code ${code}`);
      return code;
    });
    stopped.set(server, result);
  }
  return result;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { agencies: { type: "string", default: "5" } },
  });
  const agencies = Number(values.agencies);
  if (!Number.isInteger(agencies) || agencies < 1 || agencies > 100) {
    console.error(
      `demo: --agencies must be a whole number from 1 to 100, got "${values.agencies}"`,
    );
    Deno.exit(2);
  }
  Deno.exit(await runDemo({ agencies }));
}
