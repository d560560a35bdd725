import assert from "node:assert/strict";
import { captureLogger } from "../testing/log_capture.ts";
import { acceptEach, acceptFailureLog } from "./accept.ts";

/** A listener whose accepts give `steps` in turn: a connection, or an error thrown. */
function scriptedListener(steps: readonly (Deno.Conn | Error)[], closed: () => void) {
  let i = 0;
  return {
    accept(): Promise<Deno.Conn> {
      const step = steps[i++];
      if (step === undefined) {
        closed();
        return Promise.reject(new Deno.errors.BadResource("Listener has been closed"));
      }
      return step instanceof Error ? Promise.reject(step) : Promise.resolve(step);
    },
  } as unknown as Deno.Listener<Deno.Conn>;
}

function fakeConn(name: string, closes: string[]): Deno.Conn {
  return { close: () => closes.push(name) } as unknown as Deno.Conn;
}

Deno.test("acceptEach() goes on after failed accepts and failed handling, until the listener closes", async () => {
  const { log, lines } = captureLogger();
  const closes: string[] = [];
  const handled: string[] = [];
  const conns = ["a", "b", "c"].map((name) => fakeConn(name, closes));
  let closing = false;
  const listener = scriptedListener([
    new Deno.errors.NotConnected("Transport endpoint is not connected (os error 107)"),
    conns[0]!,
    new Deno.errors.ConnectionReset("Connection reset by peer (os error 104)"),
    new Error("Too many open files (os error 24)"),
    conns[1]!,
    conns[2]!,
  ], () => closing = true);
  const started = performance.now();
  await acceptEach(listener, (conn) => {
    const name = conns.indexOf(conn);
    if (name === 1) throw new Deno.errors.NotConnected("remoteAddr of a reset connection");
    handled.push("abc"[name]!);
  }, { log, closing: () => closing, backoffMs: 50, summaryMs: 60_000 });
  assert.deepEqual(handled, ["a", "c"], "every good connection handled");
  assert.deepEqual(closes, ["b"], "the one whose handling failed is closed");
  assert.ok(performance.now() - started >= 45, "backs off after EMFILE");
  assert.deepEqual(lines.map((l) => [l.level, l.action, l.result]), [
    ["WARNING", "accept_connections", "fail"],
    ["WARNING", "accept_connections", "fail"],
  ], "one line, then one summary at the end");
  assert.match(String(lines[0]!.fields.error), /os error 107/);
  assert.equal(lines[1]!.fields.fallos, 3);
});

Deno.test("acceptEach() logs a listener closed while the server is not stopping, then ends", async () => {
  const { log, lines } = captureLogger();
  await acceptEach(scriptedListener([], () => {}), () => {}, { log, closing: () => false });
  assert.equal(lines.length, 1);
  assert.equal(lines[0]!.level, "ERROR");
  assert.match(String(lines[0]!.fields.detail), /no more connections are accepted/);
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
