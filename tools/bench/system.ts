/**
 * One run of the system: `bin/server` on 127.0.0.1 with fresh storage, every agency
 * (`bin/client`) started at once, the wall time until the last agency exited, and the
 * checks that make the run count: every agency exits 0 with its number of winners,
 * `bets.csv` holds one line per bet, the server logs `sorteo` once, no line says
 * `result: fail`, and the server exits 0 on SIGTERM.
 *
 * @module
 */
import { join } from "node:path";
import { parseLogLine } from "../../shared/log_line.ts";
import type { FsyncMode } from "./args.ts";
import type { PreparedData } from "./data.ts";
import { AckLatencyProxy } from "./latency_proxy.ts";
import { reapedChildrenCpuMs, RssSampler } from "./proc.ts";
import {
  baseEnv,
  freePort,
  isLive,
  kill,
  lastLine,
  spawn,
  type Tracked,
  within,
} from "./processes.ts";
import { formatNumber, formatSeconds, type SystemRun } from "./report.ts";

/** What one run needs besides its name. */
export interface SystemRunContext {
  /** The agency files. */
  readonly data: PreparedData;
  /** The server's `SERVER_FSYNC`. */
  readonly fsync: FsyncMode;
  /** The agencies' `batch.maxAmount`. */
  readonly batch: number;
  /** `bin/server`. */
  readonly serverBin: string;
  /** `bin/client`. */
  readonly clientBin: string;
  /** This invocation's scratch directory under `.bench/`. */
  readonly scratch: string;
  /** The limit of the agencies' part of the run. */
  readonly timeoutMs: number;
  /** Progress sink. */
  readonly log: (message: string) => void;
}

/** Options of {@linkcode runSystem}. */
export interface SystemRunOptions {
  /** For progress lines, e.g. `run 2/3`. */
  readonly name: string;
  /** Whether agencies talk through the ack-latency proxy. */
  readonly withProxy: boolean;
}

const SERVER_READY_MS = 30_000;
const SERVER_STOP_MS = 15_000;
const PROGRESS_EVERY_MS = 2000;

/**
 * Runs the system once: fresh storage, server, every agency at once, checks.
 *
 * @param ctx Data, programs and limits.
 * @param options The run's name and whether it goes through the latency proxy.
 * @returns The measurements (not ok when any check failed).
 *
 * @example Usage
 * ```ts
 * const run = await runSystem(ctx, { name: "run 1/3", withProxy: false });
 * if (run.ok) console.log(run.wallMs);
 * ```
 */
export async function runSystem(
  ctx: SystemRunContext,
  options: SystemRunOptions,
): Promise<SystemRun> {
  const dir = await Deno.makeTempDir({ dir: ctx.scratch, prefix: "system-" });
  const run = new Run(ctx, options, dir);
  try {
    return await run.execute();
  } finally {
    await run.cleanup();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** The course's `config.ini` for the server: course keys only, the rest comes from env. */
function serverIni(port: number): string {
  // Course keys only; everything else comes from env so no user file skews a run.
  return `[DEFAULT]\nSERVER_PORT = ${port}\nSERVER_IP = 127.0.0.1\nSERVER_LISTEN_BACKLOG = 128\nLOGGING_LEVEL = INFO\n`;
}

/** The course's `config.yaml` for the agencies. */
function clientYaml(address: string, batch: number): string {
  return `server:\n  address: "${address}"\nloop:\n  amount: 5\n  period: "5s"\nlog:\n  level: "INFO"\nbatch:\n  maxAmount: ${batch}\n`;
}

async function countNewlines(path: string): Promise<number> {
  let lines = 0;
  using file = await Deno.open(path);
  const buf = new Uint8Array(1 << 20);
  for (;;) {
    const n = await file.read(buf);
    if (n === null) break;
    for (let i = 0; i < n; i++) if (buf[i] === 0x0a) lines++;
  }
  return lines;
}

/** `{ [key]: value }`, or `{}` when the value is undefined (optional fields stay absent). */
function optional<K extends string>(
  key: K,
  value: number | undefined,
): { [P in K]?: number } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: number };
}

/** The server's line for a stored batch, up to its bet count. */
const RECEIVED = "action: apuesta_recibida | result: success | cantidad: ";

/** What the server's output says as the run goes. */
class ServerLog {
  readonly ready: Promise<void>;
  #markReady: () => void = () => {};
  sorteoLines = 0;
  drawMs: number | undefined;
  drawWinners: number | undefined;
  fails = 0;
  received = 0;

