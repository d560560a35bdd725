import assert from "node:assert/strict";
import { LogAction } from "../../shared/log.ts";
import { logProblems } from "./_log_check.ts";
import {
  ensureBinaries,
  parseLog,
  ROOT,
  startClient,
  startServer,
  waitFor,
  withDataset,
} from "./_harness.ts";

function receivedBatches(stdout: string): number {
  return parseLog(stdout).filter((l) => l.action === LogAction.APUESTA_RECIBIDA).length;
}

/** `docker stop`'s default grace before SIGKILL: a stop must take at most a third of it. */
const STOP_GRACE_MS = 10_000;

Deno.test("server - SIGTERM mid-ingestion leaves only whole rows and exits 0 well within the stop grace", async () => {
  await withDataset({ agencies: 3, betsPerAgency: 60_000, seed: 3 }, async (paths) => {
    await using server = await startServer({ agencies: 3 });
    const clients = await Promise.all(
      paths.map((path, i) =>
        startClient(i + 1, server.port, { CLI_DATA_PATH: path, CLI_CONNECT_ATTEMPTS: "1" })
      ),
    );
    await waitFor(() => receivedBatches(server.stdout()) >= 30, 20_000, "ingestion to start");
    const { code, elapsedMs } = await server.stop("SIGTERM");
    assert.equal(code, 0);
    assert.ok(elapsedMs < STOP_GRACE_MS / 3, `exited after ${elapsedMs.toFixed(0)} ms`);
    const text = await Deno.readTextFile(`${server.dir}/bets.csv`);
    assert.ok(text.endsWith("\r\n"), "the file ends with a whole row");
    const rows = text.split("\r\n").slice(0, -1);
    assert.ok(
      rows.length > 0 && rows.length < 180_000,
      `${rows.length} rows: stopped mid-ingestion`,
    );
    for (const row of rows) assert.equal(row.split(",").length, 6, `torn row: ${row}`);
    const log = parseLog(server.stdout());
    const closed = log.find((l) => l.action === LogAction.CLOSE_STORAGE);
    assert.equal(closed?.fields.get("apuestas"), String(rows.length));
    for (
      const action of [
        LogAction.CLOSE_LISTENER,
        LogAction.CLOSE_PROGRESS_TIMER,
        LogAction.CLOSE_CONNECTION,
      ]
    ) {
      assert.ok(log.some((l) => l.action === action), `logs ${action}`);
    }
    await Promise.all(clients.map((c) => c.status));
  });
});

Deno.test("client - SIGTERM mid-ingestion stops after the current batch and exits 0", async () => {
  await withDataset({ agencies: 1, betsPerAgency: 200_000, seed: 5 }, async ([path]) => {
    await using server = await startServer({ agencies: 1 });
    const client = await startClient(1, server.port, { CLI_DATA_PATH: path! });
    await waitFor(() => receivedBatches(server.stdout()) >= 20, 20_000, "ingestion to start");
    const started = performance.now();
    client.kill("SIGTERM");
    assert.equal(await client.status, 0);
    assert.ok(performance.now() - started < STOP_GRACE_MS / 3, "exits well within the grace");
    const log = parseLog(client.stdout());
    assert.ok(log.some((l) => l.action === LogAction.SHUTDOWN && l.result === "success"));
    assert.ok(
      !log.some((l) => l.action === LogAction.CONSULTA_GANADORES),
      "stopped before the end",
    );
  });
});

Deno.test("bin/server and bin/client - a bad config value prints one line and exits 2", async (t) => {
  await ensureBinaries();
  // The server says it on stderr; the client in its log, as one config | result: fail line.
  const cases: Array<[string, string, Record<string, string>, RegExp]> = [
    ["server", "bin/server", { SERVER_PORT: "abc" }, /env SERVER_PORT: expected a whole number/],
    ["server", "bin/server", { LOGGING_LEVEL: "LOUD" }, /env LOGGING_LEVEL: expected one of/],
    [
      "client",
      "bin/client",
      { CLI_ID: "1", CLI_LOOP_PERIOD: "5" },
      /^\S+ \S+ ERROR {4}action: config \| result: fail \| error: .*env CLI_LOOP_PERIOD꞉ expected a duration/,
    ],
    [
      "client",
      "bin/client",
      {},
      /^\S+ \S+ ERROR {4}action: config \| result: fail \| error: .*CLI_ID/,
    ],
  ];
  for (const [who, bin, env, pattern] of cases) {
    await t.step(`${who} ${JSON.stringify(env)}`, async () => {
      const dir = await Deno.makeTempDir();
      try {
        const out = await new Deno.Command(`${ROOT}${bin}`, {
          cwd: dir,
          env,
          stdout: "piped",
          stderr: "piped",
        }).output();
        const printed = new TextDecoder().decode(out.stdout);
        // Untrimmed: logProblems leaves out a last line without its line break.
        assert.deepEqual(logProblems(printed), []);
        const stdout = printed.trim();
        const stderr = new TextDecoder().decode(out.stderr).trim();
        const [said, silent] = who === "client" ? [stdout, stderr] : [stderr, stdout];
        assert.equal(out.code, 2);
        assert.equal(said.split("\n").length, 1, `one line: ${said}`);
        assert.match(said, pattern);
        assert.doesNotMatch(said, /\n\s+at /);
        assert.equal(silent, "");
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });
  }
});
