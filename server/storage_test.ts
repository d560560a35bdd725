import assert from "node:assert/strict";
import { join } from "node:path";
import type { Bet, BetFields } from "../shared/bet.ts";
import { ErrorCode, ProtocolError } from "../shared/errors.ts";
import { decodeJournal, RECORD_SIZE, RecordKind } from "./journal.ts";
import { BetStore, formatBetRows, type FsyncPolicy } from "./storage.ts";

const decoder = new TextDecoder();

function bet(i: number, overrides: Partial<BetFields> = {}): BetFields {
  return {
    firstName: `Nombre${i}`,
    lastName: `Apellido${i}`,
    document: String(10_000_000 + i),
    birthdate: "1990-05-17",
    number: i % 10 === 0 ? 7574 : i % 10_000,
    ...overrides,
  };
}

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

async function collect(store: BetStore): Promise<Bet[]> {
  const out: Bet[] = [];
  for await (const b of store.loadBets()) out.push(b);
  return out;
}

function rowOf(agency: number, b: BetFields): string {
  return `${agency},${b.firstName},${b.lastName},${b.document},${b.birthdate},${b.number}\r\n`;
}

async function rejectsWithCode(fn: () => unknown, code: ErrorCode, message?: RegExp) {
  await assert.rejects(async () => await fn(), (error: unknown) => {
    assert.ok(error instanceof ProtocolError, `expected ProtocolError, got ${error}`);
    assert.equal(error.code, code);
    if (message) assert.match(error.message, message);
    return true;
  });
}

Deno.test("formatBetRows() writes rows like Python's csv.writer", async (t) => {
  const cases: [string, Partial<BetFields>, string][] = [
    [
      "plain fields",
      {
        firstName: "Santiago Lionel",
        lastName: "Lorca",
        document: "30904465",
        birthdate: "1999-03-17",
        number: 7574,
      },
      "7,Santiago Lionel,Lorca,30904465,1999-03-17,7574\r\n",
    ],
    ["a comma is quoted", { firstName: "Perez, Juan" }, '7,"Perez, Juan",'],
    ["a quote is doubled and quoted", { lastName: 'O"Brien' }, ',"O""Brien",'],
    ["spaces and accents are not quoted", { firstName: " José Ñandú " }, "7, José Ñandú ,"],
    ["an empty field stays empty", { lastName: "" }, ",,"],
  ];
  for (const [name, change, expected] of cases) {
    await t.step(name, () => {
      const row = formatBetRows(7, [bet(1, change)]);
      assert.ok(row.includes(expected), `${JSON.stringify(row)} lacks ${JSON.stringify(expected)}`);
      assert.ok(row.endsWith("\r\n"));
    });
  }
  await t.step("several rows, each ending in CRLF", () => {
    assert.equal(formatBetRows(2, [bet(1), bet(2)]), rowOf(2, bet(1)) + rowOf(2, bet(2)));
  });
  await t.step("no bets, no text", () => assert.equal(formatBetRows(1, []), ""));
});

Deno.test("formatBetRows() quotes a field holding a lone CR or LF, as Python does", () => {
  // Python's csv.writer (QUOTE_MINIMAL, lineterminator "\r\n") quotes any field containing
  // "\r" or "\n"; csv-stringify only quotes the whole record delimiter "\r\n".
  assert.equal(
    formatBetRows(1, [bet(1, { firstName: "a\nb", lastName: "c\rd" })]),
    `1,"a\nb","c\rd",10000001,1990-05-17,1\r\n`,
  );
});

