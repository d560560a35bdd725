import assert from "node:assert/strict";
import { ErrorCode } from "../../shared/errors.ts";
import { Random } from "../../testing/random.ts";
import { fuzzFrame } from "../../testing/fuzz.ts";
import type { Message } from "../../shared/protocol/mod.ts";
import {
  decodeMessage,
  encodeMessage,
  FrameDecoder,
  MessageType,
} from "../../shared/protocol/mod.ts";
import { parseLog, readRows, startClient, startServer } from "../lottery/_harness.ts";
import {
  account,
  agencyFiles,
  delay,
  expectedWinners,
  helloRaw,
  memoryOf,
  reportAccounted,
  reportNoBets,
} from "./_faults.ts";
import { concatBytes } from "../../shared/bytes.ts";

/** Change it to explore other cases; a failure names the case to replay. */
const SEED = 0x5eed_0006;
const CASES = 5000;
const CONCURRENCY = 16;
/** Well under the server's idle timeout: a close must never wait for the timeout. */
const CLOSE_LIMIT_MS = 5000;

/** Message types that name an agency, which must be the session's. */
const AGENCY_TYPES: ReadonlySet<number> = new Set([
  MessageType.BATCH,
  MessageType.DONE,
  MessageType.WINNERS_QUERY,
]);

/** What the peer saw: the server's frames (until one failed to decode) and how it ended. */
interface Seen {
  readonly messages: Message[];
  /** Raw bytes that were not frames (e.g. an echo). */
  readonly other: number;
  /** Milliseconds from the last write to the close. */
  readonly closedMs: number;
  /** Whether the connection ended (EOF or reset) before the limit. */
  readonly closed: boolean;
}

/** Sends `bytes`, half-closes, and reads everything until the server closes. */
async function exchange(port: number, bytes: Uint8Array): Promise<Seen> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(bytes).catch(() => 0);
    await conn.closeWrite().catch(() => {});
    const started = performance.now();
    let closed = false;
    const limit = setTimeout(() => conn.close(), CLOSE_LIMIT_MS);
    const received: number[] = [];
    const buf = new Uint8Array(16_384);
    try {
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) break;
        received.push(...buf.subarray(0, n));
      }
      closed = true;
    } catch (error) {
      // A reset is a close; a read failing because the limit closed the socket is not.
      closed = !(error instanceof Deno.errors.BadResource);
    } finally {
      clearTimeout(limit);
    }
    const closedMs = performance.now() - started;
    const messages: Message[] = [];
    const decoder = new FrameDecoder();
    let other = 0;
    try {
      decoder.push(new Uint8Array(received));
      for (let frame = decoder.next(); frame; frame = decoder.next()) {
        messages.push(decodeMessage(frame.type, frame.body));
      }
    } catch {
      other = received.length;
    }
    return { messages, other, closedMs, closed };
  } finally {
    try {
      conn.close();
    } catch {
      // Closed by the limit.
    }
  }
}

