/**
 * Operator mistakes on the server's storage: each must end in a refusal that says what
 * to do, or in a right draw, never in a wrong draw that says `success`.
 */
import assert from "node:assert/strict";
import { RECORD_SIZE } from "../../server/journal.ts";
import type { ClientProcess, ServerProcess } from "../lottery/_harness.ts";
import { parseLog, readRows, startClient, startServer, waitFor } from "../lottery/_harness.ts";
import {
  account,
  agencyFiles,
  allExit,
  expectedRows,
  expectedWinners,
  killAll,
  reportAccounted,
  winnersOf,
} from "./_faults.ts";
import { failureOf, refusedStart, storageFiles } from "./_operator.ts";

/** Agencies that ride out a server restart. */
const PATIENT = { CLI_CONNECT_ATTEMPTS: "50", CLI_CONNECT_BACKOFF: "50ms" };

/** Runs agencies `ids` on their files to the end; each must exit 0 with its own winners. */
async function runAgencies(
  server: ServerProcess,
  paths: readonly string[],
  ids: readonly number[],
  env: Readonly<Record<string, string>> = {},
): Promise<ClientProcess[]> {
  const clients = await Promise.all(
    ids.map((id) => startClient(id, server.port, { CLI_DATA_PATH: paths[id - 1]!, ...env })),
  );
  try {
    const codes = await allExit(clients);
    const winners = await expectedWinners(paths);
    ids.forEach((id, i) => {
      assert.equal(codes[i], 0, `agency ${id}: ${clients[i]!.stdout()}`);
      assert.deepEqual(winnersOf(clients[i]!), winners.get(id), `agency ${id}'s winners`);
    });
    return clients;
  } finally {
    await killAll(clients);
  }
}

/** A finished draw in its own folder: 5 agencies, every one done, the server stopped. */
async function finishedDraw(
  data: string,
  options: { bets: number; batch: number; seed: number },
): Promise<{ dir: string; paths: string[] }> {
  const { bets, seed } = options;
  const paths = await agencyFiles(data, { agencies: 5, bets, seed, winners: 0.005 });
  const dir = await Deno.makeTempDir({ prefix: "tp0-operator-" });
  const server = await startServer({ agencies: 5, dir });
  try {
    await runAgencies(server, paths, [1, 2, 3, 4, 5], {
      CLI_BATCH_MAXAMOUNT: String(options.batch),
    });
  } finally {
    assert.equal((await server.stop("SIGTERM")).code, 0);
  }
  return { dir, paths };
}

function sorteos(server: ServerProcess): number {
  return parseLog(server.stdout()).filter((l) => l.action === "sorteo").length;
}

Deno.test("operator - a second server on the same storage exits 2 and writes nothing", async () => {
  const data = await Deno.makeTempDir({ prefix: "tp0-lock-" });
  let clients: ClientProcess[] = [];
  try {
    const paths = await agencyFiles(data, { agencies: 5, bets: 4000, seed: 71, winners: 0.005 });
    await using first = await startServer({ agencies: 5 });
    const before = await storageFiles(first.dir);
    const idle = await refusedStart(first.dir, { SERVER_AGENCIES: "5" });
    assert.equal(idle.fields.get("path"), `${first.dir}/bets.csv`);
    assert.match(
      idle.stdout,
      new RegExp(
        `open_storage \\| result: fail \\| path: ${first.dir}/bets.csv \\| error: Storage ` +
          `${first.dir}/bets.csv is in use by another server \\(pid ${first.pid}\\), which ` +
          `holds the lock on its bets.csv \\(through this path or another link to it\\); ` +
          "stop it first",
      ),
    );
    assert.deepEqual(await storageFiles(first.dir), before, "the second server wrote nothing");

    clients = await Promise.all(
      paths.map((path, i) => startClient(i + 1, first.port, { CLI_DATA_PATH: path })),
    );
    // Again while the first one ingests (another agency count changes nothing).
    const during = await refusedStart(first.dir, { SERVER_AGENCIES: "3" });
    assert.match(during.fields.get("error") ?? "", /in use by another server/);
    const codes = await allExit(clients);
    codes.forEach((code, i) => assert.equal(code, 0, `agency ${i + 1}`));
    const winners = await expectedWinners(paths);
    clients.forEach((c, i) => assert.deepEqual(winnersOf(c), winners.get(i + 1)));
    assert.equal((await first.stop("SIGTERM")).code, 0);
    assert.equal(sorteos(first), 1);
    const result = await account(`${first.dir}/bets.csv`, await expectedRows(paths));
    await reportAccounted(
      "two servers on the same storage, 5 agencies",
      2,
      result,
      "the second exits 2 (storage in use), writes nothing; the draw is right",
    );
  } finally {
    await killAll(clients);
    await Deno.remove(data, { recursive: true });
  }
});

