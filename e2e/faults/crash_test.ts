import assert from "node:assert/strict";
import { Random } from "../../testing/random.ts";
import type { ClientProcess, ServerProcess } from "../lottery/_harness.ts";
import { parseLog, startClient, startServer, waitFor } from "../lottery/_harness.ts";
import { account, agencyFiles, expectedRows, expectedWinners, reportFault } from "./_faults.ts";

/** Change it to explore other crash points; every run's seed is printed on failure. */
const SEED = 20_240_611;
const RUNS = 20;
const AGENCIES = 3;
/**
 * Enough bets that ingestion outlasts the time from "target reached" to the kill (a 10 ms poll
 * plus up to 5 ms of jitter): with 3,000 a fast host had finished before a fifth of the kills.
 */
const BETS_PER_AGENCY = 20_000;

/** Clients must ride out restarts: many quick attempts, backoff from 20 ms. */
const CLIENT_ENV = {
  CLI_CONNECT_ATTEMPTS: "60",
  CLI_CONNECT_BACKOFF: "20ms",
  CLI_TIMEOUT: "10s",
};

/** What the server found in storage when it opened: stored bets and bytes cut off. */
function opened(server: ServerProcess): { bets: number; discarded: number } {
  const line = parseLog(server.stdout()).find((l) => l.action === "open_storage");
  assert.ok(line, "the server logs open_storage");
  return {
    bets: Number(line.fields.get("apuestas")),
    discarded: Number(line.fields.get("bytes_descartados")),
  };
}

/** Bets the server acknowledged: it logs each batch once durable, before the ack. */
function betsAcked(server: ServerProcess): number {
  return parseLog(server.stdout())
    .filter((l) => l.action === "apuesta_recibida" && l.result === "success")
    .reduce((sum, l) => sum + Number(l.fields.get("cantidad")), 0);
}

function batchesLogged(server: ServerProcess): number {
  return parseLog(server.stdout()).filter((l) =>
    l.action === "apuesta_recibida" && l.result === "success"
  ).length;
}

/** The winners each client logged (`ganadores | dnis: …`), by agency. */
function loggedWinners(clients: readonly ClientProcess[]): Map<number, string[]> {
  const winners = new Map<number, string[]>();
  clients.forEach((client, i) => {
    const line = parseLog(client.stdout()).find((l) => l.action === "ganadores");
    const dnis = line?.fields.get("dnis") ?? "";
    winners.set(i + 1, dnis === "" ? [] : dnis.split(" "));
  });
  return winners;
}

async function finish(clients: readonly ClientProcess[], what: string): Promise<void> {
  const codes = await Promise.race([
    Promise.all(clients.map((c) => c.status)),
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`Timed out waiting for the clients (${what})`)), 60_000)
    ),
  ]);
  codes.forEach((code, i) => {
    assert.equal(code, 0, `${what}: client ${i + 1} exited ${code}: ${clients[i]!.stdout()}`);
  });
}

