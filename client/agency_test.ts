import assert from "node:assert/strict";
import { join } from "node:path";
import { ConnectionError, ErrorCode, ProtocolError } from "../shared/errors.ts";
import { captureLogger } from "../testing/log_capture.ts";
import { FramedConnection } from "../shared/net/framed_conn.ts";
import { type Message, MessageType, type NotReady } from "../shared/protocol/mod.ts";
import { type AgencyConfig, type AgencyResult, runAgency } from "./agency.ts";

/** Where the fake server says the agency stands. */
interface Holds {
  nextSeq: number;
  done: boolean;
}

/** What the fake server holds for the one agency, and what it was sent. */
interface Stored extends Holds {
  /** Sequences of the BATCH frames received, in order. */
  readonly seqs: number[];
  /** The batch counts of the DONE messages received. */
  readonly dones: number[];
}

/** How the fake server treats connection number `index` (from 0). */
type Script = (conn: FramedConnection, index: number, stored: Stored) => Promise<void>;

/** A protocol server on 127.0.0.1 that runs `script` on each connection, then closes it. */
function fakeServer(script: Script, holds: Holds = { nextSeq: 0, done: false }): {
  port: number;
  stored: Stored;
  connections: () => number;
} & AsyncDisposable {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const stored: Stored = { ...holds, seqs: [], dones: [] };
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
    stored,
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

/** The reply of a server that stores everything; `undefined` for a BYE. */
function answer(message: Message, stored: Stored, notReady: NotReady[]): Message | undefined {
  switch (message.type) {
    case MessageType.BATCH:
      stored.seqs.push(message.seq);
      stored.nextSeq = message.seq + 1;
      return {
        type: MessageType.BATCH_ACK,
        seq: message.seq,
        status: 0,
        count: message.bets.length,
        reason: "",
      };
    case MessageType.DONE:
      stored.dones.push(message.batches);
      stored.done = true;
      return { type: MessageType.DONE_ACK, pending: 0 };
    case MessageType.WINNERS_QUERY:
      return notReady.shift() ??
        { type: MessageType.WINNERS, total: 1, last: true, documents: ["30904465"] };
    case MessageType.TOTAL_QUERY:
      return { type: MessageType.TOTAL, winners: 1, pending: 0, retryAfterMs: 0 };
    default:
      return undefined;
  }
}

/**
 * Serves the agency after its WELCOME: every message answered (the `notReady` replies before
 * the winners) until its BYE, or until `batches` BATCH frames are acknowledged (the caller
 * then drops the connection).
 */
async function serve(
  conn: FramedConnection,
  stored: Stored,
  options: { batches?: number; notReady?: NotReady[] } = {},
): Promise<void> {
  const { batches = Infinity, notReady = [] } = options;
  let acked = 0;
  for (let message = await conn.read(); message !== null; message = await conn.read()) {
    const reply = answer(message, stored, notReady);
    if (reply === undefined) return;
    await conn.send(reply);
    if (message.type === MessageType.BATCH && ++acked === batches) return;
  }
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

/**
 * Runs agency 1 against `port` on a file of `bets` numbered lines, in batches of
 * `batchMaxAmount`; the file is removed when the run ends.
 */
async function runOn(
  port: number,
  bets: number,
  settings: Pick<AgencyConfig, "batchMaxAmount" | "window" | "connectAttempts">,
): Promise<{ result: Promise<AgencyResult>; lines: ReturnType<typeof captureLogger>["lines"] }> {
  const dir = await Deno.makeTempDir({ prefix: "agency_test_" });
  const dataPath = join(dir, "agency-1.csv");
  const lines = Array.from({ length: bets }, (_, i) => `A${i},B,${1000 + i},1990-01-01,${i}\n`);
  await Deno.writeTextFile(dataPath, lines.join(""));
  const config: AgencyConfig = {
    id: 1,
    serverAddress: { hostname: "127.0.0.1", port, text: `127.0.0.1:${port}` },
    dataPath,
    secret: "",
    connectBackoff: { ms: 1, text: "1ms" },
    connectTimeout: { ms: 2000, text: "2s" },
    timeout: { ms: 5000, text: "5s" },
    ...settings,
  };
  const captured = captureLogger();
  const result = runAgency(config, { log: captured.log, signal: new AbortController().signal })
    .finally(() => Deno.remove(dir, { recursive: true }));
  return { result, lines: captured.lines };
}

/** 10 bets in 5 batches of 2, one in flight at a time, against a budget of `attempts`. */
function runFiveBatches(port: number, attempts: number) {
  return runOn(port, 10, { batchMaxAmount: 2, window: 1, connectAttempts: attempts });
}

/** A resuming agency: batches of 10, 4 in flight, no reconnection. */
function runResuming(port: number, bets: number) {
  return runOn(port, bets, { batchMaxAmount: 10, window: 4, connectAttempts: 1 });
}

function reconnections(lines: ReturnType<typeof captureLogger>["lines"]) {
  return lines.filter((l) => l.action === "reconexion");
}

Deno.test("runAgency() - drops separated by progress never exhaust the budget", async () => {
  // Every connection acknowledges one new batch, then drops: 5 drops against a budget of 1.
  await using server = fakeServer(async (conn, _, stored) => {
    // A resuming agency first re-sends the last batch the server holds (its probe).
    const batches = stored.nextSeq > 0 ? 2 : 1;
    await welcome(conn, stored);
    await serve(conn, stored, { batches });
  });
  const { result, lines } = await runFiveBatches(server.port, 1);
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
  await using server = fakeServer(async (conn, index, stored) => {
    await welcome(conn, stored);
    // The first connection stores one batch; every later one drops after WELCOME.
    if (index === 0) await serve(conn, stored, { batches: 1 });
  });
  const { result, lines } = await runFiveBatches(server.port, 3);
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
    await using server = fakeServer(async (conn, index, stored) => {
      if (index === 1 || index === 2) return await refuse(conn, hintMs);
      await welcome(conn, stored);
      if (index === 4) await serve(conn, stored);
    });
    const { result, lines } = await runFiveBatches(server.port, 2);
    assert.equal((await result).betsSent, 10);
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
    await using server = fakeServer((conn) => refuse(conn, hintMs));
    const { result } = await runFiveBatches(server.port, 2);
    await assert.rejects(result, /2 waits the server asked for in a row made no progress/);
    assert.equal(server.connections(), 3);
  });
});

