import assert from "node:assert/strict";
import type { Bet } from "../shared/bet.ts";
import { collectWinners, Lottery, type WinnersByAgency } from "./draw.ts";

function bet(agency: number, document: string, number: number): Bet {
  return { agency, document, number, firstName: "A", lastName: "B", birthdate: "2000-01-01" };
}

async function* stream(bets: readonly Bet[]): AsyncGenerator<Bet> {
  for (const b of bets) {
    await Promise.resolve();
    yield b;
  }
}

/** A Lottery whose draw counts its calls and resolves when told to. */
function countingLottery(agencies: number, winners: WinnersByAgency = new Map()) {
  const calls = { draw: 0, drawn: [] as [WinnersByAgency, number][] };
  const gate = Promise.withResolvers<void>();
  const lottery = new Lottery({
    agencies: Array.from({ length: agencies }, (_, i) => i + 1),
    draw: async () => {
      calls.draw++;
      await gate.promise;
      return winners;
    },
    onDrawn: (w, elapsed) => calls.drawn.push([w, elapsed]),
  });
  return { lottery, calls, release: () => gate.resolve() };
}

Deno.test("collectWinners() groups winning documents by agency, in order", async () => {
  const winners = await collectWinners(stream([
    bet(1, "111", 7574),
    bet(2, "222", 1),
    bet(1, "112", 7574),
    bet(3, "333", 7574),
    bet(2, "223", 7575),
    bet(1, "113", 0),
    bet(3, "334", 7574),
  ]));
  assert.deepEqual(
    winners,
    new Map([
      [1, ["111", "112"]],
      [3, ["333", "334"]],
    ]),
  );
  assert.equal(winners.get(2), undefined, "an agency without winners has no entry");
});

Deno.test("collectWinners() of no bets is empty", async () => {
  assert.equal((await collectWinners(stream([]))).size, 0);
});

Deno.test("Lottery status counts pending agencies before the draw", () => {
  const { lottery, calls } = countingLottery(3);
  assert.deepEqual(lottery.status, { drawn: false, pending: 3, pendingAgencies: [1, 2, 3] });
  assert.equal(lottery.pending, 3);
  assert.equal(lottery.markDone(2), undefined);
  assert.deepEqual(lottery.status, { drawn: false, pending: 2, pendingAgencies: [1, 3] });
  assert.equal(lottery.markDone(2), undefined, "marking twice counts once");
  assert.deepEqual(lottery.status, { drawn: false, pending: 2, pendingAgencies: [1, 3] });
  assert.equal(lottery.markDone(1), undefined);
  assert.deepEqual(lottery.status, { drawn: false, pending: 1, pendingAgencies: [3] });
  assert.equal(lottery.whenDrawn(), undefined);
  assert.equal(calls.draw, 0);
});

Deno.test("Lottery.markDone() runs the draw exactly once, when the last agency is in", async () => {
  const winners = new Map([[1, ["111"]], [2, ["221", "222"]]]);
  const { lottery, calls, release } = countingLottery(2, winners);
  assert.equal(lottery.markDone(1), undefined);
  const first = lottery.markDone(2);
  assert.ok(first);
  assert.deepEqual(
    lottery.status,
    { drawn: false, pending: 0, pendingAgencies: [] },
    "not drawn until it finishes",
  );
  const again = lottery.markDone(2);
  const other = lottery.markDone(1);
  assert.equal(again, first, "callers share the same draw");
  assert.equal(other, first);
  assert.equal(lottery.whenDrawn(), first);
  release();
  assert.equal(await first, winners);
  assert.equal(calls.draw, 1);
  assert.equal(calls.drawn.length, 1);
  assert.equal(calls.drawn[0]![0], winners);
  assert.ok(calls.drawn[0]![1] >= 0);
  assert.deepEqual(lottery.status, { drawn: true, winners, total: 3 });
  assert.equal(await lottery.markDone(1), winners, "after the draw, marking returns the result");
  assert.equal(calls.draw, 1);
  assert.deepEqual(lottery.status, { drawn: true, winners, total: 3 });
});

Deno.test("Lottery.markDone() from many concurrent callers draws once", async () => {
  const agencies = 20;
  const { lottery, calls, release } = countingLottery(agencies);
  const results = await Promise.all(
    Array.from({ length: agencies * 3 }, async (_, i) => {
      await new Promise((resolve) => setTimeout(resolve, i % 5));
      // Wrapped: returning the draw's promise itself would wait for the draw.
      return { draw: lottery.markDone((i % agencies) + 1) };
    }),
  );
  const draws = new Set(results.map((r) => r.draw).filter((d) => d !== undefined));
  assert.equal(draws.size, 1);
  release();
  await [...draws][0];
  assert.equal(calls.draw, 1);
  assert.equal(calls.drawn.length, 1);
  assert.equal(lottery.status.drawn, true);
});

