import assert from "node:assert/strict";
import { ErrorCode } from "../../shared/errors.ts";
import { FramedConnection } from "../../shared/net/framed_conn.ts";
import { encodeMessage, MessageType } from "../../shared/protocol/mod.ts";
import { parseLog, startClient, startServer, waitFor } from "../lottery/_harness.ts";
import {
  accepted,
  account,
  agencyFiles,
  closeAll,
  connections,
  connectRaw,
  delay,
  expectedRows,
  GOOD_BET,
  helloRaw,
  memoryOf,
  openFileLimit,
  reportAccounted,
  reportNoBets,
} from "./_faults.ts";

/** Reads until the peer closes (EOF or reset); resolves with the time it took. */
async function timeToClose(conn: Deno.Conn, limitMs: number): Promise<number> {
  const started = performance.now();
  const buf = new Uint8Array(1024);
  const deadline = setTimeout(() => conn.close(), limitMs);
  try {
    for (;;) {
      const n = await conn.read(buf).catch(() => null);
      if (n === null) break;
    }
  } finally {
    clearTimeout(deadline);
  }
  return performance.now() - started;
}

/** Sends `bytes` one per `periodMs` until the peer closes or `bytes` run out. */
async function trickle(conn: Deno.Conn, bytes: Uint8Array, periodMs: number): Promise<number> {
  let sent = 0;
  for (const byte of bytes) {
    try {
      await conn.write(new Uint8Array([byte]));
    } catch {
      break;
    }
    sent++;
    await delay(periodMs);
  }
  return sent;
}

Deno.test("server - a slow-loris peer (1 byte per second) is dropped after the idle timeout, an echo answered at its first pause", async () => {
  const idleMs = 2000;
  await using server = await startServer({
    agencies: 1,
    env: { SERVER_IDLE_TIMEOUT: `${idleMs}ms` },
  });
  const batch = encodeMessage({
    type: MessageType.BATCH,
    agency: 1,
    seq: 0,
    bets: [GOOD_BET, GOOD_BET],
  });
  const hello = encodeMessage({ type: MessageType.HELLO, agency: 1, secret: "" });
  const open = () => Deno.connect({ hostname: "127.0.0.1", port: server.port });
  const [binary, afterHello, echo, silent] = await Promise.all([open(), open(), open(), open()]);
  try {
    await afterHello.write(hello);
    type Scenario = { what: string; closedMs: number; sent: number; answered?: boolean };
    const scenarios: Scenario[] = await Promise.all([
      // A frame trickled from its first byte (the sniffing read gets one byte).
      (async () => {
        const closed = timeToClose(binary, 10_000);
        const sent = trickle(binary, batch, 1000);
        return { what: "binary frame", closedMs: await closed, sent: await sent };
      })(),
      // A frame trickled after a proper HELLO.
      (async () => {
        const closed = timeToClose(afterHello, 10_000);
        const sent = trickle(afterHello, batch, 1000);
        return { what: "frame after HELLO", closedMs: await closed, sent: await sent };
      })(),
      // An echo line trickled without its newline: the first pause ends the message.
      (async () => {
        const closed = timeToClose(echo, 10_000);
        const sent = trickle(echo, new TextEncoder().encode("x".repeat(60)), 1000);
        return { what: "echo line", closedMs: await closed, sent: await sent, answered: true };
      })(),
      // Nothing at all.
      (async () => ({ what: "silence", closedMs: await timeToClose(silent, 10_000), sent: 0 }))(),
    ]);
    for (const { what, closedMs, sent, answered } of scenarios) {
      if (answered) {
        // Answered ("x\n") and closed for sending at once: a trickle holds no echo open.
        assert.ok(closedMs < idleMs, `${what}: closed after ${closedMs.toFixed(0)} ms`);
        assert.ok(sent < 10, `${what}: dropped after ${sent} bytes`);
        continue;
      }
      assert.ok(
        closedMs >= idleMs * 0.9 && closedMs < 3 * idleMs,
        `${what}: dropped after ${closedMs.toFixed(0)} ms (idle timeout ${idleMs} ms)`,
      );
      assert.ok(sent < 10, `${what}: dropped after ${sent} bytes`);
    }
    const timeouts = parseLog(server.stdout()).filter((l) => l.action === "idle_timeout");
    assert.ok(timeouts.length >= 2, "the protocol timeouts are logged");
    assert.ok(timeouts.every((l) => l.result === "fail"));
    // The server still serves agencies.
    const { conn } = await helloRaw(server.port, 1);
    conn.close();
    await reportNoBets("slow-loris peers (1 byte/s), idle timeout 2s", scenarios.length);
  } finally {
    closeAll([binary, afterHello, echo, silent]);
  }
});

