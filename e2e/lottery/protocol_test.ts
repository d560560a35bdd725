import assert from "node:assert/strict";
import { LogAction } from "../../shared/log.ts";
import type { BetFields } from "../../shared/bet.ts";
import { ErrorCode } from "../../shared/errors.ts";
import { FramedConnection } from "../../shared/net/framed_conn.ts";
import { MessageType } from "../../shared/protocol/mod.ts";
import { COURSE_BET as GOOD } from "../../testing/course_data.ts";
import { parseLog, startClient, startServer, waitFor } from "./_harness.ts";

async function connect(port: number): Promise<FramedConnection> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  return new FramedConnection(conn, { idleTimeoutMs: 5000 });
}

async function hello(port: number, agency: number): Promise<FramedConnection> {
  const conn = await connect(port);
  await conn.send({ type: MessageType.HELLO, agency, secret: "" });
  await conn.expect(MessageType.WELCOME);
  return conn;
}

async function storedRows(dir: string): Promise<number> {
  const text = await Deno.readTextFile(`${dir}/bets.csv`).catch(() => "");
  return text.split("\r\n").length - 1;
}

Deno.test("server - winners query before the draw gets NOT_READY, never a partial list", async () => {
  await using server = await startServer({ agencies: 2, env: { SERVER_DRAW_WAIT: "50ms" } });
  using conn = await hello(server.port, 1);
  await conn.send({ type: MessageType.BATCH, agency: 1, seq: 0, bets: [GOOD] });
  assert.equal((await conn.expect(MessageType.BATCH_ACK)).status, 0);
  await conn.send({ type: MessageType.DONE, agency: 1, batches: 1 });
  assert.equal((await conn.expect(MessageType.DONE_ACK)).pending, 1);
  await conn.send({ type: MessageType.WINNERS_QUERY, agency: 1 });
  const reply = await conn.expect(MessageType.WINNERS, MessageType.NOT_READY);
  assert.equal(reply.type, MessageType.NOT_READY);
  assert.equal(reply.type === MessageType.NOT_READY && reply.pending, 1);
  await conn.send({ type: MessageType.TOTAL_QUERY });
  const total = await conn.expect(MessageType.TOTAL);
  assert.equal(total.pending, 1);
  assert.equal(total.winners, 1, "partial total counts stored winners");

  using other = await hello(server.port, 2);
  await other.send({ type: MessageType.DONE, agency: 2, batches: 0 });
  assert.equal((await other.expect(MessageType.DONE_ACK)).pending, 0);
  await conn.send({ type: MessageType.WINNERS_QUERY, agency: 1 });
  let answer = await conn.expect(MessageType.WINNERS, MessageType.NOT_READY);
  for (let i = 0; answer.type === MessageType.NOT_READY && i < 100; i++) {
    await new Promise((r) => setTimeout(r, 20));
    await conn.send({ type: MessageType.WINNERS_QUERY, agency: 1 });
    answer = await conn.expect(MessageType.WINNERS, MessageType.NOT_READY);
  }
  assert.deepEqual(answer, {
    type: MessageType.WINNERS,
    total: 1,
    last: true,
    documents: ["30904465"],
  });
  await other.send({ type: MessageType.WINNERS_QUERY, agency: 2 });
  assert.deepEqual((await other.expect(MessageType.WINNERS)).documents, []);
  await conn.send({ type: MessageType.BATCH, agency: 1, seq: 1, bets: [GOOD] });
  const late = await conn.expect(MessageType.BATCH_ACK);
  assert.equal(late.status, ErrorCode.DRAW_CLOSED, "bets after the draw are refused");
  assert.equal(await storedRows(server.dir), 1);
});

