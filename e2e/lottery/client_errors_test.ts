import assert from "node:assert/strict";
import { parseLog, startClient, startServer } from "./_harness.ts";

/** The lines of an output that say `result: fail`. */
function failures(stdout: string): string[] {
  return stdout.split("\n").filter((line) => line.includes("result: fail"));
}

Deno.test("agency - a data path that is missing or a directory: one line naming it, exit 2", async (t) => {
  await using server = await startServer({ agencies: 1 });
  const dir = await Deno.makeTempDir({ prefix: "tp0-data-path-" });
  const expected = "expected this agency's CSV file of bets (data.path or CLI_DATA_PATH)";
  try {
    const cases: [string, string, string][] = [
      ["missing", `${dir}/agency-1.csv`, "no such file"],
      // What `docker compose up` leaves when the file it should mount does not exist.
      ["a directory", dir, "it is a directory"],
    ];
    for (const [name, path, problem] of cases) {
      await t.step(name, async () => {
        const client = await startClient(1, server.port, { CLI_DATA_PATH: path });
        assert.equal(await client.status, 2);
        assert.deepEqual(failures(client.stdout()).map((l) => l.replace(/^.* ERROR {4}/, "")), [
          `action: agencia | result: fail | client_id: 1 | error: Cannot read bets from ${path}꞉ ${problem}, ${expected}`,
        ]);
        assert.equal(client.stderr(), "");
      });
    }
    const log = parseLog(server.stdout());
    assert.ok(
      !log.some((l) => l.action === "accept_connections" && l.result === "success"),
      "the agencies stopped before connecting",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("agency - an address nobody answers on is visible at INFO, then named when it gives up", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  const client = await startClient(1, port, {
    CLI_DATA_PATH: "/dev/null",
    CLI_CONNECT_ATTEMPTS: "3",
    CLI_CONNECT_BACKOFF: "200ms",
  });
  assert.equal(await client.status, 1);
  const lines = client.stdout().split("\n");
  const first = lines.findIndex((l) => l.includes("action: connect |"));
  assert.match(
    lines[first] ?? "",
    new RegExp(
      ` INFO     action: connect \\| result: in_progress \\| client_id: 1 \\| host: 127\\.0\\.0\\.1 \\| port: ${port} \\| attempt: 1 \\| attempts: 3 \\| retry_in_ms: \\d+ \\| detail: Connection refused`,
    ),
  );
  const fail = failures(client.stdout());
  assert.equal(fail.length, 1);
  assert.match(
    fail[0]!,
    new RegExp(`action: agencia .*Cannot connect to 127\\.0\\.0\\.1꞉${port} after 3 attempts`),
  );
  assert.ok(lines.indexOf(fail[0]!) > first, "the attempts are visible before the failure");
});

Deno.test("bin/server and bin/client - typo'd config keys give one WARNING line each, the run goes on", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tp0-config-typos-" });
  try {
    const ini = `${dir}/config.ini`;
    await Deno.writeTextFile(
      ini,
      "[DEFAULT]\nSERVER_PORT = 12345\nLOGING_LEVEL = INFO\nSERVER_AGENCIES 3\n",
    );
    const yaml = `${dir}/config.yaml`;
    await Deno.writeTextFile(yaml, "loop:\n  amout: 3\n  period: 50ms\nlog:\n  levle: DEBUG\n");
    await using server = await startServer({ agencies: 1, env: { SERVER_CONFIG: ini } });
    const client = await startClient(1, server.port, {
      CLI_CONFIG: yaml,
      CLI_MODE: "echo",
      CLI_LOOP_AMOUNT: "1",
    });
    assert.equal(await client.status, 0, client.stdout());
    const warningsOf = (stdout: string) =>
      stdout.split("\n").filter((l) => l.includes(" WARNING  action: config_warning |"))
        .map((l) => parseLog(l)[0]!.fields);
    assert.deepEqual(
      warningsOf(client.stdout()).map((f) => [f.get("file"), f.get("key"), f.get("closest")]),
      [[yaml, "loop.amout", "loop.amount"], [yaml, "log.levle", "log.level"]],
    );
    assert.match(client.stdout(), /action: loop_finished \| result: success/);
    assert.equal((await server.stop("SIGTERM")).code, 0);
    assert.deepEqual(
      warningsOf(server.stdout()).map((f) => [
        f.get("file"),
        f.get("line"),
        f.get("key"),
        f.get("closest"),
        f.get("detail"),
      ]),
      [
        [ini, "3", "LOGING_LEVEL", "LOGGING_LEVEL", "unknown key, ignored"],
        [ini, "4", "SERVER_AGENCIES", "SERVER_AGENCIES", "not a KEY = value line, ignored"],
      ],
    );
    assert.match(server.stdout(), /action: receive_message \| result: success/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