  constructor() {
    this.ready = new Promise<void>((done) => (this.#markReady = done));
  }

  onLine(line: string): void {
    // One such line per batch (7,870 at 10×): counted without a full parse, which keeps
    // the bench's own CPU, taken from the two cores it measures, low.
    const received = line.indexOf(RECEIVED);
    if (received !== -1) {
      this.received += Number(line.slice(received + RECEIVED.length)) || 0;
      return;
    }
    const parsed = parseLogLine(line);
    if (!parsed) return;
    if (parsed.result === "fail") this.fails++;
    if (parsed.action === "accept_connections" && parsed.result === "in_progress") {
      this.#markReady();
    } else if (parsed.action === "apuesta_recibida" && parsed.result === "success") {
      this.received += Number(parsed.fields.get("cantidad")) || 0;
    } else if (parsed.action === "progreso") {
      this.received = Math.max(this.received, Number(parsed.fields.get("apuestas")) || 0);
    } else if (parsed.action === "sorteo" && parsed.result === "success") {
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
    if (!parsed) return;
    if (parsed.result === "fail") this.failLines++;
    if (parsed.action === "config" && this.configAt === undefined) this.configAt = at;
    if (parsed.action === "apuestas_enviadas" && parsed.result === "success") {
      this.ackedAt = at;
    }
    if (parsed.action === "consulta_ganadores" && parsed.result === "success") {
      this.winnersAt = at;
      this.winners = Number(parsed.fields.get("cant_ganadores"));
    }
  }
}

type ExitStatus = Awaited<Tracked["exited"]>;

/** When the agencies started and what the CPU counters said around the run, ms. */
interface Timing {
  readonly started: number;
  readonly wallMs: number;
  readonly cpuBeforeClients: number | undefined;
  readonly cpuAfterClients: number | undefined;
  readonly cpuAfterServer: number | undefined;
}

/** The state of one run, so each step is a small method. */
class Run {
  readonly #ctx: SystemRunContext;
  readonly #options: SystemRunOptions;
  readonly #dir: string;
  readonly #storage: string;
  readonly #failures: string[] = [];
  readonly #sampler = new RssSampler();
  readonly #serverLog = new ServerLog();
  readonly #clientLogs: ClientLog[] = [];
  readonly #clients: Tracked[] = [];
  #server: Tracked | undefined;
  #serverExit: Promise<ExitStatus> | undefined;
  #proxy: AckLatencyProxy | undefined;
  #progress: ReturnType<typeof setInterval> | undefined;
  #timeout: ReturnType<typeof setTimeout> | undefined;

  constructor(ctx: SystemRunContext, options: SystemRunOptions, dir: string) {
    this.#ctx = ctx;
    this.#options = options;
    this.#dir = dir;
    this.#storage = join(dir, "storage", "bets.csv");
  }

  async execute(): Promise<SystemRun> {
    const port = freePort();
    const up = await this.#startServer(port);
    if (up !== "ready") {
      this.#failures.push(
        up === "exited"
          ? `server exited before accepting connections: ${lastLine(this.#server!.tail)}`
          : `server did not log accept_connections within ${SERVER_READY_MS / 1000} s`,
      );
      return { ok: false, failures: this.#failures, wallMs: NaN };
    }
    if (this.#options.withProxy) this.#proxy = new AckLatencyProxy(port);
    const address = `127.0.0.1:${this.#proxy ? this.#proxy.port : port}`;
    const yaml = join(this.#dir, "client.yaml");
    await Deno.writeTextFile(yaml, clientYaml(address, this.#ctx.batch));

    // Everything is ready; the clock starts with the first agency.
    const cpuBeforeClients = reapedChildrenCpuMs();
    const started = performance.now();
    const exits = this.#startAgencies(address, yaml);
    const { clientExits, stoppedByBench } = await this.#awaitAgencies(exits, started);
    const cpuAfterClients = reapedChildrenCpuMs();
    const wallMs = Math.max(...clientExits.map((exit) => exit.at)) - started;
    clearInterval(this.#progress);
    this.#progress = undefined;
    await Promise.all(this.#clients.map((client) => client.drained));

    const cpuAfterServer = await this.#stopServer();
    this.#checkAgencies(clientExits, stoppedByBench);
    await this.#checkServer();
    return this.#result({ started, wallMs, cpuBeforeClients, cpuAfterClients, cpuAfterServer });
  }

  /** Stops whatever still runs; safe to call after any step failed. */
  async cleanup(): Promise<void> {
    if (this.#progress !== undefined) clearInterval(this.#progress);
    clearTimeout(this.#timeout);
    for (const client of this.#clients) kill(client, "SIGKILL");
    if (this.#server) kill(this.#server, "SIGKILL");
    const all = [...this.#clients, ...(this.#server ? [this.#server] : [])];
    await Promise.all(all.map((tracked) => tracked.exited));
    this.#sampler.stop();
    await this.#proxy?.close();
  }

  /** The measurements, from the timings and what the logs and the sampler saw. */
  #result(timing: Timing): SystemRun {
    const { started } = timing;
    const latest = (get: (log: ClientLog) => number | undefined): number | undefined => {
      const times = this.#clientLogs.map(get);
      return times.every((t) => t !== undefined) ? Math.max(...times) - started : undefined;
    };
    const span = (from: number | undefined, to: number | undefined): number | undefined =>
      from === undefined || to === undefined ? undefined : to - from;
    const clientPeaks = this.#clients.map((client) => this.#sampler.peakKb(client.pid) ?? 0);
    const { drawMs } = this.#serverLog;
    const run: SystemRun = {
      ok: this.#failures.length === 0,
      failures: this.#failures,
      wallMs: timing.wallMs,
      ...optional("startupMs", latest((log) => log.configAt)),
      ...optional("ackedMs", latest((log) => log.ackedAt)),
      ...optional("winnersMs", latest((log) => log.winnersAt)),
      ...optional("drawMs", Number.isFinite(drawMs) ? drawMs : undefined),
      ...optional("serverRssKb", this.#sampler.peakKb(this.#server!.pid)),
      ...optional("clientRssKb", Math.max(0, ...clientPeaks) || undefined),
      ...optional("serverCpuMs", span(timing.cpuAfterClients, timing.cpuAfterServer)),
      ...optional("clientCpuMs", span(timing.cpuBeforeClients, timing.cpuAfterClients)),
      ...(this.#proxy ? { ackLatenciesMs: this.#proxy.latenciesMs } : {}),
    };
    if (this.#proxy && this.#proxy.latenciesMs.length === 0) {
      return {
        ...run,
        ok: false,
        failures: [...this.#failures, "the proxy saw no acknowledged batch"],
      };
    }
    return run;
  }

  /** Starts the server with fresh storage and waits until it accepts connections. */
  async #startServer(port: number): Promise<"ready" | "exited" | "timeout"> {
    const ctx = this.#ctx;
    await Deno.mkdir(join(this.#dir, "storage"));
    const ini = join(this.#dir, "server.ini");
    await Deno.writeTextFile(ini, serverIni(port));
    const server = spawn(ctx.serverBin, {
      env: {
        ...baseEnv(),
        SERVER_CONFIG: ini,
        SERVER_PORT: String(port),
        SERVER_LISTEN_ADDRESS: "127.0.0.1",
        SERVER_AGENCIES: String(ctx.data.files.length),
        SERVER_STORAGE_PATH: this.#storage,
        SERVER_FSYNC: ctx.fsync,
        LOGGING_LEVEL: "INFO",
      },
      onLine: (line) => this.#serverLog.onLine(line),
    });
    this.#server = server;
    this.#sampler.track(server.pid);
    this.#serverExit = server.exited.then((exit) => {
      this.#sampler.untrack(server.pid);
      return exit;
    });
    const up = await Promise.race([
      this.#serverLog.ready.then(() => "ready" as const),
      this.#serverExit.then(() => "exited" as const),
      new Promise<"timeout">((done) => {
        this.#timeout = setTimeout(() => done("timeout"), SERVER_READY_MS);
      }),
    ]);
    clearTimeout(this.#timeout);
    return up;
  }

  /** Starts every agency at once; returns their exits (sampling stops at each). */
  #startAgencies(address: string, yaml: string): Promise<ExitStatus>[] {
    const ctx = this.#ctx;
    for (const file of ctx.data.files) {
      const clientLog = new ClientLog();
      this.#clientLogs.push(clientLog);
      const client = spawn(ctx.clientBin, {
        env: {
          ...baseEnv(),
          CLI_ID: String(file.agency),
          CLI_CONFIG: yaml,
          CLI_SERVER_ADDRESS: address,
          CLI_DATA_PATH: file.path,
          CLI_BATCH_MAXAMOUNT: String(ctx.batch),
          CLI_LOG_LEVEL: "INFO",
          CLI_MODE: "agency",
        },
        onLine: (line, at) => clientLog.onLine(line, at),
      });
      this.#clients.push(client);
      this.#sampler.track(client.pid);
    }
    return this.#clients.map((client) =>
      client.exited.then((exit) => {
        this.#sampler.untrack(client.pid);
        return exit;
      })
    );
  }

  /**
   * Waits for every agency, printing progress. One agency failing means the draw never
   * comes, so the others are stopped at once; so are all of them at the time limit.
   */
  async #awaitAgencies(
    exits: Promise<ExitStatus>[],
    started: number,
  ): Promise<{ clientExits: ExitStatus[]; stoppedByBench: Set<number> }> {
    const ctx = this.#ctx;
    const clients = this.#clients;
    const totalBets = ctx.data.files.reduce((sum, file) => sum + file.rows, 0);
    this.#progress = setInterval(() => {
      const done = clients.filter((client) => !isLive(client)).length;
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      ctx.log(
        `${this.#options.name}: ${seconds} s, server received ~${
          formatNumber(this.#serverLog.received, 0)
        } of ` +
          `${formatNumber(totalBets, 0)} bets, ${done}/${clients.length} agencies exited`,
      );
    }, PROGRESS_EVERY_MS);
    const allExited = Promise.all(exits);
    const firstFailure = Promise.race(
      exits.map((exit) =>
        exit.then((status) => status.code === 0 ? new Promise<never>(() => {}) : status)
      ),
    );
    const stoppedByBench = new Set<number>();
    const outcome = await Promise.race([
      allExited.then(() => "done" as const),
      firstFailure.then(() => "failed" as const),
      new Promise<"timeout">((done) => {
        this.#timeout = setTimeout(() => done("timeout"), ctx.timeoutMs);
      }),
    ]);
    clearTimeout(this.#timeout);
    if (outcome !== "done") {
      if (outcome === "timeout") {
        this.#failures.push(`timed out after ${formatSeconds(ctx.timeoutMs)}`);
      }
      clients.forEach((client, i) => {
        if (!isLive(client)) return;
        stoppedByBench.add(i);
        kill(client, "SIGKILL");
      });
    }
    return { clientExits: await allExited, stoppedByBench };
  }

  /**
   * SIGTERM, then checks the server exits 0 within the limit. Returns the reaped
   * children's CPU time read as soon as the server has exited.
   */
  async #stopServer(): Promise<number | undefined> {
    const server = this.#server!;
    kill(server, "SIGTERM");
    if (!(await within(this.#serverExit!, SERVER_STOP_MS))) {
      this.#failures.push(`server did not exit within ${SERVER_STOP_MS / 1000} s of SIGTERM`);
      kill(server, "SIGKILL");
    }
    const status = await this.#serverExit!;
    const cpuAfterServer = reapedChildrenCpuMs();
    await server.drained;
    if (status.code !== 0) {
      this.#failures.push(
        `server exited with ${status.signal ?? `code ${status.code}`} after SIGTERM: ${
          lastLine(server.tail)
        }`,
      );
    }
    return cpuAfterServer;
  }

  /** Each agency exited 0, reported its number of winners and logged no failure. */
  #checkAgencies(clientExits: readonly ExitStatus[], stoppedByBench: ReadonlySet<number>): void {
    clientExits.forEach((exit, i) => {
      const file = this.#ctx.data.files[i]!;
      const clientLog = this.#clientLogs[i]!;
      if (stoppedByBench.has(i)) {
        this.#failures.push(`agency ${file.agency} stopped by the bench`);
      } else if (exit.code !== 0) {
        this.#failures.push(
          `agency ${file.agency} exited with ${exit.signal ?? `code ${exit.code}`}: ${
            lastLine(this.#clients[i]!.tail)
          }`,
        );
      } else if (clientLog.winners !== file.winners) {
        this.#failures.push(
          `agency ${file.agency} reported cant_ganadores ${
            clientLog.winners ?? "none"
          }, expected ${file.winners}`,
        );
      }
      if (clientLog.failLines > 0) {
        this.#failures.push(
          `agency ${file.agency} logged ${clientLog.failLines} "result: fail" lines`,
        );
      }
    });
  }

  /** The server logged no failure and one draw with every winner, and stored every bet. */
  async #checkServer(): Promise<void> {
    const { data } = this.#ctx;
    const serverLog = this.#serverLog;
    if (serverLog.fails > 0) {
      this.#failures.push(`server logged ${serverLog.fails} "result: fail" lines`);
    }
    if (serverLog.sorteoLines !== 1) {
      this.#failures.push(`server logged sorteo ${serverLog.sorteoLines} times, expected once`);
    }
    const expectedWinners = data.files.reduce((sum, file) => sum + file.winners, 0);
    if (serverLog.sorteoLines === 1 && serverLog.drawWinners !== expectedWinners) {
      this.#failures.push(
        `server's sorteo says ${serverLog.drawWinners} winners, expected ${expectedWinners}`,
      );
    }
    const totalBets = data.files.reduce((sum, file) => sum + file.rows, 0);
    try {
      const lines = await countNewlines(this.#storage);
      if (lines !== totalBets) {
        this.#failures.push(`bets.csv has ${lines} lines, expected ${totalBets}`);
      }
    } catch (error) {
      this.#failures.push(
        `cannot read bets.csv: ${error instanceof Error ? error.message : error}`,
      );
    }
  }
}
