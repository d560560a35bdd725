import assert from "node:assert/strict";
import { join } from "node:path";
import type { Bet, BetFields } from "../shared/bet.ts";
import { StorageError, type StorageErrorKind } from "../shared/errors.ts";
import { numberedBet as bet, rowOf } from "../testing/bets.ts";
import { formatBetRows } from "./bets_csv.ts";
import {
  decodeJournal,
  encodeHeader,
  encodeRecord,
  type JournalRecord,
  RECORD_SIZE,
  RecordKind,
  rowsChecksum,
} from "./journal.ts";
import {
  type BatchWatcher,
  BetStore,
  type BetStoreOptions,
  type FsyncPolicy,
  type StorageFailure,
} from "./storage.ts";

const encoder = new TextEncoder();

function bets(from: number, count: number): BetFields[] {
  return Array.from({ length: count }, (_, i) => bet(from + i));
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "storage_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Opens a store for 5 agencies unless told otherwise. */
function open(path: string, options: Partial<BetStoreOptions> = {}): Promise<BetStore> {
  return BetStore.open({ path, agencies: 5, ...options });
}

/** Stores a batch and waits until it is durable. */
async function store(s: BetStore, agency: number, seq: number, batch: BetFields[]) {
  assert.deepEqual(s.storeBets(agency, seq, batch), { kind: "queued" });
  await s.flush();
}

async function collect(store: BetStore): Promise<Bet[]> {
  const out: Bet[] = [];
  for await (const b of store.loadBets()) out.push(b);
  return out;
}

function rowsIn(text: string): number {
  return text.split("\r\n").length - 1;
}

function isKind(kind: StorageErrorKind, message?: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof StorageError, `expected StorageError, got ${error}`);
    assert.equal(error.kind, kind);
    if (message) assert.match(error.message, message);
    return true;
  };
}

/** A StorageError whose one-line message matches, with no `:` in it (it is a log value). */
function isRefusal(message: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof StorageError, `expected StorageError, got ${error}`);
    assert.match(error.message, message);
    assert.ok(!error.message.includes(":"), `no ":" in ${error.message}`);
    assert.ok(!error.message.includes("\n"));
    return true;
  };
}

/** Every file of the storage, to check a refusal changed nothing. */
async function snapshot(path: string): Promise<(Uint8Array | undefined)[]> {
  return await Promise.all(
    [path, `${path}.journal`].map((p) => Deno.readFile(p).catch(() => undefined)),
  );
}

/** A watcher that records what it hears. */
function recorder(): BatchWatcher & { heard: string[] } {
  const heard: string[] = [];
  return {
    heard,
    durable: (nextSeq) => heard.push(`durable ${nextSeq}`),
    failed: (fromSeq, error) => heard.push(`failed ${fromSeq} ${error.kind}`),
  };
}

Deno.test("BetStore.storeBets() appends CSV rows in the course's column order", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "bets.csv");
    const s = await open(path);
    try {
      const batch = [
        bet(1, { firstName: "Perez, Juan" }),
        bet(2, { lastName: 'O"Brien' }),
        bet(3, { number: 7574 }),
      ];
      await store(s, 4, 0, batch);
      assert.equal(
        await Deno.readTextFile(path),
        `4,"Perez, Juan",Apellido1,10000001,1990-05-17,1\r\n` +
          `4,Nombre2,"O""Brien",10000002,1990-05-17,2\r\n` +
          `4,Nombre3,Apellido3,10000003,1990-05-17,7574\r\n`,
      );
      assert.deepEqual(s.stats, { bets: 3, batches: 1, winners: 1 });
      assert.deepEqual(s.progress(4), { nextSeq: 1, done: false, excluded: false });
      assert.deepEqual(s.progress(5), { nextSeq: 0, done: false, excluded: false });
    } finally {
      await s.close();
    }
  });
});

Deno.test("BetStore.open() creates a new draw: a journal holding its header, a lock", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "bets.csv");
    const s = await open(path, { agencies: 3 });
    try {
      assert.equal(s.opening.fresh, true);
      assert.match(s.opening.drawId, /^[0-9a-f]{16}$/);
      assert.ok(Math.abs(s.opening.createdAt - Date.now() / 1000) < 60);
      assert.equal((await Deno.stat(path)).size, 0);
      const journal = decodeJournal(await Deno.readFile(`${path}.journal`));
      assert.deepEqual(journal.entries, [{
        kind: RecordKind.HEADER,
        format: 3,
        agencies: 3,
        drawId: s.opening.drawId,
        createdAt: s.opening.createdAt,
      }]);
      assert.equal(await Deno.readTextFile(`${path}.lock`), `${Deno.pid}\n`);
    } finally {
      await s.close();
    }
    const again = await open(path, { agencies: 3 });
    try {
      assert.equal(again.opening.fresh, false);
      assert.equal(again.opening.drawId, s.opening.drawId, "the same draw");
    } finally {
      await again.close();
    }
  });
});

Deno.test("BetStore.open() refuses a storage another store holds, writing nothing", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "bets.csv");
    const first = await open(path);
    try {
      await store(first, 1, 0, bets(0, 3));
      const before = await snapshot(path);
      await assert.rejects(
        () => open(path),
        isRefusal(new RegExp(`^Storage ${path} is in use by another server \\(pid ${Deno.pid}\\)`)),
      );
      assert.deepEqual(await snapshot(path), before);
      await store(first, 1, 1, bets(3, 3));
    } finally {
      await first.close();
    }
    // Closing releases the lock.
    const second = await open(path);
    assert.equal(second.stats.bets, 6);
    await second.close();
  });
});

