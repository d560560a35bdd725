/**
 * One run of the many-agencies load: `bin/server` with fresh storage and `SERVER_WORKERS`
 * as asked, one generator process (`load_agencies.ts`) playing every agency at once, the
 * wall time until it exits, and the server's CPU per thread meanwhile. The run counts only
 * when the generator saw every ack and every agency's own winners, and the server drew once,
 * logged no failure and exited 0 on SIGTERM.
 *
 * @module
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { LogAction } from "../../shared/log.ts";
import { parseLogLine } from "../../shared/log_line.ts";
import { freePort } from "../_cli.ts";
import { threadCpuMs, threadCpuSince } from "./proc.ts";
import { spawn, within } from "./processes.ts";
import type { SystemRun } from "./report.ts";

const GENERATOR = fileURLToPath(new URL("./load_agencies.ts", import.meta.url));

/** What a load run needs: the programs' folder, a scratch folder, the load and its limit. */
export interface LoadContext {
  readonly serverBin: string;
  readonly scratch: string;
  readonly agencies: number;
  readonly betsPerAgency: number;
  readonly timeoutMs: number;
}

/** Runs the load once against a server of `workers` session threads. */
export async function runLoad(ctx: LoadContext, workers: string): Promise<SystemRun> {
  const dir = await Deno.makeTempDir({ dir: ctx.scratch, prefix: "load-" });
  const failures: string[] = [];
  const ready = Promise.withResolvers<void>();
  let draws = 0;
  const port = freePort();
  const ini = join(dir, "server.ini");
  await Deno.writeTextFile(ini, `[DEFAULT]\nSERVER_PORT = ${port}\nLOGGING_LEVEL = INFO\n`);
  const server = spawn(ctx.serverBin, {
    env: {
      SERVER_PORT: String(port),
      SERVER_LISTEN_ADDRESS: "127.0.0.1",
      SERVER_AGENCIES: String(ctx.agencies),
      SERVER_STORAGE_PATH: join(dir, "bets.csv"),
      SERVER_CONFIG: ini,
      LOGGING_LEVEL: "INFO",
      ...(workers === "default" ? {} : { SERVER_WORKERS: workers }),
    },
    onLine: (line) => {
      const parsed = parseLogLine(line);
      if (parsed?.result === "fail") failures.push(`server: ${line}`);
      if (parsed?.action === LogAction.ACCEPT_CONNECTIONS && parsed.result === "in_progress") {
        ready.resolve();
      }
      if (parsed?.action === LogAction.SORTEO) draws++;
    },
  });
  try {
    if (!(await within(Promise.race([ready.promise, server.exited]), 30_000)) || !server.live) {
      return { ok: false, failures: ["server did not start listening"], wallMs: NaN, workers };
    }
    const before = threadCpuMs(server.pid);
    const started = performance.now();
    let summary = "";
    const generator = spawn(Deno.execPath(), {
      args: [
        ...["run", "--no-config", "--allow-net=127.0.0.1", GENERATOR, String(port)],
        ...[String(ctx.agencies), String(ctx.betsPerAgency), String(ctx.timeoutMs)],
      ],
      onLine: (line) => summary = line,
    });
    const exit = await generator.exited;
    const wallMs = exit.at - started;
    const after = threadCpuMs(server.pid);
    if (exit.code !== 0) failures.push(`generator exited ${exit.code}: ${summary}`);
    server.kill("SIGTERM");
    if (!(await within(server.exited, 15_000))) failures.push("server did not exit within 15 s");
    if ((await server.exited).code !== 0) failures.push("server did not exit 0 on SIGTERM");
    await server.drained;
    if (draws !== 1) failures.push(`server logged sorteo ${draws} times, expected once`);
    return {
      ok: failures.length === 0,
      failures,
      wallMs,
      workers,
      ...(before && after ? { threadCpuMs: threadCpuSince(before, after) } : {}),
    };
  } finally {
    server.kill("SIGKILL");
    await server.exited;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
