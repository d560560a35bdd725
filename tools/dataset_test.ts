import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { zipSync } from "fflate";
import {
  DatasetError,
  ensureDataset,
  generateAgencyCsv,
  generateDataset,
  importDataset,
  listAgencyFiles,
  main,
  WINNING_NUMBER,
} from "./dataset.ts";

const COURSE_ZIP = fileURLToPath(new URL("../../shared/data/dataset.zip", import.meta.url));
const HAS_COURSE_ZIP = (() => {
  try {
    return Deno.statSync(COURSE_ZIP).isFile;
  } catch {
    return false;
  }
})();

const decoder = new TextDecoder();
const encoder = new TextEncoder();

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "dataset_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Splits CRLF text into rows, asserting every line ends in CRLF. */
function crlfRows(text: string): string[] {
  assert.ok(text.endsWith("\r\n"), "the file ends with CRLF");
  const rows = text.slice(0, -2).split("\r\n");
  for (const row of rows) assert.ok(!row.includes("\n") && !row.includes("\r"), row);
  return rows;
}

function isValidDate(text: string): boolean {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  if (!match) return false;
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
  const date = new Date(Date.UTC(year, month - 1, day));
  return date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 &&
    date.getUTCDate() === day && year >= 1930 && year <= 2005;
}

Deno.test("generateAgencyCsv() is deterministic for a seed and differs across seeds", () => {
  const a = generateAgencyCsv({ agency: 1, rows: 5000, seed: 42 });
  const b = generateAgencyCsv({ agency: 1, rows: 5000, seed: 42 });
  const c = generateAgencyCsv({ agency: 1, rows: 5000, seed: 43 });
  const d = generateAgencyCsv({ agency: 2, rows: 5000, seed: 42 });
  assert.deepEqual(a.bytes, b.bytes);
  assert.notDeepEqual(a.bytes, c.bytes);
  assert.notDeepEqual(a.bytes, d.bytes);
});

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

Deno.test("generateAgencyCsv() output is pinned byte for byte", async (t) => {
  // `deno task dataset generate --agencies 2 --bets-per-agency 1000` and one file of
  // `--agencies 3 --bets-per-agency 70000 --seed 7 --winner-share 0.01`: any change to the
  // generator, the PRNG or the name lists changes these hashes.
  const cases: [string, Parameters<typeof generateAgencyCsv>[0], string][] = [
    [
      "agency 1 of 1000 rows, defaults",
      { agency: 1, rows: 1000 },
      "226fe9f1fa8dba4d17945b0e2aedb81463a5491c5583506b4fa0618787696608",
    ],
    [
      "agency 2 of 1000 rows, defaults",
      { agency: 2, rows: 1000 },
      "7243660b116bb7a8d0687c6b42b8b41f45ca4ce7d87f7e8dd9326883c88eafee",
    ],
    [
      "agency 2 of 70000 rows, seed 7, share 0.01",
      { agency: 2, rows: 70_000, seed: 7, winnerShare: 0.01 },
      "12f48ae329e211d9d8f8943e63aa5954d0bcff8b584ac290b2b5890a237eddfc",
    ],
  ];
  for (const [name, options, hash] of cases) {
    await t.step(name, async () => {
      assert.equal(await sha256Hex(generateAgencyCsv(options).bytes), hash);
    });
  }
});

Deno.test("generateAgencyCsv() writes valid rows in the course's format", () => {
  const { bytes, rows } = generateAgencyCsv({ agency: 3, rows: 20_000, seed: 7 });
  const lines = crlfRows(decoder.decode(bytes));
  assert.equal(lines.length, rows);
  let twoNames = 0;
  let accented = 0;
  for (const line of lines) {
    assert.ok(!line.includes('"') && !line.includes("'"), line);
    const fields = line.split(",");
    assert.equal(fields.length, 5, line);
    const [first, last, document, birthdate, number] = fields as [
      string,
      string,
      string,
      string,
      string,
    ];
    assert.match(first, /^\p{Lu}\p{Ll}+(?: \p{Lu}\p{Ll}+)*$/u, line);
    assert.match(last, /^\p{Lu}\p{Ll}+(?: \p{Lu}\p{Ll}+)?$/u, line);
    assert.match(document, /^[1-9]\d{7}$/, line);
    assert.ok(isValidDate(birthdate), line);
    assert.match(number, /^(?:0|[1-9]\d{0,3})$/, line);
    if (first.includes(" ")) twoNames++;
    if (/[áéíóúñü]/i.test(first + last)) accented++;
  }
  assert.ok(twoNames > rows / 4, "many rows have two first names");
  assert.ok(accented > rows / 10, "many rows have accented names");
});

