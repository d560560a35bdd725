import assert from "node:assert/strict";
import { ConnectionError } from "../shared/errors.ts";
import { captureLogger } from "../testing/log_capture.ts";
import { serveEcho } from "../server/echo.ts";
import { runEcho } from "./echo.ts";

function configFor(port: number) {
  return {
    id: 3,
    serverAddress: { hostname: "127.0.0.1", port, text: `127.0.0.1:${port}` },
    loopAmount: 2,
    loopPeriod: { ms: 1, text: "1ms" },
    connectAttempts: 1,
    connectBackoff: { ms: 1, text: "1ms" },
    connectTimeout: { ms: 1000, text: "1s" },
  };
}

/** Runs the echo client against `port`, returning how many messages came back and its log. */
async function echoTo(port: number) {
  const { log, lines } = captureLogger();
  const echoed = await runEcho(configFor(port), { log, signal: new AbortController().signal });
  return { echoed, lines };
}

Deno.test("runEcho() sends each message and logs the echo", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serving = (async () => {
    for (let i = 0; i < 2; i++) {
      using conn = await listener.accept();
      const buf = new Uint8Array(256);
      const n = await conn.read(buf);
      await conn.write(buf.subarray(0, n ?? 0));
    }
  })();
  const { echoed, lines } = await echoTo(listener.addr.port);
  await serving;
  assert.equal(echoed, 2);
  assert.deepEqual(lines.map((l) => [l.action, l.fields.msg]), [
    ["receive_message", "[CLIENT 3] Message N°1"],
    ["receive_message", "[CLIENT 3] Message N°2"],
    ["loop_finished", undefined],
  ]);
});

Deno.test("runEcho() gets each message back from the server's echo, one connection each", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const server = captureLogger();
  const serving = (async () => {
    for (let i = 0; i < 2; i++) {
      using conn = await listener.accept();
      const buf = new Uint8Array(8192);
      const n = await conn.read(buf);
      assert.ok(n !== null);
      await serveEcho(conn, {
        ip: "127.0.0.1",
        log: server.log,
        initial: buf.slice(0, n),
        idleTimeoutMs: 30_000,
      });
    }
  })();
  const { echoed, lines } = await echoTo(listener.addr.port);
  await serving;
  assert.equal(echoed, 2);
  const sent = ["[CLIENT 3] Message N°1", "[CLIENT 3] Message N°2"];
  assert.deepEqual(lines.map((l) => l.fields.msg).slice(0, 2), sent);
  assert.deepEqual(server.lines.map((l) => [l.result, l.fields.msg]), [
    ["success", sent[0]],
    ["success", sent[1]],
  ]);
});

Deno.test("runEcho() fails naming the server when the echo does not come back", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  // A server that hangs up without echoing.
  const hangingUp = (async () => {
    const conn = await listener.accept();
    await conn.read(new Uint8Array(256));
    conn.close();
  })();
  const { log } = captureLogger();
  await assert.rejects(
    runEcho(configFor(port), { log, signal: new AbortController().signal }),
    (error: unknown) => {
      assert.ok(error instanceof ConnectionError);
      assert.equal(
        error.message,
        `Cannot go on with server 127.0.0.1:${port}: the connection closed before the echo came back`,
      );
      return true;
    },
  );
  await hangingUp;
});