Deno.test("BetStore.storeBets() appends CSV rows in the course's column order", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "bets.csv");
    const store = await BetStore.open({ path });
    try {
      const batch = [
        bet(1, { firstName: "Perez, Juan" }),
        bet(2, { lastName: 'O"Brien' }),
        bet(3, { number: 7574 }),
      ];
      assert.equal(await store.storeBets(4, 0, batch), "stored");
      assert.equal(
        await Deno.readTextFile(path),
        `4,"Perez, Juan",Apellido1,10000001,1990-05-17,1\r\n` +
          `4,Nombre2,"O""Brien",10000002,1990-05-17,2\r\n` +
          `4,Nombre3,Apellido3,10000003,1990-05-17,7574\r\n`,
      );
      assert.deepEqual(store.stats, { bets: 3, batches: 1, winners: 1, recoveredBytes: 0 });
      assert.deepEqual(store.progress(4), { nextSeq: 1, done: false });
      assert.deepEqual(store.progress(5), { nextSeq: 0, done: false });
      assert.equal(store.path, path);
    } finally {
      await store.close();
    }
  });
});

Deno.test("BetStore.storeBets() acknowledges a repeated sequence as duplicate without writing", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "bets.csv");
    const store = await BetStore.open({ path });
    try {
      await store.storeBets(1, 0, bets(0, 2));
      await store.storeBets(1, 1, bets(2, 2));
      const before = await Deno.readFile(path);
      assert.equal(await store.storeBets(1, 0, bets(0, 2)), "duplicate");
      assert.equal(await store.storeBets(1, 1, bets(100, 5)), "duplicate");
      assert.deepEqual(await Deno.readFile(path), before);
      assert.deepEqual(store.stats, { bets: 4, batches: 2, winners: 1, recoveredBytes: 0 });
      assert.deepEqual(store.progress(1), { nextSeq: 2, done: false });
    } finally {
      await store.close();
    }
  });
});

Deno.test("BetStore.storeBets() makes an in-flight duplicate wait for the original", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "bets.csv");
    const store = await BetStore.open({ path, fsync: "batch" });
    try {
      const original = store.storeBets(1, 0, bets(0, 3));
      const repeat = store.storeBets(1, 0, bets(0, 3));
      assert.equal(await repeat, "duplicate");
      // By the time the duplicate is acknowledged, the original is on disk.
      assert.equal((await Deno.readTextFile(path)).split("\r\n").length - 1, 3);
      assert.equal(await original, "stored");
    } finally {
      await store.close();
    }
  });
});

Deno.test("BetStore.storeBets() refuses a sequence gap with OUT_OF_ORDER", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "bets.csv");
    const store = await BetStore.open({ path });
    try {
      await rejectsWithCode(
        () => store.storeBets(2, 1, bets(0, 1)),
        ErrorCode.OUT_OF_ORDER,
        /^Batch 1 of agency 2 is out of order: expected 0$/,
      );
      await store.storeBets(2, 0, bets(0, 1));
      await rejectsWithCode(
        () => store.storeBets(2, 5, bets(0, 1)),
        ErrorCode.OUT_OF_ORDER,
        /^Batch 5 of agency 2 is out of order: expected 1$/,
      );
      assert.equal((await Deno.readTextFile(path)).split("\r\n").length - 1, 1);
      assert.deepEqual(store.progress(2), { nextSeq: 1, done: false });
    } finally {
      await store.close();
    }
  });
});

Deno.test("BetStore.markDone() is durable and refuses later batches", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "bets.csv");
    const store = await BetStore.open({ path });
    try {
      await store.storeBets(3, 0, bets(0, 2));
      await store.markDone(3);
      await store.markDone(3);
      assert.deepEqual(store.progress(3), { nextSeq: 1, done: true });
      assert.deepEqual(store.doneAgencies(), [3]);
      await rejectsWithCode(
        () => store.storeBets(3, 1, bets(2, 1)),
        ErrorCode.UNEXPECTED_MESSAGE,
        /^Agency 3 is already done$/,
      );
      const journal = decodeJournal(await Deno.readFile(`${path}.journal`));
      assert.deepEqual(journal.map((r) => [r.kind, r.agency]), [
        [RecordKind.BATCH, 3],
        [RecordKind.DONE, 3],
      ]);
    } finally {
      await store.close();
    }
  });
});

