/**
 * A full disk: the server refuses what it cannot store, reports only what is durable,
 * says once that it recovers by itself, and does once space returns. The storage lives
 * on a 1 MiB tmpfs the test mounts (it runs as root) and removes on every path.
 */
import assert from "node:assert/strict";
import { decodeJournal, RecordKind } from "../../server/journal.ts";
import { MessageType } from "../../shared/protocol/mod.ts";
import type { ClientProcess, ServerProcess } from "../lottery/_harness.ts";
import {
  account,
  agencyFiles,
  allExit,
  expectedRows,
  expectedWinners,
  helloRaw,
  killAll,
  parseLog,
  reportAccounted,
  startClient,
  startServer,
  waitFor,
  winnersOf,
} from "./_faults.ts";
import { failureOf } from "./_operator.ts";

async function run(command: string, args: readonly string[]): Promise<void> {
  const { code, stderr } = await new Deno.Command(command, { args: [...args], stderr: "piped" })
    .output();
  if (code !== 0) {
    throw new Error(
      `${command} ${args.join(" ")} exited ${code}: ${new TextDecoder().decode(stderr)}`,
    );
  }
}

/** Writes `path` until the file system is full (at most 64 MiB). */
async function fill(path: string): Promise<void> {
  using file = await Deno.open(path, { write: true, create: true });
  const chunk = new Uint8Array(4096);
  for (let written = 0; written < 64 * 1024 * 1024; written += chunk.length) {
    try {
      await file.write(chunk);
    } catch {
      return;
    }
  }
  throw new Error(`Cannot fill ${path}: 64 MiB went in`);
}

/** What the journal says is durable: each agency's batches and whether it is done. */
async function durable(dir: string): Promise<Map<number, { batches: number; done: boolean }>> {
  const { entries } = decodeJournal(await Deno.readFile(`${dir}/bets.csv.journal`));
  const agencies = new Map<number, { batches: number; done: boolean }>();
  for (let agency = 1; agency <= 5; agency++) agencies.set(agency, { batches: 0, done: false });
  for (const entry of entries) {
    if (entry.kind === RecordKind.BATCH) agencies.get(entry.agency)!.batches++;
    if (entry.kind === RecordKind.DONE) agencies.get(entry.agency)!.done = true;
  }
  return agencies;
}

