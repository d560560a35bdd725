/**
 * One run of the system: `bin/server` on 127.0.0.1 with fresh storage, every agency
 * (`bin/client`) started at once, the wall time until the last agency exited, and the
 * checks that make the run count (docs/performance.md, "What one run measures").
 *
 * @module
 */
import { join } from "node:path";
import { LF } from "../../shared/bytes.ts";
import { LogAction } from "../../shared/log.ts";
import { parseLogLine } from "../../shared/log_line.ts";
import { freePort, lastLine } from "../_cli.ts";
import type { BenchOptions } from "./args.ts";
import type { PreparedData } from "./data.ts";
import { reapedChildrenCpuMs, RssSampler, threadCpuMs, threadCpuSince } from "./proc.ts";
import { spawn, type Tracked, within } from "./processes.ts";
import { formatNumber, type SystemRun } from "./report.ts";

/**
 * What one run needs besides its name: the agency files, `bin/server` and `bin/client`,
 * this invocation's scratch folder under `.bench/`, the limit of the agencies' part of the
 * run, and where progress lines go.
 */
export interface SystemRunContext extends Pick<BenchOptions, "fsync" | "batch"> {
  readonly data: PreparedData;
  readonly serverBin: string;
  readonly clientBin: string;
  readonly scratch: string;
  readonly timeoutMs: number;
  readonly log: (message: string) => void;
}

/** A handler of a process's output lines, with the `performance.now()` each was read at. */
type OnLine = (line: string, at: number) => void;

/** The server's line for a stored batch, up to its bet count. */
const RECEIVED = `action: ${LogAction.APUESTA_RECIBIDA} | result: success | cantidad: `;

/** What the server's output says as the run goes. */
class ServerLog {
  readonly ready = Promise.withResolvers<void>();
  sorteoLines = 0;
  drawMs: number | undefined;
  drawWinners: number | undefined;
  fails = 0;
  received = 0;

  onLine(line: string): void {
    // One such line per batch (7,870 at 10×): counted without a full parse, which keeps
    // the bench's own CPU, taken from the two cores it measures, low.
    const received = line.indexOf(RECEIVED);
    if (received !== -1) {
      this.received += Number(line.slice(received + RECEIVED.length)) || 0;
      return;
    }
    const parsed = parseLogLine(line);
    if (parsed?.result === "fail") this.fails++;
    if (parsed?.action === LogAction.ACCEPT_CONNECTIONS && parsed.result === "in_progress") {
      this.ready.resolve();
    } else if (parsed?.action === LogAction.PROGRESO) {
      this.received = Math.max(this.received, Number(parsed.fields.get("apuestas")) || 0);
    } else if (parsed?.action === LogAction.SORTEO && parsed.result === "success") {
      this.sorteoLines++;
      this.drawMs = Number(parsed.fields.get("ms"));
      this.drawWinners = Number(parsed.fields.get("ganadores"));
    }
  }
}

/** What one agency's output says, with the time each milestone line arrived. */
class ClientLog {
  configAt: number | undefined;
  ackedAt: number | undefined;
  winnersAt: number | undefined;
  winners: number | undefined;
  failLines = 0;

  onLine(line: string, at: number): void {
    const parsed = parseLogLine(line);
    if (parsed?.result === "fail") this.failLines++;
    if (parsed?.action === LogAction.CONFIG) this.configAt ??= at;
    if (parsed?.result !== "success") return;
    if (parsed.action === LogAction.APUESTAS_ENVIADAS) this.ackedAt = at;
    if (parsed.action === LogAction.CONSULTA_GANADORES) {
      this.winnersAt = at;
      this.winners = Number(parsed.fields.get("cant_ganadores"));
    }
  }
}

/** One agency of a run: its file, its process and what its output said. */
interface Agency {
  readonly file: PreparedData["files"][number];
  readonly proc: Tracked;
  readonly log: ClientLog;
}

/** The last line a process printed, for a failure message. */
function lastWords(proc: Tracked): string {
  return lastLine(proc.tail.join("\n"));
}

/**
 * Runs the system once (fresh storage, server, every agency at once, checks), named for
 * progress lines (`run 2/3`). The run is not ok when any check failed.
 */
