import assert from "node:assert/strict";
import { percentile, summarize } from "./stats.ts";

Deno.test("summarize() gives min, median and max", () => {
  assert.deepEqual(summarize([3, 1, 2]), { min: 1, median: 2, max: 3 });
  assert.deepEqual(summarize([4, 1, 3, 2]), { min: 1, median: 2.5, max: 4 });
  assert.deepEqual(summarize([7]), { min: 7, median: 7, max: 7 });
  assert.deepEqual(summarize([NaN, 5, Infinity]), { min: 5, median: 5, max: 5 });
  assert.equal(summarize([]), undefined);
});

Deno.test("percentile() uses the nearest rank", () => {
  const values = Array.from({ length: 100 }, (_, i) => 100 - i); // 100 … 1, unsorted
  assert.equal(percentile(values, 50), 50);
  assert.equal(percentile(values, 99), 99);
  assert.equal(percentile(values, 100), 100);
  assert.equal(percentile(values, 0), 1);
  assert.equal(percentile([5, 1, 4, 2, 3], 50), 3);
  assert.equal(percentile([], 50), undefined);
});
