import assert from "node:assert/strict";
import { join } from "node:path";
import { ErrorCode, ProtocolError } from "../shared/errors.ts";
import type { ActionLogger } from "../shared/log.ts";
import { FramedConnection } from "../shared/net/framed_conn.ts";
import { type Message, MessageType, type NotReady } from "../shared/protocol/mod.ts";
import { type AgencyConfig, runAgency } from "./agency.ts";
import { loadClientConfig } from "./config.ts";
import { captureLogger } from "../testing/log_capture.ts";

/** What the fake server saw. */
interface FakeServer {
  readonly port: number;
  /** Sequences of the BATCH frames received, in order. */
  readonly seqs: number[];
  /** The batch counts of the DONE messages received. */
  readonly dones: number[];
  readonly finished: Promise<void>;
}

/** The fake server's reply to one message; `undefined` ends the connection. */
function answer(message: Message, seen: FakeServer, notReady: NotReady[]): Message | undefined {
  switch (message.type) {
    case MessageType.BATCH:
      seen.seqs.push(message.seq);
      return {
        type: MessageType.BATCH_ACK,
        seq: message.seq,
        status: 0,
        count: message.bets.length,
        reason: "",
      };
    case MessageType.DONE:
      seen.dones.push(message.batches);
      return { type: MessageType.DONE_ACK, pending: 0 };
    case MessageType.WINNERS_QUERY:
      return notReady.shift() ?? { type: MessageType.WINNERS, total: 0, last: true, documents: [] };
    case MessageType.TOTAL_QUERY:
      return { type: MessageType.TOTAL, winners: 0, pending: 0, retryAfterMs: 0 };
    default:
      return undefined;
  }
}

/**
 * One agency connection's server: WELCOME as told, every batch acknowledged, then the
 * NOT_READY replies given before the winners.
 */
function fakeServer(welcome: { nextSeq: number; done: boolean }, notReady: NotReady[]): FakeServer {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const seen = { seqs: [] as number[], dones: [] as number[] };
  const serve = async (): Promise<void> => {
    const raw = await listener.accept();
    listener.close();
    using conn = new FramedConnection(raw, { idleTimeoutMs: 5000 });
    await conn.expect(MessageType.HELLO);
    await conn.send({ type: MessageType.WELCOME, ...welcome });
    for (let message = await conn.read(); message !== null; message = await conn.read()) {
      const reply = answer(message, server, notReady);
      if (reply === undefined) break;
      await conn.send(reply);
    }
  };
  const server: FakeServer = { port: listener.addr.port, ...seen, finished: serve() };
  return server;
}

/**
 * An agency file of `bets` lines, sent in batches of 10, and the agency's configuration
 * as the program resolves it (every other setting at its default).
 */
async function withAgency(
  bets: number,
  port: number,
  fn: (config: AgencyConfig) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "agency_resume_test_" });
  try {
    const lines = Array.from({ length: bets }, (_, i) => `A${i},B,${1000 + i},1990-01-01,${i}\n`);
    const dataPath = join(dir, "agency-1.csv");
    await Deno.writeTextFile(dataPath, lines.join(""));
    const path = join(dir, "config.yaml");
    await Deno.writeTextFile(path, "batch:\n  maxAmount: 10\n");
    await fn(loadClientConfig({
      path,
      env: {
        CLI_ID: "1",
        CLI_SERVER_ADDRESS: `127.0.0.1:${port}`,
        CLI_DATA_PATH: dataPath,
        CLI_BATCH_WINDOW: "4",
        CLI_CONNECT_ATTEMPTS: "1",
      },
    }));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function options(log: ActionLogger) {
  return { log, signal: new AbortController().signal };
}

Deno.test("runAgency() resuming sends the last batch the server holds again, then the rest", async () => {
  const server = fakeServer({ nextSeq: 3, done: false }, []);
  await withAgency(55, server.port, async (config) => {
    const { log } = captureLogger();
    const result = await runAgency(config, options(log));
    assert.deepEqual(server.seqs, [2, 3, 4, 5], "batch 2 is the probe");
    assert.deepEqual(server.dones, [6]);
    assert.equal(result.betsSent, 25, "the probe's bets were sent before");
    assert.equal(result.batches, 6);
  });
  await server.finished;
});

Deno.test("runAgency() done on the server: only the probe goes, then the winners", async () => {
  const server = fakeServer({ nextSeq: 6, done: true }, []);
  await withAgency(60, server.port, async (config) => {
    const { log } = captureLogger();
    const result = await runAgency(config, options(log));
    assert.deepEqual(server.seqs, [5]);
    assert.deepEqual(server.dones, [], "no second DONE");
    assert.deepEqual(result.winners, []);
  });
  await server.finished;
});

Deno.test("runAgency() refuses to go on when the server holds other batches than its file makes", async (t) => {
  const cases: [string, { nextSeq: number; done: boolean }, number, RegExp][] = [
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
  for (const [name, welcome, bets, message] of cases) {
    await t.step(name, async () => {
      const server = fakeServer(welcome, []);
      await withAgency(bets, server.port, async (config) => {
        const { log } = captureLogger();
        await assert.rejects(() => runAgency(config, options(log)), (error: unknown) => {
          assert.ok(error instanceof ProtocolError);
          assert.equal(error.code, ErrorCode.CONFLICT);
          assert.match(error.message, message);
          return true;
        });
      });
      await server.finished;
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
  const server = fakeServer({ nextSeq: 0, done: false }, waiting);
  await withAgency(5, server.port, async (config) => {
    const { log, lines } = captureLogger();
    await runAgency(config, options(log));
    const waits = lines.filter((l) =>
      l.action === "consulta_ganadores" && l.result === "in_progress"
    );
    assert.deepEqual(waits.map((l) => [l.level, l.fields]), [
      ["INFO", { client_id: 1, agencias_pendientes: "2 4 5" }],
    ]);
  });
  await server.finished;
});