export async function runSystem(
  ctx: SystemRunContext,
  options: { readonly name: string; readonly workers?: string },
): Promise<SystemRun> {
  const dir = await Deno.makeTempDir({ dir: ctx.scratch, prefix: "system-" });
  const sampler = new RssSampler();
  const procs: Tracked[] = [];
  const start = (program: string, env: Record<string, string>, onLine: OnLine) => {
    const proc = spawn(program, { env, onLine });
    procs.push(proc);
    sampler.track(proc);
    return proc;
  };
  try {
    const port = freePort();
    const storage = join(dir, "storage", "bets.csv");
    await Deno.mkdir(join(dir, "storage"));
    const ini = join(dir, "server.ini");
    // The course's config.ini and config.yaml; the rest comes from env so no user file
    // skews a run.
    await Deno.writeTextFile(
      ini,
      `[DEFAULT]\nSERVER_PORT = ${port}\nSERVER_IP = 127.0.0.1\nSERVER_LISTEN_BACKLOG = 128\nLOGGING_LEVEL = INFO\n`,
    );
    const serverLog = new ServerLog();
    const server = start(ctx.serverBin, {
      SERVER_CONFIG: ini,
      SERVER_PORT: String(port),
      SERVER_LISTEN_ADDRESS: "127.0.0.1",
      SERVER_AGENCIES: String(ctx.data.files.length),
      SERVER_STORAGE_PATH: storage,
      SERVER_FSYNC: ctx.fsync,
      LOGGING_LEVEL: "INFO",
      ...(options.workers && options.workers !== "default"
        ? { SERVER_WORKERS: options.workers }
        : {}),
    }, (line) => serverLog.onLine(line));
    const up = await within(Promise.race([serverLog.ready.promise, server.exited]), 30_000);
    if (!up || !server.live) {
      const failure = up
        ? `server exited before accepting connections: ${lastWords(server)}`
        : "server did not log accept_connections within 30 s";
      return { ok: false, failures: [failure], wallMs: NaN };
    }
    const address = `127.0.0.1:${port}`;
    const yaml = join(dir, "client.yaml");
    await Deno.writeTextFile(
      yaml,
      `server:\n  address: "${address}"\nloop:\n  amount: 5\n  period: "5s"\nlog:\n  level: "INFO"\n` +
        `batch:\n  maxAmount: ${ctx.batch}\n`,
    );

    // Everything is ready; the clock starts with the first agency.
    const threadsBefore = threadCpuMs(server.pid);
    const cpuBeforeClients = reapedChildrenCpuMs();
    const started = performance.now();
    const agencies = ctx.data.files.map((file): Agency => {
      const log = new ClientLog();
      const proc = start(ctx.clientBin, {
        CLI_ID: String(file.agency),
        CLI_CONFIG: yaml,
        CLI_SERVER_ADDRESS: address,
        CLI_DATA_PATH: file.path,
        CLI_BATCH_MAXAMOUNT: String(ctx.batch),
        CLI_LOG_LEVEL: "INFO",
        CLI_MODE: "agency",
      }, (line, at) => log.onLine(line, at));
      return { file, proc, log };
    });
    const { stoppedByBench, timedOut } = await awaitAgencies(ctx, agencies, {
      name: options.name,
      started,
      serverLog,
    });
    const failures = timedOut ? [`timed out after ${Math.round(ctx.timeoutMs / 1000)} s`] : [];
    const exits = await Promise.all(agencies.map(({ proc }) => proc.exited));
    const cpuAfterClients = reapedChildrenCpuMs();
    const wallMs = Math.max(...exits.map((exit) => exit.at)) - started;
    await Promise.all(agencies.map(({ proc }) => proc.drained));
    // Before SIGTERM: the worker threads are gone once the server has closed them.
    const threadsAfter = threadCpuMs(server.pid);

    server.kill("SIGTERM");
    if (!(await within(server.exited, 15_000))) {
      failures.push("server did not exit within 15 s of SIGTERM");
      server.kill("SIGKILL");
    }
    const serverExit = await server.exited;
    const cpuAfterServer = reapedChildrenCpuMs();
    await server.drained;
    if (serverExit.code !== 0) {
      const how = serverExit.signal ?? `code ${serverExit.code}`;
      failures.push(`server exited with ${how} after SIGTERM: ${lastWords(server)}`);
    }

    agencies.forEach(({ file, proc, log }, i) => {
      const exit = exits[i]!;
      if (stoppedByBench.has(proc)) {
        failures.push(`agency ${file.agency} stopped by the bench`);
      } else if (exit.code !== 0) {
        const how = exit.signal ?? `code ${exit.code}`;
        failures.push(`agency ${file.agency} exited with ${how}: ${lastWords(proc)}`);
      } else if (log.winners !== file.winners) {
        failures.push(
          `agency ${file.agency} reported cant_ganadores ${log.winners ?? "none"}, ` +
            `expected ${file.winners}`,
        );
      }
      if (log.failLines > 0) {
        failures.push(`agency ${file.agency} logged ${log.failLines} "result: fail" lines`);
      }
    });
    failures.push(...await serverProblems(ctx.data, serverLog, storage));

    const latest = (get: (log: ClientLog) => number | undefined): number | undefined => {
      const times = agencies.map(({ log }) => get(log));
      return times.every((t) => t !== undefined) ? Math.max(...times) - started : undefined;
    };
    const span = (from?: number, to?: number) =>
      from === undefined || to === undefined ? undefined : to - from;
    const clientPeak = Math.max(0, ...agencies.map(({ proc }) => sampler.peakKb(proc.pid) ?? 0));
    return {
      ok: failures.length === 0,
      failures,
      wallMs,
      startupMs: latest((log) => log.configAt),
      ackedMs: latest((log) => log.ackedAt),
      winnersMs: latest((log) => log.winnersAt),
      drawMs: serverLog.drawMs,
      serverRssKb: sampler.peakKb(server.pid),
      clientRssKb: clientPeak || undefined,
      serverCpuMs: span(cpuAfterClients, cpuAfterServer),
      clientCpuMs: span(cpuBeforeClients, cpuAfterClients),
      workers: options.workers,
      ...(threadsBefore && threadsAfter
        ? { threadCpuMs: threadCpuSince(threadsBefore, threadsAfter) }
        : {}),
    };
  } finally {
    for (const proc of procs) proc.kill("SIGKILL");
    await Promise.all(procs.map((proc) => proc.exited));
    sampler.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/**
 * Waits for every agency, printing progress every 2 s. One agency failing means the draw
 * never comes, so the others are stopped at once; so are all of them at the time limit.
 * Returns the agencies the bench stopped, and whether the time limit came.
 */
async function awaitAgencies(
  ctx: SystemRunContext,
  agencies: readonly Agency[],
  run: { name: string; started: number; serverLog: ServerLog },
): Promise<{ stoppedByBench: Set<Tracked>; timedOut: boolean }> {
  const total = formatNumber(ctx.data.files.reduce((sum, file) => sum + file.rows, 0), 0);
  const progress = setInterval(() => {
    const done = agencies.filter(({ proc }) => !proc.live).length;
    ctx.log(
      `${run.name}: ${((performance.now() - run.started) / 1000).toFixed(1)} s, server received ~` +
        `${formatNumber(run.serverLog.received, 0)} of ${total} bets, ` +
        `${done}/${agencies.length} agencies exited`,
    );
  }, 2000);
  try {
    const exits = agencies.map(({ proc }) => proc.exited);
    const firstFailure = Promise.race(
      exits.map((exit) => exit.then((status) => status.code === 0 ? new Promise(() => {}) : 0)),
    );
    const timedOut =
      !(await within(Promise.race([Promise.all(exits), firstFailure]), ctx.timeoutMs));
    const stoppedByBench = new Set(agencies.map(({ proc }) => proc).filter((proc) => proc.live));
    for (const proc of stoppedByBench) proc.kill("SIGKILL");
    await Promise.all(exits);
    return { stoppedByBench, timedOut };
  } finally {
    clearInterval(progress);
  }
}

/** Whether the server logged no failure and one draw with every winner, and stored every bet. */
async function serverProblems(
  data: PreparedData,
  log: ServerLog,
  storage: string,
): Promise<string[]> {
  const problems: string[] = [];
  if (log.fails > 0) problems.push(`server logged ${log.fails} "result: fail" lines`);
  if (log.sorteoLines !== 1) {
    problems.push(`server logged sorteo ${log.sorteoLines} times, expected once`);
  }
  const winners = data.files.reduce((sum, file) => sum + file.winners, 0);
  if (log.sorteoLines === 1 && log.drawWinners !== winners) {
    problems.push(`server's sorteo says ${log.drawWinners} winners, expected ${winners}`);
  }
  const bets = data.files.reduce((sum, file) => sum + file.rows, 0);
  const lines = await countNewlines(storage).catch((error) => `unreadable (${error})`);
  if (lines !== bets) problems.push(`bets.csv has ${lines} lines, expected ${bets}`);
  return problems;
}

async function countNewlines(path: string): Promise<number> {
  let lines = 0;
  using file = await Deno.open(path);
  const buf = new Uint8Array(1 << 20);
  for (let n = await file.read(buf); n !== null; n = await file.read(buf)) {
    for (let i = 0; i < n; i++) if (buf[i] === LF) lines++;
  }
  return lines;
}
