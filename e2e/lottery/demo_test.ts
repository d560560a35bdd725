import assert from "node:assert/strict";
import { generateDataset } from "../../tools/dataset/mod.ts";
import { runDemo } from "../../tools/demo.ts";

Deno.test("demo - two at once are two draws, each in its own folder: both right", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "tp0-demo-data-" });
  const runDirs: string[] = [];
  try {
    const data = await generateDataset({
      dir: dataDir,
      agencies: 3,
      betsPerAgency: 2000,
      seed: 12,
      winnerShare: 0.01,
    });
    // Each also rebuilds bin/ as `make demo` does, at the same time as the other.
    const results = await Promise.all(
      [1, 2].map(() => runDemo({ agencies: 3, dataDir, say: () => {} })),
    );
    runDirs.push(...results.map((result) => result.runDir));
    assert.notEqual(runDirs[0], runDirs[1]);
    for (const result of results) {
      assert.equal(result.code, 0, `see ${result.runDir}`);
      assert.deepEqual(
        result.outcomes.map((o) => [o.agency, o.code, o.winners, o.total]),
        data.files.map((f) => [f.agency, 0, String(f.winners), String(data.winners)]),
        "every agency's own winners, and the total",
      );
      // Its own storage holds every bet once: none of the other run's.
      const rows = (await Deno.readTextFile(`${result.runDir}/bets.csv`)).split("\r\n").length - 1;
      assert.equal(rows, data.rows);
    }
  } finally {
    for (const dir of [dataDir, ...runDirs]) await Deno.remove(dir, { recursive: true });
  }
});
