import assert from "node:assert/strict";
import { WINNING_NUMBER } from "../../shared/bet.ts";
import { UsageError } from "../_cli.ts";
import { generateAgencyCsv } from "./agency_csv.ts";
import { crlfRows } from "../../testing/dataset_files.ts";

const decoder = new TextDecoder();

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
    });
  }
});

Deno.test("generateAgencyCsv() rejects out-of-range options", () => {
  assert.throws(() => generateAgencyCsv({ agency: 0, rows: 10 }), UsageError);
  assert.throws(() => generateAgencyCsv({ agency: 1, rows: -1 }), UsageError);
  assert.throws(() => generateAgencyCsv({ agency: 1, rows: 10, winnerShare: 2 }), UsageError);
  assert.throws(() => generateAgencyCsv({ agency: 1, rows: 10, seed: 1.5 }), UsageError);
});

Deno.test("generateAgencyCsv() generates 1,000,000 rows with one winner in a thousand", () => {
  const csv = generateAgencyCsv({ agency: 1, rows: 1_000_000, seed: 42 });
  assert.equal(csv.winners, 1000);
});
