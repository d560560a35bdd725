import assert from "node:assert/strict";
import { spawn, within } from "./processes.ts";

const PRINT_AND_EXIT = 'console.log("one"); console.log("two"); console.error("oops"); ' +
  "Deno.exit(3);";

Deno.test("spawn() hands over stdout lines and keeps the tail of both streams", async () => {
  const lines: string[] = [];
  const proc = spawn(Deno.execPath(), {
    args: ["eval", PRINT_AND_EXIT],
    onLine: (line) => lines.push(line),
  });
  const exit = await proc.exited;
  await proc.drained;
  assert.equal(exit.code, 3);
  assert.equal(proc.live, false);
  assert.deepEqual(lines, ["one", "two"]);
  assert.deepEqual([...proc.tail].sort(), ["one", "oops", "two"]);
});

Deno.test("kill() stops a live process", async () => {
  const proc = spawn(Deno.execPath(), { args: ["eval", "setTimeout(() => {}, 60_000)"] });
  assert.equal(proc.live, true);
  proc.kill("SIGKILL");
  const exit = await proc.exited;
  await proc.drained;
  assert.equal(exit.signal, "SIGKILL");
  proc.kill("SIGKILL"); // A no-op once it exited.
});

Deno.test("within() tells whether a promise settled in time", async () => {
  assert.equal(await within(Promise.resolve(), 1000), true);
  assert.equal(await within(new Promise(() => {}), 10), false);
});

Deno.test("spawn() passes on only what Deno needs, and the variables given", async () => {
  const lines: string[] = [];
  const proc = spawn(Deno.execPath(), {
    args: ["eval", "console.log(Object.keys(Deno.env.toObject()).join(' '))"],
    env: { SERVER_PORT: "1" },
    onLine: (line) => lines.push(line),
  });
  await proc.exited;
  await proc.drained;
  const names = lines[0]!.split(" ");
  assert.ok(names.includes("SERVER_PORT"));
  for (const name of names) {
    assert.ok(
      ["PATH", "HOME", "DENO_DIR", "XDG_CACHE_HOME", "TMPDIR", "LANG", "TZ", "SERVER_PORT"]
        .includes(name),
      name,
    );
  }
});
