import assert from "node:assert/strict";
import { SharedState } from "./shared_state.ts";

Deno.test("SharedState() shows another view of the same buffer what the owner published", () => {
  const owner = new SharedState(3);
  const worker = new SharedState(3, owner.buffer);
  owner.setProgress(2, { nextSeq: 70_000, done: true, excluded: false });
  owner.setProgress(3, { nextSeq: 0, done: false, excluded: true });
  owner.setStats({ bets: 10, batches: 2, winners: 1 });
  assert.deepEqual(worker.progress(2), { nextSeq: 70_000, done: true, excluded: false });
  assert.deepEqual(worker.progress(9), { nextSeq: 0, done: false, excluded: false });
  assert.deepEqual(worker.stats, { bets: 10, batches: 2, winners: 1 });
  assert.deepEqual(worker.pendingAgencies(), [1]);
});

Deno.test("SharedState() troubled counts each agency once, whichever view adds or deletes it", () => {
  const owner = new SharedState(4);
  const worker = new SharedState(4, owner.buffer);
  worker.troubled.add(3);
  owner.troubled.add(3);
  worker.troubled.add(1);
  assert.equal(owner.troubled.size, 2);
  assert.deepEqual([...owner.troubled], [1, 3]);
  owner.troubled.delete(3);
  owner.troubled.delete(3);
  assert.equal(worker.troubled.size, 1);
  assert.deepEqual([...worker.troubled], [1]);
});

Deno.test("SharedState() slots hold the connection limit across views", () => {
  const owner = new SharedState(1);
  const a = owner.slots(2);
  const b = new SharedState(1, owner.buffer).slots(2);
  assert.equal(a.take(), true);
  assert.equal(b.take(), true);
  assert.equal(b.take(), false, "a third connection is over the limit");
  assert.equal(a.open, 2);
  a.release();
  assert.equal(b.take(), true);
});

Deno.test("SharedState() waitForDrawn() wakes when the owner marks the draw, or times out", async () => {
  const owner = new SharedState(1);
  const worker = new SharedState(1, owner.buffer);
  assert.equal(await worker.waitForDrawn(20), false);
  const waiting = worker.waitForDrawn(30_000);
  setTimeout(() => owner.markDrawn(), 10);
  assert.equal(await waiting, true);
  assert.equal(await worker.waitForDrawn(30_000), true, "an open barrier does not wait");
});

Deno.test("SharedState() waitForDrawn() is released by close() before any draw", async () => {
  const owner = new SharedState(1);
  const waiting = new SharedState(1, owner.buffer).waitForDrawn(30_000);
  setTimeout(() => owner.close(), 10);
  assert.equal(await waiting, false);
});
