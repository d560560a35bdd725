import assert from "node:assert/strict";
import { join } from "node:path";
import { UsageError } from "../_cli.ts";
import { withTempDir } from "../dataset/_test_helpers.ts";
import { datasetKey, prepareData } from "./data.ts";

Deno.test("datasetKey() names generated data by size and repeat", async () => {
  assert.deepEqual(await datasetKey({ agencies: 5, betsPerAgency: 20_000, repeat: 10 }), {
    key: "gen-5x20000-x10",
    label: "generated 5×20000 ×10",
  });
});

Deno.test("datasetKey() names a zip by name, size and mtime", async () => {
  await withTempDir(async (dir) => {
    const zip = join(dir, "dataset.zip");
    await Deno.writeTextFile(zip, "not read here");
    const { key, label } = await datasetKey({
      dataset: zip,
      agencies: 5,
      betsPerAgency: 20_000,
      repeat: 2,
    });
    assert.match(key, /^zip-dataset-13-\d+-x2$/);
    assert.equal(label, "course dataset ×2");
    await assert.rejects(
      datasetKey({ dataset: join(dir, "nope.zip"), agencies: 5, betsPerAgency: 1, repeat: 1 }),
      UsageError,
      `Cannot run bench: dataset "${join(dir, "nope.zip")}" not found`,
    );
  });
});

Deno.test("prepareData() repeats each file, reuses the cache and keeps one dataset", async () => {
  await withTempDir(async (dataRoot) => {
    const logs: string[] = [];
    const log = (message: string) => logs.push(message);
    const options = { agencies: 2, betsPerAgency: 1000, repeat: 3, dataRoot };
    const data = await prepareData(options, log);
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
    assert.deepEqual(await prepareData(options, log), data);
    assert.match(logs.at(-1)!, /^reusing data in /);

    await prepareData({ ...options, repeat: 1 }, log);
    const names = [];
    for await (const entry of Deno.readDir(dataRoot)) names.push(entry.name);
    assert.deepEqual(names, ["gen-2x1000-x1"], "the other dataset is removed");
  });
});
