import assert from "node:assert/strict";
import { concatBytes, writeAll } from "./bytes.ts";

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

Deno.test("writeAll() writes every byte over uneven short writes", async () => {
  const out: number[] = [];
  const sizes = [3, 1, 5, 2];
  let call = 0;
  const writer = {
    write(p: Uint8Array) {
      const n = Math.min(p.length, sizes[call++ % sizes.length]!);
      out.push(...p.subarray(0, n));
      return Promise.resolve(n);
    },
  };
  const bytes = new Uint8Array(50).map((_, i) => i);
  await writeAll(writer, bytes);
  assert.deepEqual(new Uint8Array(out), bytes);
});

Deno.test("writeAll() throws the writer's own error", async () => {
  const reset = new Deno.errors.ConnectionReset("reset");
  let calls = 0;
  const writer = { write: () => ++calls <= 3 ? Promise.resolve(1) : Promise.reject(reset) };
  await assert.rejects(writeAll(writer, new Uint8Array(10)), (error) => error === reset);
  assert.equal(calls, 4);
});
