import assert from "node:assert/strict";
import { join } from "node:path";
import { Zip, ZipPassThrough, zipSync } from "fflate";
import { COURSE_ZIP, HAS_COURSE_ZIP } from "../../testing/course_data.ts";
import { ToolError, UsageError } from "../_cli.ts";
import { ensureDataset, generateDataset, importDataset, listAgencyFiles } from "./mod.ts";
import { crlfRows, withTempDir } from "../../testing/dataset_files.ts";

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

Deno.test("ensureDataset() generates only when no agency file exists", async () => {
  await withTempDir(async (dir) => {
    const data = join(dir, ".data");
    const first = await ensureDataset(data, 2);
    assert.deepEqual(first.generated?.files.map((file) => file.agency), [1, 2]);
    assert.equal(first.generated?.rows, 40_000);
    assert.equal(first.generated?.winners, 40);
    const before = await Deno.readFile(join(data, "agency-1.csv"));
    const second = await ensureDataset(data, 3);
    assert.deepEqual(second, { kept: 2, missing: [3] });
    assert.deepEqual(await Deno.readFile(join(data, "agency-1.csv")), before);
  });
});

const encoder = new TextEncoder();

Deno.test("importDataset() imports agency files from a zip, inside a folder or not", async (t) => {
  const a1 = "Ana,Pérez,30904465,1999-03-17,7574\r\nJuan Cruz,Díaz,21689196,2000-05-10,12\r\n";
  const a2 = "Luz,Sosa,34407251,2001-08-29,1033\n";
  for (const prefix of ["", "dataset/"]) {
    await t.step(`prefix "${prefix}"`, async () => {
      await withTempDir(async (dir) => {
        const zip = join(dir, "data.zip");
        await Deno.writeFile(
          zip,
          zipSync({
            [`${prefix}agency-1.csv`]: encoder.encode(a1),
            [`${prefix}agency-2.csv`]: encoder.encode(a2),
            [`${prefix}README.txt`]: encoder.encode("not a dataset file"),
            "__MACOSX/dataset/._agency-1.csv": new Uint8Array([0, 1, 2]),
          }),
        );
        const out = join(dir, "out");
        const summary = await importDataset(zip, out);
        assert.equal(summary.rows, 3);
        assert.deepEqual(summary.files.map((file) => [file.agency, file.rows, file.winners]), [
          [1, 2, 1],
          [2, 1, 0],
        ]);
        assert.equal(await Deno.readTextFile(join(out, "agency-1.csv")), a1);
        assert.equal(await Deno.readTextFile(join(out, "agency-2.csv")), a2);
        const names = [];
        for await (const entry of Deno.readDir(out)) names.push(entry.name);
        assert.deepEqual(names.sort(), ["agency-1.csv", "agency-2.csv"], "no temp files left");
      });
    });
  }
});

Deno.test("importDataset() rejects bad input with one clear message", async (t) => {
  await withTempDir(async (dir) => {
    const zipOf = async (name: string, files: Record<string, string>) => {
      const path = join(dir, name);
      const entries = Object.fromEntries(
        Object.entries(files).map(([key, text]) => [key, encoder.encode(text)]),
      );
      await Deno.writeFile(path, zipSync(entries));
      return path;
    };
    const cases: [string, () => Promise<string>, RegExp][] = [
      [
        "missing file",
        () => Promise.resolve(join(dir, "nope.zip")),
        /^Cannot import dataset: file ".*nope\.zip" not found$/,
      ],
      ["not a zip", async () => {
        const path = join(dir, "bad.zip");
        await Deno.writeTextFile(path, "hello");
        return path;
      }, /^Cannot import dataset: ".*bad\.zip" is not a valid zip archive/],
      [
        "no agency files",
        () => zipOf("empty.zip", { "readme.txt": "x", "agency-x.csv": "y" }),
        /has no agency-N\.csv entries/,
      ],
      [
        "duplicate agency",
        () => zipOf("dup.zip", { "a/agency-1.csv": "", "b/agency-1.csv": "" }),
        /has agency-1\.csv twice/,
      ],
      ["the same entry twice", async () => {
        // zipSync takes a record, so one name once: the streaming writer adds it twice.
        const parts: Uint8Array[] = [];
        const zip = new Zip((error, data) => {
          if (error) throw error;
          parts.push(data);
        });
        for (const text of ["a,b,1,2000-01-01,1\r\n", "c,d,2,2000-01-01,2\r\n"]) {
          const entry = new ZipPassThrough("agency-1.csv");
          zip.add(entry);
          entry.push(encoder.encode(text), true);
        }
        zip.end();
        const path = join(dir, "same.zip");
        await Deno.writeFile(path, new Uint8Array(parts.flatMap((part) => [...part])));
        return path;
      }, /has agency-1\.csv twice \("agency-1\.csv" and "agency-1\.csv"\)/],
      [
        "malformed row",
        () => zipOf("rows.zip", { "agency-1.csv": "a,b,1,2000-01-01,1\r\na,b,c\r\n" }),
        /agency-1\.csv line 2 has 3 fields, expected 5/,
      ],
    ];
    for (const [name, make, message] of cases) {
      await t.step(name, async () => {
        const path = await make();
        const out = join(dir, `out-${name.replaceAll(" ", "-")}`);
        await assert.rejects(importDataset(path, out), (error: unknown) => {
          assert.ok(error instanceof ToolError || error instanceof UsageError);
          assert.match(error.message, message);
          assert.ok(!error.message.includes("\n"));
          return true;
        });
        assert.deepEqual(await listAgencyFiles(out), [], "nothing is written");
      });
    }
  });
});

Deno.test("importDataset() and generateDataset() refuse a folder where a CSV goes, writing nothing", async () => {
  await withTempDir(async (dir) => {
    const zip = join(dir, "data.zip");
    const row = encoder.encode("Ana,Pérez,30904465,1999-03-17,7574\r\n");
    await Deno.writeFile(zip, zipSync({ "agency-1.csv": row, "agency-3.csv": row }));
    const out = join(dir, ".data");
    await Deno.mkdir(out);
    await Deno.writeTextFile(join(out, "agency-1.csv"), "earlier\r\n");
    // What `docker compose up` left where it mounted the missing .data/agency-3.csv.
    await Deno.mkdir(join(out, "agency-3.csv"));
    const message = new RegExp(
      `^Cannot write ${out}/agency-3\\.csv: it is a folder, not a file \\(Docker makes one ` +
        "where a mounted file is missing\\); remove it with rmdir and run again$",
    );
    const refused = (error: unknown) => error instanceof ToolError && message.test(error.message);
    await assert.rejects(importDataset(zip, out), refused);
    await assert.rejects(generateDataset({ dir: out, agencies: 3, betsPerAgency: 10 }), refused);
    assert.equal(await Deno.readTextFile(join(out, "agency-1.csv")), "earlier\r\n", "untouched");
    await Deno.remove(join(out, "agency-3.csv"));
    assert.equal((await importDataset(zip, out)).files.length, 2, "works once it is gone");
  });
});

Deno.test({
  name: "importDataset() imports the course's dataset.zip",
  ignore: !HAS_COURSE_ZIP,
  async fn() {
    await withTempDir(async (dir) => {
      const summary = await importDataset(COURSE_ZIP, dir);
      assert.equal(summary.files.length, 5);
      assert.equal(summary.rows, 78_697);
      for (const file of summary.files) {
        const text = await Deno.readTextFile(file.path);
        assert.equal(crlfRows(text).length, file.rows);
      }
    });
  },
});
