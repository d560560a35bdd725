/**
 * Helpers for end-to-end tests: real `bin/server` and `bin/client` processes on
 * 127.0.0.1, each run in its own temporary folder.
 *
 * @module
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { unzipSync } from "fflate";
import { generateDataset, type GenerateOptions } from "../../tools/dataset/mod.ts";
import { LogAction } from "../../shared/log.ts";
import { parseLog } from "../../shared/log_line.ts";
import { logProblems, uncaughtLines } from "./_log_check.ts";
import { COURSE_ZIP, HAS_COURSE_ZIP } from "../../testing/course_data.ts";

export { type LogLine, parseLog } from "../../shared/log_line.ts";

/** The repository root. */
export const ROOT: string = fileURLToPath(new URL("../../", import.meta.url));

export { COURSE_ZIP, HAS_COURSE_ZIP };

/** The course's minimal `server/config.ini`. */
const COURSE_INI = "[DEFAULT]\nSERVER_PORT = 12345\nSERVER_IP = server\n" +
  "SERVER_LISTEN_BACKLOG = 5\nLOGGING_LEVEL = INFO\n";
const COURSE_YAML = 'server:\n  address: "server:12345"\nloop:\n  amount: 5\n  period: "5s"\n' +
  'log:\n  level: "INFO"\nbatch:\n  maxAmount: 100\n';

/**
 * Runs `fn` on agency files generated into a temporary folder, removed afterwards.
 *
 * @param options Agencies, rows per agency, seed and share of winners.
 * @param fn Gets `paths[i]`, agency i+1's CSV.
 * @returns What `fn` returns.
 */
export async function withDataset<T>(
  options: Omit<GenerateOptions, "dir">,
  fn: (paths: string[]) => Promise<T>,
): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "tp0-data-" });
  try {
    return await fn((await generateDataset({ dir, ...options })).files.map((file) => file.path));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Builds `bin/server` and `bin/client` unless both exist. */
export async function ensureBinaries(): Promise<void> {
  const present = await Promise.all(
    ["bin/server", "bin/client"].map((p) => Deno.stat(`${ROOT}${p}`).then(() => true, () => false)),
  );
  if (present.every(Boolean)) return;
  const { code } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}tools/build.ts`],
    cwd: ROOT,
    stdout: "null",
    stderr: "inherit",
  }).output();
  if (code !== 0) throw new Error(`Cannot build binaries: tools/build.ts exited ${code}`);
}

/**
 * Fails when a program's stdout or stderr shows an uncaught error or a stack trace: every
 * program run by a test goes through here, so every scenario asserts it.
 */
export function assertNoUncaught(program: string, stdout: string, stderr: string): void {
  const found = [...uncaughtLines(stdout), ...uncaughtLines(stderr)];
  if (found.length > 0) {
    throw new Error(`${program} printed an uncaught error or a stack trace:\n${found.join("\n")}`);
  }
}

/** Collects a child's output as text, as it comes. */
class OutputBuffer {
  #text = "";
  readonly done: Promise<void>;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.done = (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of stream) this.#text += decoder.decode(chunk, { stream: true });
    })();
  }

  get text(): string {
    return this.#text;
  }
}

/**
 * Starts `bin/<program>` in `cwd` with only `env`, collecting its output. `status`
 * resolves with the exit code once the output is in, after checking that every line of
 * its stdout parses by the course's rule into the fields that were logged.
 */
function spawnProgram(
  program: string,
  cwd: string,
  env: Record<string, string>,
  launcher: readonly string[] = [],
) {
  const [command, ...args] = [...launcher, `${ROOT}bin/${program}`];
  const child = new Deno.Command(command!, {
    args,
    cwd,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const out = new OutputBuffer(child.stdout);
  const err = new OutputBuffer(child.stderr);
  const status = (async () => {
    const { code } = await child.status;
    await Promise.all([out.done, err.done]);
    const problems = logProblems(out.text);
    if (problems.length > 0) {
      throw new Error(
        `${program} logged lines the course's parser misreads:\n${problems.join("\n")}`,
      );
    }
    assertNoUncaught(program, out.text, err.text);
    return code;
  })();
  return { child, out, err, status };
}