Deno.test("server - a malformed batch is refused whole, logged, and other agencies go on", async (t) => {
  await using server = await startServer({ agencies: 3 });
  const bad: Array<[string, Partial<BetFields>]> = [
    ["empty first name", { firstName: "" }],
    ["over-long last name", { lastName: "x".repeat(65) }],
    ["non-numeric DNI", { document: "30a04465" }],
    ["out-of-range DNI", { document: "123456789" }],
    ["impossible date", { birthdate: "2023-02-30" }],
    ["number over 9999", { number: 10000 }],
  ];
  using conn = await hello(server.port, 1);
  for (const [name, change] of bad) {
    await t.step(`${name} fails the whole batch with INVALID_BET`, async () => {
      await conn.send({
        type: MessageType.BATCH,
        agency: 1,
        seq: 0,
        bets: [GOOD, { ...GOOD, ...change }, GOOD],
      });
      const ack = await conn.expect(MessageType.BATCH_ACK);
      assert.equal(ack.status, ErrorCode.INVALID_BET);
      assert.equal(ack.count, 3);
      assert.match(ack.reason, /bet 2 of 3/);
      assert.equal(await storedRows(server.dir), 0);
    });
  }
  await t.step("a batch for another agency is refused with INVALID_AGENCY", async () => {
    await conn.send({ type: MessageType.BATCH, agency: 2, seq: 0, bets: [GOOD] });
    const error = await conn.read();
    assert.equal(error?.type, MessageType.ERROR);
    assert.equal(error?.type === MessageType.ERROR && error.code, ErrorCode.INVALID_AGENCY);
    assert.equal(await conn.read(), null, "the connection is closed");
  });
  await t.step("an agency id outside 1..N is refused at HELLO", async () => {
    using intruder = await connect(server.port);
    await intruder.send({ type: MessageType.HELLO, agency: 4, secret: "" });
    await assert.rejects(() => intruder.expect(MessageType.WELCOME), /expected an id from 1 to 3/);
  });
  await t.step("an unknown message type gets an error frame and a close", async () => {
    const raw = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    using framed = new FramedConnection(raw);
    await framed.send({ type: MessageType.HELLO, agency: 3, secret: "" });
    await framed.expect(MessageType.WELCOME);
    await framed.send(new Uint8Array([0xfb, 0x7f, 0, 0]));
    const error = await framed.read();
    assert.equal(error?.type === MessageType.ERROR && error.code, ErrorCode.UNEXPECTED_MESSAGE);
  });
  await t.step("another agency is served as usual", async () => {
    using ok = await hello(server.port, 2);
    await ok.send({ type: MessageType.BATCH, agency: 2, seq: 0, bets: [GOOD, GOOD] });
    assert.equal((await ok.expect(MessageType.BATCH_ACK)).status, 0);
    assert.equal(await storedRows(server.dir), 2);
  });
  const fails = parseLog(server.stdout()).filter((l) =>
    l.action === LogAction.APUESTA_RECIBIDA && l.result === "fail"
  );
  assert.equal(fails.length, bad.length);
  assert.ok(fails.every((l) => l.fields.get("cantidad") === "3"));
});

Deno.test("server - pipelined batches are acked in order, a refused one behind a pending one", async () => {
  await using server = await startServer({ agencies: 1 });
  using conn = await hello(server.port, 1);
  // All three leave before any ack: batch 1 is refused at once (a bad bet) while batch 0
  // still waits for its commit, and batch 2 then finds a gap where batch 1 should be.
  const sends = [
    conn.send({ type: MessageType.BATCH, agency: 1, seq: 0, bets: [GOOD, GOOD] }),
    conn.send({ type: MessageType.BATCH, agency: 1, seq: 1, bets: [{ ...GOOD, document: "x" }] }),
    conn.send({ type: MessageType.BATCH, agency: 1, seq: 2, bets: [GOOD] }),
  ];
  await Promise.all(sends);
  const acks = [];
  for (let i = 0; i < 3; i++) acks.push(await conn.expect(MessageType.BATCH_ACK));
  assert.deepEqual(
    acks.map((ack) => [ack.seq, ack.status, ack.count]),
    [[0, 0, 2], [1, ErrorCode.INVALID_BET, 1], [2, ErrorCode.OUT_OF_ORDER, 1]],
  );
  assert.equal(await storedRows(server.dir), 2);
});

