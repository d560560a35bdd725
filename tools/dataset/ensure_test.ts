import assert from "node:assert/strict";
import { join } from "node:path";
import { ensureDataset } from "./ensure.ts";
import { withTempDir } from "./_test_helpers.ts";

Deno.test("ensureDataset() generates only when no agency file exists", async () => {
  await withTempDir(async (dir) => {
    const data = join(dir, ".data");
    const first = await ensureDataset(data, 2);
    assert.equal(first.generated, true);
    assert.deepEqual(first.files, ["agency-1.csv", "agency-2.csv"]);
    assert.equal(first.summary?.rows, 40_000);
    assert.equal(first.summary?.winners, 40);
    const before = await Deno.readFile(join(data, "agency-1.csv"));
    const second = await ensureDataset(data, 3);
    assert.equal(second.generated, false);
    assert.deepEqual(second.missing, [3]);
    assert.deepEqual(await Deno.readFile(join(data, "agency-1.csv")), before);
  });
});
