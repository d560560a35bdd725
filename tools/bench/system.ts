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
import { LogAction } from "../../shared/log.ts";
import { parseLogLine } from "../../shared/log_line.ts";
import { freePort, lastLine } from "../_cli.ts";
import type { FsyncPolicy } from "../../server/storage.ts";
import type { PreparedData } from "./data.ts";
import { AckLatencyProxy } from "./latency_proxy.ts";
import { reapedChildrenCpuMs, RssSampler } from "./proc.ts";
import { baseEnv, isLive, kill, spawn, type Tracked, within } from "./processes.ts";
import { formatNumber, type SystemRun } from "./report.ts";

/** What one run needs besides its name. */
export interface SystemRunContext {
  /** The agency files. */
  readonly data: PreparedData;
  /** The server's `SERVER_FSYNC`. */
  readonly fsync: FsyncPolicy;
  /** The agencies' `batch.maxAmount`. */
  readonly batch: number;
  /** `bin/server`. */
  readonly serverBin: string;
  /** `bin/client`. */
  readonly clientBin: string;
  /** This invocation's scratch folder under `.bench/`. */
  readonly scratch: string;
  /** The limit of the agencies' part of the run. */
  readonly timeoutMs: number;
  /** Progress sink. */
  readonly log: (message: string) => void;
}

/**
 * Runs the system once: fresh storage, server, every agency at once, checks.
 *
 * @param ctx Data, programs and limits.
 * @param options The run's name (`run 2/3`) and whether agencies talk through the
 *   ack-latency proxy.
 * @returns The measurements (not ok when any check failed).
 */
