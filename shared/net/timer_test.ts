import assert from "node:assert/strict";
import { globalTimer, signalTimer, type Timer } from "./timer.ts";

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
  const script = `import { signalTimer } from "${new URL("./timer.ts", import.meta.url).href}";
const cancel = signalTimer(60_000, () => console.log("fired"));
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
  assert.ok(performance.now() - started < 30_000);
});
