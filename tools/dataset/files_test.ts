import assert from "node:assert/strict";
import { join } from "node:path";
import { listAgencyFiles, removeOtherAgencyFiles, writeAtomically } from "./files.ts";
import { withTempDir } from "./_test_helpers.ts";

Deno.test("listAgencyFiles() lists agency-N.csv by number and ignores other names", async () => {
  await withTempDir(async (dir) => {
    for (
      const name of ["agency-10.csv", "agency-2.csv", "agency-0.csv", "agency-01.csv", "x.csv"]
    ) {
      await Deno.writeTextFile(join(dir, name), "");
    }
    await Deno.mkdir(join(dir, "agency-3.csv"));
    assert.deepEqual(await listAgencyFiles(dir), [
      { agency: 2, name: "agency-2.csv" },
      { agency: 10, name: "agency-10.csv" },
    ]);
    assert.deepEqual(await listAgencyFiles(join(dir, "missing")), []);
  });
});

Deno.test("removeOtherAgencyFiles() keeps the given agencies and other files", async () => {
  await withTempDir(async (dir) => {
    for (const name of ["agency-1.csv", "agency-2.csv", "agency-3.csv", "notes.txt"]) {
      await Deno.writeTextFile(join(dir, name), "");
    }
    assert.deepEqual(await removeOtherAgencyFiles(dir, new Set([1, 3])), ["agency-2.csv"]);
    const names = [];
    for await (const entry of Deno.readDir(dir)) names.push(entry.name);
    assert.deepEqual(names.sort(), ["agency-1.csv", "agency-3.csv", "notes.txt"]);
  });
});

Deno.test("writeAtomically() writes a world-readable file and leaves no temp file", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "agency-1.csv");
    await writeAtomically(path, new TextEncoder().encode("a\r\n"));
    await writeAtomically(path, new TextEncoder().encode("b\r\n"));
    assert.equal(await Deno.readTextFile(path), "b\r\n");
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o644);
    const names = [];
    for await (const entry of Deno.readDir(dir)) names.push(entry.name);
    assert.deepEqual(names, ["agency-1.csv"]);
  });
});