Deno.test("BetStore.open() restores progress, done agencies and stats after close", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "bets.csv");
    const first = await BetStore.open({ path });
    await first.storeBets(1, 0, bets(0, 10));
    await first.storeBets(1, 1, bets(10, 10));
    await first.storeBets(2, 0, bets(20, 5));
    await first.markDone(2);
    const stats = first.stats;
    assert.deepEqual(stats, { bets: 25, batches: 3, winners: 3, recoveredBytes: 0 });
    await first.close();
    await first.close();

    const again = await BetStore.open({ path });
    try {
      assert.deepEqual(again.stats, stats);
      assert.deepEqual(again.progress(1), { nextSeq: 2, done: false });
      assert.deepEqual(again.progress(2), { nextSeq: 1, done: true });
      assert.deepEqual(again.doneAgencies(), [2]);
      assert.equal(await again.storeBets(1, 1, bets(10, 10)), "duplicate");
      assert.equal(await again.storeBets(1, 2, bets(30, 1)), "stored");
      assert.equal((await collect(again)).length, 26);
    } finally {
      await again.close();
    }
  });
});

Deno.test("BetStore.open() recovers from a crash mid-write", async (t) => {
  await withDir(async (dir) => {
    const path = join(dir, "bets.csv");
    const journalPath = `${path}.journal`;
    const store = await BetStore.open({ path });
    await store.storeBets(1, 0, bets(0, 4));
    await store.storeBets(2, 0, bets(4, 4));
    await store.close();
    const goodData = await Deno.readFile(path);
    const goodJournal = await Deno.readFile(journalPath);

    await t.step("a torn row and a torn journal record are cut off", async () => {
      const garbage = new TextEncoder().encode('1,Juan,"Pe');
      await Deno.writeFile(path, garbage, { append: true });
      await Deno.writeFile(journalPath, new Uint8Array(RECORD_SIZE - 5).fill(0x4a), {
        append: true,
      });
      const reopened = await BetStore.open({ path });
      try {
        assert.deepEqual(reopened.stats, {
          bets: 8,
          batches: 2,
          winners: 1,
          recoveredBytes: garbage.length,
        });
        assert.deepEqual(await Deno.readFile(path), goodData);
        assert.deepEqual(await Deno.readFile(journalPath), goodJournal);
        assert.deepEqual(reopened.progress(1), { nextSeq: 1, done: false });
        assert.equal(await reopened.storeBets(1, 1, bets(8, 1)), "stored");
        const all = await collect(reopened);
        assert.equal(all.length, 9);
        assert.equal(all.at(-1)!.document, bet(8).document);
      } finally {
        await reopened.close();
      }
    });

    await t.step("whole rows without a journal record are unacknowledged and cut off", async () => {
      const before = await Deno.readFile(path);
      await Deno.writeFile(path, new TextEncoder().encode(formatBetRows(2, bets(50, 3))), {
        append: true,
      });
      const reopened = await BetStore.open({ path });
      try {
        assert.ok(reopened.stats.recoveredBytes > 0);
        assert.equal(reopened.stats.bets, 9);
        assert.deepEqual(await Deno.readFile(path), before);
        assert.deepEqual(reopened.progress(2), { nextSeq: 1, done: false });
      } finally {
        await reopened.close();
      }
    });

    await t.step("a journal record pointing past the data is dropped (data lagged)", async () => {
      const data = await Deno.readFile(path);
      const lastRow = rowOf(1, bet(8));
      await Deno.writeFile(path, data.subarray(0, data.length - 3));
      const reopened = await BetStore.open({ path });
      try {
        assert.equal(reopened.stats.bets, 8);
        assert.deepEqual(reopened.progress(1), { nextSeq: 1, done: false });
        const text = await Deno.readTextFile(path);
        assert.ok(!text.includes(lastRow.slice(0, -2)), "the half row is gone");
        assert.ok(text.endsWith("\r\n"));
        assert.equal(decodeJournal(await Deno.readFile(journalPath)).length, 2);
        assert.equal((await Deno.stat(journalPath)).size, 2 * RECORD_SIZE);
      } finally {
        await reopened.close();
      }
    });
  });
});

