/**
 * The storage under ordinary accidents: files edited, swapped, moved away or linked while a
 * server runs or between runs, a lock file deleted, exclusions that add up to every agency, a
 * folder as the storage path. Each ends in one clear refusal or a right draw, never in a wrong
 * draw, an ack for bytes a restart would not find, `Uncaught` or a stack trace.
 */
import assert from "node:assert/strict";
import type { ClientProcess, ServerProcess } from "../lottery/_harness.ts";
import {
  account,
  agencyFiles,
  allExit,
  expectedRows,
  expectedWinners,
  killAll,
  parseLog,
  reportAccounted,
  reportFault,
  runServerToExit,
  startClient,
  startServer,
  waitFor,
  winnersOf,
} from "./_faults.ts";
import { refusedStart, storageFiles } from "./_operator.ts";

/** No program output may hold an uncaught error or a stack frame. */
function assertNoCrash(label: string, ...outputs: string[]): void {
  for (const text of outputs) {
    assert.doesNotMatch(text, /Uncaught/, `${label}: no Uncaught`);
    assert.doesNotMatch(text, /\n\s{4}at /, `${label}: no stack frame`);
  }
}

/** Waits until the server has logged `count` agencies done. */
async function agenciesDone(server: ServerProcess, count: number): Promise<void> {
  const done = () => parseLog(server.stdout()).filter((l) => l.action === "agencia_lista").length;
  await waitFor(() => done() >= count, 60_000, `${count} agencies done`);
}

/** Starts agencies `ids` without waiting for them. */
function startAgencies(
  server: ServerProcess,
  paths: readonly string[],
  ids: readonly number[],
): Promise<ClientProcess[]> {
  return Promise.all(
    ids.map((id) =>
      startClient(id, server.port, { CLI_DATA_PATH: paths[id - 1]!, CLI_CONNECT_ATTEMPTS: "3" })
    ),
  );
}

/** Runs agencies `ids` to their end; returns them with their exit codes (killed after). */
async function runAgencies(
  server: ServerProcess,
  paths: readonly string[],
  ids: readonly number[],
): Promise<{ clients: ClientProcess[]; codes: number[] }> {
  const clients = await Promise.all(
    ids.map((id) =>
      startClient(id, server.port, { CLI_DATA_PATH: paths[id - 1]!, CLI_CONNECT_ATTEMPTS: "3" })
    ),
  );
  try {
    return { clients, codes: await allExit(clients) };
  } finally {
    await killAll(clients);
  }
}

/** Agencies `ids` must have exited 0, each told its own winners. */
async function assertRight(
  paths: readonly string[],
  ids: readonly number[],
  run: { clients: ClientProcess[]; codes: number[] },
): Promise<void> {
  const winners = await expectedWinners(paths);
  ids.forEach((id, i) => {
    assert.equal(run.codes[i], 0, `agency ${id}: ${run.clients[i]!.stdout()}`);
    assert.deepEqual(winnersOf(run.clients[i]!), winners.get(id), `agency ${id}'s winners`);
    assertNoCrash(`agency ${id}`, run.clients[i]!.stdout(), run.clients[i]!.stderr());
  });
}