Deno.test("server - 1,000 idle connections do not stop 5 real agencies", async () => {
  const idle = 1000;
  const limit = openFileLimit();
  assert.ok(
    limit === undefined || limit >= idle + 500,
    `ulimit -n is ${limit}: raise it to run ${idle} connections`,
  );
  const data = await Deno.makeTempDir({ prefix: "tp0-idle-" });
  const conns: Deno.Conn[] = [];
  try {
    const paths = await agencyFiles(data, { agencies: 5, bets: 2000, seed: 21, winners: 0.01 });
    await using server = await startServer({
      agencies: 5,
      env: { SERVER_IDLE_TIMEOUT: "120s", SERVER_PROGRESS_INTERVAL: "200ms" },
    });
    const hello = encodeMessage({ type: MessageType.HELLO, agency: 1, secret: "" });
    for (let i = 0; i < idle; i++) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
      conns.push(conn);
      // A third say nothing, a third open a session and go quiet, a third stop mid-frame.
      if (i % 3 === 1) await conn.write(hello);
      else if (i % 3 === 2) await conn.write(hello.subarray(0, 3));
    }
    await waitFor(
      () => connections(server) >= idle,
      20_000,
      "the server to hold the idle connections",
    );
    const started = performance.now();
    const clients = await Promise.all(
      paths.map((path, i) => startClient(i + 1, server.port, { CLI_DATA_PATH: path })),
    );
    const codes = await Promise.all(clients.map((c) => c.status));
    const elapsed = performance.now() - started;
    codes.forEach((code, i) => assert.equal(code, 0, `agency ${i + 1}: ${clients[i]!.stdout()}`));
    assert.ok(connections(server) >= idle, "the idle connections were still open meanwhile");
    const memory = memoryOf(server.pid);
    assert.ok(memory === undefined || memory.peakMiB < 512, `peak RSS ${memory?.peakMiB} MiB`);
    const { code } = await server.stop("SIGTERM");
    assert.equal(code, 0);
    const result = await account(`${server.dir}/bets.csv`, await expectedRows(paths));
    assert.equal(result.lost, 0);
    assert.equal(result.duplicated, 0);
    await reportAccounted(
      `${idle} idle connections + 5 agencies`,
      idle,
      result,
      `agencies done in ${(elapsed / 1000).toFixed(1)} s`,
    );
  } finally {
    closeAll(conns);
    await Deno.remove(data, { recursive: true });
  }
});