Deno.test("BetStore.open() refuses a draw made for another agency count", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "bets.csv");
    const s = await open(path, { agencies: 5 });
    const id = s.opening.drawId;
    await store(s, 3, 0, bets(0, 2));
    await s.close();
    const before = await snapshot(path);
    await assert.rejects(
      () => open(path, { agencies: 3 }),
      isRefusal(
        new RegExp(
          `^Storage ${path} holds draw ${id} for 5 agencies, but SERVER_AGENCIES is 3; set ` +
            `SERVER_AGENCIES=5 to go on with that draw, or to start a fresh draw, stop the ` +
            `server and move ${path} and ${path}.journal away`,
        ),
      ),
    );
    assert.deepEqual(await snapshot(path), before);
  });
});

Deno.test("BetStore.open() never adopts rows no journal accounts for", async (t) => {
  for (const [name, journal] of [["missing", undefined], ["empty", new Uint8Array(0)]] as const) {
    await t.step(`journal ${name}`, async () => {
      await withDir(async (dir) => {
        const path = join(dir, "bets.csv");
        const rows = rowOf(1, bet(1)) + rowOf(2, bet(2));
        await Deno.writeTextFile(path, rows);
        if (journal) await Deno.writeFile(`${path}.journal`, journal);
        const before = await snapshot(path);
        await assert.rejects(
          () => open(path),
          isRefusal(
            new RegExp(
              `holds ${rows.length} bytes of bets that no journal accounts for .* never adopts them`,
            ),
          ),
        );
        assert.deepEqual(await snapshot(path), before);
      });
    });
  }
  await t.step("a journal of an older version, without a header", async () => {
    await withDir(async (dir) => {
      const path = join(dir, "bets.csv");
      const row = rowOf(1, bet(1));
      await Deno.writeTextFile(path, row);
      const record = new Uint8Array(RECORD_SIZE);
      encodeRecord({
        kind: RecordKind.BATCH,
        agency: 1,
        seq: 0,
        bets: 1,
        winners: 0,
        end: row.length,
        rowsCrc: 0,
      }, record);
      await Deno.writeFile(`${path}.journal`, record);
      await assert.rejects(() => open(path), isRefusal(/written by an older version/));
    });
  });
  await t.step("a torn header with no bets is a new draw", async () => {
    await withDir(async (dir) => {
      const path = join(dir, "bets.csv");
      await Deno.writeFile(`${path}.journal`, new Uint8Array(10).fill(0x4a));
      const s = await open(path);
      try {
        assert.equal(s.opening.fresh, true);
        assert.equal(s.opening.cutJournalBytes, 10);
        assert.equal((await Deno.stat(`${path}.journal`)).size, RECORD_SIZE);
      } finally {
        await s.close();
      }
    });
  });
});

/** A finished storage: agencies 1 and 2, two batches each, then agency 2 done. */
async function finished(path: string): Promise<void> {
  const s = await open(path);
  await store(s, 1, 0, bets(0, 4));
  await store(s, 2, 0, bets(4, 3));
  await store(s, 1, 1, bets(7, 2));
  await store(s, 2, 1, bets(9, 5));
  await s.markDone(2);
  await s.close();
}

Deno.test("BetStore.open() restores progress, done agencies and stats after close", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "bets.csv");
    await finished(path);
    const again = await open(path);
    try {
      assert.deepEqual(again.stats, { bets: 14, batches: 4, winners: 2 });
      assert.deepEqual(again.progress(1), { nextSeq: 2, done: false, excluded: false });
      assert.deepEqual(again.progress(2), { nextSeq: 2, done: true, excluded: false });
      assert.deepEqual(again.doneAgencies(), [2]);
      const retry = again.storeBets(1, 1, bets(7, 2));
      assert.equal(retry.kind, "retry");
      if (retry.kind === "retry") await retry.same;
      await store(again, 1, 2, bets(30, 1));
      assert.equal((await collect(again)).length, 15);
    } finally {
      await again.close();
    }
  });
});

Deno.test("BetStore.open() cuts a torn tail and says how much", async (t) => {
  await withDir(async (dir) => {
    const path = join(dir, "bets.csv");
    const journalPath = `${path}.journal`;
    await finished(path);
    const goodData = await Deno.readFile(path);
    const goodJournal = await Deno.readFile(journalPath);

    await t.step("a torn row and a torn journal record", async () => {
      const garbage = encoder.encode('1,Juan,"Pe');
      await Deno.writeFile(path, garbage, { append: true });
      await Deno.writeFile(journalPath, new Uint8Array(RECORD_SIZE - 5).fill(0x4a), {
        append: true,
      });
      const reopened = await open(path);
      try {
        assert.equal(reopened.opening.cutBytes, garbage.length);
        assert.equal(reopened.opening.cutJournalBytes, RECORD_SIZE - 5);
        assert.deepEqual(reopened.stats, { bets: 14, batches: 4, winners: 2 });
        assert.deepEqual(await Deno.readFile(path), goodData);
        assert.deepEqual(await Deno.readFile(journalPath), goodJournal);
      } finally {
        await reopened.close();
      }
    });

    await t.step("whole rows of a batch whose record never made it", async () => {
      const extra = encoder.encode(formatBetRows(1, bets(50, 3)));
      await Deno.writeFile(path, extra, { append: true });
      const reopened = await open(path);
      try {
        assert.equal(reopened.opening.cutBytes, extra.length);
        assert.deepEqual(await Deno.readFile(path), goodData);
        assert.deepEqual(reopened.progress(1), { nextSeq: 2, done: false, excluded: false });
      } finally {
        await reopened.close();
      }
    });

    await t.step("the last journal records fail their checks, their rows are there", async () => {
      const journal = goodJournal.slice();
      // Records 3 and 4 (agency 1's batch 1 at 3): both flipped, nothing good after them.
      journal[3 * RECORD_SIZE + 9]! ^= 1;
      journal[4 * RECORD_SIZE + 9]! ^= 1;
      journal[5 * RECORD_SIZE + 9]! ^= 1;
      await Deno.writeFile(journalPath, journal);
      const reopened = await open(path);
      try {
        assert.equal(reopened.opening.cutJournalBytes, 3 * RECORD_SIZE);
        assert.ok(reopened.opening.cutBytes > 0);
        assert.deepEqual(reopened.progress(1), { nextSeq: 1, done: false, excluded: false });
        assert.deepEqual(reopened.progress(2), { nextSeq: 1, done: false, excluded: false });
        assert.equal(reopened.stats.bets, 7);
        assert.equal(rowsIn(await Deno.readTextFile(path)), 7);
      } finally {
        await reopened.close();
      }
    });
  });
});