/** A running `bin/server`. */
export interface ServerProcess {
  readonly port: number;
  /** The folder it runs in; bets are in `<dir>/bets.csv`. */
  readonly dir: string;
  readonly pid: number;
  /** stdout so far. */
  stdout(): string;
  /** stderr so far. */
  stderr(): string;
  /** Sends a signal and waits for the exit. */
  stop(signal?: Deno.Signal): Promise<{ code: number; elapsedMs: number }>;
  /** Waits for the process to exit on its own. */
  exited(): Promise<number>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Options of {@linkcode startServer}. */
export interface StartServerOptions {
  readonly agencies: number;
  /** Extra environment. */
  readonly env?: Readonly<Record<string, string>>;
  /** Run in this folder instead of a fresh temporary one (e.g. to restart on the same data). */
  readonly dir?: string;
  /** Fixed port (for restarts); 0 picks a free one. */
  readonly port?: number;
  /** Runs the program through this command, e.g. `["ip", "netns", "exec", name]`. */
  readonly launcher?: readonly string[];
}

/**
 * Waits until `check()` is true, polling.
 *
 * @param check The condition.
 * @param timeoutMs How long at most.
 * @param what Named in the error.
 */
export async function waitFor(
  check: () => boolean,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) {
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * `SERVER_WORKERS` for every server a test starts, from the runner's `TP0_SERVER_WORKERS`
 * (e.g. `TP0_SERVER_WORKERS=1 deno task test:faults`); unset, the server's own default.
 * A test's own `env` still wins.
 */
function workersEnv(): Record<string, string> {
  const workers = Deno.env.get("TP0_SERVER_WORKERS");
  return workers ? { SERVER_WORKERS: workers } : {};
}

/**
 * Starts `bin/server` on 127.0.0.1 with the course's minimal config file.
 *
 * @param options Expected agencies and extra env.
 * @returns The running server, once it listens.
 */
export async function startServer(options: StartServerOptions): Promise<ServerProcess> {
  await ensureBinaries();
  const dir = options.dir ?? await Deno.makeTempDir({ prefix: "tp0-e2e-" });
  await Deno.writeTextFile(`${dir}/config.ini`, COURSE_INI);
  const { child, out, err, status } = spawnProgram("server", dir, {
    SERVER_CONFIG: `${dir}/config.ini`,
    SERVER_PORT: String(options.port ?? 0),
    SERVER_LISTEN_ADDRESS: "127.0.0.1",
    SERVER_AGENCIES: String(options.agencies),
    SERVER_STORAGE_PATH: `${dir}/bets.csv`,
    ...workersEnv(),
    ...options.env,
  }, options.launcher);
  let exitCode: number | undefined;
  status.then((code) => exitCode = code, () => exitCode = -1);
  const match = () =>
    out.text.match(/accept_connections \| result: in_progress \| ip: [\d.]+ \| port: (\d+)/);
  await waitFor(() => match() !== null || exitCode !== undefined, 15_000, "the server to listen");
  if (exitCode !== undefined) {
    throw new Error(`Server exited ${exitCode} at start: ${err.text.trim()}`);
  }
  const port = Number(match()![1]);
  const stop = async (signal: Deno.Signal = "SIGTERM") => {
    const started = performance.now();
    if (exitCode === undefined) {
      try {
        child.kill(signal);
      } catch {
        // Exited meanwhile.
      }
    }
    const code = await status;
    return { code, elapsedMs: performance.now() - started };
  };
  return {
    port,
    dir,
    pid: child.pid,
    stdout: () => out.text,
    stderr: () => err.text,
    stop,
    exited: () => status,
    async [Symbol.asyncDispose]() {
      await stop("SIGKILL");
      if (options.dir === undefined) await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/** How a server that ran to its own end went. */
export interface ServerExit {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs a server in `dir` until it exits on its own (15 s at most): `bin/server` unless
 * `command` names another, with the course's minimal config file, on 127.0.0.1, port 0,
 * storage `dir/bets.csv`, unless `env` says otherwise.
 */
export async function runServerToExit(
  dir: string,
  env: Readonly<Record<string, string>>,
  command: readonly string[] = [`${ROOT}bin/server`],
): Promise<ServerExit> {
  await ensureBinaries();
  await Deno.writeTextFile(`${dir}/config.ini`, COURSE_INI);
  const child = new Deno.Command(command[0]!, {
    args: command.slice(1),
    cwd: dir,
    env: {
      SERVER_CONFIG: `${dir}/config.ini`,
      SERVER_PORT: "0",
      SERVER_LISTEN_ADDRESS: "127.0.0.1",
      SERVER_STORAGE_PATH: `${dir}/bets.csv`,
      ...workersEnv(),
      ...env,
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
  const out = await child.output();
  clearTimeout(timer);
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  const run = { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
  assertNoUncaught(command.at(-1)!, run.stdout, run.stderr);
  return run;
}

/**
 * The fields of the one `result: fail` line of a server that could not start, once checked
 * that it exited 2 with nothing on stderr and no stack trace.
 */
export function refusalOf(run: ServerExit): ReadonlyMap<string, string> {
  assert.equal(run.code, 2, `exit 2: ${run.stdout}${run.stderr}`);
  assert.equal(run.stderr, "", "nothing on stderr");
  const fails = parseLog(run.stdout).filter((l) => l.result === "fail");
  assert.equal(fails.length, 1, `one fail line: ${run.stdout}`);
  assert.doesNotMatch(run.stdout, /\n\s+at /, "no stack trace");
  return fails[0]!.fields;
}

/** A finished or running `bin/client`. */
export interface ClientProcess {
  readonly pid: number;
  stdout(): string;
  stderr(): string;
  /** Exit code. */
  readonly status: Promise<number>;
  kill(signal: Deno.Signal): void;
}

/**
 * Starts `bin/client` as agency `id` against `port`.
 *
 * @param id Agency id.
 * @param port Server port on 127.0.0.1.
 * @param env Extra environment (e.g. `CLI_DATA_PATH`).
 * @param options A command to run the program through (see {@linkcode StartServerOptions}).
 * @returns The process.
 */
export async function startClient(
  id: number,
  port: number,
  env: Readonly<Record<string, string>> = {},
  options: { readonly launcher?: readonly string[] } = {},
): Promise<ClientProcess> {
  await ensureBinaries();
  const dir = await Deno.makeTempDir({ prefix: "tp0-client-" });
  await Deno.writeTextFile(`${dir}/config.yaml`, COURSE_YAML);
  const { child, out, err, status: exit } = spawnProgram("client", dir, {
    CLI_CONFIG: `${dir}/config.yaml`,
    CLI_ID: String(id),
    CLI_SERVER_ADDRESS: `127.0.0.1:${port}`,
    ...env,
  }, options.launcher);
  const status = exit.finally(() => Deno.remove(dir, { recursive: true }).catch(() => {}));
  return {
    pid: child.pid,
    stdout: () => out.text,
    stderr: () => err.text,
    status,
    kill: (signal) => child.kill(signal),
  };
}

/**
 * Extracts the course's dataset into `dir`.
 *
 * @param dir Destination.
 * @returns The paths of agency-1.csv … agency-5.csv.
 */
export async function extractCourseDataset(dir: string): Promise<string[]> {
  const files = unzipSync(await Deno.readFile(COURSE_ZIP));
  const paths: string[] = [];
  for (const [name, bytes] of Object.entries(files)) {
    const base = name.split("/").at(-1)!;
    if (!/^agency-\d+\.csv$/.test(base)) continue;
    await Deno.writeFile(`${dir}/${base}`, bytes);
    paths.push(`${dir}/${base}`);
  }
  return paths.sort();
}

/**
 * Reads an agency CSV's rows (without line endings).
 *
 * @param path The file.
 * @returns Its non-empty lines.
 */
export async function readRows(path: string): Promise<string[]> {
  return (await Deno.readTextFile(path)).split(/\r?\n/).filter((line) => line !== "");
}

/**
 * Runs one agency per CSV against a fresh server and checks the course's invariants:
 * every bet stored exactly once, each agency's winners equal its own 7574 rows, one
 * `sorteo`, no `result: fail`, every process exits 0.
 *
 * @param csvPaths `csvPaths[i]` is agency i+1's file.
 * @param assert Called with a failure message when an invariant breaks.
 */
export async function runLotteryAndCheck(
  csvPaths: readonly string[],
  assert: (ok: boolean, message: string) => void,
): Promise<void> {
  await using server = await startServer({ agencies: csvPaths.length });
  const clients = await Promise.all(
    csvPaths.map((path, i) => startClient(i + 1, server.port, { CLI_DATA_PATH: path })),
  );
  const codes = await Promise.all(clients.map((c) => c.status));
  const expectedRows: string[] = [];
  for (const [i, path] of csvPaths.entries()) {
    const rows = await readRows(path);
    const winners = rows.filter((row) => row.endsWith(",7574")).length;
    expectedRows.push(...rows.map((row) => `${i + 1},${row}`));
    const client = clients[i]!;
    assert(codes[i] === 0, `client ${i + 1} exited ${codes[i]}: ${client.stderr()}`);
    const log = parseLog(client.stdout());
    const winnersLine = log.find((l) =>
      l.action === LogAction.CONSULTA_GANADORES && l.result === "success"
    );
    assert(
      winnersLine?.fields.get("cant_ganadores") === String(winners),
      `agency ${i + 1}: cant_ganadores ${
        winnersLine?.fields.get("cant_ganadores")
      }, expected ${winners}`,
    );
    assert(!client.stdout().includes("result: fail"), `client ${i + 1} logged a failure`);
  }
  const stored = (await Deno.readTextFile(`${server.dir}/bets.csv`)).split("\r\n");
  assert(stored.pop() === "", "bets.csv ends with CRLF");
  assert(
    stored.length === expectedRows.length,
    `${stored.length} rows stored, expected ${expectedRows.length}`,
  );
  stored.sort();
  expectedRows.sort();
  assert(
    stored.every((row, i) => row === expectedRows[i]),
    "bets.csv holds exactly the agencies' rows, each once",
  );
  const { code } = await server.stop("SIGTERM");
  assert(code === 0, `server exited ${code}`);
  const serverLog = parseLog(server.stdout());
  assert(serverLog.filter((l) => l.action === LogAction.SORTEO).length === 1, "one sorteo line");
  assert(!server.stdout().includes("result: fail"), "the server logged no failure");
  const received = serverLog.filter((l) =>
    l.action === LogAction.APUESTA_RECIBIDA && l.result === "success"
  )
    .reduce((sum, l) => sum + Number(l.fields.get("cantidad")), 0);
  assert(received === expectedRows.length, `apuesta_recibida sums to ${received}`);
}