Deno.test("server - kill -9 at random moments of ingestion: every bet stored exactly once, same winners", async () => {
  const data = await Deno.makeTempDir({ prefix: "tp0-crash-data-" });
  let current: ServerProcess | undefined;
  let clients: ClientProcess[] = [];
  try {
    // Few enough winners (about 40 per agency) that the clients log every DNI.
    const bets = BETS_PER_AGENCY;
    const paths = await agencyFiles(data, { agencies: AGENCIES, bets, seed: 11, winners: 0.002 });
    const expected = await expectedRows(paths);
    const fromFiles = await expectedWinners(paths);

    // The reference: the same data without faults.
    {
      await using server = await startServer({ agencies: AGENCIES });
      clients = await Promise.all(
        paths.map((path, i) => startClient(i + 1, server.port, { CLI_DATA_PATH: path })),
      );
      await finish(clients, "reference run");
      assert.deepEqual(loggedWinners(clients), fromFiles, "the reference run's winners");
    }

    let kills = 0;
    let midIngestion = 0;
    let tornTails = 0;
    // Over every run: the rows stored, lost and duplicated.
    const totals = { stored: 0, lost: 0, duplicated: 0 };
    for (let run = 0; run < RUNS; run++) {
      const random = new Random(SEED + run);
      const what = `run ${run} (seed ${SEED + run})`;
      const dir = await Deno.makeTempDir({ prefix: "tp0-crash-" });
      try {
        const batchSize = random.int(10, 60);
        const totalBatches = AGENCIES * Math.ceil(BETS_PER_AGENCY / batchSize);
        current = await startServer({ agencies: AGENCIES, dir });
        const port = current.port;
        clients = await Promise.all(paths.map((path, i) =>
          startClient(i + 1, port, {
            ...CLIENT_ENV,
            CLI_DATA_PATH: path,
            CLI_BATCH_MAXAMOUNT: String(batchSize),
            CLI_BATCH_WINDOW: String(random.int(1, 16)),
          })
        ));
        const runKills = random.int(1, 3);
        let logged = 0;
        for (let k = 0; k < runKills; k++) {
          const remaining = Math.max(1, totalBatches - logged);
          const target = random.int(1, Math.max(1, Math.floor(remaining * 0.6)));
          const server: ServerProcess = current;
          await waitFor(() => batchesLogged(server) >= target, 30_000, `${what}: ingestion`)
            .catch(() => {});
          await new Promise((r) => setTimeout(r, random.int(0, 5)));
          const { code } = await server.stop("SIGKILL");
          assert.notEqual(code, 0, `${what}: the server was killed, not finished`);
          logged += batchesLogged(server);
          kills++;
          current = await startServer({ agencies: AGENCIES, dir, port });
          // Acknowledged means durable: every batch the killed server acked is still there.
          // (Within one server's life agencies resume past what is stored: no duplicates.)
          const before = opened(server);
          const after = opened(current);
          assert.ok(
            after.bets >= before.bets + betsAcked(server),
            `${what}: ${after.bets} bets after the restart, ${before.bets} before and ` +
              `${betsAcked(server)} acknowledged in between`,
          );
          if (after.bets < expected.length) midIngestion++;
          if (after.discarded > 0) tornTails++;
        }
        await finish(clients, what);
        const { code } = await current.stop("SIGTERM");
        assert.equal(code, 0, `${what}: the last server exits cleanly`);

        const result = await account(`${dir}/bets.csv`, expected);
        totals.stored += result.stored;
        totals.lost += result.lost;
        totals.duplicated += result.duplicated;
        assert.ok(result.endsWhole, `${what}: bets.csv ends with a whole row`);
        assert.equal(result.foreign, 0, `${what}: no torn or foreign row`);
        assert.equal(result.lost, 0, `${what}: no bet lost`);
        assert.equal(result.duplicated, 0, `${what}: no bet stored twice`);
        assert.deepEqual(
          loggedWinners(clients),
          fromFiles,
          `${what}: same winners as without faults`,
        );
        const log = parseLog(current.stdout());
        assert.equal(log.filter((l) => l.action === "sorteo").length, 1, `${what}: one draw`);
      } finally {
        await current?.stop("SIGKILL");
        current = undefined;
        await Promise.all(clients.map((c) => {
          try {
            c.kill("SIGKILL");
          } catch {
            // Exited already.
          }
          return c.status;
        }));
        await Deno.remove(dir, { recursive: true }).catch(() => {});
      }
    }
    console.log(
      `${kills} kills: ${midIngestion} mid-ingestion, ${tornTails} left a torn tail that ` +
        `recovery cut off`,
    );
    assert.ok(midIngestion >= kills * 0.8, `${midIngestion} of ${kills} kills mid-ingestion`);
    await reportFault({
      scenario: `kill -9 server during ingestion (${RUNS} seeded runs)`,
      faults: kills,
      sent: RUNS * expected.length,
      ...totals,
      result: totals.lost === 0 && totals.duplicated === 0 ? "pass" : "fail",
    });
  } finally {
    await Deno.remove(data, { recursive: true }).catch(() => {});
  }
});