Deno.test("BetStore.open() keeps a bets.csv written before journals existed", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "bets.csv");
    await Deno.writeTextFile(path, rowOf(1, bet(1)));
    const store = await BetStore.open({ path });
    try {
      assert.equal(store.stats.recoveredBytes, 0);
      assert.equal((await collect(store)).length, 1);
    } finally {
      await store.close();
    }
  });
});

Deno.test("BetStore.loadBets() streams back every stored bet in order", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "bets.csv");
    const store = await BetStore.open({ path });
    try {
      assert.deepEqual(await collect(store), []);
      const tricky = [
        bet(1, { firstName: "Perez, Juan", lastName: 'O"Brien' }),
        bet(2, { firstName: "José", lastName: "Ñandú" }),
      ];
      await store.storeBets(1, 0, tricky);
      const many = bets(10, 2000);
      await store.storeBets(2, 0, many);
      const all = await collect(store);
      assert.deepEqual(all, [
        ...tricky.map((b) => ({ agency: 1, ...b })),
        ...many.map((b) => ({ agency: 2, ...b })),
      ]);
    } finally {
      await store.close();
    }
  });
});

Deno.test("BetStore.loadBets({ number }) gives exactly the rows playing it, past 1 MiB", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "bets.csv");
    const store = await BetStore.open({ path });
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
      await store.storeBets(1, 0, tricky);
      for (let seq = 0; seq < 30; seq++) await store.storeBets(2, seq, bets(seq * 1000, 1000));
      assert.ok((await Deno.stat(path)).size > 1024 * 1024);
      const winners: Bet[] = [];
      for await (const b of store.loadBets({ number: 7574 })) winners.push(b);
      const expected = (await collect(store)).filter((b) => b.number === 7574);
      // Two of the tricky ones, every tenth bet, and bets 7574, 17574 and 27574.
      assert.equal(expected.length, 2 + 3000 + 3);
      assert.deepEqual(winners, expected);
    } finally {
      await store.close();
    }
  });
});

