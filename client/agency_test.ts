import assert from "node:assert/strict";
import { join } from "node:path";
import { ConnectionError, ErrorCode } from "../shared/errors.ts";
import { captureLogger } from "../testing/log_capture.ts";
import { FramedConnection } from "../shared/net/framed_conn.ts";
import { MessageType } from "../shared/protocol/mod.ts";
import { type AgencyConfig, runAgency } from "./agency.ts";

/** What the scripted server holds for the one agency. */
interface Stored {
  nextSeq: number;
  done: boolean;
}

/** How the scripted server treats connection number `index` (from 0). */
type Script = (conn: FramedConnection, index: number, stored: Stored) => Promise<void>;

/** A protocol server on 127.0.0.1 that runs `script` on each connection, then closes it. */
function scriptedServer(script: Script): { port: number; connections: () => number } & {
  [Symbol.asyncDispose](): Promise<void>;
} {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const stored: Stored = { nextSeq: 0, done: false };
  const handlers: Promise<void>[] = [];
  const accepting = (async () => {
    for await (const socket of listener) {
      const conn = new FramedConnection(socket, { idleTimeoutMs: 5000 });
      handlers.push(
        script(conn, handlers.length, stored).catch(() => {}).finally(() => conn.close()),
      );
    }
  })();
  return {
    port: listener.addr.port,
    connections: () => handlers.length,
    async [Symbol.asyncDispose]() {
      listener.close();
      await accepting.catch(() => {});
      await Promise.all(handlers);
    },
  };
}

/** HELLO → WELCOME with where the agency stands. */
async function welcome(conn: FramedConnection, stored: Stored): Promise<void> {
  await conn.expect(MessageType.HELLO);
  await conn.send({ type: MessageType.WELCOME, nextSeq: stored.nextSeq, done: stored.done });
}

/** Acknowledges one BATCH, or serves DONE, winners and total to the end; true when done. */
async function serveOne(conn: FramedConnection, stored: Stored): Promise<boolean> {
  const message = await conn.expect(MessageType.BATCH, MessageType.DONE);
  if (message.type === MessageType.BATCH) {
    stored.nextSeq = message.seq + 1;
    await conn.send({
      type: MessageType.BATCH_ACK,
      seq: message.seq,
      status: 0,
      count: message.bets.length,
      reason: "",
    });
    return false;
  }
  stored.done = true;
  await conn.send({ type: MessageType.DONE_ACK, pending: 0 });
  await serveResults(conn);
  return true;
}

async function serveResults(conn: FramedConnection): Promise<void> {
  await conn.expect(MessageType.WINNERS_QUERY);
  await conn.send({ type: MessageType.WINNERS, total: 1, last: true, documents: ["30904465"] });
  await conn.expect(MessageType.TOTAL_QUERY);
  await conn.send({ type: MessageType.TOTAL, winners: 1, pending: 0, retryAfterMs: 0 });
  await conn.expect(MessageType.BYE);
}

/** A scripted refusal, as a full server sends it. */
function refuse(conn: FramedConnection, retryAfterMs: number): Promise<void> {
  return conn.send({
    type: MessageType.ERROR,
    code: ErrorCode.LIMIT_EXCEEDED,
    retryAfterMs,
    message: "Too many connections",
  });
}

/** Runs agency 1 on 10 bets (5 batches of 2) against `port`, with a budget of `attempts`. */
async function runOn(
  port: number,
  attempts: number,
): Promise<{ result: Promise<unknown>; lines: ReturnType<typeof captureLogger>["lines"] }> {
  const dir = await Deno.makeTempDir({ prefix: "agency_test_" });
  const dataPath = join(dir, "agency-1.csv");
  await Deno.writeTextFile(dataPath, "Ana,Lorca,30904465,1999-03-17,7574\r\n".repeat(10));
  const config: AgencyConfig = {
    id: 1,
    serverAddress: { hostname: "127.0.0.1", port, text: `127.0.0.1:${port}` },
    batchMaxAmount: 2,
    dataPath,
    window: 1,
    secret: "",
    connectAttempts: attempts,
    connectBackoff: { ms: 1, text: "1ms" },
    connectTimeout: { ms: 2000, text: "2s" },
    timeout: { ms: 5000, text: "5s" },
  };
  const { log, lines } = captureLogger();
  const result = runAgency(config, { log, signal: new AbortController().signal })
    .finally(() => Deno.remove(dir, { recursive: true }));
  return { result, lines };
}