Deno.test("Lottery with one agency draws on its first markDone", async () => {
  const { lottery, release } = countingLottery(1, new Map());
  const result = lottery.markDone(1);
  assert.ok(result);
  release();
  assert.deepEqual(await result, new Map());
  assert.deepEqual(lottery.status, { drawn: true, winners: new Map(), total: 0 });
});

Deno.test("collectWinners() leaves out the bets of agencies the draw does not count", async () => {
  const winners = await collectWinners(
    stream([bet(1, "1", 7574), bet(4, "4", 7574), bet(9, "9", 7574), bet(2, "2", 7574)]),
    new Set([1, 2, 3]),
  );
  assert.deepEqual(winners, new Map([[1, ["1"]], [2, ["2"]]]));
});

Deno.test("Lottery counts only its agencies: others marking done change nothing", async () => {
  const { lottery, calls, release } = countingLottery(2);
  assert.equal(lottery.markDone(3), undefined);
  assert.equal(lottery.markDone(7), undefined);
  assert.deepEqual(lottery.status, { drawn: false, pending: 2, pendingAgencies: [1, 2] });
  lottery.markDone(1);
  const draw = lottery.markDone(2);
  assert.ok(draw);
  release();
  await draw;
  assert.equal(calls.draw, 1);
});

Deno.test("Lottery without an excluded agency draws when the others are done", async () => {
  const lottery = new Lottery({
    agencies: [1, 2, 3, 5],
    draw: () =>
      collectWinners(stream([bet(4, "4", 7574), bet(5, "5", 7574)]), new Set([1, 2, 3, 5])),
  });
  for (const agency of [1, 2, 3]) assert.equal(lottery.markDone(agency), undefined);
  assert.deepEqual(lottery.status, { drawn: false, pending: 1, pendingAgencies: [5] });
  assert.deepEqual(await lottery.markDone(5), new Map([[5, ["5"]]]));
});

Deno.test("Lottery draws over collectWinners() of the stored bets", async () => {
  const bets = [bet(1, "1", 7574), bet(2, "2", 7574), bet(2, "3", 7574), bet(1, "4", 5)];
  const lottery = new Lottery({ agencies: [1, 2], draw: () => collectWinners(stream(bets)) });
  lottery.markDone(1);
  const winners = await lottery.markDone(2);
  assert.deepEqual(winners, new Map([[1, ["1"]], [2, ["2", "3"]]]));
  const status = lottery.status;
  assert.ok(status.drawn);
  assert.equal(status.total, 3);
});

Deno.test("Lottery.waitForDraw() answers the moment the draw ends, or pending at the timeout", async (t) => {
  await t.step("held until the draw ends", async () => {
    const { lottery, release } = countingLottery(1, new Map([[1, ["9"]]]));
    const waiting = lottery.waitForDraw(5000);
    lottery.markDone(1);
    release();
    const started = performance.now();
    const status = await waiting;
    assert.equal(status.drawn, true);
    assert.ok(performance.now() - started < 1000, "not after the timeout");
  });
  await t.step("pending when the draw does not come in time", async () => {
    const { lottery } = countingLottery(2);
    lottery.markDone(1);
    assert.deepEqual(await lottery.waitForDraw(20), {
      drawn: false,
      pending: 1,
      pendingAgencies: [2],
    });
  });
  await t.step("close() releases waiters at once", async () => {
    const { lottery } = countingLottery(2);
    const waiting = lottery.waitForDraw(60_000);
    lottery.close();
    const pending = { drawn: false, pending: 2, pendingAgencies: [1, 2] };
    assert.deepEqual(await waiting, pending);
    assert.deepEqual(await lottery.waitForDraw(60_000), pending);
  });
});

Deno.test("Lottery whose draw fails reports it once and answers every query with the failure", async () => {
  const failures: unknown[] = [];
  const failure = new Error("Cannot read bets.csv");
  const lottery = new Lottery({
    agencies: [1, 2],
    draw: () => Promise.reject(failure),
    onDrawn: () => assert.fail("no draw"),
    onFailed: (error) => failures.push(error),
  });
  assert.equal(lottery.markDone(1), undefined);
  // A query held for the draw hears of the failure the moment it happens.
  const held = lottery.waitForDraw(60_000);
  // Nothing awaits markDone's promise here: it must not be an unhandled rejection.
  lottery.markDone(2);
  await assert.rejects(() => held, failure);
  await assert.rejects(() => lottery.waitForDraw(0), failure);
  await assert.rejects(() => lottery.whenDrawn()!, failure);
  assert.deepEqual(failures, [failure]);
  assert.equal(lottery.status.drawn, false);
});