Deno.test("generateAgencyCsv() writes exactly round(rows * winnerShare) winners", async (t) => {
  const cases = [
    { rows: 20_000, winnerShare: 0.001, winners: 20 },
    { rows: 1234, winnerShare: 0.01, winners: 12 },
    { rows: 999, winnerShare: 0.0005, winners: 0 },
    { rows: 100, winnerShare: 1, winners: 100 },
    { rows: 0, winnerShare: 0.5, winners: 0 },
  ];
  for (const { rows, winnerShare, winners } of cases) {
    await t.step(`${rows} rows at ${winnerShare}`, () => {
      const csv = generateAgencyCsv({ agency: 1, rows, seed: 99, winnerShare });
      assert.equal(csv.winners, winners);
      const lines = rows === 0 ? [] : crlfRows(decoder.decode(csv.bytes));
      const winning = lines.filter((line) => line.endsWith(`,${WINNING_NUMBER}`));
      assert.equal(winning.length, winners);
      assert.deepEqual(csv.winningDocuments, winning.map((line) => line.split(",")[2]));
    });
  }
});

Deno.test("generateAgencyCsv() rejects out-of-range options", () => {
  assert.throws(() => generateAgencyCsv({ agency: 0, rows: 10 }), RangeError);
  assert.throws(() => generateAgencyCsv({ agency: 1, rows: -1 }), RangeError);
  assert.throws(() => generateAgencyCsv({ agency: 1, rows: 10, winnerShare: 2 }), RangeError);
  assert.throws(() => generateAgencyCsv({ agency: 1, rows: 10, seed: 1.5 }), RangeError);
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

Deno.test("generateAgencyCsv() generates 1,000,000 rows quickly", () => {
  const started = performance.now();
  const csv = generateAgencyCsv({ agency: 1, rows: 1_000_000, seed: 42 });
  const elapsed = performance.now() - started;
  assert.equal(csv.winners, 1000);
  assert.ok(elapsed < 5000, `took ${Math.round(elapsed)} ms`);
});

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
        const summary = await importDataset(zip, { dir: out });
        assert.equal(summary.rows, 3);
        assert.deepEqual(summary.files.map((file) => [file.agency, file.rows, file.winners]), [
          [1, 2, 1],
          [2, 1, 0],
        ]);
        assert.deepEqual(summary.files[0]!.winningDocuments, ["30904465"]);
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
        await assert.rejects(importDataset(path, { dir: out }), (error: unknown) => {
          assert.ok(error instanceof DatasetError);
          assert.match(error.message, message);
          assert.ok(!error.message.includes("\n"));
          return true;
        });
        assert.deepEqual(await listAgencyFiles(out), [], "nothing is written");
      });
    }
  });
});

Deno.test({
  name: "importDataset() imports the course's dataset.zip",
  ignore: !HAS_COURSE_ZIP,
  async fn() {
    await withTempDir(async (dir) => {
      const summary = await importDataset(COURSE_ZIP, { dir });
      assert.equal(summary.files.length, 5);
      assert.equal(summary.rows, 78_697);
      for (const file of summary.files) {
        const text = await Deno.readTextFile(file.path);
        assert.equal(crlfRows(text).length, file.rows);
      }
    });
  },
});

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

Deno.test("main() exits with 2 and one line on bad input", async (t) => {
  const cases: [string[], RegExp][] = [
    [["frobnicate"], /^Cannot run dataset: unknown subcommand "frobnicate"/],
    [[], /^Cannot run dataset: missing subcommand/],
    [["generate", "--agencies", "-3"], /^Cannot generate dataset: agencies must be .* got -3$/],
    [["generate", "--agencies", "many"], /^Cannot run dataset: --agencies must be a whole number/],
    [["generate", "--winner-share", "2"], /--winner-share must be a number from 0 to 1/],
    [["generate", "--bogus"], /^Cannot run dataset: unknown option "--bogus"$/],
    [["generate", "--seed"], /^Cannot run dataset: option "--seed" needs a value$/],
    [["import"], /^Cannot import dataset: missing the zip file to import$/],
    [["import", "missing.zip"], /^Cannot import dataset: file "missing\.zip" not found$/],
    [["ensure", "--seed", "1"], /option "--seed" does not apply/],
  ];
  for (const [args, message] of cases) {
    await t.step(args.join(" ") || "(no arguments)", async () => {
      const lines: string[] = [];
      const original = console.error;
      console.error = (...data: unknown[]) => lines.push(data.join(" "));
      try {
        assert.equal(await main(args), 2);
      } finally {
        console.error = original;
      }
      assert.equal(lines.length, 1, lines.join("\n"));
      assert.match(lines[0]!, message);
    });
  }
});

Deno.test("main() generate prints a summary line", async () => {
  await withTempDir(async (dir) => {
    const lines: string[] = [];
    const original = console.log;
    console.log = (...data: unknown[]) => lines.push(data.join(" "));
    try {
      const args = ["generate", "--agencies", "2", "--bets-per-agency", "1000", "--out", dir];
      assert.equal(await main(args), 0);
    } finally {
      console.log = original;
    }
    assert.deepEqual(lines, [
      `dataset: generated 2 files in ${dir} (2000 rows; winners per agency: 1=1, 2=1)`,
    ]);
  });
});
