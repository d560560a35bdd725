/**
 * Compose v1 (`docker-compose`, Debian's 1.29) still runs a generated file: the tooling uses
 * v2 when it is installed, so this smoke test drives v1 directly, as project `tp0`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { run, runOrThrow } from "../../tools/_cli.ts";
import { buildImages } from "../../tools/images.ts";
import { actions, inspect, waitExited, Workspace } from "./_helpers.ts";

Deno.test({
  name: "docker-compose (v1) -p tp0 runs a generated file up and down",
  sanitizeResources: true,
  sanitizeOps: true,
}, async () => {
  const v1 = await run(["docker-compose", "version", "--short"], { timeoutMs: 20_000 });
  assert.equal(v1.code, 0, "docker-compose (v1) is installed (tools/provision_docker.sh)");
  await buildImages({ quiet: true, say: () => {} });
  const ws = await Workspace.create();
  const compose = (...command: string[]) =>
    runOrThrow(
      ["docker-compose", "-p", "tp0", "-f", ws.file, ...command],
      `Cannot run docker-compose ${command[0]}`,
      { timeoutMs: 120_000 },
    );
  try {
    await ws.editConfig("client/config.yaml", [[/amount: \d+/, "amount: 2"], [
      /period: "[^"]*"/,
      'period: "100ms"',
    ]]);
    await ws.generate({ clients: 1, mode: "echo" });
    await compose("up", "-d");
    assert.deepEqual(await waitExited(["client1"], 90_000), new Map([["client1", 0]]));
    const echoed = await actions("client1", "receive_message");
    assert.deepEqual(echoed.map((l) => l.fields.get("msg")), [
      "[CLIENT 1] Message N°1",
      "[CLIENT 1] Message N°2",
    ]);
    assert.equal((await inspect("server")).status, "running");
    await compose("down", "-t", "10");
    const left = await run(["docker", "container", "inspect", "server"], { timeoutMs: 20_000 });
    assert.notEqual(left.code, 0, "down removed the server container");
  } finally {
    await run(["docker-compose", "-p", "tp0", "-f", ws.file, "down", "-t", "5"], {
      timeoutMs: 120_000,
    });
    await ws.remove();
  }
});
