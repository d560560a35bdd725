import assert from "node:assert/strict";
import { ConnectionError, ErrorCode, ProtocolError } from "../shared/errors.ts";
import { captureLogger } from "../testing/log_capture.ts";
import {
  backoffDelay,
  type ConnectConfig,
  connectWithRetry,
  hintedDelay,
  lostServer,
  MAX_BACKOFF_MS,
  sleep,
} from "./connect.ts";

/** Agency 4's connection settings for `port` on 127.0.0.1; a timeout of 0 is none. */
function target(port: number, attempts: number, backoffMs: number, timeoutMs = 0): ConnectConfig {
  return {
    id: 4,
    serverAddress: { hostname: "127.0.0.1", port, text: `127.0.0.1:${port}` },
    connectAttempts: attempts,
    connectBackoff: { ms: backoffMs, text: `${backoffMs}ms` },
    connectTimeout: { ms: timeoutMs, text: `${timeoutMs / 1000}s` },
  };
}

/** A loopback port with nothing listening on it (bound, then released). */
function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

Deno.test("backoffDelay() doubles from the base with ±50% jitter", async (t) => {
  const cases: [number, number, number, number][] = [
    [1, 100, 0.5, 100],
    [2, 100, 0.5, 200],
    [3, 100, 0.5, 400],
    [1, 100, 0, 50],
    [1, 100, 0.999, 150],
    [4, 50, 0, 200],
    [1, 0, 0.7, 0],
  ];
  for (const [attempt, base, random, expected] of cases) {
    await t.step(`attempt ${attempt}, base ${base}, random ${random}`, () => {
      assert.equal(backoffDelay(attempt, base, random), expected);
    });
  }
  await t.step("stays within [capped/2, capped*1.5] for random in [0, 1)", () => {
    for (let attempt = 1; attempt <= 6; attempt++) {
      const capped = Math.min(100 * 2 ** (attempt - 1), MAX_BACKOFF_MS);
      for (let i = 0; i < 50; i++) {
        const delay = backoffDelay(attempt, 100);
        assert.ok(delay >= capped / 2 && delay <= capped * 1.5, `${attempt}: ${delay}`);
      }
    }
  });
  await t.step("the exponential part stops growing at the cap", () => {
    assert.equal(backoffDelay(7, 100, 0.5), MAX_BACKOFF_MS);
    assert.equal(backoffDelay(30, 100, 0.5), MAX_BACKOFF_MS);
    assert.equal(backoffDelay(1000, 100, 0.5), MAX_BACKOFF_MS);
    assert.equal(backoffDelay(30, 100, 0), MAX_BACKOFF_MS / 2);
  });
});

Deno.test("backoffDelay() never waits longer than MAX_BACKOFF_MS", () => {
  // MAX_BACKOFF_MS is documented as "the longest wait between attempts".
  for (const random of [0, 0.5, 0.9, 0.999]) {
    for (const attempt of [1, 5, 7, 10, 30]) {
      const delay = backoffDelay(attempt, 100, random);
      assert.ok(delay <= MAX_BACKOFF_MS, `attempt ${attempt}, random ${random}: ${delay} ms`);
    }
  }
});

Deno.test("hintedDelay() waits the hint plus up to a fifth more, capped", async (t) => {
  const cases: [number, number, number][] = [
    [1000, 0, 1000],
    [1000, 0.5, 1100],
    [1000, 0.999, 1200],
    // The jitter is at most MAX_BACKOFF_MS, the hint itself at most a minute.
    [30_000, 0.999, 30_000 + 0.999 * MAX_BACKOFF_MS],
    [3_600_000, 0, 60_000],
    [3_600_000, 0.999, 60_000 + 0.999 * MAX_BACKOFF_MS],
  ];
  for (const [hint, random, expected] of cases) {
    await t.step(`hint ${hint} ms, random ${random}`, () => {
      assert.equal(hintedDelay(hint, random), Math.round(expected));
    });
  }
});

Deno.test("sleep() waits, and returns early when aborted", async () => {
  let started = performance.now();
  await sleep(15);
  assert.ok(performance.now() - started >= 10);

  const controller = new AbortController();
  started = performance.now();
  setTimeout(() => controller.abort(), 5);
  await sleep(10_000, controller.signal);
  assert.ok(performance.now() - started < 1000);

  started = performance.now();
  await sleep(10_000, controller.signal);
  assert.ok(performance.now() - started < 1000, "an aborted signal does not wait its 10 s");
});

Deno.test("connectWithRetry() gives up with ConnectionError after N attempts", async () => {
  const port = closedPort();
  const { log, lines } = captureLogger();
  await assert.rejects(
    connectWithRetry(target(port, 3, 1), { log }),
    (error: unknown) => {
      assert.ok(error instanceof ConnectionError);
      assert.equal(error.name, "ConnectionError");
      assert.match(
        error.message,
        new RegExp(`^Cannot connect to 127\\.0\\.0\\.1:${port} after 3 attempts: .+`),
      );
      assert.ok(error.cause instanceof Deno.errors.ConnectionRefused);
      return true;
    },
  );
  // One line per failed attempt but the last; attempts a millisecond apart: only the first
  // at INFO.
  assert.deepEqual(
    lines.map((l) => [l.level, l.action, l.result, l.fields.client_id, l.fields.attempt]),
    [
      ["INFO", "connect", "in_progress", 4, 1],
      ["DEBUG", "connect", "in_progress", 4, 2],
    ],
  );
  for (const line of lines) {
    assert.equal(line.fields.host, "127.0.0.1");
    assert.equal(line.fields.port, port);
    assert.equal(line.fields.attempts, 3);
    assert.equal(typeof line.fields.retry_in_ms, "number");
    assert.match(String(line.fields.detail), /refused/i);
  }
});