Deno.test("server - connections over SERVER_MAX_CONNECTIONS get LIMIT_EXCEEDED, a retry hint and a close", async () => {
  const max = 50;
  const over = 10;
  const idleMs = 60_000;
  await using server = await startServer({
    agencies: 2,
    env: { SERVER_MAX_CONNECTIONS: String(max), SERVER_IDLE_TIMEOUT: `${idleMs}ms` },
  });
  const held: Deno.Conn[] = [];
  try {
    const floodStart = performance.now();
    let firstConnected = 0;
    for (let i = 0; i < max; i++) {
      held.push(await Deno.connect({ hostname: "127.0.0.1", port: server.port }));
      firstConnected ||= performance.now();
    }
    await waitFor(
      () => accepted(server) >= max,
      10_000,
      "the server to accept the first connections",
    );
    for (let i = 0; i < over; i++) {
      const asked = performance.now();
      const raw = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
      using conn = new FramedConnection(raw, { idleTimeoutMs: 5000 });
      const reply = await conn.read();
      const answered = performance.now();
      assert.equal(reply?.type, MessageType.ERROR, "an error frame");
      assert.equal(reply?.type === MessageType.ERROR && reply.code, ErrorCode.LIMIT_EXCEEDED);
      // The hint: when the oldest held connection, silent since its accept, times out.
      const hint = reply?.type === MessageType.ERROR ? reply.retryAfterMs : -1;
      const earliest = idleMs - (answered - floodStart);
      const latest = idleMs - (asked - firstConnected);
      assert.ok(
        hint >= earliest - 250 && hint <= latest + 250,
        `retry hint ${hint} ms, expected ${earliest.toFixed(0)}..${latest.toFixed(0)}`,
      );
      assert.equal(await conn.read().catch(() => null), null, "then a close");
    }
    const refused = parseLog(server.stdout()).filter((l) =>
      l.action === "accept_connections" && l.result === "fail" &&
      l.fields.get("error") === "LIMIT_EXCEEDED"
    );
    assert.equal(refused.length, over);
    for (const conn of held.splice(0)) conn.close();
    // Once the idle peers are gone, agencies get in again.
    let welcomed = false;
    for (let attempt = 0; attempt < 50 && !welcomed; attempt++) {
      try {
        const { conn } = await helloRaw(server.port, 1);
        conn.close();
        welcomed = true;
      } catch {
        await delay(100);
      }
    }
    assert.ok(welcomed, "an agency is served after the flood");
    await reportNoBets(`connections over the limit (${max})`, over);
  } finally {
    for (const conn of held) conn.close();
  }
});

Deno.test("server - agency ids outside 1..SERVER_AGENCIES are refused", async (t) => {
  await using server = await startServer({ agencies: 3 });
  for (const agency of [0, 4, 5, 65535]) {
    await t.step(`HELLO as agency ${agency} gets INVALID_AGENCY and a close`, async () => {
      using conn = await connectRaw(server.port);
      await conn.send({ type: MessageType.HELLO, agency, secret: "" });
      const reply = await conn.read();
      assert.equal(reply?.type === MessageType.ERROR && reply.code, ErrorCode.INVALID_AGENCY);
      assert.match(reply?.type === MessageType.ERROR ? reply.message : "", /from 1 to 3/);
      assert.equal(await conn.read().catch(() => null), null);
    });
  }
  await t.step("bin/client as agency 4 fails with INVALID_AGENCY", async () => {
    const data = await Deno.makeTempFile({ suffix: ".csv" });
    try {
      await Deno.writeTextFile(data, "Ana,Paz,12345678,1990-01-01,7574\r\n");
      const client = await startClient(4, server.port, {
        CLI_DATA_PATH: data,
        CLI_CONNECT_ATTEMPTS: "1",
      });
      assert.notEqual(await client.status, 0);
      assert.match(client.stdout(), /action: agencia \| result: fail \|.*INVALID_AGENCY/);
    } finally {
      await Deno.remove(data);
    }
  });
  await t.step("agencies 1..3 are served", async () => {
    for (const agency of [1, 2, 3]) (await helloRaw(server.port, agency)).conn.close();
  });
  const refusals = parseLog(server.stdout()).filter((l) =>
    l.action === "receive_message" && l.result === "fail" &&
    l.fields.get("error") === "INVALID_AGENCY"
  );
  assert.equal(refusals.length, 5);
});