Deno.test("BetStore.open() refuses damage anywhere but the tail and cuts nothing", async (t) => {
  const cases: [
    string,
    (data: Uint8Array, journal: Uint8Array) => [Uint8Array, Uint8Array],
    RegExp,
  ][] = [
    [
      "a flipped byte in journal record 1 (of 5)",
      (data, journal) => {
        journal[RECORD_SIZE + 13]! ^= 0x10;
        return [data, journal];
      },
      /record 1 of .*bets\.csv\.journal \(byte 28\) fails its checksum while later records pass theirs/,
    ],
    [
      "a digit of a stored row changed (same length)",
      (data, journal) => {
        const out = data.slice();
        const at = out.indexOf(0x0a) - 3;
        out[at] = out[at] === 0x31 ? 0x32 : 0x31;
        return [out, journal];
      },
      /bytes 0 to \d+ of bets\.csv were changed after they were stored, their checksum is [0-9a-f]{8} but journal record 1 holds [0-9a-f]{8}/,
    ],
    [
      "a journal of format 2 (24-byte records, no checksum of the rows)",
      (data, journal) => {
        const older = journal.slice();
        older[3] = 2;
        return [data, older];
      },
      /has journal format 2, this server reads format 3/,
    ],
    [
      "a flipped byte in the header",
      (data, journal) => {
        journal[5]! ^= 1;
        return [data, journal];
      },
      /record 0 of .*\(byte 0\) fails its checksum/,
    ],
    [
      "bets.csv shorter than the journal says",
      (data, journal) => [data.subarray(0, data.length - 30), journal],
      /bets\.csv has \d+ bytes but its journal accounts for \d+/,
    ],
    [
      "a row cut out of the middle of bets.csv",
      (data, journal) => {
        const first = data.indexOf(0x0a) + 1;
        const out = new Uint8Array(data.length);
        out.set(data.subarray(first));
        out.set(data.subarray(0, first), data.length - first);
        return [out.subarray(0, data.length), journal];
      },
      /journal record 1 says bytes 0 to \d+ of bets\.csv hold 4 rows, but/,
    ],
    [
      "a row's line break replaced (record 2 ends mid-row)",
      (data, journal) => {
        const out = data.slice();
        const lf = out.indexOf(0x0a, out.indexOf(0x0a) + 1);
        out[lf] = 0x20;
        return [out, journal];
      },
      /journal record 1 says .* hold 4 rows, but they hold 3/,
    ],
  ];
  for (const [name, damage, message] of cases) {
    await t.step(name, async () => {
      await withDir(async (dir) => {
        const path = join(dir, "bets.csv");
        await finished(path);
        const [data, journal] = damage(
          await Deno.readFile(path),
          await Deno.readFile(`${path}.journal`),
        );
        await Deno.writeFile(path, data);
        await Deno.writeFile(`${path}.journal`, journal);
        await assert.rejects(() => open(path), isRefusal(message));
        assert.deepEqual(await snapshot(path), [data, journal], "nothing was cut");
      });
    });
  }
});

Deno.test("BetStore.open() refuses journal records that do not follow from the ones before", async (t) => {
  const header = encodeHeader({ format: 3, agencies: 5, drawId: "0123456789abcdef", createdAt: 1 });
  const rows = (n: number) => encoder.encode(formatBetRows(1, bets(0, n)));
  const cases: [string, JournalRecord[], RegExp][] = [
    [
      "a sequence gap",
      [
        { kind: RecordKind.BATCH, agency: 1, seq: 0, bets: 1, winners: 1, end: 0, rowsCrc: 0 },
        { kind: RecordKind.BATCH, agency: 1, seq: 2, bets: 1, winners: 0, end: 0, rowsCrc: 0 },
      ],
      /record 2 .* holds batch 2 of agency 1, expected 1/,
    ],
    [
      "an agency outside the draw",
      [{ kind: RecordKind.BATCH, agency: 6, seq: 0, bets: 1, winners: 1, end: 0, rowsCrc: 0 }],
      /record 1 .* names agency 6, outside 1 to 5/,
    ],
    [
      "a batch after its agency's DONE",
      [
        { kind: RecordKind.DONE, agency: 1, seq: 0, bets: 0, winners: 0, end: 0, rowsCrc: 0 },
        { kind: RecordKind.BATCH, agency: 1, seq: 0, bets: 1, winners: 1, end: 0, rowsCrc: 0 },
      ],
      /record 2 .* comes after agency 1 was done/,
    ],
    [
      "a batch of no bets",
      [{ kind: RecordKind.BATCH, agency: 1, seq: 0, bets: 0, winners: 0, end: 0, rowsCrc: 0 }],
      /record 1 .* holds 0 bets/,
    ],
  ];
  for (const [name, records, message] of cases) {
    await t.step(name, async () => {
      await withDir(async (dir) => {
        const path = join(dir, "bets.csv");
        const journal = new Uint8Array((records.length + 1) * RECORD_SIZE);
        journal.set(header);
        let end = 0;
        records.forEach((record, i) => {
          if (record.kind === RecordKind.BATCH) end += rows(Math.max(record.bets, 1)).length;
          encodeRecord({ ...record, end }, journal, (i + 1) * RECORD_SIZE);
        });
        const data = new Uint8Array(end);
        let at = 0;
        for (const record of records) {
          if (record.kind !== RecordKind.BATCH) continue;
          const r = rows(Math.max(record.bets, 1));
          data.set(r, at);
          at += r.length;
        }
        await Deno.writeFile(path, data);
        await Deno.writeFile(`${path}.journal`, journal);
        await assert.rejects(() => open(path), isRefusal(message));
      });
    });
  }
});

