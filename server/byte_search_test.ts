import assert from "node:assert/strict";
import { byteSearch } from "./byte_search.ts";

function naive(haystack: Uint8Array, needle: Uint8Array, from: number): number {
  outer: for (let i = Math.max(0, from); i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

const text = new TextEncoder();

Deno.test("byteSearch() finds what a naive search finds, at every start", async (t) => {
  const cases: [string, string][] = [
    ["needle at the start and the end", "abcxxabc"],
    ["overlapping occurrences", "aaaaaa"],
    ["haystack shorter than the needle", "ab"],
    ["empty haystack", ""],
    ["a winning row among others", "1,A,B,1,2000-01-01,7574\r\n2,C,D,2,2000-01-01,17574\r\n"],
  ];
  const needles = ["abc", "aa", "a", ",7574\r\n", "abcd"];
  for (const [name, hay] of cases) {
    await t.step(name, () => {
      const haystack = text.encode(hay);
      for (const n of needles) {
        const needle = text.encode(n);
        const find = byteSearch(needle);
        for (let from = -1; from <= haystack.length + 1; from++) {
          assert.equal(find(haystack, from), naive(haystack, needle, from), `${n} from ${from}`);
        }
      }
    });
  }
});

Deno.test("byteSearch() agrees with a naive search on random bytes over a small alphabet", () => {
  let state = 7;
  const random = (n: number): number => {
    state = (state * 1103515245 + 12345) >>> 0;
    return (state >>> 16) % n;
  };
  for (let round = 0; round < 2000; round++) {
    // A small alphabet makes matches and near-matches common.
    const haystack = Uint8Array.from({ length: random(200) }, () => 0x30 + random(3));
    const needle = Uint8Array.from({ length: 1 + random(6) }, () => 0x30 + random(3));
    const find = byteSearch(needle);
    const from = random(haystack.length + 1);
    assert.equal(find(haystack, from), naive(haystack, needle, from));
  }
});

Deno.test("byteSearch() keeps its own copy of the needle and refuses an empty one", () => {
  const needle = text.encode("xy");
  const find = byteSearch(needle);
  needle[0] = 0x7a;
  assert.equal(find(text.encode("zyxy")), 2);
  assert.throws(() => byteSearch(new Uint8Array(0)), RangeError);
});
