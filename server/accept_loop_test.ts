import assert from "node:assert/strict";
import { ErrorCode } from "../shared/errors.ts";
import { FramedConnection } from "../shared/net/framed_conn.ts";
import { MessageType } from "../shared/protocol/mod.ts";
import { captureLogger } from "../testing/log_capture.ts";
import { acceptFailureLog, AcceptLoop, ConnectionSlots } from "./accept_loop.ts";

/** A listener whose accepts fail `failures` times before it hands out a real one's. */
function failingFirst(listener: Deno.TcpListener, failures: number): Deno.TcpListener {
  let left = failures;
  return Object.assign(Object.create(listener), {
    accept: () => {
      if (left-- > 0) return Promise.reject(new Deno.errors.NotConnected("os error 107"));
      return listener.accept();
    },
    close: () => listener.close(),
  });
}

Deno.test("AcceptLoop() goes on accepting after failed accepts, logged once, and refuses over the limit", async () => {
  const { log, lines } = captureLogger();
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const served = Promise.withResolvers<void>();
  const release = Promise.withResolvers<void>();
  const loop = new AcceptLoop(failingFirst(listener, 3), {
    log,
    slots: new ConnectionSlots(new Int32Array(1), 0, 1),
    maxConnections: 1,
    idleTimeoutMs: 0,
    serve: async () => {
      served.resolve();
      await release.promise;
    },
  });
  const running = loop.run();
  const first = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  await served.promise;
  assert.equal(loop.size, 1);
  const second = new FramedConnection(
    await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
  );
  const refusal = await second.read();
  assert.equal(refusal?.type, MessageType.ERROR);
  if (refusal?.type === MessageType.ERROR) assert.equal(refusal.code, ErrorCode.LIMIT_EXCEEDED);
  second.close();
  const failedAccepts = () =>
    lines.filter((l) => l.result === "fail" && l.fields["error"] !== "LIMIT_EXCEEDED");
  assert.equal(failedAccepts().length, 1, "the first of three failures in a row is one line");
  release.resolve();
  await loop.stop();
  await running;
  assert.equal(failedAccepts().length, 2, "the other two are counted in one line at the end");
  assert.equal(failedAccepts()[1]!.fields["fallos"], 2);
  await loop.closeConnections();
  first.close();
});

Deno.test("acceptFailureLog() logs the first failure, then one count per window", async () => {
  const { log, lines } = captureLogger();
  const failures = acceptFailureLog(log, 30);
  for (let i = 0; i < 100; i++) failures.failure(new Error(`reset ${i}`));
  assert.equal(lines.length, 1);
  await new Promise((r) => setTimeout(r, 60));
  assert.equal(lines.length, 2);
  assert.equal(lines[1]!.fields.fallos, 99);
  assert.equal(lines[1]!.fields.error, "reset 99");
  failures.failure(new Error("later"));
  failures.close();
  assert.equal(lines.length, 3, "a new window starts with a line of its own");
  assert.equal(lines[2]!.fields.error, "later");
});
