import assert from "node:assert/strict";
import { join } from "node:path";
import type { BetFields } from "../shared/bet.ts";
import { concatBytes } from "../shared/bytes.ts";
import { ErrorCode, ProtocolError, StorageError } from "../shared/errors.ts";
import { type ActionLogger, formatAction } from "../shared/log.ts";
import { type ByteStream, FramedConnection } from "../shared/net/framed_conn.ts";
import { encodeMessage, type Message, MessageType } from "../shared/protocol/mod.ts";
import { collectWinners, Lottery } from "./draw.ts";
import { serveAgency, type SessionContext, sessionContext, wireError } from "./session.ts";
import { BetStore } from "./storage.ts";

function bet(i: number, number = i): BetFields {
  return {
    firstName: `Nombre${i}`,
    lastName: "Apellido",
    document: String(20_000_000 + i),
    birthdate: "1990-05-17",
    number,
  };
}

function bets(from: number, count: number): BetFields[] {
  return Array.from({ length: count }, (_, i) => bet(from + i));
}

function batch(agency: number, seq: number, list: BetFields[]): Uint8Array {
  return encodeMessage({ type: MessageType.BATCH, agency, seq, bets: list });
}

/** An action logger that keeps its lines. */
function recordingLog(): ActionLogger & { readonly lines: string[] } {
  const lines: string[] = [];
  const at = (level: string) =>
  (
    action: string,
    result: "success" | "fail" | "in_progress",
    fields?: Record<string, string | number | bigint | boolean>,
  ) => {
    lines.push(`${level} ${formatAction(action, result, fields)}`);
  };
  return {
    lines,
    debug: at("DEBUG"),
    info: at("INFO"),
    warning: at("WARNING"),
    error: at("ERROR"),
    critical: at("CRITICAL"),
  };
}

interface Harness {
  readonly ctx: SessionContext;
  readonly log: ReturnType<typeof recordingLog>;
  readonly store: BetStore;
  /** A connection to a session, HELLO sent as `agency`, WELCOME read. */
  hello(agency: number): Promise<{ conn: FramedConnection; welcome: Message }>;
}

/** A store, a lottery and sessions served on a loopback listener, all closed afterwards. */
async function withSessions(
  options: { agencies: number; excluded?: number[] },
  fn: (harness: Harness) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "session_test_" });
  const store = await BetStore.open({ path: join(dir, "bets.csv"), agencies: options.agencies });
  for (const agency of options.excluded ?? []) await store.exclude(agency);
  const counted = Array.from({ length: options.agencies }, (_, i) => i + 1)
    .filter((id) => !(options.excluded ?? []).includes(id));
  const lottery = new Lottery({
    agencies: counted,
    draw: () => collectWinners(store.loadBets(7574), new Set(counted)),
  });
  const log = recordingLog();
  const ctx: SessionContext = {
    agencies: options.agencies,
    drawWaitMs: 20,
    store,
    lottery,
    log,
    closing: () => false,
    secrets: new Map(),
    troubled: new Set(),
  };
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const sessions: Promise<void>[] = [];
  const clients: FramedConnection[] = [];
  const accepting = (async () => {
    for await (const conn of listener) {
      const framed = new FramedConnection(conn as ByteStream, { idleTimeoutMs: 5000 });
      sessions.push(serveAgency(framed, "127.0.0.1", ctx).finally(() => framed.close()));
    }
  })();
  const hello = async (agency: number) => {
    const raw = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
    const conn = new FramedConnection(raw as ByteStream, { idleTimeoutMs: 5000 });
    clients.push(conn);
    await conn.send({ type: MessageType.HELLO, agency, secret: "" });
    return { conn, welcome: (await conn.read())! };
  };
  try {
    await fn({ ctx, log, store, hello });
  } finally {
    for (const conn of clients) conn.close();
    listener.close();
    await accepting.catch(() => {});
    await Promise.allSettled(sessions);
    lottery.close();
    await lottery.whenDrawn()?.catch(() => {});
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
}

async function acks(conn: FramedConnection, n: number): Promise<[number, number, string][]> {
  const out: [number, number, string][] = [];
  for (let i = 0; i < n; i++) {
    const ack = await conn.expect(MessageType.BATCH_ACK);
    out.push([ack.seq, ack.status, ack.reason]);
  }
  return out;
}

function linesOf(log: { lines: readonly string[] }, action: string): string[] {
  return log.lines.filter((l) => l.includes(`action: ${action} |`));
}