export async function runSystem(
  ctx: SystemRunContext,
  options: { readonly name: string; readonly withProxy: boolean },
): Promise<SystemRun> {
  const dir = await Deno.makeTempDir({ dir: ctx.scratch, prefix: "system-" });
  const run = new Run(ctx, options.name, dir);
  try {
    return await run.execute(options.withProxy);
  } finally {
    await run.cleanup();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

async function countNewlines(path: string): Promise<number> {
  let lines = 0;
  using file = await Deno.open(path);
  const buf = new Uint8Array(1 << 20);
  for (let n = await file.read(buf); n !== null; n = await file.read(buf)) {
    for (let i = 0; i < n; i++) if (buf[i] === 0x0a) lines++;
  }
  return lines;
}

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

type ExitStatus = Awaited<Tracked["exited"]>;

/** The state of one run, so each step is a small method. */
class Run {
  readonly #ctx: SystemRunContext;
  readonly #name: string;
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

  constructor(ctx: SystemRunContext, name: string, dir: string) {
    this.#ctx = ctx;
    this.#name = name;
    this.#dir = dir;
    this.#storage = join(dir, "storage", "bets.csv");
  }

  async execute(withProxy: boolean): Promise<SystemRun> {
    const port = freePort();
    const up = await this.#startServer(port);
    if (up !== undefined) return { ok: false, failures: [up], wallMs: NaN };
    if (withProxy) this.#proxy = new AckLatencyProxy(port);
    const address = `127.0.0.1:${this.#proxy?.port ?? port}`;
    const yaml = join(this.#dir, "client.yaml");
    // The course's config.yaml; the rest comes from env so no user file skews a run.
    await Deno.writeTextFile(
      yaml,
      `server:\n  address: "${address}"\nloop:\n  amount: 5\n  period: "5s"\nlog:\n  level: "INFO"\n` +
        `batch:\n  maxAmount: ${this.#ctx.batch}\n`,
    );
    // Everything is ready; the clock starts with the first agency.
    const cpuBeforeClients = reapedChildrenCpuMs();
    const started = performance.now();
    const { exits, stoppedByBench } = await this.#runAgencies(address, yaml, started);
    const cpuAfterClients = reapedChildrenCpuMs();
    const wallMs = Math.max(...exits.map((exit) => exit.at)) - started;
    await Promise.all(this.#clients.map((client) => client.drained));
    const cpuAfterServer = await this.#stopServer();
    this.#checkAgencies(exits, stoppedByBench);
    await this.#checkServer();

    const latest = (get: (log: ClientLog) => number | undefined): number | undefined => {
      const times = this.#clientLogs.map(get);
      return times.every((t) => t !== undefined) ? Math.max(...times) - started : undefined;
    };
    const span = (from?: number, to?: number) =>
      from === undefined || to === undefined ? undefined : to - from;
    const clientPeak = Math.max(0, ...this.#clients.map((c) => this.#sampler.peakKb(c.pid) ?? 0));
    if (this.#proxy?.latenciesMs.length === 0) {
      this.#failures.push("the proxy saw no acknowledged batch");
    }
    const measured = {
      startupMs: latest((log) => log.configAt),
      ackedMs: latest((log) => log.ackedAt),
      winnersMs: latest((log) => log.winnersAt),
      drawMs: this.#serverLog.drawMs,
      serverRssKb: this.#sampler.peakKb(this.#server!.pid),
      clientRssKb: clientPeak || undefined,
      serverCpuMs: span(cpuAfterClients, cpuAfterServer),
      clientCpuMs: span(cpuBeforeClients, cpuAfterClients),
      ackLatenciesMs: this.#proxy?.latenciesMs,
    };
    // Measurements that were not taken stay absent.
    const taken = Object.entries(measured).filter(([, value]) => value !== undefined);
    return {
      ok: this.#failures.length === 0,
      failures: this.#failures,
      wallMs,
      ...Object.fromEntries(taken),
    };
  }

  /** Stops whatever still runs; safe to call after any step failed. */
  async cleanup(): Promise<void> {
    clearInterval(this.#progress);
    const all = [...this.#clients, ...(this.#server ? [this.#server] : [])];
    for (const tracked of all) kill(tracked, "SIGKILL");
    await Promise.all(all.map((tracked) => tracked.exited));
    this.#sampler.stop();
    await this.#proxy?.close();
  }

  /** Tracks a process's memory until it exits; resolves with its exit. */
  #sampled(tracked: Tracked): Promise<ExitStatus> {
    this.#sampler.track(tracked.pid);
    return tracked.exited.then((exit) => {
      this.#sampler.untrack(tracked.pid);
      return exit;
    });
  }

  /** Starts the server with fresh storage; returns why it is not accepting connections. */
  async #startServer(port: number): Promise<string | undefined> {
    await Deno.mkdir(join(this.#dir, "storage"));
    const ini = join(this.#dir, "server.ini");
    // The course's config.ini; the rest comes from env.
    await Deno.writeTextFile(
      ini,
      `[DEFAULT]\nSERVER_PORT = ${port}\nSERVER_IP = 127.0.0.1\nSERVER_LISTEN_BACKLOG = 128\nLOGGING_LEVEL = INFO\n`,
    );
    this.#server = spawn(this.#ctx.serverBin, {
      env: {
        ...baseEnv(),
        SERVER_CONFIG: ini,
        SERVER_PORT: String(port),
        SERVER_LISTEN_ADDRESS: "127.0.0.1",
        SERVER_AGENCIES: String(this.#ctx.data.files.length),
        SERVER_STORAGE_PATH: this.#storage,
        SERVER_FSYNC: this.#ctx.fsync,
        LOGGING_LEVEL: "INFO",
      },
      onLine: (line) => this.#serverLog.onLine(line),
    });
    this.#serverExit = this.#sampled(this.#server);
    let exited = false;
    this.#serverExit.then(() => exited = true);
    if (await within(Promise.race([this.#serverLog.ready.promise, this.#serverExit]), 30_000)) {
      if (!exited) return undefined;
      return `server exited before accepting connections: ${
        lastLine(this.#server.tail.join("\n"))
      }`;
    }
    return "server did not log accept_connections within 30 s";
  }

  /**
   * Starts every agency at once and waits for them, printing progress. One agency
   * failing means the draw never comes, so the others are stopped at once; so are all
   * of them at the time limit.
   */
  async #runAgencies(
    address: string,
    yaml: string,
    started: number,
  ): Promise<{ exits: ExitStatus[]; stoppedByBench: Set<number> }> {
    const { data, clientBin, batch, timeoutMs, log } = this.#ctx;
    const exits = data.files.map((file) => {
      const clientLog = new ClientLog();
      this.#clientLogs.push(clientLog);
      const client = spawn(clientBin, {
        env: {
          ...baseEnv(),
          CLI_ID: String(file.agency),
          CLI_CONFIG: yaml,
          CLI_SERVER_ADDRESS: address,
          CLI_DATA_PATH: file.path,
          CLI_BATCH_MAXAMOUNT: String(batch),
          CLI_LOG_LEVEL: "INFO",
          CLI_MODE: "agency",
        },
        onLine: (line, at) => clientLog.onLine(line, at),
      });
      this.#clients.push(client);
      return this.#sampled(client);
    });
    const totalBets = data.files.reduce((sum, file) => sum + file.rows, 0);
    this.#progress = setInterval(() => {
      const done = this.#clients.filter((client) => !isLive(client)).length;
      log(
        `${this.#name}: ${((performance.now() - started) / 1000).toFixed(1)} s, server received ~` +
          `${formatNumber(this.#serverLog.received, 0)} of ${formatNumber(totalBets, 0)} bets, ` +
          `${done}/${this.#clients.length} agencies exited`,
      );
    }, 2000);
    const allExited = Promise.all(exits);
    const firstFailure = Promise.race(
      exits.map((exit) =>
        exit.then((status) => status.code === 0 ? new Promise<never>(() => {}) : status)
      ),
    );
    const stoppedByBench = new Set<number>();
    if (!(await within(Promise.race([allExited, firstFailure]), timeoutMs))) {
      this.#failures.push(`timed out after ${Math.round(timeoutMs / 1000)} s`);
    }
    this.#clients.forEach((client, i) => {
      if (!isLive(client)) return;
      stoppedByBench.add(i);
      kill(client, "SIGKILL");
    });
    const result = { exits: await allExited, stoppedByBench };
    clearInterval(this.#progress);
    return result;
  }

  /** SIGTERM, then checks the server exits 0 in time; returns the reaped children's CPU. */
  async #stopServer(): Promise<number | undefined> {
    const server = this.#server!;
    kill(server, "SIGTERM");
    if (!(await within(this.#serverExit!, 15_000))) {
      this.#failures.push("server did not exit within 15 s of SIGTERM");
      kill(server, "SIGKILL");
    }
    const status = await this.#serverExit!;
    const cpuAfterServer = reapedChildrenCpuMs();
    await server.drained;
    if (status.code !== 0) {
      const how = status.signal ?? `code ${status.code}`;
      this.#failures.push(
        `server exited with ${how} after SIGTERM: ${lastLine(server.tail.join("\n"))}`,
      );
    }
    return cpuAfterServer;
  }

  /** Each agency exited 0, reported its number of winners and logged no failure. */
  #checkAgencies(exits: readonly ExitStatus[], stoppedByBench: ReadonlySet<number>): void {
    exits.forEach((exit, i) => {
      const { agency, winners } = this.#ctx.data.files[i]!;
      const clientLog = this.#clientLogs[i]!;
      if (stoppedByBench.has(i)) {
        this.#failures.push(`agency ${agency} stopped by the bench`);
      } else if (exit.code !== 0) {
        const how = exit.signal ?? `code ${exit.code}`;
        this.#failures.push(
          `agency ${agency} exited with ${how}: ${lastLine(this.#clients[i]!.tail.join("\n"))}`,
        );
      } else if (clientLog.winners !== winners) {
        this.#failures.push(
          `agency ${agency} reported cant_ganadores ${
            clientLog.winners ?? "none"
          }, expected ${winners}`,
        );
      }
      if (clientLog.failLines > 0) {
        this.#failures.push(`agency ${agency} logged ${clientLog.failLines} "result: fail" lines`);
      }
    });
  }

  /** The server logged no failure and one draw with every winner, and stored every bet. */
  async #checkServer(): Promise<void> {
    const { files } = this.#ctx.data;
    const { fails, sorteoLines, drawWinners } = this.#serverLog;
    if (fails > 0) this.#failures.push(`server logged ${fails} "result: fail" lines`);
    if (sorteoLines !== 1) {
      this.#failures.push(`server logged sorteo ${sorteoLines} times, expected once`);
    }
    const winners = files.reduce((sum, file) => sum + file.winners, 0);
    if (sorteoLines === 1 && drawWinners !== winners) {
      this.#failures.push(`server's sorteo says ${drawWinners} winners, expected ${winners}`);
    }
    const bets = files.reduce((sum, file) => sum + file.rows, 0);
    const lines = await countNewlines(this.#storage).catch((error) => `unreadable (${error})`);
    if (lines !== bets) this.#failures.push(`bets.csv has ${lines} lines, expected ${bets}`);
  }
}
