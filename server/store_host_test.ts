import assert from "node:assert/strict";
import { join } from "node:path";
import { StorageError } from "../shared/errors.ts";
import { numberedBet as bet } from "../testing/bets.ts";
import { collectWinners, Lottery, type WinnersByAgency } from "./draw.ts";
import { RemoteLottery } from "./remote_draw.ts";
import { RemoteStore } from "./remote_store.ts";
import { SharedState } from "./shared_state.ts";
import { StoreOwner } from "./store_host.ts";
import { BetStore } from "./storage.ts";
import type { ToOwner, ToWorker } from "./thread_messages.ts";

/** A worker's RemoteStore and RemoteLottery wired to the owner on this thread, as messages. */
async function withOwner(
  fn: (
    parts: { store: BetStore; remote: RemoteStore; draw: RemoteLottery; other: RemoteStore },
  ) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "store_host_test_" });
  const store = await BetStore.open({ path: join(dir, "bets.csv"), agencies: 2 });
  const state = new SharedState(2);
  const drawn = (winners: WinnersByAgency) => owner.drawn(winners);
  const lottery = new Lottery({
    agencies: [1, 2],
    draw: () => collectWinners(store.loadBets()),
    onDrawn: drawn,
  });
  const owner = new StoreOwner(store, lottery, state, 2);
  const draw = new RemoteLottery(state);
  // Each message crosses in a task of its own, cloned (rows moved), as between threads.
  const toWorker = (message: ToWorker) =>
    setTimeout(() => {
      const copy = structuredClone(message);
      if (copy.kind === "drawn") draw.receiveWinners(new Map(copy.winners), copy.total);
      else remote.receive(copy);
    });
  const host = owner.host(toWorker);
  // A second worker, for two sessions of one agency on two threads.
  const otherHost = owner.host((message) =>
    setTimeout(() => {
      const copy = structuredClone(message);
      if (copy.kind !== "drawn") other.receive(copy);
    })
  );
  const other: RemoteStore = new RemoteStore(
    (message: ToOwner, transfer) =>
      setTimeout(() => otherHost.handle(structuredClone(message, { transfer }))),
    state,
  );
  const remote: RemoteStore = new RemoteStore(
    (message: ToOwner, transfer) =>
      setTimeout(() => host.handle(structuredClone(message, { transfer }))),
    state,
  );
  try {
    await fn({ store, remote, draw, other });
  } finally {
    host.close();
    otherHost.close();
    owner.close();
    await lottery.whenDrawn();
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/** A watcher that records what it hears; `heard(line)` resolves once it has heard `line`. */
function recorder() {
  const lines: string[] = [];
  const waiting = new Map<string, () => void>();
  const hear = (line: string) => {
    lines.push(line);
    waiting.get(line)?.();
  };
  return {
    lines,
    watcher: {
      durable: (nextSeq: number) => hear(`durable ${nextSeq}`),
      failed: (fromSeq: number, error: StorageError) => hear(`failed ${fromSeq} ${error.kind}`),
    },
    heard: (line: string): Promise<void> =>
      lines.includes(line)
        ? Promise.resolve()
        : new Promise((resolve) => waiting.set(line, () => resolve())),
  };
}

Deno.test("RemoteStore() queues batches with the owner and hears them durable, in the shared progress too", async () => {
  await withOwner(async ({ store, remote }) => {
    const r = recorder();
    using _watch = remote.watch(1, r.watcher);
    assert.deepEqual(remote.storeBets(1, 0, [bet(1), bet(2)]), { kind: "queued" });
    await r.heard("durable 1");
    assert.deepEqual(remote.progress(1), { nextSeq: 1, done: false, excluded: false });
    assert.equal(store.stats.bets, 2);
  });
});

Deno.test("RemoteStore() has retries compared by the owner: the same bets pass, others are a CONFLICT", async () => {
  await withOwner(async ({ remote }) => {
    const r = recorder();
    using _watch = remote.watch(1, r.watcher);
    remote.storeBets(1, 0, [bet(1)]);
    await r.heard("durable 1");
    const same = remote.storeBets(1, 0, [bet(1)]);
    assert.equal(same.kind, "retry");
    if (same.kind === "retry") await same.same;
    const other = remote.storeBets(1, 0, [bet(9)]);
    assert.equal(other.kind, "retry");
    if (other.kind === "retry") {
      await assert.rejects(
        other.same,
        (error: unknown) => error instanceof StorageError && error.kind === "conflict",
      );
    }
  });
});

Deno.test("RemoteStore() hears the owner's refusal of a batch out of order as failed from it", async () => {
  await withOwner(async ({ remote }) => {
    const r = recorder();
    using _watch = remote.watch(2, r.watcher);
    // This worker took nothing for agency 2 from 0 to 4: only the owner can know it is a gap.
    assert.deepEqual(remote.storeBets(2, 5, [bet(1)]), { kind: "queued" });
    await r.heard(`failed 5 outOfOrder`);
    assert.deepEqual(r.lines, ["durable 0", `failed 5 outOfOrder`]);
  });
});

Deno.test("RemoteStore.markDone() gets the owner's refusal as a rejection, never an uncaught throw", async () => {
  await withOwner(async ({ store, remote }) => {
    // The owner's store refuses at once (here: an agency outside the draw; in the fault suite,
    // a failed write being undone), and the worker's DONE must hear it as its answer.
    assert.throws(() => store.markDone(3), (error) => error instanceof StorageError);
    await assert.rejects(
      remote.markDone(3),
      (error) => error instanceof StorageError && error.kind === "unknownAgency",
    );
  });
});

Deno.test("RemoteLottery() answers a held winners query the moment the owner's draw opens the barrier", async () => {
  await withOwner(async ({ remote, draw }) => {
    const r = recorder();
    using _watch = remote.watch(1, r.watcher);
    remote.storeBets(1, 0, [bet(1, { number: 7574 })]);
    await r.heard("durable 1");
    const held = draw.waitForDraw(30_000);
    await remote.markDone(1);
    assert.equal(draw.pending, 1);
    assert.deepEqual(draw.status, { drawn: false, pending: 1, pendingAgencies: [2] });
    await remote.markDone(2);
    const status = await held;
    assert.equal(status.drawn, true);
    if (status.drawn) {
      assert.deepEqual(status.winners.get(1), [bet(1).document]);
      assert.equal(status.total, 1);
    }
  });
});

Deno.test("StoreHost() tells a worker that starts watching late what became durable before", async () => {
  await withOwner(async ({ store, remote }) => {
    // Stored through the owner itself (as another worker's session would), then watched.
    store.storeBets(1, 0, [bet(1)]);
    await store.flush();
    const r = recorder();
    using _watch = remote.watch(1, r.watcher);
    await r.heard("durable 1");
  });
});

Deno.test("RemoteStore() never counts durable a batch that another thread's session stored first", async () => {
  await withOwner(async ({ store, remote, other }) => {
    const first = recorder();
    const second = recorder();
    using _first = remote.watch(2, first.watcher);
    using _second = other.watch(2, second.watcher);
    // Two processes claim agency 2 at once, on two threads, with different bets.
    remote.storeBets(2, 0, [bet(1)]);
    other.storeBets(2, 0, [bet(9)]);
    // Pipelined behind the conflicting one: held, then refused, never stored.
    other.storeBets(2, 1, [bet(10)]);
    await first.heard("durable 1");
    await second.heard(`failed 1 conflict`);
    assert.ok(second.lines.includes(`failed 0 conflict`));
    assert.ok(!second.lines.some((l) => /^durable [12]$/.test(l)), `heard ${second.lines}`);
    await store.flush();
    assert.equal(store.progress(2).nextSeq, 1, "only the first session's batch is stored");
  });
});

Deno.test("StoreOwner.catchUp() tells a worker started after the draw its result", async () => {
  const dir = await Deno.makeTempDir({ prefix: "store_host_test_" });
  const store = await BetStore.open({ path: join(dir, "bets.csv"), agencies: 1 });
  try {
    const lottery = new Lottery({ agencies: [1], draw: () => collectWinners(store.loadBets()) });
    const owner = new StoreOwner(store, lottery, new SharedState(1), 1);
    const before: ToWorker[] = [];
    owner.catchUp((message) => before.push(message));
    assert.deepEqual(before, [], "nothing before the draw");
    owner.drawn(new Map([[1, ["30904465"]]]));
    const late: ToWorker[] = [];
    owner.host((message) => late.push(message)).close();
    owner.catchUp((message) => late.push(message));
    assert.deepEqual(late, [{ kind: "drawn", winners: [[1, ["30904465"]]], total: 1 }]);
    owner.close();
    lottery.close();
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});