Deno.test("serveAgency() acks pipelined batches in order as the store says they are durable", async () => {
  await withSessions({ agencies: 2 }, async ({ hello, store, log }) => {
    const { conn, welcome } = await hello(1);
    assert.deepEqual(welcome, { type: MessageType.WELCOME, nextSeq: 0, done: false });
    await conn.send(concatBytes([0, 1, 2, 3].map((seq) => batch(1, seq, bets(seq * 10, 10)))));
    assert.deepEqual(await acks(conn, 4), [[0, 0, ""], [1, 0, ""], [2, 0, ""], [3, 0, ""]]);
    assert.deepEqual(store.progress(1), { nextSeq: 4, done: false, excluded: false });
    assert.equal(linesOf(log, "apuesta_recibida").length, 4);
    const again = await hello(1);
    assert.deepEqual(again.welcome, { type: MessageType.WELCOME, nextSeq: 4, done: false });
  });
});

Deno.test("serveAgency() acknowledges a retry of the same bets without storing it again", async () => {
  await withSessions({ agencies: 1 }, async ({ hello, store, log }) => {
    const { conn } = await hello(1);
    await conn.send(batch(1, 0, bets(0, 5)));
    await acks(conn, 1);
    // The same batch again, and the next one behind it in the same write.
    await conn.send(concatBytes([batch(1, 0, bets(0, 5)), batch(1, 1, bets(5, 5))]));
    assert.deepEqual(await acks(conn, 2), [[0, 0, ""], [1, 0, ""]]);
    assert.deepEqual(store.stats, { bets: 10, batches: 2, winners: 0 });
    assert.equal(linesOf(log, "apuesta_recibida").length, 2, "a retry is not received bets");
    assert.deepEqual(linesOf(log, "lote_reenviado"), [
      "INFO action: lote_reenviado | result: success | agency: 1 | seq: 0 | cantidad: 5 | detail: sent again, the same bets as stored",
    ]);
  });
});

Deno.test("serveAgency() refuses a retry of other bets with CONFLICT, and the batches behind it", async () => {
  await withSessions({ agencies: 2 }, async ({ hello, store, log, ctx }) => {
    const { conn } = await hello(2);
    await conn.send(concatBytes([batch(2, 0, bets(0, 1)), batch(2, 1, bets(1, 1))]));
    await acks(conn, 2);
    // Another process's data: batch 1 differs, batch 2 would be new.
    const other = await hello(2);
    await other.conn.send(concatBytes([
      batch(2, 1, bets(100, 3)),
      batch(2, 2, bets(103, 3)),
      batch(2, 3, bets(106, 3)),
    ]));
    const refused = await acks(other.conn, 3);
    assert.deepEqual(refused.map(([seq, status]) => [seq, status]), [
      [1, ErrorCode.CONFLICT],
      [2, ErrorCode.CONFLICT],
      [3, ErrorCode.CONFLICT],
    ]);
    assert.match(
      refused[0]![2],
      /^Batch 1 of agency 2 is not the batch stored under that sequence \(1 bet stored, 3 sent\)/,
    );
    await other.conn.send({ type: MessageType.DONE, agency: 2, batches: 4 });
    const error = await other.conn.read();
    assert.equal(error?.type === MessageType.ERROR && error.code, ErrorCode.CONFLICT);
    assert.deepEqual(store.progress(2), { nextSeq: 2, done: false, excluded: false });
    assert.equal(store.stats.bets, 2, "nothing of the other data stored");
    const fails = linesOf(log, "apuesta_recibida").filter((l) => l.includes("result: fail"));
    assert.equal(fails.length, 2, fails.join("\n"));
    assert.match(
      fails[0]!,
      /^ERROR .*cantidad: 3 \| agency: 2 \| seq: 1 \| error: CONFLICT \| detail: Batch 1/,
    );
    assert.equal(
      fails[1],
      "WARNING action: apuesta_recibida | result: fail | cantidad: 6 | agency: 2 | lotes: 2 | desde_lote: 2 | hasta_lote: 3 | error: CONFLICT | detail: refused behind batch 1, summarized in this one line",
    );
    assert.deepEqual([...ctx.troubled], [2]);
  });
});

Deno.test("serveAgency() sums up in one line the pipelined batches refused behind a bad one", async () => {
  await withSessions({ agencies: 1 }, async ({ hello, log, ctx }) => {
    const { conn } = await hello(1);
    const frames = [batch(1, 0, bets(0, 2)), batch(1, 1, [{ ...bet(2), document: "x" }])];
    for (let seq = 2; seq < 10; seq++) frames.push(batch(1, seq, bets(seq * 2, 2)));
    await conn.send(concatBytes(frames));
    const all = await acks(conn, 10);
    assert.deepEqual(all.map(([seq, status]) => status === 0 ? seq : -status), [
      0,
      -ErrorCode.INVALID_BET,
      ...Array(8).fill(-ErrorCode.OUT_OF_ORDER),
    ]);
    assert.deepEqual([...ctx.troubled], [1]);
    // The agency fixes its file and sends batch 1 again: stored, the summary is said.
    await conn.send(batch(1, 1, bets(2, 2)));
    await acks(conn, 1);
    const fails = linesOf(log, "apuesta_recibida").filter((l) => l.includes("result: fail"));
    assert.equal(fails.length, 2);
    assert.match(
      fails[0]!,
      /^ERROR .*\| seq: 1 \| error: INVALID_BET \| detail: Invalid bet 1 of 1/,
    );
    assert.equal(
      fails[1],
      "WARNING action: apuesta_recibida | result: fail | cantidad: 16 | agency: 1 | lotes: 8 | desde_lote: 2 | hasta_lote: 9 | error: OUT_OF_ORDER | detail: refused behind batch 1, summarized in this one line",
    );
    assert.deepEqual([...ctx.troubled], [], "a stored batch takes the agency out of trouble");
  });
});

