import assert from "node:assert/strict";
import { mulberry32 } from "../../testing/random.ts";
import { below, createDniPermutation, DNI_COUNT, mix32 } from "./random.ts";

Deno.test("mulberry32() repeats a seed's sequence and differs across seeds", () => {
  const take = (seed: number) => {
    const random = mulberry32(seed);
    return Array.from({ length: 8 }, () => random());
  };
  assert.deepEqual(take(42), take(42));
  assert.notDeepEqual(take(42), take(43));
  for (const value of take(7)) assert.ok(Number.isInteger(value) && value >= 0 && value < 2 ** 32);
});

Deno.test("below() stays in [0, n)", () => {
  const random = mulberry32(1);
  const seen = new Set<number>();
  for (let i = 0; i < 10_000; i++) {
    const value = below(random, 7);
    assert.ok(value >= 0 && value < 7, String(value));
    seen.add(value);
  }
  assert.equal(seen.size, 7);
});

Deno.test("mix32() gives unsigned 32-bit values", () => {
  for (const value of [0, 1, -1, 0xffff_ffff, 2 ** 40 + 3]) {
    const mixed = mix32(value);
    assert.ok(Number.isInteger(mixed) && mixed >= 0 && mixed < 2 ** 32, String(mixed));
  }
});

Deno.test("createDniPermutation() gives distinct 8-digit DNIs, fixed by the seed", () => {
  const dniOf = createDniPermutation(42);
  const seen = new Set<number>();
  for (let index = 0; index < 100_000; index++) {
    const dni = dniOf(index);
    assert.ok(dni >= 10_000_000 && dni <= 99_999_999, String(dni));
    seen.add(dni);
  }
  assert.equal(seen.size, 100_000);
  assert.equal(dniOf(DNI_COUNT - 1), createDniPermutation(42)(DNI_COUNT - 1));
  assert.notEqual(createDniPermutation(43)(0), dniOf(0));
});
