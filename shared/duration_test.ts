import assert from "node:assert/strict";
import { parseDuration } from "./duration.ts";

Deno.test("parseDuration() reads the config's durations", async (t) => {
  const cases: [string, number][] = [
    ["50ms", 50],
    ["100ms", 100],
    ["250ms", 250],
    ["5s", 5000],
    ["1m30s", 90_000],
    ["1h0m0s", 3_600_000],
    ["2h30m15s", 9_015_000],
    ["1.5s", 1500],
  ];
  for (const [text, ms] of cases) {
    await t.step(text, () => {
      assert.deepEqual(parseDuration(text), { ms, text });
    });
  }
  await t.step("0", () => {
    assert.deepEqual(parseDuration("0"), { ms: 0, text: "0" });
    assert.deepEqual(parseDuration("0s"), { ms: 0, text: "0s" });
  });
});

Deno.test("parseDuration() keeps the text as written, even when not canonical", async (t) => {
  const cases: [string, number][] = [
    ["90s", 90_000],
    ["1h", 3_600_000],
    ["1m", 60_000],
    ["1500ms", 1500],
    ["1s500ms", 1500],
    ["1000us", 1],
    ["1000000ns", 1],
    ["1000µs", 1],
    [".5s", 500],
    ["1.s", 1000],
  ];
  for (const [text, ms] of cases) {
    await t.step(text, () => assert.deepEqual(parseDuration(text), { ms, text }));
  }
  await t.step("surrounding spaces are trimmed", () => {
    assert.deepEqual(parseDuration("  5s \n"), { ms: 5000, text: "5s" });
  });
});

Deno.test("parseDuration() throws SyntaxError on text that is not a Go duration", async (t) => {
  for (const bad of ["5", "abc", "-1s", "", " ", "5 s", "5sec", "s", "1d", "+1s", "1m30", "ms5"]) {
    await t.step(JSON.stringify(bad), () => {
      assert.throws(() => parseDuration(bad), (error: unknown) => {
        assert.ok(error instanceof SyntaxError);
        assert.equal(
          error.message,
          `Cannot parse duration "${bad}": expected e.g. "50ms", "5s", "1m30s"`,
        );
        return true;
      });
    });
  }
});