Deno.test("server - a line over raw TCP is echoed unchanged, then the connection closed; garbage first bytes close at once", async () => {
  await using server = await startServer({ agencies: 1, env: { SERVER_IDLE_TIMEOUT: "10s" } });
  const line = "[CLIENT 1] Message N°1 | with a bar\n";
  {
    using conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    await conn.write(new TextEncoder().encode(line));
    const buf = new Uint8Array(1024);
    let got = "";
    while (!got.endsWith("\n")) {
      const n = await conn.read(buf);
      if (n === null) break;
      got += new TextDecoder().decode(buf.subarray(0, n));
    }
    assert.equal(got, line);
    // One message per connection, as the course's server: then the server closes.
    assert.equal(await conn.read(buf), null);
  }
  {
    using conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    const started = performance.now();
    await conn.write(new Uint8Array([0xff, 0xfe, 0x00, 0x01]));
    const n = await conn.read(new Uint8Array(16)).catch(() => null);
    assert.equal(n, null, "closed without a reply");
    assert.ok(performance.now() - started < 1000, "closed at once, not after the idle timeout");
  }
  // The line reaches the server's stdout pipe on its own time (from any session thread).
  const echoLine = () =>
    parseLog(server.stdout()).find((l) => l.action === LogAction.RECEIVE_MESSAGE);
  await waitFor(() => echoLine() !== undefined, 5000, "the echo's log line");
  const echoed = echoLine();
  assert.equal(echoed?.fields.get("msg"), "[CLIENT 1] Message N°1 ¦ with a bar");
});

/** What a real agency run on a file of its own did, against a fresh one-agency server. */
interface AgencyRun {
  readonly code: number;
  /** The agency's `agencia | result: fail` line, raw: the course's parser cuts at a colon. */
  readonly failure: string;
  /** Rows in `bets.csv` afterwards. */
  readonly stored: number;
  readonly serverLog: ReturnType<typeof parseLog>;
}

/** Runs `bin/client` as agency 1 in batches of 2 on a file holding `bytes`. */
async function runAgencyOn(bytes: Uint8Array): Promise<AgencyRun> {
  await using server = await startServer({ agencies: 1 });
  const dir = await Deno.makeTempDir({ prefix: "tp0-agency-file-" });
  try {
    const path = `${dir}/agency-1.csv`;
    await Deno.writeFile(path, bytes);
    const client = await startClient(1, server.port, {
      CLI_DATA_PATH: path,
      CLI_BATCH_MAXAMOUNT: "2",
    });
    const code = await client.status;
    const failure = client.stdout().split("\n").find((l) =>
      l.includes(`action: ${LogAction.AGENCIA}`)
    );
    return {
      code,
      failure: failure ?? `no agencia line; stderr: ${client.stderr()}`,
      stored: await storedRows(server.dir),
      serverLog: parseLog(server.stdout()),
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const GOOD_LINE = "Ana,Lorca,30904465,1999-03-17,7574\r\n";

Deno.test("agency - a bad line in its file: the batch is refused, the agency names the lines and exits 1", async () => {
  // Batches of 2: lines 1-2 are stored, lines 3-5 (a blank one among them) are refused.
  const text = `${GOOD_LINE.repeat(3)}\r\nAna,Lorca,1,2023-02-30,5\r\n${GOOD_LINE}`;
  const run = await runAgencyOn(new TextEncoder().encode(text));
  assert.equal(run.code, 1, run.failure);
  assert.match(
    run.failure,
    /result: fail \| client_id: 1 \| error: INVALID_BET꞉ Batch 1 \(2 bets, .+agency-1\.csv lines 3-5\) was refused꞉ Invalid bet 2 of 2꞉ birthdate/,
  );
  assert.equal(run.stored, 2);
});

Deno.test("agency - a file saved as Latin-1: the batch is refused as not UTF-8, naming its lines", async () => {
  // "José Pérez" as a Windows editor saves it in Latin-1: one byte per character, é is 0xE9.
  const text = `${GOOD_LINE.repeat(3)}José Pérez,Lorca,1,1999-03-17,5\r\n`;
  const run = await runAgencyOn(Uint8Array.from(text, (c) => c.charCodeAt(0)));
  assert.equal(run.code, 1, run.failure);
  assert.match(
    run.failure,
    /error: INVALID_BET꞉ Batch 1 \(2 bets, .+agency-1\.csv lines 3-4\) was refused꞉ Invalid bet 2 of 2꞉ not UTF-8 text/,
  );
  assert.equal(run.stored, 2);
  assert.ok(
    run.serverLog.some((l) =>
      l.action === LogAction.APUESTA_RECIBIDA && l.result === "fail" &&
      l.fields.get("cantidad") === "2"
    ),
    "the server logs the refused batch",
  );
  assert.ok(
    !run.serverLog.some((l) => l.action === LogAction.RECEIVE_MESSAGE && l.result === "fail"),
    "and no protocol error",
  );
});
