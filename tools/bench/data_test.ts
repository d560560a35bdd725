import assert from "node:assert/strict";
import { join } from "node:path";
import { UsageError } from "../_cli.ts";
import { withTempDir } from "../../testing/dataset_files.ts";
import { prepareData } from "./data.ts";

Deno.test("prepareData() names the data and refuses a missing zip", async () => {
  await withTempDir(async (dataRoot) => {
    const zip = join(dataRoot, "nope.zip");
    await assert.rejects(
      prepareData({ dataset: zip, agencies: 5, betsPerAgency: 1, repeat: 1, dataRoot }, () => {}),
      UsageError,
      `Cannot run bench: dataset "${zip}" not found`,
    );
  });
});

Deno.test("prepareData() repeats each file and keeps one dataset", async () => {
  await withTempDir(async (dataRoot) => {
    const options = { agencies: 2, betsPerAgency: 1000, repeat: 3, dataRoot };
    const data = await prepareData(options, () => {});
    assert.equal(data.label, "generated 2×1000 ×3");
    assert.deepEqual(data.files.map((file) => [file.agency, file.rows, file.winners]), [
      [1, 3000, 3],
      [2, 3000, 3],
    ]);
    for (const file of data.files) {
      const text = await Deno.readTextFile(file.path);
      assert.equal(text.split("\r\n").length - 1, file.rows);
      assert.equal((await Deno.stat(file.path)).size, file.bytes);
    }
    await prepareData({ ...options, repeat: 1 }, () => {});
    const names = [];
    for await (const entry of Deno.readDir(dataRoot)) names.push(entry.name);
    assert.deepEqual(names, ["base"], "the earlier data is removed");
  });
});