Deno.test("server - 5,000 hostile connections: an error frame or a close, never a hang or a crash", async () => {
  const data = await Deno.makeTempDir({ prefix: "tp0-hostile-" });
  try {
    await using server = await startServer({
      agencies: 4,
      env: { SERVER_IDLE_TIMEOUT: "10s", SERVER_DRAW_WAIT: "100ms" },
    });
    const counts = { errorFrame: 0, closedSilently: 0, expectedCode: 0, expectedCodeCases: 0 };
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < CASES) {
        const i = next++;
        const random = new Random(SEED + i);
        // Agencies 1..3 take the abuse (with a few invalid ids); agency 4 stays clean.
        const hello = random.chance(0.6)
          ? encodeMessage({
            type: MessageType.HELLO,
            agency: random.chance(0.9) ? random.int(1, 3) : random.pick([0, 5, 65535]),
            secret: "",
          })
          : undefined;
        const fuzz = fuzzFrame(random);
        const bytes = hello ? concatBytes([hello, fuzz.bytes]) : fuzz.bytes;
        const seen = await exchange(server.port, bytes);
        const where = `case ${i} (seed ${SEED + i}) ${fuzz.mutation}`;
        assert.ok(seen.closed, `${where}: closed within ${CLOSE_LIMIT_MS} ms`);
        const errors = seen.messages.filter((m) => m.type === MessageType.ERROR);
        if (errors.length > 0) counts.errorFrame++;
        else counts.closedSilently++;
        assert.ok(errors.length <= 1, `${where}: at most one error frame, then a close`);
        if (
          hello && fuzz.expect.kind === "error" && seen.messages[0]?.type === MessageType.WELCOME
        ) {
          counts.expectedCodeCases++;
          // A bad bet refuses its batch with a failed BATCH_ACK; anything else, an ERROR frame.
          const refused = seen.messages.find((m) => m.type === MessageType.BATCH_ACK && m.status);
          const code = errors[0]?.type === MessageType.ERROR
            ? errors[0].code
            : refused?.type === MessageType.BATCH_ACK
            ? refused.status
            : undefined;
          // A frame naming another agency is refused for that before its body is read.
          const named = AGENCY_TYPES.has(fuzz.bytes[1]!) && code === ErrorCode.INVALID_AGENCY;
          if (code === fuzz.expect.code || named) counts.expectedCode++;
        }
      }
    };
    const started = performance.now();
    await Promise.all(Array.from({ length: CONCURRENCY }, () => worker()));
    const fuzzMs = performance.now() - started;

    // Every bad frame after a WELCOME was answered with the right error code (a reset
    // may rarely swallow the frame when the server closes with unread bytes).
    assert.ok(
      counts.expectedCodeCases > 500,
      `${counts.expectedCodeCases} cases with a known code`,
    );
    assert.ok(
      counts.expectedCode >= counts.expectedCodeCases * 0.99,
      `${counts.expectedCode} of ${counts.expectedCodeCases} got the expected error code`,
    );
    const log = parseLog(server.stdout());
    assert.equal(
      log.filter((l) => l.action === "connection" && l.result === "fail").length,
      0,
      "no unexpected error in a connection handler",
    );
    assert.equal(
      log.filter((l) => l.action === "idle_timeout").length,
      0,
      "no close waited for the timeout",
    );
    assert.equal(server.stderr().trim(), "", "nothing on stderr");
    const memory = memoryOf(server.pid);
    assert.ok(memory === undefined || memory.peakMiB < 400, `peak RSS ${memory?.peakMiB} MiB`);

    // The server still runs a lottery: agencies 1..3 close, agency 4 sends its bets.
    for (const agency of [1, 2, 3]) {
      const { conn, nextSeq, done } = await helloRaw(server.port, agency);
      if (!done) {
        await conn.send({ type: MessageType.DONE, agency, batches: nextSeq });
        await conn.expect(MessageType.DONE_ACK);
      }
      conn.close();
    }
    const files = await agencyFiles(data, { agencies: 1, bets: 500, seed: 6, winners: 0.02 });
    const path = files[0]!;
    const client = await startClient(4, server.port, { CLI_DATA_PATH: path });
    assert.equal(await client.status, 0, client.stdout());
    const winners = parseLog(client.stdout()).find((l) => l.action === "ganadores");
    const expected = (await expectedWinners([path])).get(1)!;
    assert.equal(winners?.fields.get("dnis"), expected.join(" "), "agency 4 gets its own winners");
    const rows = (await readRows(path)).map((row) => `4,${row}`);
    const stored = (await Deno.readTextFile(`${server.dir}/bets.csv`)).split("\r\n")
      .filter((row) => row.startsWith("4,"));
    const own = `${data}/agency-4-rows.csv`;
    await Deno.writeTextFile(own, stored.map((row) => row + "\r\n").join(""));
    const result = await account(own, rows);
    assert.equal(result.lost, 0);
    assert.equal(result.duplicated, 0);
    console.log(
      `hostile connections: ${CASES} in ${(fuzzMs / 1000).toFixed(1)} s; ` +
        `${counts.errorFrame} answered with an error frame, ${counts.closedSilently} closed; ` +
        `${counts.expectedCode} of ${counts.expectedCodeCases} bad frames got the exact code; ` +
        `peak RSS ${memory?.peakMiB.toFixed(0)} MiB`,
    );
    await reportAccounted(
      `hostile frames over TCP (${CASES} connections), then an agency`,
      CASES,
      result,
    );
  } finally {
    await Deno.remove(data, { recursive: true });
  }
});