Deno.test("BetStore.storeRows() takes a retry only when it holds the same rows", async (t) => {
  await withDir(async (dir) => {
    const path = join(dir, "bets.csv");
    const s = await open(path, { fsync: "batch" });
    try {
      await store(s, 1, 0, bets(0, 2));
      await store(s, 1, 1, bets(2, 2));
      const before = await Deno.readFile(path);
      await t.step("a stored batch sent again is acknowledged without being written", async () => {
        const retry = s.storeBets(1, 0, bets(0, 2));
        assert.equal(retry.kind, "retry");
        if (retry.kind === "retry") await retry.same;
        assert.deepEqual(await Deno.readFile(path), before);
      });
      await t.step("other bets under a stored sequence are a CONFLICT", async () => {
        const retry = s.storeBets(1, 1, bets(100, 5));
        assert.equal(retry.kind, "retry");
        if (retry.kind !== "retry") return;
        await assert.rejects(
          () => retry.same,
          isKind(
            "conflict",
            /^Batch 1 of agency 1 is not the batch stored under that sequence \(2 bets stored, 5 sent\), so this agency's bets were already loaded from other data; to start a fresh draw/,
          ),
        );
        assert.deepEqual(await Deno.readFile(path), before);
      });
      await t.step("exercise 5's single bet, then exercise 6's first batch", async () => {
        await store(s, 2, 0, [bet(7)]);
        const retry = s.storeBets(2, 0, bets(7, 100));
        assert.equal(retry.kind, "retry");
        if (retry.kind === "retry") {
          await assert.rejects(() => retry.same, isKind("conflict"));
        }
      });
      await t.step("a retry of a queued batch waits for it, then compares", async () => {
        const watcher = recorder();
        using _ = s.watch(3, watcher);
        assert.equal(s.storeBets(3, 0, bets(10, 3)).kind, "queued");
        const same = s.storeBets(3, 0, bets(10, 3));
        const other = s.storeBets(3, 0, bets(11, 3));
        assert.ok(same.kind === "retry" && other.kind === "retry");
        const conflict = assert.rejects(() => other.same, isKind("conflict"));
        await same.same;
        assert.deepEqual(watcher.heard, ["durable 1"], "the first was durable before");
        await conflict;
      });
      assert.deepEqual(s.stats, { bets: 8, batches: 4, winners: 2 });
    } finally {
      await s.close();
    }
  });
});

Deno.test("BetStore.storeRows() refuses a sequence gap with OUT_OF_ORDER", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "bets.csv");
    const s = await open(path);
    try {
      assert.throws(
        () => s.storeBets(2, 1, bets(0, 1)),
        isKind("outOfOrder", /^Batch 1 of agency 2 is out of order, expected 0$/),
      );
      await store(s, 2, 0, bets(0, 1));
      assert.throws(
        () => s.storeBets(2, 5, bets(0, 1)),
        isKind("outOfOrder", /^Batch 5 of agency 2 is out of order, expected 1$/),
      );
      assert.throws(() => s.storeBets(6, 0, bets(0, 1)), isKind("unknownAgency"));
      assert.equal(rowsIn(await Deno.readTextFile(path)), 1);
      assert.deepEqual(s.progress(2), { nextSeq: 1, done: false, excluded: false });
    } finally {
      await s.close();
    }
  });
});

Deno.test("BetStore.watch() says explicitly how far an agency's batches are durable", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "bets.csv");
    const s = await open(path);
    try {
      const one = recorder();
      const other = recorder();
      const watching = s.watch(1, one);
      using _ = s.watch(2, other);
      for (let seq = 0; seq < 3; seq++) s.storeBets(1, seq, bets(seq, 1));
      // Queued but not durable: WELCOME must not count them.
      assert.deepEqual(s.progress(1), { nextSeq: 0, done: false, excluded: false });
      await s.flush();
      assert.equal(one.heard.at(-1), "durable 3");
      assert.deepEqual(other.heard, [], "another agency hears nothing");
      assert.deepEqual(s.progress(1), { nextSeq: 3, done: false, excluded: false });
      // A commit landing while later batches are queued leaves them taken.
      const durable = Promise.withResolvers<void>();
      using _second = s.watch(1, { durable: () => durable.resolve(), failed: () => {} });
      assert.equal(s.storeBets(1, 3, bets(3, 1)).kind, "queued");
      assert.equal(s.storeBets(1, 4, bets(4, 1)).kind, "queued");
      await durable.promise;
      assert.equal(s.storeBets(1, 5, bets(5, 1)).kind, "queued");
      await s.flush();
      assert.equal(one.heard.at(-1), "durable 6");
      watching[Symbol.dispose]();
      await store(s, 1, 6, bets(6, 1));
      assert.equal(one.heard.at(-1), "durable 6", "a disposed watch hears nothing more");
    } finally {
      await s.close();
    }
  });
});