Deno.test("server - a peer that never reads its replies is dropped after the idle timeout", async () => {
  const idleMs = 2000;
  await using server = await startServer({
    agencies: 1,
    env: { SERVER_IDLE_TIMEOUT: `${idleMs}ms`, SERVER_PROGRESS_INTERVAL: "100ms" },
  });
  // 400 winners: every WINNERS reply is about 4 KB.
  const { conn } = await helloRaw(server.port, 1);
  const bets = Array.from({ length: 100 }, (_, i) => ({ ...GOOD_BET, document: String(i + 1) }));
  for (let seq = 0; seq < 4; seq++) {
    await conn.send({ type: MessageType.BATCH, agency: 1, seq, bets });
    await conn.expect(MessageType.BATCH_ACK);
  }
  await conn.send({ type: MessageType.DONE, agency: 1, batches: 4 });
  await conn.expect(MessageType.DONE_ACK);
  // Ask for the winners 20,000 times (80 MB of replies) and read none of them.
  const query = encodeMessage({ type: MessageType.WINNERS_QUERY, agency: 1 });
  const queries = new Uint8Array(query.length * 20_000);
  for (let i = 0; i < 20_000; i++) queries.set(query, i * query.length);
  const writing = conn.send(queries).catch(() => {});
  // After the draw the progress line is quiet: the drop is seen in its own line.
  const dropped = () => parseLog(server.stdout()).some((l) => l.action === "idle_timeout");
  try {
    await waitFor(dropped, idleMs + 8000, "the server to drop the peer");
  } finally {
    conn.close();
    await writing;
  }
  assert.match(server.stdout(), /idle_timeout \| result: fail .*read nothing for 2000 ms/);
  const memory = memoryOf(server.pid);
  assert.ok(memory === undefined || memory.peakMiB < 400, `peak RSS ${memory?.peakMiB} MiB`);
  // The server still serves the agency.
  const again = await helloRaw(server.port, 1);
  assert.equal(again.done, true);
  again.conn.close();
  await reportNoBets("peer that never reads its replies (80 MB asked)", 1);
});

Deno.test("client - agencies refused over the connection limit wait as hinted and finish once it clears", async () => {
  const max = 60;
  const idleMs = 3000;
  const data = await Deno.makeTempDir({ prefix: "tp0-limit-clients-" });
  const held: Deno.Conn[] = [];
  try {
    const paths = await agencyFiles(data, { agencies: 2, bets: 1000, seed: 61, winners: 0.01 });
    await using server = await startServer({
      agencies: 2,
      env: { SERVER_MAX_CONNECTIONS: String(max), SERVER_IDLE_TIMEOUT: `${idleMs}ms` },
    });
    for (let i = 0; i < max; i++) {
      held.push(await Deno.connect({ hostname: "127.0.0.1", port: server.port }));
    }
    await waitFor(() => accepted(server) >= max, 10_000, "the flood to fill the server");
    const clients = await Promise.all(paths.map((path, i) =>
      startClient(i + 1, server.port, {
        CLI_DATA_PATH: path,
        CLI_CONNECT_ATTEMPTS: "2",
        CLI_CONNECT_BACKOFF: "100ms",
      })
    ));
    const refused = () =>
      parseLog(server.stdout()).filter((l) =>
        l.action === "accept_connections" && l.fields.get("error") === "LIMIT_EXCEEDED"
      ).length;
    await waitFor(() => refused() >= 2, 10_000, "the agencies to be refused");
    for (const conn of held.splice(0)) conn.close();
    const codes = await Promise.all(clients.map((c) => c.status));
    codes.forEach((code, i) => assert.equal(code, 0, `agency ${i + 1}: ${clients[i]!.stdout()}`));
    for (const client of clients) {
      // The wait is the server's hint (at most the idle timeout) plus up to a fifth.
      const waits = [
        ...client.stdout().matchAll(
          /reconexion \| result: in_progress .*\| retry_in_ms: (\d+) \| detail: LIMIT_EXCEEDED/g,
        ),
      ].map((match) => Number(match[1]));
      assert.ok(waits.length >= 1, client.stdout());
      for (const ms of waits) assert.ok(ms >= 250 && ms <= idleMs * 1.2, `waited ${ms} ms`);
    }
    assert.equal((await server.stop("SIGTERM")).code, 0);
    const result = await account(`${server.dir}/bets.csv`, await expectedRows(paths));
    assert.equal(result.lost, 0);
    assert.equal(result.duplicated, 0);
    await reportAccounted(
      `agencies refused over the connection limit (${max}), then admitted`,
      refused(),
      result,
    );
  } finally {
    for (const conn of held) conn.close();
    await Deno.remove(data, { recursive: true });
  }
});
