/**
 * Agencies that are not who the stored bets say: a second process with the same
 * `CLI_ID`, exercise 6 on exercise 5's storage, an impostor's empty batch. A retried
 * sequence is acknowledged only when it holds the same bets.
 */
import assert from "node:assert/strict";
import { ErrorCode } from "../../shared/errors.ts";
import { MessageType } from "../../shared/protocol/mod.ts";
import type { ClientProcess } from "../lottery/_harness.ts";
import { parseLog, startClient, startServer, waitFor } from "../lottery/_harness.ts";
import {
  account,
  agencyFiles,
  allExit,
  connectRaw,
  expectedRows,
  expectedWinners,
  helloRaw,
  killAll,
  reportAccounted,
  winnersOf,
} from "./_faults.ts";
import { failureOf, storageFiles } from "./_operator.ts";

Deno.test("impostor - two agency processes with one CLI_ID and different files: one is refused", async () => {
  const data = await Deno.makeTempDir({ prefix: "tp0-same-id-" });
  let clients: ClientProcess[] = [];
  try {
    const paths = await agencyFiles(data, { agencies: 3, bets: 6000, seed: 81, winners: 0.005 });
    const others = { agencies: 2, bets: 6000, seed: 82, winners: 0.005 };
    const other = (await agencyFiles(`${data}/other`, others))[1]!;
    await using server = await startServer({ agencies: 3 });
    // Both agency-2 processes start at once, each with its own file.
    clients = await Promise.all([
      startClient(1, server.port, { CLI_DATA_PATH: paths[0]! }),
      startClient(2, server.port, { CLI_DATA_PATH: paths[1]! }),
      startClient(2, server.port, { CLI_DATA_PATH: other }),
      startClient(3, server.port, { CLI_DATA_PATH: paths[2]! }),
    ]);
    const codes = await allExit(clients);
    assert.equal(codes[0], 0);
    assert.equal(codes[3], 0);
    assert.deepEqual([codes[1], codes[2]].sort(), [0, 1], `one agency 2 wins: ${codes}`);
    const [winner, loser] = codes[1] === 0 ? [1, 2] : [2, 1];
    const winnerFile = winner === 1 ? paths[1]! : other;
    assert.match(
      failureOf(clients[loser]!),
      /^CONFLICT[:꞉] .*this agency's bets were already loaded from other data/,
    );
    assert.doesNotMatch(
      clients[loser]!.stdout(),
      /apuestas_enviadas/,
      "nothing acknowledged to it",
    );
    const stored = [paths[0]!, winnerFile, paths[2]!];
    const winners = await expectedWinners(stored);
    for (const [i, id] of [[0, 1], [winner, 2], [3, 3]] as const) {
      assert.deepEqual(winnersOf(clients[i]!), winners.get(id), `agency ${id}'s winners`);
    }
    assert.equal((await server.stop("SIGTERM")).code, 0);
    assert.match(
      server.stdout(),
      /apuesta_recibida \| result: fail \| cantidad: \d+ \| agency: 2 \| seq: \d+ \| error: CONFLICT/,
    );
    const result = await account(`${server.dir}/bets.csv`, await expectedRows(stored));
    await reportAccounted(
      "two agency processes with the same CLI_ID and different files",
      1,
      result,
      "one refused with CONFLICT (exit 1), nothing of it stored; the other's draw right",
    );
  } finally {
    await killAll(clients);
    await Deno.remove(data, { recursive: true });
  }
});