Deno.test("BetStore.markDone() is durable and refuses later batches", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "bets.csv");
    const s = await open(path);
    try {
      await store(s, 3, 0, bets(0, 2));
      await s.markDone(3);
      await s.markDone(3);
      assert.deepEqual(s.progress(3), { nextSeq: 1, done: true, excluded: false });
      assert.deepEqual(s.doneAgencies(), [3]);
      assert.throws(
        () => s.storeBets(3, 1, bets(2, 1)),
        isKind("afterDone", /^Agency 3 is already done$/),
      );
      const retry = s.storeBets(3, 0, bets(0, 2));
      assert.equal(retry.kind, "retry", "a retry of a stored batch is still compared");
      if (retry.kind === "retry") await retry.same;
      const journal = decodeJournal(await Deno.readFile(`${path}.journal`));
      assert.deepEqual(journal.entries.slice(1).map((r) => [r.kind, "agency" in r && r.agency]), [
        [RecordKind.BATCH, 3],
        [RecordKind.DONE, 3],
      ]);
    } finally {
      await s.close();
    }
  });
});

Deno.test("BetStore.exclude() leaves an agency out of the totals, durably, and refuses it", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "bets.csv");
    const s = await open(path);
    await store(s, 1, 0, bets(0, 10));
    await store(s, 4, 0, bets(10, 5));
    await store(s, 4, 1, bets(15, 5));
    await s.markDone(1);
    assert.equal(await s.exclude(4), true);
    assert.equal(await s.exclude(4), false, "once is enough");
    assert.deepEqual(s.stats, { bets: 10, batches: 1, winners: 1 });
    assert.deepEqual(s.progress(4), { nextSeq: 2, done: false, excluded: true });
    assert.throws(
      () => s.storeBets(4, 2, bets(20, 1)),
      isKind("excluded", /left out of this draw/),
    );
    assert.throws(() => s.markDone(4), isKind("excluded"));
    await assert.rejects(
      () => s.exclude(1),
      isRefusal(/SERVER_EXCLUDED_AGENCIES names agency 1, which has already sent all its bets/),
    );
    await s.close();
    assert.equal(rowsIn(await Deno.readTextFile(path)), 20, "its bets stay in bets.csv");

    const again = await open(path);
    try {
      assert.deepEqual(again.excludedAgencies(), [4], "a restart keeps the exclusion");
      assert.deepEqual(again.stats, { bets: 10, batches: 1, winners: 1 });
    } finally {
      await again.close();
    }
  });
});

Deno.test("BetStore.loadBets() streams back every stored bet in order", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "bets.csv");
    const s = await open(path);
    try {
      assert.deepEqual(await collect(s), []);
      const tricky = [
        bet(1, { firstName: "Perez, Juan", lastName: 'O"Brien' }),
        bet(2, { firstName: "José", lastName: "Ñandú" }),
      ];
      await store(s, 1, 0, tricky);
      const many = bets(10, 2000);
      await store(s, 2, 0, many);
      assert.deepEqual(await collect(s), [
        ...tricky.map((b) => ({ agency: 1, ...b })),
        ...many.map((b) => ({ agency: 2, ...b })),
      ]);
    } finally {
      await s.close();
    }
  });
});

Deno.test("BetStore.loadBets(number) gives exactly the rows playing it, past 1 MiB", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "bets.csv");
    const s = await open(path);
    try {
      // Look-alikes of the needle: 7574 in names and documents, numbers sharing its digits,
      // quoted names; and over 1 MiB of rows, so the search crosses chunks.
      const tricky = [
        bet(1, { firstName: "7574", lastName: ",7574", number: 757 }),
        bet(2, { firstName: 'Juan "7574"', document: "7574", number: 574 }),
        bet(3, { firstName: "Perez, 7574", number: 7574 }),
        bet(4, { number: 4 }),
        bet(5, { number: 7574 }),
      ];
      await store(s, 1, 0, tricky);
      for (let seq = 0; seq < 30; seq++) s.storeBets(2, seq, bets(seq * 1000, 1000));
      await s.flush();
      assert.ok((await Deno.stat(path)).size > 1024 * 1024);
      const winners: Bet[] = [];
      for await (const b of s.loadBets(7574)) winners.push(b);
      const expected = (await collect(s)).filter((b) => b.number === 7574);
      // Two of the tricky ones, every tenth bet, and bets 7574, 17574 and 27574.
      assert.equal(expected.length, 2 + 3000 + 3);
      assert.deepEqual(winners, expected);
    } finally {
      await s.close();
    }
  });
});

