import assert from "node:assert/strict";
import { join } from "node:path";
import { listAgencyFiles } from "./files.ts";
import { generateDataset } from "./generate.ts";
import { crlfRows, withTempDir } from "./_test_helpers.ts";

Deno.test("generateDataset() writes N files with distinct DNIs and removes stale ones", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "agency-9.csv"), "stale\r\n");
    await Deno.writeTextFile(join(dir, "notes.txt"), "kept");
    const summary = await generateDataset({ dir, agencies: 3, betsPerAgency: 5000, seed: 1 });
    assert.equal(summary.files.length, 3);
    assert.equal(summary.rows, 15_000);
    assert.equal(summary.winners, 15);
    assert.deepEqual(summary.removed, ["agency-9.csv"]);
    assert.deepEqual((await listAgencyFiles(dir)).map((file) => file.name), [
      "agency-1.csv",
      "agency-2.csv",
      "agency-3.csv",
    ]);
    assert.equal(await Deno.readTextFile(join(dir, "notes.txt")), "kept");
    const documents = new Set<string>();
    for (const file of summary.files) {
      const lines = crlfRows(await Deno.readTextFile(file.path));
      assert.equal(lines.length, file.rows);
      for (const line of lines) documents.add(line.split(",")[2]!);
      assert.equal((await Deno.stat(file.path)).mode! & 0o777, 0o644);
    }
    assert.equal(documents.size, 15_000, "DNIs are unique across the dataset");
    const again = await generateDataset({ dir, agencies: 3, betsPerAgency: 5000, seed: 1 });
    assert.deepEqual(again.files, summary.files);
  });
});
