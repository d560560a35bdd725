import assert from "node:assert/strict";
import { MAX_BACKOFF_MS } from "../../client/connect.ts";
import type { ClientProcess, ServerProcess } from "../lottery/_harness.ts";
import { parseLog, ROOT, startClient, startServer, waitFor } from "../lottery/_harness.ts";
import {
  accepted,
  account,
  agencyFiles,
  allExit,
  delay,
  expectedRows,
  expectedWinners,
  killAll,
  received,
  reportAccounted,
  winnersOf,
} from "./_faults.ts";

Deno.test("client - the server restarts mid-run: agencies back off with jitter, reconnect and resume", async () => {
  const data = await Deno.makeTempDir({ prefix: "tp0-restart-data-" });
  const dir = await Deno.makeTempDir({ prefix: "tp0-restart-" });
  let clients: ClientProcess[] = [];
  let second: ServerProcess | undefined;
  const baseMs = 50;
  const attempts = 20;
  try {
    // Enough bets that the stop lands mid-ingestion however fast the server stores them.
    // Few enough winners that each agency's ganadores line lists them all (50 at most).
    const paths = await agencyFiles(data, { agencies: 5, bets: 30_000, seed: 31, winners: 0.001 });
    const expected = await expectedRows(paths);
    const first = await startServer({ agencies: 5, dir });
    clients = await Promise.all(paths.map((path, i) =>
      startClient(i + 1, first.port, {
        CLI_DATA_PATH: path,
        CLI_BATCH_MAXAMOUNT: "40",
        CLI_LOG_LEVEL: "DEBUG",
        CLI_CONNECT_ATTEMPTS: String(attempts),
        CLI_CONNECT_BACKOFF: `${baseMs}ms`,
      })
    ));
    // Every agency connected too: one still starting would only ever see a refused connect,
    // never a session to lose and resume.
    await waitFor(
      () => received(first) >= expected.length / 20 && accepted(first) >= 5,
      30_000,
      "a twentieth of the bets, from all five agencies' connections",
    );
    const { code } = await first.stop("SIGTERM");
    assert.equal(code, 0, "a graceful stop");
    const beforeRestart = received(first);
    assert.ok(beforeRestart < expected.length, "stopped mid-ingestion");
    // Long enough for several attempts each: 50, 100, 200, 400, 800 ms (± 50%).
    await delay(1500);
    second = await startServer({ agencies: 5, dir, port: first.port });
    const codes = await allExit(clients, 60_000);
    codes.forEach((c, i) => assert.equal(c, 0, `agency ${i + 1}: ${clients[i]!.stdout()}`));
    assert.equal((await second.stop("SIGTERM")).code, 0);

    const result = await account(`${dir}/bets.csv`, expected);
    assert.equal(result.lost, 0, "no bet lost");
    assert.equal(result.duplicated, 0, "no bet stored twice");
    assert.ok(result.endsWhole);
    const afterRestart = received(second);
    assert.ok(
      afterRestart < expected.length,
      `resumed where the server said (${afterRestart} bets after the restart, not all again)`,
    );
    const winners = await expectedWinners(paths);
    clients.forEach((client, i) => assert.deepEqual(winnersOf(client), winners.get(i + 1)));

    // Backoff: attempt k waits base·2^(k-1), capped, times a jitter in [0.5, 1.5).
    const firstWaits: number[] = [];
    let retries = 0;
    for (const [i, client] of clients.entries()) {
      const log = parseLog(client.stdout());
      const waits = log.filter((l) => l.action === "connect" && l.result === "in_progress");
      assert.ok(waits.length >= 2, `several attempts while the server was down: ${waits.length}`);
      for (const line of waits) {
        const attempt = Number(line.fields.get("attempt"));
        const wait = Number(line.fields.get("retry_in_ms"));
        const capped = Math.min(baseMs * 2 ** (attempt - 1), MAX_BACKOFF_MS);
        assert.ok(attempt >= 1 && attempt < attempts, `attempt ${attempt} is within the bound`);
        assert.ok(
          wait >= Math.floor(capped * 0.5) && wait <= Math.min(capped * 1.5, MAX_BACKOFF_MS),
          `attempt ${attempt}: waited ${wait} ms, base ${capped} ms`,
        );
        if (attempt === 1) firstWaits.push(wait);
        retries++;
      }
      assert.ok(
        log.some((l) => l.action === "reconexion" && l.result === "in_progress"),
        `agency ${i + 1} logs its reconnection`,
      );
    }
    assert.ok(new Set(firstWaits).size >= 3, `jitter spreads the agencies: ${firstWaits}`);
    await reportAccounted("server restart (SIGTERM, 1.5 s down), 5 agencies reconnect", 1, result);
    console.log(`${retries} connection retries; first waits ${firstWaits.join(", ")} ms`);
  } finally {
    await killAll(clients);
    await second?.stop("SIGKILL");
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(data, { recursive: true });
  }
});