Deno.test("BetStore.loadBets(7574) finds every winner when few batches hold one", async (t) => {
  await withDir(async (dir) => {
    const path = join(dir, "bets.csv");
    // 450 batches of 50 (over 1 MiB) without a winner, look-alikes only, but for a few.
    const plain = (seq: number): BetFields[] =>
      bets(seq * 50, 50).map((b, i) => ({
        ...b,
        number: 757 + i,
        firstName: i === 0 ? "7574" : b.firstName,
        document: i === 1 ? "7574" : b.document,
      }));
    // Among the few, the batch the first 1 MiB chunk of the file ends in, and the one after.
    let offset = 0;
    let straddling = -1;
    for (let seq = 0; straddling < 0; seq++) {
      offset += formatBetRows(1, plain(seq)).length;
      if (offset > 1024 * 1024) straddling = seq;
    }
    const withWinners = new Set([0, 3, 17, 18, straddling, straddling + 1, 449]);
    const batch = (seq: number) => {
      const batch = plain(seq);
      if (withWinners.has(seq)) batch[seq % 50] = { ...batch[seq % 50]!, number: 7574 };
      return batch;
    };
    const expected = async (s: BetStore) => (await collect(s)).filter((b) => b.number === 7574);
    const winners = async (s: BetStore) => {
      const out: Bet[] = [];
      for await (const b of s.loadBets(7574)) out.push(b);
      return out;
    };
    const s = await open(path);
    try {
      for (let seq = 0; seq < 450; seq++) s.storeBets(1, seq, batch(seq));
      s.storeBets(2, 0, [bet(3, { number: 7574 })]);
      await s.flush();
      await t.step("in the run that stored them", async () => {
        assert.equal((await expected(s)).length, withWinners.size + 1);
        assert.deepEqual(await winners(s), await expected(s));
      });
    } finally {
      await s.close();
    }
    await t.step("after reopening, from the journal", async () => {
      const reopened = await open(path);
      try {
        await store(reopened, 1, 450, plain(450));
        assert.equal((await expected(reopened)).length, withWinners.size + 1);
        assert.deepEqual(await winners(reopened), await expected(reopened));
      } finally {
        await reopened.close();
      }
    });
  });
});

Deno.test("BetStore stores correctly under every fsync policy", async (t) => {
  for (const fsync of ["off", "batch", "group"] as FsyncPolicy[]) {
    await t.step(fsync, async () => {
      await withDir(async (dir) => {
        const path = join(dir, "bets.csv");
        const s = await open(path, { fsync });
        for (let seq = 0; seq < 5; seq++) s.storeBets(1, seq, bets(seq * 3, 3));
        await s.markDone(1);
        assert.deepEqual(s.stats, { bets: 15, batches: 5, winners: 2 });
        await s.close();
        const reopened = await open(path, { fsync });
        try {
          assert.deepEqual(reopened.stats, s.stats);
          assert.deepEqual(reopened.progress(1), { nextSeq: 5, done: true, excluded: false });
          assert.deepEqual(
            (await collect(reopened)).map((b) => b.document),
            bets(0, 15).map((b) => b.document),
          );
        } finally {
          await reopened.close();
        }
      });
    });
  }
});

Deno.test("BetStore.storeBets() from several agencies at once stores each bet exactly once", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "bets.csv");
    const agencies = 8;
    const s = await open(path, { agencies });
    try {
      const batchesPerAgency = 15;
      const perBatch = 7;
      const retries: Promise<void>[] = [];
      // Interleave agencies, queue each agency's batches without waiting, and retry some.
      for (let seq = 0; seq < batchesPerAgency; seq++) {
        for (let agency = 1; agency <= agencies; agency++) {
          const first = (agency * 1000) + seq * perBatch;
          assert.equal(s.storeBets(agency, seq, bets(first, perBatch)).kind, "queued");
          if (seq > 0 && agency % 2 === 0) {
            const previous = (agency * 1000) + (seq - 1) * perBatch;
            const retry = s.storeBets(agency, seq - 1, bets(previous, perBatch));
            if (retry.kind === "retry") retries.push(retry.same);
          }
        }
      }
      await Promise.all(retries);
      await s.flush();
      const all = await collect(s);
      assert.equal(all.length, agencies * batchesPerAgency * perBatch);
      const documents = new Set(all.map((b) => b.document));
      assert.equal(documents.size, all.length, "no bet twice");
      for (let agency = 1; agency <= agencies; agency++) {
        const mine = all.filter((b) => b.agency === agency).map((b) => b.document);
        const expected = bets(agency * 1000, batchesPerAgency * perBatch).map((b) => b.document);
        assert.deepEqual(mine, expected, `agency ${agency} in sequence order`);
        assert.deepEqual(s.progress(agency).nextSeq, batchesPerAgency);
      }
      assert.equal(s.stats.batches, agencies * batchesPerAgency);
      assert.equal(s.stats.bets, all.length);
      assert.equal(rowsIn(await Deno.readTextFile(path)), all.length, "every row is whole");
    } finally {
      await s.close();
    }
  });
});

Deno.test("BetStore after a write it cannot undo: durable state only, a restart needed", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "bets.csv");
    // /dev/full fails every write with ENOSPC, and cannot be truncated: no undo.
    await Deno.symlink("/dev/full", path);
    const failures: StorageFailure[] = [];
    const s = await open(path, { onFailure: (failure) => failures.push(failure) });
    try {
      const watcher = recorder();
      using _ = s.watch(1, watcher);
      assert.equal(s.storeBets(1, 0, bets(0, 2)).kind, "queued");
      assert.equal(s.storeBets(1, 1, bets(2, 2)).kind, "queued");
      const done = s.markDone(1);
      await assert.rejects(() => done, isKind("failed"));
      assert.deepEqual(watcher.heard, ["failed 0 failed"]);
      assert.equal(failures.length, 1, "reported once");
      assert.equal(failures[0]!.path, path);
      assert.equal(failures[0]!.recovers, false);
      assert.match(String(failures[0]!.error), /No space left on device/);
      assert.deepEqual(s.progress(1), { nextSeq: 0, done: false, excluded: false });
      assert.deepEqual(s.stats, { bets: 0, batches: 0, winners: 0 });
      assert.throws(
        () => s.storeBets(1, 0, bets(0, 2)),
        isKind("failed", /needs a restart/),
      );
      assert.equal(failures.length, 1, "still reported once");
    } finally {
      await s.close();
    }
  });
});