Deno.test("storage - a full disk mid-ingestion, a reconnect, then space returns", async () => {
  const data = await Deno.makeTempDir({ prefix: "tp0-full-data-" });
  const disk = await Deno.makeTempDir({ prefix: "tp0-full-" });
  let mounted = false;
  let server: ServerProcess | undefined;
  const clients: ClientProcess[] = [];
  try {
    // 40,000 bets, about 2.6 MB of rows, for 1 MiB of disk.
    const paths = await agencyFiles(data, { agencies: 5, bets: 8000, seed: 91, winners: 0.005 });
    await run("mount", ["-t", "tmpfs", "-o", "size=1m", "tp0-full", disk]);
    mounted = true;
    server = await startServer({ agencies: 5, dir: disk, env: { SERVER_DRAW_WAIT: "100ms" } });
    const port = server.port;
    const start = (id: number) => startClient(id, port, { CLI_DATA_PATH: paths[id - 1]! });
    const first = await Promise.all([1, 2, 3, 4, 5].map(start));
    clients.push(...first);
    const exited = first.map(() => false);
    first.forEach((c, i) => c.status.then(() => (exited[i] = true)));
    const s = server;
    await waitFor(() => s.stdout().includes("store_bets | result: fail"), 30_000, "a full disk");
    // Each agency is refused, or (done before the disk filled) waits for the draw.
    await waitFor(
      () => first.every((c, i) => exited[i] || c.stdout().includes("apuestas_enviadas")),
      30_000,
      "every agency to be refused or done",
    );
    const refused = [1, 2, 3, 4, 5].filter((id) => exited[id - 1]);
    assert.ok(refused.length > 0, "the full disk refused some agency's bets");
    for (const id of refused) {
      assert.equal(await first[id - 1]!.status, 1);
      assert.match(failureOf(first[id - 1]!), /STORAGE_FAILED/, `agency ${id}`);
    }
    const storeLines = () => parseLog(s.stdout()).filter((l) => l.action === "store_bets");
    // A full disk fails, works (what an undone write freed) and fails again: one line.
    const failures = storeLines().filter((l) => l.result === "fail");
    assert.equal(failures.length, 1, "the failure is logged once");
    assert.match(failures[0]!.fields.get("path")!, new RegExp(`^${disk}/bets\\.csv`));
    assert.equal(failures[0]!.fields.get("recovery"), "automatic");
    assert.match(
      s.stdout(),
      /store_bets \| result: fail \| .*error: No space left on device \(os error 28\)/,
    );

    // A reconnect while the disk is full: WELCOME says what the journal holds, no more.
    const journal = await durable(disk);
    for (let agency = 1; agency <= 5; agency++) {
      const { conn, nextSeq, done } = await helloRaw(port, agency);
      try {
        assert.deepEqual({ batches: nextSeq, done }, journal.get(agency), `agency ${agency}`);
        if (agency === 1) {
          await conn.send({ type: MessageType.TOTAL_QUERY });
          const total = await conn.expect(MessageType.TOTAL);
          const rows = await Deno.readTextFile(`${disk}/bets.csv`);
          assert.equal(total.winners, rows.split(",7574\r\n").length - 1, "durable winners");
          assert.equal(total.pending, [...journal.values()].filter((a) => !a.done).length);
        }
      } finally {
        conn.close();
      }
    }
    // What the undone writes freed may hold a few batches more: the disk is filled up for
    // the agency coming back while it is still full, the one with the most left to store
    // (one refused only at its DONE would fit its record in the journal's last page).
    await fill(`${disk}/filler`);
    const behind = refused.reduce((a, b) =>
      journal.get(a)!.batches <= journal.get(b)!.batches ? a : b
    );
    assert.ok(journal.get(behind)!.batches < 80, `agency ${behind} has batches left to store`);
    const again = await start(behind);
    clients.push(again);
    assert.deepEqual(await allExit([again]), [1], "still full: refused again");
    assert.match(failureOf(again), /STORAGE_FAILED/);

    // Space returns: the same server takes the rest, no restart.
    await Deno.remove(`${disk}/filler`);
    await run("mount", ["-o", "remount,size=64m", disk]);
    const rerun = await Promise.all(refused.map(start));
    clients.push(...rerun);
    const waiting = [1, 2, 3, 4, 5].filter((id) => !refused.includes(id)).map((id) =>
      first[id - 1]!
    );
    const codes = await allExit([...rerun, ...waiting]);
    codes.forEach((code, i) => assert.equal(code, 0, [...rerun, ...waiting][i]!.stdout()));
    const winners = await expectedWinners(paths);
    refused.forEach((id, i) => assert.deepEqual(winnersOf(rerun[i]!), winners.get(id)));
    // Writes have worked for a while: the server says so, once, after its one failure line.
    await waitFor(() => storeLines().length === 2, 15_000, "the storage to be said recovered");
    assert.deepEqual(storeLines().map((l) => l.result), ["fail", "success"]);
    assert.equal((await s.stop("SIGTERM")).code, 0);
    assert.equal(parseLog(s.stdout()).filter((l) => l.action === "sorteo").length, 1);
    const result = await account(`${disk}/bets.csv`, await expectedRows(paths));
    await reportAccounted(
      "disk full mid-ingestion, then a reconnect, then space returns",
      1,
      result,
      `${refused.length} agencies refused STORAGE_FAILED, 1 ERROR line; WELCOME = journal; recovered without restart`,
    );
  } finally {
    await killAll(clients);
    await server?.stop("SIGKILL");
    if (mounted) await run("umount", [disk]).catch(() => run("umount", ["-l", disk]));
    await Deno.remove(disk, { recursive: true });
    await Deno.remove(data, { recursive: true });
  }
});