function reconnections(lines: ReturnType<typeof captureLogger>["lines"]) {
  return lines.filter((l) => l.action === "reconexion");
}

Deno.test("runAgency() - drops separated by progress never exhaust the budget", async () => {
  // Every connection acknowledges one new batch, then drops: 5 drops against a budget of 1.
  await using server = scriptedServer(async (conn, _, stored) => {
    await welcome(conn, stored);
    // A resuming agency first re-sends the last batch the server holds (its probe).
    if (stored.nextSeq > 0) await serveOne(conn, stored);
    await serveOne(conn, stored);
  });
  const { result, lines } = await runOn(server.port, 1);
  assert.deepEqual(await result, {
    betsSent: 10,
    batches: 5,
    winners: ["30904465"],
    totalWinners: 1,
    stopped: false,
  });
  const drops = reconnections(lines);
  assert.equal(drops.length, 5);
  // The budget and the backoff start over after each acknowledged batch.
  for (const line of drops) assert.equal(line.fields.intento, 1);
});

Deno.test("runAgency() - drops without progress spend the budget, then it gives up naming the server", async () => {
  await using server = scriptedServer(async (conn, index, stored) => {
    await welcome(conn, stored);
    // The first connection stores one batch; every later one drops after WELCOME.
    if (index === 0) await serveOne(conn, stored);
  });
  const { result, lines } = await runOn(server.port, 3);
  await assert.rejects(result, (error: unknown) => {
    assert.ok(error instanceof ConnectionError);
    assert.match(
      error.message,
      new RegExp(
        `^Cannot finish with server 127\\.0\\.0\\.1:${server.port}: 3 reconnections in a row made no progress`,
      ),
    );
    return true;
  });
  // The first drop came after progress; the three after it spent the budget of 3.
  assert.deepEqual(reconnections(lines).map((l) => l.fields.intento), [1, 2, 3]);
  assert.equal(server.connections(), 4);
});

Deno.test("runAgency() - a refusal's retry hint sets the wait and has a budget of its own", async (t) => {
  const hintMs = 150;
  await t.step("drops and hinted refusals spend separate budgets", async () => {
    // Four failures without progress against connect.attempts 2: two drops, two refusals.
    await using server = scriptedServer(async (conn, index, stored) => {
      if (index === 1 || index === 2) return await refuse(conn, hintMs);
      await welcome(conn, stored);
      if (index === 4) { while (!await serveOne(conn, stored)); }
    });
    const { result, lines } = await runOn(server.port, 2);
    assert.equal((await result as { betsSent: number }).betsSent, 10);
    const waits = reconnections(lines);
    assert.deepEqual(waits.map((l) => l.fields.intento), [1, 1, 2, 2]);
    for (const line of waits.slice(1, 3)) {
      const wait = Number(line.fields.retry_in_ms);
      assert.ok(
        wait >= hintMs && wait <= hintMs * 1.2,
        `waited ${wait} ms for a ${hintMs} ms hint`,
      );
      assert.match(String(line.fields.detail), /^LIMIT_EXCEEDED/);
    }
  });
  await t.step("refused for good: it gives up after connect.attempts hinted waits", async () => {
    await using server = scriptedServer((conn) => refuse(conn, hintMs));
    const { result } = await runOn(server.port, 2);
    await assert.rejects(result, /2 waits the server asked for in a row made no progress/);
    assert.equal(server.connections(), 3);
  });
});
