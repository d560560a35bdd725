import assert from "node:assert/strict";
import { baseEnv, isLive, kill, spawn, within } from "./processes.ts";

const PRINT_AND_EXIT = 'console.log("one"); console.log("two"); console.error("oops"); ' +
  "Deno.exit(3);";

Deno.test("spawn() hands over stdout lines and keeps the tail of both streams", async () => {
  const lines: string[] = [];
  const proc = spawn(Deno.execPath(), {
    args: ["eval", PRINT_AND_EXIT],
    env: baseEnv(),
    onLine: (line) => lines.push(line),
  });
  const exit = await proc.exited;
  await proc.drained;
  assert.equal(exit.code, 3);
  assert.equal(isLive(proc), false);
  assert.deepEqual(lines, ["one", "two"]);
  assert.deepEqual([...proc.tail].sort(), ["one", "oops", "two"]);
});

Deno.test("kill() stops a live process", async () => {
  const proc = spawn(Deno.execPath(), {
    args: ["eval", "setTimeout(() => {}, 60_000)"],
    env: baseEnv(),
  });
  assert.equal(isLive(proc), true);
  kill(proc, "SIGKILL");
  const exit = await proc.exited;
  await proc.drained;
  assert.equal(exit.signal, "SIGKILL");
  kill(proc, "SIGKILL"); // A no-op once it exited.
});

Deno.test("within() tells whether a promise settled in time", async () => {
  assert.equal(await within(Promise.resolve(), 1000), true);
  assert.equal(await within(new Promise(() => {}), 10), false);
});

Deno.test("baseEnv() passes on only what Deno needs", () => {
  const names = Object.keys(baseEnv());
  for (const name of names) {
    assert.ok(
      ["PATH", "HOME", "DENO_DIR", "XDG_CACHE_HOME", "TMPDIR", "LANG", "TZ"].includes(name),
    );
  }
});