Deno.test("BetStore.open() names SERVER_STORAGE_PATH when the path cannot be used", async (t) => {
  await withDir(async (dir) => {
    await t.step("a missing folder", async () => {
      const path = join(dir, "nope", "bets.csv");
      await assert.rejects(
        () => open(path),
        isRefusal(
          new RegExp(`^Cannot use SERVER_STORAGE_PATH ${path} because its folder does not exist$`),
        ),
      );
    });
    await t.step("a folder", async () => {
      await Deno.mkdir(join(dir, "folder.csv.lock"), { recursive: true });
      await assert.rejects(
        () => open(join(dir, "folder.csv")),
        isRefusal(/^Cannot use SERVER_STORAGE_PATH/),
      );
    });
  });
});

Deno.test("BetStore refuses work after close with SHUTTING_DOWN", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "bets.csv");
    const s = await open(path);
    s.storeBets(1, 0, bets(0, 2));
    await s.close();
    assert.equal(rowsIn(await Deno.readTextFile(path)), 2, "close() writes what was queued");
    assert.throws(() => s.storeBets(1, 1, bets(2, 1)), isKind("closed"));
    assert.throws(() => s.markDone(1), isKind("closed"));
  });
});

Deno.test("BetStore supports await using", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "bets.csv");
    {
      await using s = await open(path);
      await store(s, 1, 0, bets(0, 1));
    }
    const reopened = await open(path);
    try {
      assert.equal(reopened.stats.bets, 1);
    } finally {
      await reopened.close();
    }
  });
});

/** Collects what `loadBets(number)` yields, or the error it throws. */
async function drain(s: BetStore, number?: number): Promise<Bet[]> {
  const out: Bet[] = [];
  for await (const b of s.loadBets(number)) out.push(b);
  return out;
}

Deno.test("BetStore.loadBets() finds an edit of stored rows, same length, and yields nothing of it", async (t) => {
  for (const winnersOnly of [false, true]) {
    await t.step(winnersOnly ? "the draw's read (winning number)" : "every row", async () => {
      await withDir(async (dir) => {
        const path = join(dir, "bets.csv");
        const s = await open(path);
        try {
          await store(s, 1, 0, bets(0, 3));
          await store(s, 2, 0, [{ ...bet(10), number: 7574 }, bet(11)]);
          assert.ok((await drain(s, 7574)).length >= 1);
          // Another process edits a digit of the winner's document in place.
          const bytes = await Deno.readFile(path);
          const at = new TextDecoder().decode(bytes).indexOf(bet(10).document);
          bytes[at] = bytes[at] === 0x31 ? 0x32 : 0x31;
          await Deno.writeFile(path, bytes);
          await assert.rejects(
            () => drain(s, winnersOnly ? 7574 : undefined),
            isKind("damaged", /were changed after they were stored, their checksum is/),
          );
        } finally {
          await s.close();
        }
      });
    });
  }
});

Deno.test("BetStore reads the files it opened, whatever the path names later", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "bets.csv");
    const s = await open(path);
    try {
      await store(s, 1, 0, [{ ...bet(1), number: 7574 }, bet(2)]);
      await Deno.rename(path, join(dir, "moved.csv"));
      assert.deepEqual((await drain(s, 7574)).map((b) => b.document), [bet(1).document]);
      assert.equal((await drain(s)).length, 2);
      const retry = s.storeBets(1, 0, [{ ...bet(1), number: 7574 }, bet(2)]);
      assert.equal(retry.kind, "retry");
      if (retry.kind === "retry") await retry.same;
    } finally {
      await s.close();
    }
  });
});

Deno.test("BetStore refuses to acknowledge once the path names another file, for good", async (t) => {
  for (const change of ["bets.csv replaced by a copy", "bets.csv moved away", "journal moved"]) {
    await t.step(change, async () => {
      await withDir(async (dir) => {
        const path = join(dir, "bets.csv");
        const failures: StorageFailure[] = [];
        const s = await open(path, { onFailure: (failure) => failures.push(failure) });
        try {
          await store(s, 1, 0, bets(0, 2));
          if (change === "bets.csv replaced by a copy") {
            await Deno.copyFile(path, join(dir, "snap"));
            await Deno.rename(join(dir, "snap"), path);
          } else if (change === "bets.csv moved away") {
            await Deno.rename(path, join(dir, "away.csv"));
          } else {
            await Deno.rename(`${path}.journal`, join(dir, "away.journal"));
          }
          const watcher = recorder();
          using _ = s.watch(1, watcher);
          s.storeBets(1, 1, bets(2, 2));
          await s.flush();
          assert.deepEqual(watcher.heard, ["failed 1 failed"]);
          assert.equal(failures.length, 1);
          assert.equal(failures[0]!.recovers, false);
          assert.match(String(failures[0]!.error), /is (now another file|gone)/);
          assert.deepEqual(s.progress(1).nextSeq, 1, "nothing more is durable");
          assert.throws(() => s.storeBets(1, 1, bets(2, 2)), isKind("failed", /needs a restart/));
        } finally {
          await s.close();
        }
      });
    });
  }
});

