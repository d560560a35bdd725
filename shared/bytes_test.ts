import assert from "node:assert/strict";
import { concatBytes } from "./bytes.ts";

Deno.test("concatBytes() joins arrays in order, empty ones included", () => {
  assert.deepEqual(
    concatBytes([new Uint8Array([1, 2]), new Uint8Array(0), new Uint8Array([3])]),
    new Uint8Array([1, 2, 3]),
  );
  assert.deepEqual(concatBytes([]), new Uint8Array(0));
});

Deno.test("concatBytes() copies: changing a part later leaves the result alone", () => {
  const part = new Uint8Array([7, 8]);
  const joined = concatBytes([part, part.subarray(1)]);
  part[0] = 0;
  assert.deepEqual(joined, new Uint8Array([7, 8, 8]));
});