Deno.test("BetStore.loadBets({ number: 7574 }) finds every winner when few batches hold one", async (t) => {
  await withDir(async (dir) => {
    const path = join(dir, "bets.csv");
    // Rows written before there was a journal: the store cannot know where their winners are.
    const legacy = [bet(1, { number: 7574 }), bet(2, { number: 12 })].map((b) => rowOf(9, b));
    await Deno.writeTextFile(path, legacy.join(""));
    // 450 batches of 50 (over 1 MiB) without a winner, look-alikes only, but for a few.
    const plain = (seq: number): BetFields[] =>
      bets(seq * 50, 50).map((b, i) => ({
        ...b,
        number: 757 + i,
        firstName: i === 0 ? "7574" : b.firstName,
        document: i === 1 ? "7574" : b.document,
      }));
    // Among the few, the batch the first 1 MiB chunk of the file ends in, and the one after.
    let offset = legacy.join("").length;
    let straddling = -1;
    for (let seq = 0; straddling < 0; seq++) {
      offset += formatBetRows(1, plain(seq)).length;
      if (offset > 1024 * 1024) straddling = seq;
    }
    const withWinners = new Set([3, 17, 18, straddling, straddling + 1, 449]);
    const batch = (seq: number) => {
      const batch = plain(seq);
      if (withWinners.has(seq)) batch[seq % 50] = { ...batch[seq % 50]!, number: 7574 };
      return batch;
    };
    const expected = async (store: BetStore) =>
      (await collect(store)).filter((b) => b.number === 7574);
    const winners = async (store: BetStore) => {
      const out: Bet[] = [];
      for await (const b of store.loadBets({ number: 7574 })) out.push(b);
      return out;
    };
    const store = await BetStore.open({ path });
    try {
      for (let seq = 0; seq < 450; seq++) await store.storeBets(1, seq, batch(seq));
      await store.storeBets(2, 0, [bet(3, { number: 7574 })]);
      await t.step("in the run that stored them", async () => {
        assert.equal((await expected(store)).length, 1 + withWinners.size + 1);
        assert.deepEqual(await winners(store), await expected(store));
      });
    } finally {
      await store.close();
    }
    await t.step("after reopening, from the journal", async () => {
      const reopened = await BetStore.open({ path });
      try {
        await reopened.storeBets(1, 450, plain(450));
        assert.equal((await expected(reopened)).length, 1 + withWinners.size + 1);
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
        const store = await BetStore.open({ path, fsync });
        const pending = [];
        for (let seq = 0; seq < 5; seq++) pending.push(store.storeBets(1, seq, bets(seq * 3, 3)));
        pending.push(store.markDone(1));
        await Promise.all(pending);
        assert.deepEqual(store.stats, { bets: 15, batches: 5, winners: 2, recoveredBytes: 0 });
        await store.close();
        const reopened = await BetStore.open({ path, fsync });
        try {
          assert.deepEqual(reopened.stats, store.stats);
          assert.deepEqual(reopened.progress(1), { nextSeq: 5, done: true });
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
    const store = await BetStore.open({ path });
    try {
      const agencies = 8;
      const batchesPerAgency = 15;
      const perBatch = 7;
      const calls: Promise<unknown>[] = [];
      // Interleave agencies, and queue each agency's batches without waiting for acks.
      for (let seq = 0; seq < batchesPerAgency; seq++) {
        for (let agency = 1; agency <= agencies; agency++) {
          const first = (agency * 1000) + seq * perBatch;
          calls.push(store.storeBets(agency, seq, bets(first, perBatch)));
          if (seq > 0 && agency % 2 === 0) calls.push(store.storeBets(agency, seq - 1, []));
        }
      }
      const outcomes = await Promise.all(calls);
      assert.equal(outcomes.filter((o) => o === "stored").length, agencies * batchesPerAgency);
      const all = await collect(store);
      assert.equal(all.length, agencies * batchesPerAgency * perBatch);
      const documents = new Set(all.map((b) => b.document));
      assert.equal(documents.size, all.length, "no bet twice");
      for (let agency = 1; agency <= agencies; agency++) {
        const mine = all.filter((b) => b.agency === agency).map((b) => b.document);
        const expected = bets(agency * 1000, batchesPerAgency * perBatch).map((b) => b.document);
        assert.deepEqual(mine, expected, `agency ${agency} in sequence order`);
        assert.deepEqual(store.progress(agency), { nextSeq: batchesPerAgency, done: false });
      }
      assert.equal(store.stats.batches, agencies * batchesPerAgency);
      assert.equal(store.stats.bets, all.length);
      const text = await Deno.readTextFile(path);
      assert.equal(text.split("\r\n").length - 1, all.length, "every row is whole");
    } finally {
      await store.close();
    }
  });
});

Deno.test("BetStore refuses work after close with SHUTTING_DOWN", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "bets.csv");
    const store = await BetStore.open({ path });
    const queued = store.storeBets(1, 0, bets(0, 2));
    await store.close();
    assert.equal(await queued, "stored", "close() writes what was queued");
    await rejectsWithCode(() => store.storeBets(1, 1, bets(2, 1)), ErrorCode.SHUTTING_DOWN);
    await rejectsWithCode(() => store.markDone(1), ErrorCode.SHUTTING_DOWN);
    assert.equal((await Deno.readTextFile(path)).split("\r\n").length - 1, 2);
  });
});

Deno.test("BetStore supports await using", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "bets.csv");
    {
      await using store = await BetStore.open({ path });
      await store.storeBets(1, 0, bets(0, 1));
    }
    const reopened = await BetStore.open({ path });
    try {
      assert.equal(reopened.stats.bets, 1);
    } finally {
      await reopened.close();
    }
  });
});

Deno.test("BetStore.storeBets() writes a row per bet with decoder-safe text", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "bets.csv");
    const store = await BetStore.open({ path });
    try {
      await store.storeBets(1, 0, [bet(1, { firstName: "Zoë" })]);
      const bytes = await Deno.readFile(path);
      assert.equal(decoder.decode(bytes), "1,Zoë,Apellido1,10000001,1990-05-17,1\r\n");
    } finally {
      await store.close();
    }
  });
});