Deno.test("BetStore.open() refuses a second store through any link to the same files", async (t) => {
  await withDir(async (dir) => {
    const path = join(dir, "bets.csv");
    const s = await open(path);
    try {
      await store(s, 1, 0, bets(0, 2));
      await t.step("the lock file deleted", async () => {
        await Deno.remove(`${path}.lock`);
        await assert.rejects(() => open(path), isRefusal(/is in use by another server/));
      });
      await t.step("hard links in another folder", async () => {
        await Deno.mkdir(join(dir, "other"));
        const other = join(dir, "other", "bets.csv");
        await Deno.link(path, other);
        await Deno.link(`${path}.journal`, `${other}.journal`);
        await assert.rejects(() => open(other), isRefusal(/is in use by another server/));
      });
    } finally {
      await s.close();
    }
    const again = await open(path);
    await again.close();
  });
});

Deno.test("BetStore.checkExclusions() counts the exclusions the journal holds", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "bets.csv");
    const s = await open(path);
    try {
      await s.exclude(1);
      s.checkExclusions([2, 3, 4]);
      assert.throws(
        () => s.checkExclusions([2, 3, 4, 5]),
        isRefusal(/names agencies 2 3 4 5, and the journal of .* already excludes 1, so every/),
      );
      await s.exclude(2);
      await s.exclude(3);
      await s.exclude(4);
      await assert.rejects(() => s.exclude(5), isRefusal(/every agency of the draw/));
      assert.deepEqual(s.excludedAgencies(), [1, 2, 3, 4]);
    } finally {
      await s.close();
    }
  });
});

Deno.test("BetStore.open() says a folder is a folder", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "bets.csv");
    await Deno.mkdir(path);
    await assert.rejects(() => open(path), isRefusal(/because it is a folder, not a file$/));
  });
});

Deno.test("BetStore compares retries and loads bets while groups are being appended", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "bets.csv");
    const s = await open(path);
    try {
      for (let seq = 0; seq < 5; seq++) await store(s, 1, seq, bets(seq * 10, 10));
      const work: Promise<unknown>[] = [];
      for (let seq = 0; seq < 40; seq++) {
        s.storeBets(2, seq, bets(1000 + seq * 10, 10));
        const retry = s.storeBets(1, seq % 5, bets((seq % 5) * 10, 10));
        assert.equal(retry.kind, "retry");
        if (retry.kind === "retry") work.push(retry.same);
        if (seq % 10 === 0) work.push(drain(s));
        // Let the writer start a group between retries.
        await Promise.resolve();
      }
      await Promise.all(work);
      await s.flush();
      assert.equal((await drain(s)).length, 450);
    } finally {
      await s.close();
    }
  });
});

Deno.test("BetStore.open() checks a storage of over 64 MiB (zlib's CRC) as a small one", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "bets.csv");
    // 21 batches of 65,535 rows of 50 bytes: about 69 MB, written directly.
    const row = "1,Nombre,Apellido,30904465,1990-01-01,1234567890\r\n";
    assert.equal(row.length, 50);
    const rows = encoder.encode(row.repeat(65_535));
    const batches = 21;
    const journal = new Uint8Array((batches + 1) * RECORD_SIZE);
    journal.set(encodeHeader({ format: 3, agencies: 5, drawId: "0123456789abcdef", createdAt: 1 }));
    const crc = rowsChecksum(rows);
    for (let seq = 0; seq < batches; seq++) {
      const end = (seq + 1) * rows.length;
      const record = { kind: RecordKind.BATCH, agency: 1, seq, bets: 65_535, winners: 0, end };
      encodeRecord({ ...record, rowsCrc: crc }, journal, (seq + 1) * RECORD_SIZE);
    }
    {
      using file = await Deno.open(path, { write: true, create: true });
      for (let seq = 0; seq < batches; seq++) await file.write(rows);
    }
    await Deno.writeFile(`${path}.journal`, journal);
    const s = await open(path);
    assert.equal(s.stats.bets, batches * 65_535);
    await s.close();
    // One digit changed in the middle of batch 10.
    {
      using file = await Deno.open(path, { write: true });
      await file.seek(10 * rows.length + 1000 * 50 + 12, Deno.SeekMode.Start);
      await file.write(encoder.encode("8"));
    }
    await assert.rejects(
      () => open(path),
      isRefusal(
        new RegExp(
          `bytes ${10 * rows.length} to ${11 * rows.length} of bets\\.csv were changed after`,
        ),
      ),
    );
  });
});

Deno.test("BetStore.loadBets() reports a row it cannot parse as damage, naming its bytes", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "bets.csv");
    // A row of seven columns whose journal record matches it: only parsing can tell.
    const rows = encoder.encode("1,A,B,C,30904465,1990-01-01,7574\r\n");
    const journal = new Uint8Array(2 * RECORD_SIZE);
    journal.set(encodeHeader({ format: 3, agencies: 5, drawId: "0123456789abcdef", createdAt: 1 }));
    encodeRecord(
      {
        kind: RecordKind.BATCH,
        agency: 1,
        seq: 0,
        bets: 1,
        winners: 1,
        end: rows.length,
        rowsCrc: rowsChecksum(rows),
      },
      journal,
      RECORD_SIZE,
    );
    await Deno.writeFile(path, rows);
    await Deno.writeFile(`${path}.journal`, journal);
    const s = await open(path);
    try {
      await assert.rejects(
        () => drain(s, 7574),
        isKind(
          "damaged",
          new RegExp(
            `bytes 0 to ${rows.length} of bets\\.csv hold a row it cannot parse, .*expected 6 columns`,
          ),
        ),
      );
    } finally {
      await s.close();
    }
  });
});
