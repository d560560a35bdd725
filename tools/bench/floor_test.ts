import assert from "node:assert/strict";
import { join } from "node:path";
import type { PreparedData } from "./data.ts";
import { runFloor } from "./floor.ts";

Deno.test("runFloor() pushes every byte through and times it", async () => {
  const scratch = await Deno.makeTempDir({ prefix: "bench_floor_test_" });
  try {
    const files = [];
    for (const agency of [1, 2]) {
      const path = join(scratch, `agency-${agency}.csv`);
      const text = "Ana,Sosa,30904465,1999-03-17,7574\r\n".repeat(100 * agency);
      await Deno.writeTextFile(path, text);
      files.push({ agency, path, rows: 100 * agency, winners: 100 * agency, bytes: text.length });
    }
    const data: PreparedData = { label: "test", files };
    const run = await runFloor(data, { scratch, timeoutMs: 30_000 });
    assert.deepEqual(run.failures, []);
    assert.equal(run.ok, true);
    assert.ok(run.wallMs > 0, String(run.wallMs));
    const left = [];
    for await (const entry of Deno.readDir(scratch)) left.push(entry.name);
    assert.deepEqual(left.sort(), ["agency-1.csv", "agency-2.csv"], "its folder is removed");
  } finally {
    await Deno.remove(scratch, { recursive: true });
  }
});
