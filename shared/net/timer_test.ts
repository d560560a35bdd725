import assert from "node:assert/strict";
import { Deadline, globalTimer, signalTimer, type Timer } from "./timer.ts";

for (const [name, timer] of [["globalTimer", globalTimer], ["signalTimer", signalTimer]] as const) {
  Deno.test(`${name}() fires once after its time, and never once cancelled`, async () => {
    const start = performance.now();
    let fired = 0;
    let firedAt = 0;
    const { promise, resolve } = Promise.withResolvers<void>();
    (timer as Timer)(30, () => {
      fired++;
      firedAt = performance.now();
      resolve();
    });
    let cancelledFired = false;
    const cancel = timer(10, () => cancelledFired = true);
    cancel();
    cancel();
    await promise;
    await new Promise((r) => setTimeout(r, 40));
    assert.equal(fired, 1);
    assert.ok(firedAt - start >= 29, `fired after ${firedAt - start} ms`);
    assert.equal(cancelledFired, false);
  });
}

Deno.test("a cancelled signalTimer() does not keep the process alive", async () => {
  // A process the timer held would exit only after HELD_MS: a third of it tells them apart.
  const HELD_MS = 300_000;
  const script = `import { signalTimer } from "${new URL("./timer.ts", import.meta.url).href}";
const cancel = signalTimer(${HELD_MS}, () => console.log("fired"));
cancel();
console.log("done");`;
  const started = performance.now();
  const { code, stdout } = await new Deno.Command(Deno.execPath(), {
    args: ["eval", script],
    stdout: "piped",
    stderr: "null",
  }).output();
  assert.equal(code, 0);
  assert.equal(new TextDecoder().decode(stdout), "done\n");
  assert.ok(performance.now() - started < HELD_MS / 3, "exited without waiting for the timer");
});

/** A clock and timer the test moves by hand: `advance` fires what falls due, in order. */
function manualTime() {
  let now = 0;
  const armed: { at: number; fn: () => void; live: boolean }[] = [];
  const started: number[] = [];
  const timer: Timer = (ms, fn) => {
    const entry = { at: now + ms, fn, live: true };
    armed.push(entry);
    started.push(ms);
    return () => entry.live = false;
  };
  const advance = (ms: number) => {
    const until = now + ms;
    for (;;) {
      const next = armed.filter((e) => e.live && e.at <= until).sort((a, b) => a.at - b.at)[0];
      if (!next) break;
      now = next.at;
      next.live = false;
      next.fn();
    }
    now = until;
  };
  return { timer, advance, now: () => now, started, live: () => armed.filter((e) => e.live) };
}

Deno.test("Deadline expires once its time passes, re-arming one timer as it moves", () => {
  const time = manualTime();
  let expired = 0;
  const deadline = new Deadline(time.timer, () => expired++, time.now);
  deadline.set(100);
  time.advance(10);
  // Set and cleared around a thousand reads: no new timer, since the armed one fires sooner.
  for (let i = 0; i < 1000; i++) {
    deadline.clear();
    deadline.set(100);
  }
  assert.deepEqual(time.started, [100]);
  time.advance(90);
  assert.equal(expired, 0, "at 100 the deadline is 110: the timer re-arms for the rest");
  assert.deepEqual(time.started, [100, 10]);
  time.advance(10);
  assert.equal(expired, 1);
  time.advance(1000);
  assert.equal(expired, 1, "it expires once");
});

Deno.test("Deadline: a cleared deadline never expires; a sooner one replaces the timer", () => {
  const time = manualTime();
  let expired = 0;
  const deadline = new Deadline(time.timer, () => expired++, time.now);
  deadline.set(100);
  deadline.clear();
  time.advance(200);
  assert.equal(expired, 0);
  assert.equal(time.live().length, 0, "a timer that finds no deadline is not re-armed");
  deadline.set(100);
  deadline.set(30);
  assert.deepEqual(time.started, [100, 100, 30]);
  assert.equal(time.live().length, 1, "the later timer was cancelled");
  time.advance(30);
  assert.equal(expired, 1);
  deadline.set(50);
  deadline.dispose();
  assert.equal(time.live().length, 0, "dispose cancels the armed timer");
  time.advance(100);
  assert.equal(expired, 1);
});

for (const [name, timer] of [["globalTimer", globalTimer], ["signalTimer", signalTimer]] as const) {
  Deno.test(`Deadline on ${name}() expires in real time and leaves no timer once disposed`, async () => {
    const { promise, resolve } = Promise.withResolvers<number>();
    const start = performance.now();
    const deadline = new Deadline(timer, () => resolve(performance.now() - start));
    deadline.set(20);
    assert.ok((await promise) >= 19);
    deadline.set(60_000);
    deadline.dispose();
  });
}

Deno.test("Deadline never arms a timer past 2^31-1 ms: a longer deadline re-arms for the rest", () => {
  const time = manualTime();
  let expired = 0;
  const deadline = new Deadline(time.timer, () => expired++, time.now);
  const max = 2 ** 31 - 1;
  deadline.set(600 * 3_600_000);
  assert.deepEqual(time.started, [max], "a longer timer would fire at once");
  time.advance(max);
  assert.equal(expired, 0, "not yet: 600 h are not over");
  assert.equal(time.started.at(-1), 600 * 3_600_000 - max);
  time.advance(600 * 3_600_000 - max);
  assert.equal(expired, 1);
});