Deno.test("operator - bets.csv without its journal (deleted or emptied) is refused, never adopted", async () => {
  const data = await Deno.makeTempDir({ prefix: "tp0-journal-" });
  const { dir, paths } = await finishedDraw(data, { bets: 2000, batch: 100, seed: 72 });
  try {
    const journalPath = `${dir}/bets.csv.journal`;
    const journal = await Deno.readFile(journalPath);
    for (const change of ["deleted", "emptied"]) {
      if (change === "deleted") await Deno.remove(journalPath);
      else await Deno.writeFile(journalPath, new Uint8Array(0));
      const before = await storageFiles(dir);
      const refusal = await refusedStart(dir, { SERVER_AGENCIES: "5" });
      assert.match(
        refusal.fields.get("error") ?? "",
        /holds \d+ bytes of bets that no journal accounts for \(.*bets\.csv\.journal is missing, empty or without its header\); the server never adopts them\. To keep that draw, put its journal back beside it; to start a fresh draw/,
        change,
      );
      assert.deepEqual(await storageFiles(dir), before, `${change}: nothing changed`);
    }
    // The operator puts the journal back: the same draw, drawn at start-up.
    await Deno.writeFile(journalPath, journal);
    await using server = await startServer({ agencies: 5, dir });
    const opened = parseLog(server.stdout()).find((l) => l.action === "open_storage")!;
    assert.equal(opened.fields.get("estado"), "existente");
    assert.equal(opened.fields.get("agencias_listas"), "1 2 3 4 5");
    assert.equal(opened.fields.get("sorteo"), "realizado");
    const clients = await runAgencies(server, paths, [1, 2, 3, 4, 5]);
    for (const client of clients) {
      assert.match(
        client.stdout(),
        /apuestas_enviadas \| result: success \| client_id: \d \| cantidad: 0 \|/,
      );
    }
    assert.equal((await server.stop("SIGTERM")).code, 0);
    assert.equal(sorteos(server), 1);
    const result = await account(`${dir}/bets.csv`, await expectedRows(paths));
    await reportAccounted(
      "bets.csv kept, journal deleted or emptied",
      2,
      result,
      "refused at start (exit 2), nothing adopted; journal restored, the same draw",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(data, { recursive: true });
  }
});

Deno.test("operator - a byte flipped in the journal is damage: refused naming the record, nothing cut", async () => {
  const data = await Deno.makeTempDir({ prefix: "tp0-flip-" });
  // 5 × 2,000 bets in batches of 10: 1,000 batch records, then the 5 DONE records.
  const { dir, paths } = await finishedDraw(data, { bets: 2000, batch: 10, seed: 73 });
  try {
    const journalPath = `${dir}/bets.csv.journal`;
    const journal = await Deno.readFile(journalPath);
    assert.ok(journal.length > 600 * RECORD_SIZE);
    for (const record of [500, 0]) {
      const flipped = journal.slice();
      flipped[record * RECORD_SIZE + 5]! ^= 0x20;
      await Deno.writeFile(journalPath, flipped);
      const before = await storageFiles(dir);
      const refusal = await refusedStart(dir, { SERVER_AGENCIES: "5" });
      assert.match(
        refusal.fields.get("error") ?? "",
        new RegExp(
          `^Storage ${dir}/bets.csv is damaged \\(record ${record} of ${journalPath} \\(byte ` +
            `${record * RECORD_SIZE}\\) fails its checksum while later records pass theirs\\); ` +
            "acknowledged bets are never cut, so the server stops",
        ),
      );
      assert.deepEqual(await storageFiles(dir), before, `record ${record}: nothing was cut`);
    }
    await Deno.writeFile(journalPath, journal);
    await using server = await startServer({ agencies: 5, dir });
    await runAgencies(server, paths, [1, 2, 3, 4, 5], { CLI_BATCH_MAXAMOUNT: "10" });
    assert.equal((await server.stop("SIGTERM")).code, 0);
    const result = await account(`${dir}/bets.csv`, await expectedRows(paths));
    await reportAccounted(
      "one byte flipped in journal record 500, then in record 0",
      2,
      result,
      "refused naming the record and its byte (exit 2), nothing cut",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(data, { recursive: true });
  }
});

Deno.test("operator - SERVER_AGENCIES=3 on a draw of 5 is refused; with 5 the draw waits and is right", async () => {
  const data = await Deno.makeTempDir({ prefix: "tp0-count-" });
  const dir = await Deno.makeTempDir({ prefix: "tp0-count-storage-" });
  let clients: ClientProcess[] = [];
  try {
    const paths = await agencyFiles(data, { agencies: 5, bets: 2000, seed: 74, winners: 0.005 });
    {
      await using server = await startServer({
        agencies: 5,
        dir,
        env: { SERVER_PROGRESS_INTERVAL: "100ms", SERVER_DRAW_WAIT: "100ms" },
      });
      clients = await Promise.all(
        [3, 4, 5].map((id) => startClient(id, server.port, { CLI_DATA_PATH: paths[id - 1]! })),
      );
      // Waits you can see: each waiting agency names the agencies the draw waits for.
      await waitFor(
        () =>
          clients.every((c) =>
            /consulta_ganadores \| result: in_progress \| client_id: \d \| agencias_pendientes: 1 2\n/
              .test(c.stdout())
          ),
        30_000,
        "agencies 3-5 to say they wait for agencies 1 and 2",
      );
      const progress = parseLog(server.stdout()).filter((l) => l.action === "progreso");
      assert.equal(progress.at(-1)?.fields.get("agencias_pendientes"), "1 2");
      const count = progress.length;
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(
        parseLog(server.stdout()).filter((l) => l.action === "progreso").length,
        count,
        "the progress line does not repeat while nothing changes",
      );
      for (const client of clients) client.kill("SIGTERM");
      assert.deepEqual(await allExit(clients), [0, 0, 0]);
      assert.equal((await server.stop("SIGTERM")).code, 0);
    }
    const before = await storageFiles(dir);
    const refusal = await refusedStart(dir, { SERVER_AGENCIES: "3" });
    assert.match(
      refusal.fields.get("error") ?? "",
      /^Storage .* holds draw [0-9a-f]{16} for 5 agencies, but SERVER_AGENCIES is 3; set SERVER_AGENCIES=5 to go on with that draw, or to start a fresh draw/,
    );
    assert.deepEqual(await storageFiles(dir), before, "nothing changed");

    await using server = await startServer({ agencies: 5, dir });
    const opened = parseLog(server.stdout()).find((l) => l.action === "open_storage")!;
    assert.equal(opened.fields.get("agencias_listas"), "3 4 5");
    assert.equal(opened.fields.get("sorteo"), "pendiente");
    assert.equal(opened.fields.get("apuestas"), "6000");
    await runAgencies(server, paths, [1, 2, 3, 4, 5]);
    assert.equal((await server.stop("SIGTERM")).code, 0);
    assert.equal(sorteos(server), 1);
    const result = await account(`${dir}/bets.csv`, await expectedRows(paths));
    await reportAccounted(
      "restart with SERVER_AGENCIES=3 after agencies 3-5 finished",
      1,
      result,
      "refused at start (exit 2, draw of 5 vs 3 asked); with 5 the draw waits for 1-2",
    );
  } finally {
    await killAll(clients);
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(data, { recursive: true });
  }
});

Deno.test("operator - a dead agency: the draw is closed without it, durably, and it is refused", async () => {
  const data = await Deno.makeTempDir({ prefix: "tp0-exclude-" });
  const dir = await Deno.makeTempDir({ prefix: "tp0-exclude-storage-" });
  let clients: ClientProcess[] = [];
  try {
    const paths = await agencyFiles(data, { agencies: 5, bets: 2000, seed: 75, winners: 0.005 });
    // Agency 4's file is long and it sends slowly: it is mid-way when it dies.
    const bigFiles = { agencies: 4, bets: 100_000, seed: 76, winners: 0.005 };
    const big = await agencyFiles(`${data}/big`, bigFiles);
    paths[3] = big[3]!;
    const server = await startServer({
      agencies: 5,
      dir,
      env: { SERVER_PROGRESS_INTERVAL: "50ms" },
    });
    clients = await Promise.all(paths.map((path, i) =>
      startClient(i + 1, server.port, {
        CLI_DATA_PATH: path,
        ...PATIENT,
        ...(i === 3 ? { CLI_BATCH_MAXAMOUNT: "10", CLI_BATCH_WINDOW: "1" } : {}),
      })
    ));
    await waitFor(
      () => parseLog(server.stdout()).filter((l) => l.action === "agencia_lista").length >= 4,
      30_000,
      "agencies 1, 2, 3 and 5 to be done",
    );
    // A good part of agency 4's bets in, winners among them.
    const stored = () =>
      Number(
        parseLog(server.stdout()).findLast((l) => l.action === "progreso")?.fields.get("apuestas"),
      );
    await waitFor(() => stored() >= 4 * 2000 + 5000, 30_000, "5,000 of agency 4's bets");
    clients[3]!.kill("SIGKILL");
    assert.notEqual(await clients[3]!.status, 0);
    assert.equal((await server.stop("SIGTERM")).code, 0);
    assert.equal(sorteos(server), 0, "no draw without agency 4");

    // The operator closes the draw without agency 4.
    const closing = await startServer({
      agencies: 5,
      dir,
      port: server.port,
      env: { SERVER_EXCLUDED_AGENCIES: "4" },
    });
    let stored4 = 0;
    try {
      const excluded = parseLog(closing.stdout()).find((l) => l.action === "excluir_agencia");
      assert.equal(excluded?.fields.get("agency"), "4");
      stored4 = Number(excluded?.fields.get("apuestas"));
      assert.ok(stored4 > 0 && stored4 < 100_000, `agency 4 had ${stored4} bets stored`);
      const others = [clients[0]!, clients[1]!, clients[2]!, clients[4]!];
      const codes = await allExit(others);
      const winners = await expectedWinners(paths);
      [1, 2, 3, 5].forEach((id, i) => {
        assert.equal(codes[i], 0, `agency ${id}: ${others[i]!.stdout()}`);
        assert.deepEqual(winnersOf(others[i]!), winners.get(id));
      });
      const counted = [1, 2, 3, 5].reduce((n, id) => n + winners.get(id)!.length, 0);
      const draw = parseLog(closing.stdout()).find((l) => l.action === "sorteo");
      assert.equal(draw?.fields.get("ganadores"), String(counted), "agency 4 left out");
      for (const client of others) {
        assert.match(
          client.stdout(),
          new RegExp(
            `consulta_total_ganadores \\| result: success \\| client_id: \\d \\| cant_ganadores: ${counted}\n`,
          ),
        );
      }
      // Agency 4 comes back: refused.
      const back = await startClient(4, closing.port, { CLI_DATA_PATH: paths[3]! });
      clients.push(back);
      assert.deepEqual(await allExit([back]), [1]);
      assert.match(
        failureOf(back),
        /INVALID_AGENCY.*Agency 4 was left out of this draw by the operator \(SERVER_EXCLUDED_AGENCIES\)/,
      );
    } finally {
      assert.equal((await closing.stop("SIGTERM")).code, 0);
    }

    // A later restart without the setting cannot change the result.
    await using later = await startServer({ agencies: 5, dir });
    const opened = parseLog(later.stdout()).find((l) => l.action === "open_storage")!;
    assert.equal(opened.fields.get("agencias_excluidas"), "4");
    assert.equal(opened.fields.get("sorteo"), "realizado");
    const again = await startClient(4, later.port, { CLI_DATA_PATH: paths[3]! });
    clients.push(again);
    assert.deepEqual(await allExit([again]), [1]);
    assert.equal((await later.stop("SIGTERM")).code, 0);
    assert.equal(sorteos(later), 1, "the restart draws the same agencies");

    // Agency 4's stored bets are its file's first rows, each once; the others whole.
    const rows4 = (await readRows(paths[3]!)).slice(0, stored4);
    assert.ok(rows4.some((row) => row.endsWith(",7574")), "agency 4 had winners stored");
    const expected = [
      ...(await expectedRows(paths)).filter((row) => !row.startsWith("4,")),
      ...rows4.map((row) => `4,${row}`),
    ];
    const result = await account(`${dir}/bets.csv`, expected);
    await reportAccounted(
      "agency 4 dies mid-run; the operator closes the draw without it",
      1,
      result,
      `excluded durably (SERVER_EXCLUDED_AGENCIES), its ${stored4} bets out of the draw; refused when back`,
    );
  } finally {
    await killAll(clients);
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(data, { recursive: true });
  }
});