/** Reads until EOF; resolves with what arrived and how long the close took. */
async function awaitClose(conn: Deno.Conn): Promise<{ bytes: Uint8Array; ms: number }> {
  const started = performance.now();
  const limit = setTimeout(() => conn.close(), CLOSE_LIMIT_MS);
  const received: number[] = [];
  const buf = new Uint8Array(1024);
  try {
    for (;;) {
      const n = await conn.read(buf).catch(() => null);
      if (n === null) break;
      received.push(...buf.subarray(0, n));
    }
  } finally {
    clearTimeout(limit);
  }
  return { bytes: new Uint8Array(received), ms: performance.now() - started };
}

Deno.test("server - an impossible length or non-UTF-8 first bytes close the connection at once", async (t) => {
  await using server = await startServer({
    agencies: 2,
    env: { SERVER_IDLE_TIMEOUT: "10s", SERVER_MAX_FRAME_SIZE: "1024" },
  });
  const open = () => Deno.connect({ hostname: "127.0.0.1", port: server.port });
  const hello = encodeMessage({ type: MessageType.HELLO, agency: 1, secret: "" });

  await t.step(
    "a header declaring more than the maximum frame gets LIMIT_EXCEEDED at once",
    async () => {
      for (const length of [1021, 2000, 8189, 65535]) {
        for (const afterHello of [false, true]) {
          using conn = await open();
          if (afterHello) await conn.write(hello);
          // Only the header: the body is never sent, so only the header can be judged.
          await conn.write(new Uint8Array([0xfb, MessageType.BATCH, length >> 8, length & 0xff]));
          const { bytes, ms } = await awaitClose(conn);
          assert.ok(ms < 2000, `length ${length}: closed after ${ms.toFixed(0)} ms`);
          const decoder = new FrameDecoder();
          decoder.push(bytes);
          const frames: Message[] = [];
          for (let frame = decoder.next(); frame; frame = decoder.next()) {
            frames.push(decodeMessage(frame.type, frame.body));
          }
          const error = frames.at(-1);
          assert.equal(error?.type === MessageType.ERROR && error.code, ErrorCode.LIMIT_EXCEEDED);
        }
      }
    },
  );

  await t.step(
    "a first byte that is neither 0xFB nor UTF-8 text closes without a reply",
    async () => {
      let tried = 0;
      for (let byte = 0x80; byte <= 0xff; byte++) {
        if (byte === 0xfb) continue;
        using conn = await open();
        // The byte, then ASCII: invalid UTF-8 for every byte from 0x80 up.
        await conn.write(new Uint8Array([byte, 0x41, 0x41, 0x41]));
        const { bytes, ms } = await awaitClose(conn);
        assert.equal(bytes.length, 0, `0x${byte.toString(16)}: no reply`);
        assert.ok(ms < 2000, `0x${byte.toString(16)}: closed after ${ms.toFixed(0)} ms`);
        tried++;
      }
      assert.equal(tried, 127);
    },
  );

  await t.step("the server keeps serving agencies", async () => {
    await delay(50);
    const { conn, nextSeq } = await helloRaw(server.port, 2);
    assert.equal(nextSeq, 0);
    conn.close();
  });
  await reportNoBets("impossible lengths and non-UTF-8 first bytes", 8 + 127);
});
