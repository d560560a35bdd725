/**
 * Agencies ride out faults that end: a flood that fills the server, a server that drops
 * SYNs, server freezes. Real `bin/server` and `bin/client` processes, on 127.0.0.1 or in a
 * network namespace the test makes and removes (the SYN-dropping server needs iptables,
 * so root).
 *
 * @module
 */
import assert from "node:assert/strict";
import type { ClientProcess, ServerProcess } from "../lottery/_harness.ts";
import { parseLog, startClient, startServer, waitFor } from "../lottery/_harness.ts";
import {
  account,
  type Accounting,
  agencyFiles,
  allExit,
  closeAll,
  connections,
  delay,
  expectedRows,
  expectedWinners,
  killAll,
  openFileLimit,
  received,
  reportAccounted,
  winnersOf,
} from "./_faults.ts";

/** The waits an agency logged before reconnecting, and why (a code name, or the detail). */
function reconnections(client: ClientProcess): { intento: number; ms: number; why: string }[] {
  const pattern =
    /action: reconexion \| result: in_progress \| client_id: \d+ \| intento: (\d+) \| intentos: \d+ \| retry_in_ms: (\d+) \| detail: (.*)$/gm;
  return [...client.stdout().matchAll(pattern)].map((m) => ({
    intento: Number(m[1]),
    ms: Number(m[2]),
    why: m[3]!,
  }));
}

/** Waits for every agency to exit, each with code 0. */
async function allFinish(clients: readonly ClientProcess[]): Promise<void> {
  const codes = await allExit(clients, 60_000);
  codes.forEach((code, i) => assert.equal(code, 0, `agency ${i + 1}: ${clients[i]!.stdout()}`));
}

/**
 * Checks the draw and the storage: each agency got its own winners, the server stops
 * cleanly after one draw, and `bets.csv` holds every bet of `paths` exactly once.
 */
async function checkDraw(
  server: ServerProcess,
  clients: readonly ClientProcess[],
  paths: readonly string[],
): Promise<Accounting> {
  const winners = await expectedWinners(paths);
  clients.forEach((client, i) => assert.deepEqual(winnersOf(client), winners.get(i + 1)));
  assert.equal((await server.stop("SIGTERM")).code, 0);
  assert.equal(parseLog(server.stdout()).filter((l) => l.action === "sorteo").length, 1);
  const result = await account(`${server.dir}/bets.csv`, await expectedRows(paths));
  assert.equal(result.lost, 0);
  assert.equal(result.duplicated, 0);
  return result;
}

async function run(command: string, ...args: string[]): Promise<void> {
  const out = await new Deno.Command(command, { args, stdout: "null", stderr: "piped" }).output();
  if (!out.success) {
    const stderr = new TextDecoder().decode(out.stderr).trim();
    throw new Error(`${command} ${args.join(" ")} exited ${out.code}: ${stderr}`);
  }
}

/** A network namespace of the test's own, loopback up; removed on dispose. */
async function networkNamespace(name: string): Promise<
  { readonly launcher: readonly string[]; exec(...args: string[]): Promise<void> } & AsyncDisposable
> {
  await run("ip", "netns", "add", name);
  try {
    await run("ip", "-n", name, "link", "set", "lo", "up");
  } catch (error) {
    await run("ip", "netns", "del", name);
    throw error;
  }
  return {
    launcher: ["ip", "netns", "exec", name],
    exec: (...args) => run("ip", "netns", "exec", name, ...args),
    [Symbol.asyncDispose]: () => run("ip", "netns", "del", name),
  };
}