Deno.test("connectWithRetry() with one attempt does not wait or log", async () => {
  const { log, lines } = captureLogger();
  await assert.rejects(
    connectWithRetry(target(closedPort(), 1, 10_000), { log }),
    /after 1 attempts/,
  );
  assert.equal(lines.length, 0);
});

Deno.test("connectWithRetry() connects once a late listener comes up", async () => {
  const port = closedPort();
  const { log, lines } = captureLogger();
  let listener: Deno.TcpListener | undefined;
  const starting = new Promise<void>((resolve) =>
    setTimeout(() => {
      listener = Deno.listen({ hostname: "127.0.0.1", port });
      resolve();
    }, 40)
  );
  let conn: Deno.TcpConn | undefined;
  let server: Deno.Conn | undefined;
  try {
    conn = await connectWithRetry(target(port, 50, 5), { log });
    await starting;
    server = await listener!.accept();
    assert.equal((conn.remoteAddr as Deno.NetAddr).port, port);
    assert.ok(lines.length >= 1, "it retried at least once");
    await conn.write(new Uint8Array([7]));
    const buf = new Uint8Array(1);
    assert.equal(await server.read(buf), 1);
    assert.equal(buf[0], 7);
  } finally {
    await starting;
    conn?.close();
    server?.close();
    listener?.close();
  }
});

Deno.test("connectWithRetry() connects at once to a live listener", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { log, lines } = captureLogger();
  const conn = await connectWithRetry(target(listener.addr.port, 1, 1), { log });
  const server = await listener.accept();
  conn.close();
  server.close();
  assert.equal(lines.length, 0);
});

Deno.test("connectWithRetry() stops when the signal aborts", async (t) => {
  await t.step("already aborted: no attempt", async () => {
    const { log } = captureLogger();
    await assert.rejects(
      connectWithRetry(target(closedPort(), 5, 1), { log, signal: AbortSignal.abort() }),
      (error: unknown) => {
        assert.ok(error instanceof ConnectionError);
        assert.match(error.message, /: stopped$/);
        return true;
      },
    );
  });
  await t.step("aborted during a backoff wait", async () => {
    const { log } = captureLogger();
    const started = performance.now();
    await assert.rejects(
      connectWithRetry(target(closedPort(), 5, 4000), { log, signal: AbortSignal.timeout(20) }),
      ConnectionError,
    );
    assert.ok(performance.now() - started < 1000, "it did not sit out the backoff");
  });
});

/**
 * A listener that never accepts, its accept queue filled (Deno listens with a backlog of
 * 511): the kernel drops further SYNs, so a new connect gets no answer, as from a server
 * behind a firewall that drops them.
 */
async function unansweringListener(): Promise<
  { readonly port: number; close(): void }
> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  const queued: Deno.Conn[] = [];
  const close = (): void => {
    for (const conn of queued) conn.close();
    listener.close();
  };
  try {
    for (let i = 0; i < 4096; i++) {
      queued.push(
        await Deno.connect({ hostname: "127.0.0.1", port, signal: AbortSignal.timeout(500) }),
      );
    }
  } catch (error) {
    if (error instanceof DOMException && error.name === "TimeoutError") return { port, close };
    close();
    throw error;
  }
  close();
  throw new Error("Cannot fill the accept queue: 4096 connections were all answered");
}

Deno.test("connectWithRetry() bounds each attempt by its timeout, one INFO line per slow attempt", async () => {
  const server = await unansweringListener();
  const { log, lines } = captureLogger();
  const started = performance.now();
  try {
    await assert.rejects(
      connectWithRetry(target(server.port, 3, 1, 1000), { log }),
      (error: unknown) => {
        assert.ok(error instanceof ConnectionError);
        assert.equal(
          error.message,
          `Cannot connect to 127.0.0.1:${server.port} after 3 attempts: no answer within 1s`,
        );
        return true;
      },
    );
  } finally {
    server.close();
  }
  const elapsed = performance.now() - started;
  // Each attempt waits out its second; a third of the bound would be the backoff's jitter.
  assert.ok(elapsed >= 3000 && elapsed < 9000, `3 attempts of 1 s took ${elapsed.toFixed(0)} ms`);
  // Attempts a second apart: each failure but the last is visible at INFO.
  assert.deepEqual(lines.map((l) => [l.level, l.fields.attempt, l.fields.detail]), [
    ["INFO", 1, "no answer within 1s"],
    ["INFO", 2, "no answer within 1s"],
  ]);
});

Deno.test("connectWithRetry() gives up an unanswered connect at once when the signal aborts", async () => {
  const server = await unansweringListener();
  const { log } = captureLogger();
  const started = performance.now();
  try {
    const signal = AbortSignal.timeout(20);
    await assert.rejects(
      connectWithRetry(target(server.port, 1, 1, 30_000), { log, signal }),
      /stopped$/,
    );
  } finally {
    server.close();
  }
  assert.ok(performance.now() - started < 1000, "it did not wait for the attempt's timeout");
});

Deno.test("lostServer() names the server in a failed exchange, and keeps its refusals", () => {
  const server = { text: "server:12345" };
  const refusal = new ProtocolError(ErrorCode.UNAUTHORIZED, "Peer error: wrong secret");
  assert.equal(lostServer(server, refusal), refusal);
  const reset = new Deno.errors.ConnectionReset("Connection reset by peer (os error 104)");
  const lost = lostServer(server, reset);
  assert.ok(lost instanceof ConnectionError);
  assert.equal(
    lost.message,
    "Cannot go on with server server:12345: Connection reset by peer (os error 104)",
  );
  assert.equal(lost.cause, reset);
});