/** A server that stores everything, told where the agency stands. */
function storingServer(holds: Holds, notReady: NotReady[] = []) {
  return fakeServer(async (conn, _, stored) => {
    await welcome(conn, stored);
    await serve(conn, stored, { notReady });
  }, holds);
}

Deno.test("runAgency() resuming sends the last batch the server holds again, then the rest", async () => {
  await using server = storingServer({ nextSeq: 3, done: false });
  const result = await (await runResuming(server.port, 55)).result;
  assert.deepEqual(server.stored.seqs, [2, 3, 4, 5], "batch 2 is the probe");
  assert.deepEqual(server.stored.dones, [6]);
  assert.equal(result.betsSent, 25, "the probe's bets were sent before");
  assert.equal(result.batches, 6);
});

Deno.test("runAgency() done on the server: only the probe goes, then the winners", async () => {
  await using server = storingServer({ nextSeq: 6, done: true });
  const result = await (await runResuming(server.port, 60)).result;
  assert.deepEqual(server.stored.seqs, [5]);
  assert.deepEqual(server.stored.dones, [], "no second DONE");
  assert.deepEqual(result.winners, ["30904465"]);
});

Deno.test("runAgency() refuses to go on when the server holds other batches than its file makes", async (t) => {
  const cases: [string, Holds, number, RegExp][] = [
    [
      "fewer batches in the file than stored",
      { nextSeq: 5, done: false },
      35,
      /^The server holds 5 batches of agency 1, but .*agency-1\.csv makes only 4 in batches of 10, so this agency's bets were already loaded from other data \(another file or batch\.maxAmount\); to start a fresh draw/,
    ],
    [
      "more batches in the file than stored with DONE",
      { nextSeq: 2, done: true },
      35,
      /^The server holds 2 batches of agency 1 and its DONE, but .*agency-1\.csv makes more in batches of 10/,
    ],
  ];
  for (const [name, holds, bets, message] of cases) {
    await t.step(name, async () => {
      await using server = storingServer(holds);
      const { result } = await runResuming(server.port, bets);
      await assert.rejects(result, (error: unknown) => {
        assert.ok(error instanceof ProtocolError);
        assert.equal(error.code, ErrorCode.CONFLICT);
        assert.match(error.message, message);
        return true;
      });
    });
  }
});

Deno.test("runAgency() waiting for the draw names the pending agencies at INFO, not every reply", async () => {
  const waiting: NotReady[] = Array.from({ length: 3 }, () => ({
    type: MessageType.NOT_READY,
    pending: 3,
    retryAfterMs: 0,
    pendingAgencies: [2, 4, 5],
  }));
  await using server = storingServer({ nextSeq: 0, done: false }, waiting);
  const { result, lines } = await runResuming(server.port, 5);
  await result;
  const waits = lines.filter((l) =>
    l.action === "consulta_ganadores" && l.result === "in_progress"
  );
  assert.deepEqual(waits.map((l) => [l.level, l.fields]), [
    ["INFO", { client_id: 1, agencias_pendientes: "2 4 5" }],
  ]);
});