/** Agency files and a storage folder, removed after `body`. */
async function withStorage(
  seed: number,
  body: (paths: string[], dir: string) => Promise<void>,
): Promise<void> {
  const data = await Deno.makeTempDir({ prefix: "tp0-storage-data-" });
  const dir = await Deno.makeTempDir({ prefix: "tp0-storage-" });
  try {
    const paths = await agencyFiles(data, { agencies: 5, bets: 1500, seed, winners: 0.004 });
    await body(paths, dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(data, { recursive: true });
  }
}

/** A finished draw in `dir`, the server stopped. */
async function finishedDraw(paths: readonly string[], dir: string): Promise<void> {
  const server = await startServer({ agencies: 5, dir });
  try {
    await assertRight(paths, [1, 2, 3, 4, 5], await runAgencies(server, paths, [1, 2, 3, 4, 5]));
  } finally {
    assert.equal((await server.stop("SIGTERM")).code, 0);
  }
  assertNoCrash("server", server.stdout(), server.stderr());
}

/** The rows of `bets.csv` that play the winning number, as `[start, end)` byte offsets. */
async function winningRows(path: string): Promise<[number, number][]> {
  const bytes = await Deno.readFile(path);
  const rows: [number, number][] = [];
  let start = 0;
  for (let lf = bytes.indexOf(0x0a); lf !== -1; lf = bytes.indexOf(0x0a, start)) {
    const row = new TextDecoder().decode(bytes.subarray(start, lf - 1));
    if (row.endsWith(",7574")) rows.push([start, lf - 1]);
    start = lf + 1;
  }
  return rows;
}

/**
 * Reports a scenario whose `edits` rows of `bets.csv` were edited: every other row stored
 * exactly once, each edited row counted lost once and foreign once.
 */
async function reportEdited(
  row: { scenario: string; outcome: string; edits: number },
  path: string,
  paths: readonly string[],
): Promise<void> {
  const result = await account(path, await expectedRows(paths));
  const pass = result.lost === row.edits && result.foreign === row.edits &&
    result.duplicated === row.edits;
  await reportFault({
    scenario: row.scenario,
    faults: row.edits,
    sent: result.sent,
    stored: result.stored,
    lost: result.lost - row.edits,
    duplicated: result.duplicated - row.edits,
    result: pass ? "pass" : "fail",
    outcome: row.outcome,
  });
  assert.ok(pass, `only the edited rows differ: ${JSON.stringify(result)}`);
}

/** A refused start that names the damage in `bets.csv`. */
async function refusedAsDamaged(dir: string, detail: RegExp): Promise<void> {
  const before = await storageFiles(dir);
  const refusal = await refusedStart(dir, { SERVER_AGENCIES: "5" });
  assertNoCrash("restart", refusal.stdout);
  assert.match(refusal.fields.get("error") ?? "", detail);
  assert.deepEqual(await storageFiles(dir), before, "the refusal changed nothing");
}

Deno.test("storage - a quote put into a winning row after the draw is damage at start-up, exit 2", async () => {
  await withStorage(81, async (paths, dir) => {
    await finishedDraw(paths, dir);
    const path = `${dir}/bets.csv`;
    const [winner] = await winningRows(path);
    assert.ok(winner, "the data has a winner");
    const bytes = await Deno.readFile(path);
    // A name's first letter becomes a quote: the row no longer parses, same length.
    const comma = bytes.indexOf(0x2c, winner[0]);
    bytes[comma + 1] = 0x22;
    await Deno.writeFile(path, bytes);
    await refusedAsDamaged(
      dir,
      /is damaged \(bytes \d+ to \d+ of bets\.csv were changed after they were stored, their checksum is [0-9a-f]{8} but journal record \d+ holds [0-9a-f]{8}\)/,
    );
    await reportEdited(
      {
        scenario: "a quote put into a winning row of bets.csv after the draw, restart",
        edits: 1,
        outcome:
          "refused at start-up (exit 2) naming the bytes and the journal record; no Uncaught",
      },
      path,
      paths,
    );
  });
});

Deno.test("storage - a winner's DNI and another winner's number changed (same length) are damage", async () => {
  await withStorage(82, async (paths, dir) => {
    await finishedDraw(paths, dir);
    const path = `${dir}/bets.csv`;
    const winners = await winningRows(path);
    assert.ok(winners.length >= 2, "the data has two winners");
    const bytes = await Deno.readFile(path);
    const [first, second] = [winners[0]!, winners[1]!];
    // The DNI is the fourth column: change its last digit. The number is the row's end.
    const text = new TextDecoder().decode(bytes.subarray(first[0], first[1]));
    const dniEnd = first[0] + text.split(",", 4).join(",").length - 1;
    bytes[dniEnd] = bytes[dniEnd] === 0x31 ? 0x32 : 0x31;
    bytes[second[1] - 1] = 0x35; // 7574 → 7575
    await Deno.writeFile(path, bytes);
    await refusedAsDamaged(dir, /were changed after they were stored/);
    // Rerun: the server still refuses, the agencies are never told a wrong winner.
    await refusedAsDamaged(dir, /were changed after they were stored/);
    await reportEdited(
      {
        scenario: "a winner's DNI and another winner's number changed in bets.csv, restart",
        edits: 2,
        outcome: "refused at every start (exit 2) naming the bytes; no draw, no wrong winner told",
      },
      path,
      paths,
    );
  });
});

Deno.test("storage - a winning row edited in place before the last DONE: the draw fails in one line", async () => {
  await withStorage(87, async (paths, dir) => {
    const path = `${dir}/bets.csv`;
    const server = await startServer({ agencies: 5, dir });
    let early: ClientProcess[] = [];
    try {
      early = await startAgencies(server, paths, [1, 2, 3, 4]);
      await agenciesDone(server, 4);
      const [winner] = await winningRows(path);
      assert.ok(winner, "agencies 1-4 hold a winner");
      // The same file, edited in place (same inode, same length): only the checksum tells.
      {
        using file = await Deno.open(path, { write: true });
        await file.seek(winner[1] - 1, Deno.SeekMode.Start);
        await file.write(new TextEncoder().encode("5"));
      }
      const last = await runAgencies(server, paths, [5]);
      assert.notEqual(last.codes[0], 0, "agency 5 is told the draw failed");
      const codes = await allExit(early);
      codes.forEach((code, i) => assert.notEqual(code, 0, `agency ${i + 1} told no winners`));
      const lines = parseLog(server.stdout());
      const sorteo = lines.filter((l) => l.action === "sorteo");
      assert.equal(sorteo.length, 1, server.stdout());
      assert.equal(sorteo[0]!.result, "fail");
      assert.match(sorteo[0]!.fields.get("error") ?? "", /were changed after they were stored/);
      for (const client of [...early, ...last.clients]) {
        assert.equal(winnersOf(client), undefined, "no winners told");
        assertNoCrash("agency", client.stdout(), client.stderr());
      }
      assert.equal((await server.stop("SIGTERM")).code, 0);
      assertNoCrash("server", server.stdout(), server.stderr());
      await refusedAsDamaged(dir, /were changed after they were stored/);
    } finally {
      await killAll(early);
      await server.stop("SIGKILL");
    }
    await reportEdited(
      {
        scenario: "a winning row of bets.csv edited in place while agency 5 still loads",
        edits: 1,
        outcome: "the draw fails (one sorteo fail line), no winners told, no Uncaught; the " +
          "restart refused (exit 2)",
      },
      path,
      paths,
    );
  });
});

Deno.test("storage - bets.csv replaced (cp + mv) while the server runs: nothing acked into the old file", async () => {
  await withStorage(83, async (paths, dir) => {
    const path = `${dir}/bets.csv`;
    const server = await startServer({ agencies: 5, dir });
    let second: ServerProcess | undefined;
    let early: ClientProcess[] = [];
    try {
      early = await startAgencies(server, paths, [1, 2, 3]);
      await agenciesDone(server, 3);
      await Deno.copyFile(path, `${dir}/snap`);
      await Deno.rename(`${dir}/snap`, path);
      const late = await runAgencies(server, paths, [4, 5]);
      late.codes.forEach((code, i) => assert.notEqual(code, 0, `agency ${4 + i} was refused`));
      const fail = parseLog(server.stdout()).find((l) =>
        l.action === "store_bets" && l.result === "fail"
      );
      assert.ok(fail, "one store_bets fail line");
      assert.equal(fail.fields.get("recovery"), "restart");
      assert.match(fail.fields.get("error") ?? "", /is now another file/);
      assert.equal(
        parseLog(server.stdout()).filter((l) => l.action === "sorteo").length,
        0,
        "no draw",
      );
      await killAll(early);
      assert.equal((await server.stop("SIGTERM")).code, 0);
      assertNoCrash("server", server.stdout(), server.stderr());
      // What the path names now is what the journal accounts for: a restart goes on.
      second = await startServer({ agencies: 5, dir });
      const all = [1, 2, 3, 4, 5];
      await assertRight(paths, all, await runAgencies(second, paths, all));
      assert.equal((await second.stop("SIGTERM")).code, 0);
      assertNoCrash("restarted server", second.stdout(), second.stderr());
    } finally {
      await killAll(early);
      await server.stop("SIGKILL");
      await second?.stop("SIGKILL");
    }
    const result = await account(path, await expectedRows(paths));
    await reportAccounted(
      "bets.csv replaced by a copy (cp + mv) after agencies 1-3, then agencies 4-5",
      1,
      result,
      "4-5 refused (STORAGE_FAILED, recovery restart), nothing acked into the old file; " +
        "after a restart 4-5 stored, the draw right",
    );
  });
});

Deno.test("storage - bets.csv and its journal moved away before the last DONE: refused, no crash", async () => {
  await withStorage(84, async (paths, dir) => {
    const path = `${dir}/bets.csv`;
    const away = await Deno.makeTempDir({ prefix: "tp0-storage-away-" });
    const server = await startServer({ agencies: 5, dir });
    let second: ServerProcess | undefined;
    let early: ClientProcess[] = [];
    try {
      early = await startAgencies(server, paths, [1, 2, 3, 4]);
      await agenciesDone(server, 4);
      await Deno.rename(path, `${away}/bets.csv`);
      await Deno.rename(`${path}.journal`, `${away}/bets.csv.journal`);
      const last = await runAgencies(server, paths, [5]);
      assert.notEqual(last.codes[0], 0, "agency 5 was refused");
      assert.ok(
        parseLog(server.stdout()).some((l) =>
          l.action === "store_bets" && l.result === "fail" &&
          /is gone/.test(l.fields.get("error") ?? "")
        ),
        server.stdout(),
      );
      await killAll(early);
      assert.equal((await server.stop("SIGTERM")).code, 0);
      assertNoCrash("server", server.stdout(), server.stderr());
      // The operator puts them back: the draw goes on where it was.
      await Deno.rename(`${away}/bets.csv`, path);
      await Deno.rename(`${away}/bets.csv.journal`, `${path}.journal`);
      second = await startServer({ agencies: 5, dir });
      const all = [1, 2, 3, 4, 5];
      await assertRight(paths, all, await runAgencies(second, paths, all));
      assert.equal((await second.stop("SIGTERM")).code, 0);
      assertNoCrash("restarted server", second.stdout(), second.stderr());
    } finally {
      await killAll(early);
      await server.stop("SIGKILL");
      await second?.stop("SIGKILL");
      await Deno.remove(away, { recursive: true });
    }
    const result = await account(path, await expectedRows(paths));
    await reportAccounted(
      "bets.csv and its journal moved away before agency 5, the last",
      1,
      result,
      "agency 5 refused (STORAGE_FAILED, recovery restart), no Uncaught; files back, restart, " +
        "the draw right",
    );
  });
});

for (
  const [name, scenario, setUp] of [
    [
      "the lock file deleted",
      "bets.csv.lock deleted while a server runs, a second server on the same storage",
      async (dir: string) => {
        await Deno.remove(`${dir}/bets.csv.lock`);
        return dir;
      },
    ],
    [
      "bets.csv and its journal hard-linked into another folder",
      "bets.csv and its journal hard-linked into another folder, a second server there",
      async (dir: string) => {
        const other = await Deno.makeTempDir({ prefix: "tp0-storage-link-" });
        await Deno.link(`${dir}/bets.csv`, `${other}/bets.csv`);
        await Deno.link(`${dir}/bets.csv.journal`, `${other}/bets.csv.journal`);
        return other;
      },
    ],
  ] as const
) {
  Deno.test(`storage - ${name}: a second server is still refused`, async () => {
    await withStorage(85, async (paths, dir) => {
      const server = await startServer({ agencies: 5, dir });
      let other: string | undefined;
      try {
        other = await setUp(dir);
        const refusal = await refusedStart(other, { SERVER_AGENCIES: "5" });
        assertNoCrash("second server", refusal.stdout);
        assert.match(refusal.fields.get("error") ?? "", /is in use by another server/);
        await assertRight(
          paths,
          [1, 2, 3, 4, 5],
          await runAgencies(server, paths, [1, 2, 3, 4, 5]),
        );
        assert.equal((await server.stop("SIGTERM")).code, 0);
        assertNoCrash("server", server.stdout(), server.stderr());
      } finally {
        await server.stop("SIGKILL");
        if (other !== undefined && other !== dir) await Deno.remove(other, { recursive: true });
      }
      const result = await account(`${dir}/bets.csv`, await expectedRows(paths));
      await reportAccounted(
        scenario,
        1,
        result,
        "the second server exits 2 (storage in use, the lock is on the files); the draw right",
      );
    });
  });
}

Deno.test("storage - exclusions 1, then 2 3 4 5 on a restart: refused, nothing journaled", async () => {
  await withStorage(86, async (_paths, dir) => {
    const server = await startServer({ agencies: 5, dir, env: { SERVER_EXCLUDED_AGENCIES: "1" } });
    assert.equal((await server.stop("SIGTERM")).code, 0);
    // bets.csv and its journal (the lock file holds the pid of the last server).
    const before = (await storageFiles(dir)).slice(0, 2);
    const refusal = await refusedStart(dir, {
      SERVER_AGENCIES: "5",
      SERVER_EXCLUDED_AGENCIES: "2,3,4,5",
    });
    assertNoCrash("restart", refusal.stdout, server.stdout());
    assert.match(
      refusal.fields.get("error") ?? "",
      /SERVER_EXCLUDED_AGENCIES names agencies 2 3 4 5, and the journal of .* already excludes 1, so every agency of the draw would be excluded/,
    );
    assert.deepEqual((await storageFiles(dir)).slice(0, 2), before, "nothing journaled");
    await reportFault({
      scenario: "SERVER_EXCLUDED_AGENCIES=1, restart with 2,3,4,5",
      faults: 1,
      sent: 0,
      stored: 0,
      lost: 0,
      duplicated: 0,
      result: "pass",
      outcome: "refused at start-up (exit 2): every agency would be excluded; nothing journaled",
    });
  });
});

Deno.test("storage - a folder as the storage path says it is a folder", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tp0-storage-folder-" });
  try {
    await Deno.mkdir(`${dir}/bets.csv`);
    const run = await runServerToExit(dir, { SERVER_AGENCIES: "5" });
    assertNoCrash("server", run.stdout, run.stderr);
    assert.equal(run.code, 2);
    const fail = parseLog(run.stdout).find((l) => l.result === "fail");
    assert.match(fail?.fields.get("error") ?? "", /because it is a folder, not a file/);
    await reportFault({
      scenario: "mkdir bets.csv, then start",
      faults: 1,
      sent: 0,
      stored: 0,
      lost: 0,
      duplicated: 0,
      result: "pass",
      outcome: "refused at start-up (exit 2): it is a folder, not a file",
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