Deno.test("serveAgency() refuses a batch of no bets as MALFORMED, taking no sequence", async () => {
  await withSessions({ agencies: 4 }, async ({ hello, store }) => {
    const { conn } = await hello(4);
    await conn.send(new Uint8Array([0xfb, MessageType.BATCH, 0, 8, 0, 4, 0, 0, 0, 0, 0, 0]));
    const reply = await conn.read();
    assert.equal(reply?.type === MessageType.ERROR && reply.code, ErrorCode.MALFORMED);
    assert.equal(await conn.read().catch(() => null), null);
    assert.deepEqual(store.progress(4), { nextSeq: 0, done: false, excluded: false });
  });
});

Deno.test("serveAgency() refuses an agency the operator left out of the draw", async () => {
  await withSessions({ agencies: 3, excluded: [2] }, async ({ hello, ctx }) => {
    const { welcome } = await hello(2);
    assert.equal(welcome.type, MessageType.ERROR);
    assert.equal(welcome.type === MessageType.ERROR && welcome.code, ErrorCode.INVALID_AGENCY);
    assert.equal(
      welcome.type === MessageType.ERROR && welcome.message,
      "Agency 2 was left out of this draw by the operator (SERVER_EXCLUDED_AGENCIES)",
    );
    assert.equal(ctx.lottery.pending, 2);
  });
});

Deno.test("serveAgency() answers a winners query before the draw with the pending agencies' ids", async () => {
  await withSessions({ agencies: 5, excluded: [4] }, async ({ hello }) => {
    const { conn } = await hello(3);
    await conn.send({ type: MessageType.DONE, agency: 3, batches: 0 });
    assert.deepEqual(await conn.read(), { type: MessageType.DONE_ACK, pending: 3 });
    await conn.send({ type: MessageType.WINNERS_QUERY, agency: 3 });
    assert.deepEqual(await conn.read(), {
      type: MessageType.NOT_READY,
      pending: 3,
      retryAfterMs: 0,
      pendingAgencies: [1, 2, 5],
    });
  });
});

Deno.test("wireError() maps each kind of storage failure to its wire code, keeping the message", async (t) => {
  const cases = [
    ["damaged", ErrorCode.STORAGE_FAILED],
    ["failed", ErrorCode.STORAGE_FAILED],
    ["busy", ErrorCode.STORAGE_FAILED],
    ["notStored", ErrorCode.STORAGE_FAILED],
    ["conflict", ErrorCode.CONFLICT],
    ["closed", ErrorCode.SHUTTING_DOWN],
    ["unknownAgency", ErrorCode.INVALID_AGENCY],
    ["excluded", ErrorCode.INVALID_AGENCY],
    ["outOfOrder", ErrorCode.OUT_OF_ORDER],
    ["afterDone", ErrorCode.UNEXPECTED_MESSAGE],
  ] as const;
  for (const [kind, code] of cases) {
    await t.step(kind, () => {
      const cause = new StorageError("bets.csv", `Storage says ${kind}`, { kind });
      const wire = wireError(cause);
      assert.ok(wire instanceof ProtocolError);
      assert.equal(wire.code, code);
      assert.equal(wire.message, `Storage says ${kind}`);
      assert.equal(wire.cause, cause);
    });
  }
  await t.step("anything else as it is", () => {
    const other = new TypeError("x");
    assert.equal(wireError(other), other);
  });
});

Deno.test("sessionContext() takes the agency count and draw wait from the settings, the rest as given", () => {
  const parts = {
    store: {} as SessionContext["store"],
    lottery: {} as SessionContext["lottery"],
    log: {} as ActionLogger,
    secrets: new Map([[1, "s"]]),
    closing: () => true,
    troubled: new Set<number>(),
  };
  const ctx = sessionContext({ agencies: 5, drawWait: { ms: 1500 } }, parts);
  assert.equal(ctx.agencies, 5);
  assert.equal(ctx.drawWaitMs, 1500);
  assert.equal(ctx.store, parts.store);
  assert.equal(ctx.secrets, parts.secrets);
  assert.equal(ctx.closing, parts.closing);
  assert.equal(ctx.troubled, parts.troubled);
});
