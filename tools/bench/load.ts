/**
 * The many-agencies load: `bin/server` and one generator process (this module) playing every
 * agency at once; reports the wall time and the server's CPU per thread.
 *
 * @module
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { LogAction } from "../../shared/log.ts";
import { parseLogLine } from "../../shared/log_line.ts";
import { FramedConnection } from "../../shared/net/framed_conn.ts";
import { BATCH_HEADER_SIZE, encodeBatchHeader, MessageType } from "../../shared/protocol/mod.ts";
import { freePort } from "../_cli.ts";
import { reapedChildrenCpuMs, threadCpuMs, threadCpuSince } from "./proc.ts";
import { spawn, within } from "./processes.ts";
import type { SystemRun } from "./report.ts";

/** What a load run needs: `bin/server`, a scratch folder, the load and its time limit. */
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
  await Deno.writeTextFile(join(dir, "server.ini"), `[DEFAULT]\nSERVER_PORT = ${port}\n`);
  const server = spawn(ctx.serverBin, {
    env: {
      SERVER_CONFIG: join(dir, "server.ini"),
      SERVER_LISTEN_ADDRESS: "127.0.0.1",
      SERVER_AGENCIES: String(ctx.agencies),
      SERVER_STORAGE_PATH: join(dir, "bets.csv"),
      ...(workers === "default" ? {} : { SERVER_WORKERS: workers }),
    },
    onLine: (line) => {
      const parsed = parseLogLine(line);
      if (parsed?.result === "fail") failures.push(`server: ${line}`);
      if (parsed?.action === LogAction.ACCEPT_CONNECTIONS) ready.resolve();
      if (parsed?.action === LogAction.SORTEO) draws++;
    },
  });
  try {
    if (!(await within(Promise.race([ready.promise, server.exited]), 30_000)) || !server.live) {
      return { ok: false, failures: ["server did not start listening"], wallMs: NaN, workers };
    }
    const before = threadCpuMs(server.pid);
    const reapedBefore = reapedChildrenCpuMs();
    const started = performance.now();
    let summary = "";
    const args = [port, ctx.agencies, ctx.betsPerAgency, ctx.timeoutMs].map(String);
    const generator = spawn(Deno.execPath(), {
      args: [
        "run",
        "--no-config",
        "--allow-net=127.0.0.1",
        fileURLToPath(import.meta.url),
        ...args,
      ],
      onLine: (line) => summary = line,
    });
    const exit = await generator.exited;
    const after = threadCpuMs(server.pid);
    // The generator is the only child reaped meanwhile: the difference is its CPU.
    const reapedAfter = reapedChildrenCpuMs();
    const clientCpuMs = reapedBefore === undefined || reapedAfter === undefined
      ? undefined
      : reapedAfter - reapedBefore;
    if (exit.code !== 0) failures.push(`generator exited ${exit.code}: ${summary}`);
    server.kill("SIGTERM");
    if (!(await within(server.exited, 15_000))) failures.push("server did not exit within 15 s");
    if ((await server.exited).code !== 0) failures.push("server did not exit 0 on SIGTERM");
    if (draws !== 1) failures.push(`server logged sorteo ${draws} times, expected once`);
    const threads = before && after ? { threadCpuMs: threadCpuSince(before, after) } : {};
    const wallMs = exit.at - started;
    return { ok: failures.length === 0, failures, wallMs, workers, clientCpuMs, ...threads };
  } finally {
    server.kill("SIGKILL");
    await server.exited;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** Bet `i` of every agency: one in a hundred plays the winning number. */
function betLine(i: number): string {
  return `Ana,Paz,${10_000_000 + i},1990-01-0${1 + (i % 9)},${
    i % 100 ? 1000 + (i % 5000) : 7574
  }\n`;
}

/** One batch every agency sends: its CSV lines and how many there are. */
interface LoadBatch {
  readonly lines: Uint8Array;
  readonly count: number;
}

/** Plays one agency to its winners over `batches`; returns how many it was told. */
async function playAgency(
  port: number,
  agency: number,
  batches: readonly LoadBatch[],
): Promise<number> {
  const framed = new FramedConnection(await Deno.connect({ hostname: "127.0.0.1", port }));
  const expect = async (type: number, what: string) => {
    const reply = await framed.read();
    if (reply?.type !== type) throw new Error(`agency ${agency}: no ${what}`);
    return reply;
  };
  try {
    await framed.send({ type: MessageType.HELLO, agency, secret: "" });
    await expect(MessageType.WELCOME, "WELCOME");
    batches.forEach(({ lines, count }, seq) => {
      const frame = new Uint8Array(BATCH_HEADER_SIZE + lines.length);
      frame.set(lines, BATCH_HEADER_SIZE);
      encodeBatchHeader(frame, 0, { agency, seq, count }, lines.length);
      framed.send(frame).catch(() => {});
    });
    for (const _ of batches) {
      const ack = await expect(MessageType.BATCH_ACK, "ack");
      if (ack.type === MessageType.BATCH_ACK && ack.status !== 0) throw new Error(ack.reason);
    }
    await framed.send({ type: MessageType.DONE, agency, batches: batches.length });
    await expect(MessageType.DONE_ACK, "DONE_ACK");
    for (let documents = 0;;) {
      await framed.send({ type: MessageType.WINNERS_QUERY, agency });
      let reply = await framed.read();
      while (reply?.type === MessageType.WINNERS) {
        documents += reply.documents.length;
        if (reply.last) return documents;
        reply = await framed.read();
      }
      if (reply?.type !== MessageType.NOT_READY) throw new Error(`agency ${agency}: no WINNERS`);
    }
  } finally {
    framed.close();
  }
}

// The generator: `load.ts <port> <agencies> <bets> <limitMs>`, one JSON line, exit 0 if right.
if (import.meta.main) {
  const [port, agencies, bets, limitMs] = Deno.args.map(Number) as [number, number, number, number];
  setTimeout(() => {
    console.log(JSON.stringify({ ok: false, error: `not done within ${limitMs} ms` }));
    Deno.exit(1);
  }, limitMs);
  // Built once for every agency: the generator is to load the server, not itself.
  const batches: LoadBatch[] = [];
  for (let start = 0; start < bets; start += 100) {
    const lines = Array.from({ length: Math.min(100, bets - start) }, (_, k) => betLine(start + k));
    batches.push({ lines: new TextEncoder().encode(lines.join("")), count: lines.length });
  }
  const results = await Promise.allSettled(
    Array.from({ length: agencies }, (_, i) => playAgency(port, i + 1, batches)),
  );
  const own = Math.ceil(bets / 100);
  const bad = results.find((r) => r.status === "rejected" || r.value !== own);
  const error = bad?.status === "rejected"
    ? String(bad.reason)
    : bad && "an agency got other winners";
  console.log(JSON.stringify({ ok: !error, ...(error ? { error } : {}) }));
  Deno.exit(error ? 1 : 0);
}