Deno.test("agency - SERVER_MAX_CONNECTIONS idle sockets only delay 5 agencies: they finish once the idle timeout frees slots", async () => {
  // The default limit. The shape of the defaults (a 30 s idle timeout against 10
  // reconnections, 13-31 s of backoff) is kept by shortening both: a 6 s idle timeout
  // against 3 reconnections (under 1.1 s of backoff). Agencies that backed off as usual
  // instead of waiting as hinted would give up long before the slots free.
  const max = 2048;
  const idleMs = 6000;
  const limit = openFileLimit();
  assert.ok(limit === undefined || limit >= max + 500, `ulimit -n is ${limit}: raise it`);
  const data = await Deno.makeTempDir({ prefix: "tp0-flood-" });
  const flood: Deno.Conn[] = [];
  let clients: ClientProcess[] = [];
  try {
    const paths = await agencyFiles(data, { agencies: 5, bets: 2000, seed: 81, winners: 0.005 });
    await using server = await startServer({
      agencies: 5,
      env: { SERVER_IDLE_TIMEOUT: `${idleMs}ms`, SERVER_PROGRESS_INTERVAL: "100ms" },
    });
    const floodStart = performance.now();
    for (let i = 0; i < max; i++) {
      flood.push(await Deno.connect({ hostname: "127.0.0.1", port: server.port }));
    }
    await waitFor(() => connections(server) >= max, 20_000, "the server to hold the flood");
    const started = performance.now();
    clients = await Promise.all(paths.map((path, i) =>
      startClient(i + 1, server.port, {
        CLI_DATA_PATH: path,
        CLI_CONNECT_ATTEMPTS: "3",
        CLI_CONNECT_BACKOFF: "100ms",
      })
    ));
    await allFinish(clients);
    const elapsed = performance.now() - started;
    let refusals = 0;
    for (const [i, client] of clients.entries()) {
      const waits = reconnections(client).filter((w) => w.why.startsWith("LIMIT_EXCEEDED"));
      assert.ok(waits.length >= 1, `agency ${i + 1} was turned away: ${client.stdout()}`);
      for (const wait of waits) {
        assert.ok(
          wait.ms >= 250 && wait.ms <= idleMs * 1.2,
          `agency ${i + 1} waited ${wait.ms} ms`,
        );
      }
      refusals += waits.length;
    }
    // Delayed until the flood's first connections timed out, not failed before.
    const floodLeft = idleMs - (started - floodStart);
    assert.ok(elapsed >= floodLeft - 500, `done after ${elapsed.toFixed(0)} ms, slots freed later`);
    const result = await checkDraw(server, clients, paths);
    await reportAccounted(
      `${max} idle connections (the limit) + 5 agencies, idle timeout ${idleMs / 1000}s`,
      max,
      result,
      `all 5 finished ${(elapsed / 1000).toFixed(1)} s after ${refusals} hinted waits`,
    );
  } finally {
    await killAll(clients);
    closeAll(flood);
    await Deno.remove(data, { recursive: true });
  }
});

Deno.test("agency - a server that drops SYNs: each attempt ends at connect.timeout, the agency gives up within its budget", async () => {
  const port = 12345;
  const timeoutMs = 1000;
  const attempts = 3;
  const data = await Deno.makeTempDir({ prefix: "tp0-syn-drop-" });
  let clients: ClientProcess[] = [];
  try {
    const paths = await agencyFiles(data, { agencies: 2, bets: 3000, seed: 91, winners: 0.005 });
    await using ns = await networkNamespace(`tp0-syn-${Deno.pid}`);
    const { launcher } = ns;
    await using server = await startServer({ agencies: 2, port, launcher });
    const env = (i: number) => ({
      CLI_DATA_PATH: paths[i]!,
      CLI_CONNECT_TIMEOUT: `${timeoutMs}ms`,
      CLI_CONNECT_ATTEMPTS: String(attempts),
      CLI_CONNECT_BACKOFF: "100ms",
    });
    const first = await startClient(1, port, env(0), { launcher });
    clients = [first];
    // Agency 1 has sent everything and waits for the draw, which waits for agency 2.
    await waitFor(
      () => first.stdout().includes("action: apuestas_enviadas"),
      30_000,
      "agency 1 to send its bets",
    );
    // The server now drops every SYN to its port, and its process dies: agency 1 loses its
    // connection, and every attempt to make another goes unanswered.
    // Inserts (-I) or deletes (-D) the rule dropping SYNs to the server's port.
    const dropSyns = (op: "-I" | "-D") =>
      ns.exec("iptables", op, "INPUT", "-p", "tcp", "--dport", String(port), "--syn", "-j", "DROP");
    await dropSyns("-I");
    const faulted = performance.now();
    await server.stop("SIGKILL");
    assert.equal(await allExit([first], 30_000).then((codes) => codes[0]), 1);
    const gaveUpAfter = performance.now() - faulted;
    // Each attempt waits its timeout; the budget holds with a 3x margin for a busy machine.
    assert.ok(
      gaveUpAfter >= attempts * timeoutMs && gaveUpAfter < 3 * attempts * timeoutMs,
      `gave up ${gaveUpAfter.toFixed(0)} ms after the fault`,
    );
    const stdout = first.stdout();
    assert.equal(
      [...stdout.matchAll(
        / INFO {5}action: connect \| result: in_progress .*detail: no answer within 1000ms$/gm,
      )]
        .length,
      attempts - 1,
      "every unanswered attempt but the last is visible at INFO",
    );
    const fails = stdout.split("\n").filter((l) => l.includes("result: fail"));
    assert.equal(fails.length, 1, stdout);
    assert.match(
      fails[0]!,
      new RegExp(
        `action: agencia \\| result: fail \\| client_id: 1 \\| error: Cannot connect to 127\\.0\\.0\\.1꞉${port} after ${attempts} attempts꞉ no answer within 1000ms$`,
      ),
    );

    // Once the server answers again, a rerun resumes and the draw is right.
    await dropSyns("-D");
    await using again = await startServer({ agencies: 2, port, launcher, dir: server.dir });
    clients = await Promise.all(
      paths.map((_, i) => startClient(i + 1, port, env(i), { launcher })),
    );
    await allFinish(clients);
    const result = await checkDraw(again, clients, paths);
    await reportAccounted(
      `server drops SYNs (iptables in a namespace), connect.timeout 1s × ${attempts}`,
      1,
      result,
      `gave up in ${(gaveUpAfter / 1000).toFixed(1)} s with one line, exit 1; rerun finished`,
    );
  } finally {
    await killAll(clients);
    await Deno.remove(data, { recursive: true });
  }
});

