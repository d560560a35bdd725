import assert from "node:assert/strict";
import { refusalOf, ROOT, runServerToExit, type ServerExit } from "./_harness.ts";

/** Runs a server command in a fresh folder until it exits on its own (see `runServerToExit`). */
async function serverRun(
  env: Readonly<Record<string, string>>,
  command?: readonly string[],
): Promise<ServerExit & { dir: string }> {
  const dir = await Deno.makeTempDir({ prefix: "tp0-startup-" });
  return { ...await runServerToExit(dir, env, command), dir };
}

Deno.test("bin/server - a start it cannot make is one line naming the setting, exit 2", async (t) => {
  const dirs: string[] = [];
  try {
    await t.step("an empty SERVER_STORAGE_PATH is a config error, not ./bets.csv", async () => {
      const run = await serverRun({ SERVER_STORAGE_PATH: "" });
      dirs.push(run.dir);
      assert.equal(run.code, 2);
      assert.equal(run.stdout, "");
      assert.equal(
        run.stderr,
        'server: Invalid config value "" from env SERVER_STORAGE_PATH: expected the path of the bets file (leave the setting out for ./bets.csv)\n',
      );
      assert.ok(!(await Deno.stat(`${run.dir}/bets.csv`).catch(() => undefined)));
    });
    await t.step("a storage folder that does not exist", async () => {
      const run = await serverRun({ SERVER_STORAGE_PATH: "/nonexistent-tp0/bets.csv" });
      dirs.push(run.dir);
      const line = refusalOf(run);
      assert.equal(line.get("action"), "open_storage");
      assert.equal(line.get("path"), "/nonexistent-tp0/bets.csv");
      assert.equal(
        line.get("error"),
        "Cannot use SERVER_STORAGE_PATH /nonexistent-tp0/bets.csv because its folder does not exist",
      );
    });
    await t.step(
      "a storage path outside what the server may write (Deno's permissions)",
      async () => {
        const allowed = await Deno.makeTempDir({ prefix: "tp0-allowed-" });
        dirs.push(allowed);
        const elsewhere = await Deno.makeTempDir({ prefix: "tp0-elsewhere-" });
        dirs.push(elsewhere);
        const run = await serverRun({ SERVER_STORAGE_PATH: `${elsewhere}/bets.csv` }, [
          Deno.execPath(),
          "run",
          "--allow-net",
          "--allow-env",
          "--allow-read",
          `--allow-write=${allowed}`,
          `${ROOT}server/main.ts`,
        ]);
        dirs.push(run.dir);
        const line = refusalOf(run);
        assert.equal(
          line.get("error"),
          `Cannot use SERVER_STORAGE_PATH ${elsewhere}/bets.csv because this server's Deno ` +
            "permissions do not allow writing there (--allow-write)",
        );
        assert.deepEqual(
          await Array.fromAsync(Deno.readDir(elsewhere)),
          [],
          "nothing written there",
        );
      },
    );
    await t.step("an address in use names the address and the port", async () => {
      using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const port = (taken.addr as Deno.NetAddr).port;
      const run = await serverRun({ SERVER_PORT: String(port), SERVER_STORAGE_PATH: "bets.csv" });
      dirs.push(run.dir);
      const line = refusalOf(run);
      assert.equal(line.get("action"), "accept_connections");
      assert.equal(line.get("ip"), "127.0.0.1");
      assert.equal(line.get("port"), String(port));
      assert.equal(
        line.get("error"),
        "the address is already in use (another server listens there)",
      );
      // The storage was opened, then closed again: its lock is free for the next start.
      const lock = await Deno.open(`${run.dir}/bets.csv`, { read: true, write: true });
      try {
        assert.equal(await lock.tryLock(true), true);
      } finally {
        lock.close();
      }
    });
  } finally {
    for (const dir of dirs) await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