Deno.test("client - an agency killed mid-batch: its partial batch is dropped and logged, the draw waits for it", async () => {
  const data = await Deno.makeTempDir({ prefix: "tp0-client-kill-" });
  let clients: ClientProcess[] = [];
  let restarted: ClientProcess | undefined;
  try {
    // Enough bets that agency 2 is far from done when it is killed on a fast host (the kill lands
    // up to 13,000 bets of 120,000 after the 5,000 it waits for); about 40 winners per agency,
    // so the clients log every DNI.
    const paths = await agencyFiles(data, { agencies: 3, bets: 40_000, seed: 41, winners: 0.001 });
    const expected = await expectedRows(paths);
    await using server = await startServer({
      agencies: 3,
      env: { SERVER_DRAW_WAIT: "200ms" },
    });
    const env = (i: number) => ({ CLI_DATA_PATH: paths[i]!, CLI_BATCH_MAXAMOUNT: "50" });
    clients = await Promise.all(paths.map((_, i) => startClient(i + 1, server.port, env(i))));
    await waitFor(() => received(server) >= 5_000, 30_000, "ingestion to be under way");
    clients[1]!.kill("SIGKILL");
    assert.notEqual(await clients[1]!.status, 0);

    // A second agency-2 process dies with half a batch frame on the wire.
    const storedBefore = async () =>
      (await Deno.readTextFile(`${server.dir}/bets.csv`)).split("\r\n")
        .filter((row) => row.startsWith("2,")).length;
    const partial = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-net=127.0.0.1",
        `${ROOT}e2e/faults/_partial_batch.ts`,
        String(server.port),
        "2",
      ],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const reader = partial.stdout.getReader();
    let out = "";
    while (!out.includes("partial_batch_sent")) {
      const { value, done } = await reader.read();
      if (done) break;
      out += new TextDecoder().decode(value);
    }
    assert.match(out, /partial_batch_sent \d+/);
    const rowsAtKill = await storedBefore();
    partial.kill("SIGKILL");
    await partial.status;
    reader.releaseLock();
    await partial.stdout.cancel();
    await waitFor(
      () => /connection_lost \| result: fail .*inside a frame/.test(server.stdout()),
      10_000,
      "the server to log the dropped partial batch",
    );
    assert.equal(await storedBefore(), rowsAtKill, "nothing of the partial batch is stored");

    // The others finish sending; the draw must wait for agency 2.
    await waitFor(
      () => parseLog(server.stdout()).filter((l) => l.action === "agencia_lista").length >= 2,
      60_000,
      "agencies 1 and 3 to finish sending",
    );
    await delay(1000);
    assert.ok(!server.stdout().includes("action: sorteo"), "no draw while agency 2 is missing");
    for (const i of [0, 2]) {
      assert.equal(winnersOf(clients[i]!), undefined, `agency ${i + 1} has no winners yet`);
    }

    // Agency 2 comes back, resumes, and the draw happens.
    restarted = await startClient(2, server.port, env(1));
    const codes = await allExit([clients[0]!, restarted, clients[2]!], 60_000);
    codes.forEach((code) => assert.equal(code, 0));
    const { code } = await server.stop("SIGTERM");
    assert.equal(code, 0);
    const log = parseLog(server.stdout());
    assert.equal(log.filter((l) => l.action === "sorteo").length, 1, "one draw");
    const result = await account(`${server.dir}/bets.csv`, expected);
    assert.equal(result.lost, 0);
    assert.equal(result.duplicated, 0);
    const winners = await expectedWinners(paths);
    assert.deepEqual(winnersOf(clients[0]!), winners.get(1));
    assert.deepEqual(winnersOf(restarted), winners.get(2));
    assert.deepEqual(winnersOf(clients[2]!), winners.get(3));
    await reportAccounted("agency killed twice (once mid-frame), restarted", 2, result);
  } finally {
    await killAll(restarted ? [...clients, restarted] : clients);
    await Deno.remove(data, { recursive: true });
  }
});