Deno.test("agency - two server freezes longer than CLI_TIMEOUT, separated by progress: a budget of 1 still finishes", async () => {
  const freezeMs = 3000;
  const data = await Deno.makeTempDir({ prefix: "tp0-freeze-" });
  let clients: ClientProcess[] = [];
  try {
    const paths = await agencyFiles(data, { agencies: 2, bets: 40_000, seed: 101, winners: 0.001 });
    // Queries held 200 ms at most: a read of agency 1 waiting for the draw starts at least
    // every 200 ms, so a freeze times it out 1.8-2 s in, and its reconnection's HELLO (2 s
    // of CLI_TIMEOUT) outlives the rest of the freeze.
    await using server = await startServer({ agencies: 2, env: { SERVER_DRAW_WAIT: "200ms" } });
    const first = await startClient(1, server.port, {
      CLI_DATA_PATH: paths[0]!,
      CLI_TIMEOUT: "2s",
      CLI_CONNECT_ATTEMPTS: "1",
      CLI_CONNECT_BACKOFF: "100ms",
      // One small batch in flight at a time: ingestion lasts long enough to freeze it.
      CLI_BATCH_MAXAMOUNT: "10",
      CLI_BATCH_WINDOW: "1",
    });
    clients = [first];
    const freeze = async (): Promise<void> => {
      Deno.kill(server.pid, "SIGSTOP");
      await delay(freezeMs);
      Deno.kill(server.pid, "SIGCONT");
    };
    await waitFor(() => received(server) >= 2000, 30_000, "ingestion to be under way");
    const frozenAt = received(server);
    await freeze();
    await waitFor(
      () => first.stdout().includes("action: apuestas_enviadas"),
      60_000,
      "agency 1 to send the rest of its bets after the first freeze",
    );
    assert.ok(frozenAt < 40_000, `the first freeze came mid-ingestion (${frozenAt} bets in)`);
    // Agency 1 now waits for the draw (agency 2 has not started): freeze again.
    await freeze();
    await delay(500);
    const second = await startClient(2, server.port, { CLI_DATA_PATH: paths[1]! });
    clients.push(second);
    await allFinish(clients);
    // Two faults against a budget of one reconnection: each found the budget reset by the
    // batches (and the DONE) acknowledged after the one before.
    const drops = reconnections(first);
    assert.equal(drops.length, 2, first.stdout());
    assert.deepEqual(drops.map((d) => d.intento), [1, 1]);
    const result = await checkDraw(server, clients, paths);
    await reportAccounted(
      `two ${freezeMs / 1000} s server freezes (SIGSTOP), CLI_TIMEOUT 2s, connect.attempts 1`,
      2,
      result,
      "finished: 2 reconnections, each 1 of 1 (budget reset by progress)",
    );
  } finally {
    await killAll(clients);
    await Deno.remove(data, { recursive: true });
  }
});