Deno.test("impostor - exercise 6 on exercise 5's storage is refused; a fresh draw is right", async () => {
  const data = await Deno.makeTempDir({ prefix: "tp0-ex5-ex6-" });
  const dir = await Deno.makeTempDir({ prefix: "tp0-ex5-ex6-storage-" });
  let clients: ClientProcess[] = [];
  try {
    const paths = await agencyFiles(data, { agencies: 5, bets: 2000, seed: 83, winners: 0.005 });
    // Exercise 5: each agency's one bet from the environment.
    {
      await using server = await startServer({ agencies: 5, dir });
      clients = await Promise.all([1, 2, 3, 4, 5].map((id) =>
        startClient(id, server.port, {
          CLI_MODE: "bet",
          NOMBRE: "Santiago Lionel",
          APELLIDO: "Lorca",
          DOCUMENTO: String(30904460 + id),
          NACIMIENTO: "1999-03-17",
          NUMERO: "7574",
        })
      ));
      assert.deepEqual(await allExit(clients), [0, 0, 0, 0, 0]);
      assert.equal((await server.stop("SIGTERM")).code, 0);
    }
    // Exercise 6 on the same storage (what a kept volume gives): every agency refused.
    const before = await storageFiles(dir);
    {
      await using server = await startServer({ agencies: 5, dir });
      const opened = parseLog(server.stdout()).find((l) => l.action === "open_storage")!;
      assert.equal(opened.fields.get("estado"), "existente");
      assert.equal(opened.fields.get("apuestas"), "5");
      assert.match(
        opened.fields.get("sorteo_nuevo") ?? "",
        /stop the server and move .*bets\.csv and .*bets\.csv\.journal away/,
      );
      clients = await Promise.all(
        paths.map((path, i) => startClient(i + 1, server.port, { CLI_DATA_PATH: path })),
      );
      assert.deepEqual(await allExit(clients), [1, 1, 1, 1, 1]);
      for (const client of clients) {
        assert.match(
          failureOf(client),
          /^CONFLICT[:꞉] Batch 0 \(100 bets, .* was refused[:꞉] Batch 0 of agency \d is not the batch stored under that sequence \(1 bet stored, 100 sent\)/,
        );
      }
      assert.equal((await server.stop("SIGTERM")).code, 0);
      assert.doesNotMatch(server.stdout(), /action: sorteo/);
    }
    const [data5, journal5] = await storageFiles(dir);
    assert.deepEqual([data5, journal5], before.slice(0, 2), "nothing stored");

    // A fresh draw: the operator moves the storage away.
    await Deno.rename(`${dir}/bets.csv`, `${dir}/bets.csv.ex5`);
    await Deno.rename(`${dir}/bets.csv.journal`, `${dir}/bets.csv.journal.ex5`);
    await using server = await startServer({ agencies: 5, dir });
    clients = await Promise.all(
      paths.map((path, i) => startClient(i + 1, server.port, { CLI_DATA_PATH: path })),
    );
    assert.deepEqual(await allExit(clients), [0, 0, 0, 0, 0]);
    const winners = await expectedWinners(paths);
    clients.forEach((c, i) => assert.deepEqual(winnersOf(c), winners.get(i + 1)));
    // And the other way round: exercise 5's bet on exercise 6's storage is refused too.
    const late = await startClient(1, server.port, {
      CLI_MODE: "bet",
      NOMBRE: "Santiago Lionel",
      APELLIDO: "Lorca",
      DOCUMENTO: "30904461",
      NACIMIENTO: "1999-03-17",
      NUMERO: "7574",
    });
    clients.push(late);
    assert.deepEqual(await allExit([late]), [1]);
    assert.match(
      failureOf(late),
      /^CONFLICT[:꞉] Batch 0 of agency 1 is not the batch stored under that sequence \(100 bets stored, 1 sent\)/,
    );
    assert.equal((await server.stop("SIGTERM")).code, 0);
    const result = await account(`${dir}/bets.csv`, await expectedRows(paths));
    await reportAccounted(
      "exercise 5 (one BET each), then exercise 6 on the same storage",
      5,
      result,
      "every exercise-6 agency refused with CONFLICT (exit 1); a fresh draw is right",
    );
  } finally {
    await killAll(clients);
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(data, { recursive: true });
  }
});

Deno.test("impostor - a BATCH of no bets is MALFORMED and takes no sequence", async () => {
  const data = await Deno.makeTempDir({ prefix: "tp0-empty-batch-" });
  let clients: ClientProcess[] = [];
  try {
    const paths = await agencyFiles(data, { agencies: 5, bets: 2000, seed: 84, winners: 0.005 });
    await using server = await startServer({ agencies: 5 });
    {
      using conn = await connectRaw(server.port);
      await conn.send({ type: MessageType.HELLO, agency: 4, secret: "" });
      await conn.expect(MessageType.WELCOME);
      // agency 4, seq 0, count 0, no lines.
      await conn.send(new Uint8Array([0xfb, MessageType.BATCH, 0, 8, 0, 4, 0, 0, 0, 0, 0, 0]));
      const reply = await conn.read();
      assert.equal(reply?.type, MessageType.ERROR);
      assert.equal(reply?.type === MessageType.ERROR && reply.code, ErrorCode.MALFORMED);
      assert.equal(await conn.read().catch(() => null), null, "then a close");
    }
    const { conn, nextSeq } = await helloRaw(server.port, 4);
    conn.close();
    assert.equal(nextSeq, 0, "no sequence was taken");
    await waitFor(
      () => /receive_message \| result: fail .*error: MALFORMED/.test(server.stdout()),
      5000,
      "the server to log the refusal",
    );
    clients = await Promise.all(
      paths.map((path, i) => startClient(i + 1, server.port, { CLI_DATA_PATH: path })),
    );
    assert.deepEqual(await allExit(clients), [0, 0, 0, 0, 0]);
    const winners = await expectedWinners(paths);
    clients.forEach((c, i) => assert.deepEqual(winnersOf(c), winners.get(i + 1)));
    assert.equal((await server.stop("SIGTERM")).code, 0);
    const result = await account(`${server.dir}/bets.csv`, await expectedRows(paths));
    await reportAccounted(
      "an impostor's BATCH of no bets (seq 0) for agency 4",
      1,
      result,
      "MALFORMED and a close, no sequence taken; agency 4 stores all its bets",
    );
  } finally {
    await killAll(clients);
    await Deno.remove(data, { recursive: true });
  }
});
