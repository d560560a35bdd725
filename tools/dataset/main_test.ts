import assert from "node:assert/strict";
import { UsageError } from "../_cli.ts";
import { main } from "./main.ts";
import { withTempDir } from "../../testing/dataset_files.ts";

Deno.test("main() refuses bad input with one UsageError line", async (t) => {
  const cases: [string[], RegExp][] = [
    [["frobnicate"], /^expected generate or import, not "frobnicate"$/],
    [[], /^expected generate or import, not ""$/],
    [
      ["generate", "--agencies=-3"],
      /^--agencies must be a whole number from 1 to 10000, not "-3"$/,
    ],
    [["generate", "--agencies", "many"], /^--agencies must be a whole number/],
    [["generate", "--bets-per-agency", "1e9"], /^--bets-per-agency must be a whole number/],
    [["generate", "--winner-share", "2"], /--winner-share must be a number from 0 to 1/],
    [["generate", "--bogus"], /^unknown option "--bogus"$/],
    [["generate", "--seed"], /^option "--seed" needs a value$/],
    [["import"], /^import takes one zip file$/],
    [["import", "missing.zip"], /^Cannot import dataset: file "missing\.zip" not found$/],
    [["import", "--seed", "1"], /^option "--seed" does not apply to import$/],
  ];
  for (const [args, message] of cases) {
    await t.step(args.join(" ") || "(no arguments)", async () => {
      await assert.rejects(main(args), (error: unknown) => {
        assert.ok(error instanceof UsageError);
        assert.match(error.message, message);
        return true;
      });
    });
  }
});

Deno.test("main() generate prints a summary line, after the `--` of deno task too", async () => {
  await withTempDir(async (dir) => {
    const lines: string[] = [];
    const original = console.log;
    console.log = (...data: unknown[]) => lines.push(data.join(" "));
    try {
      const args = ["generate", "--agencies", "2", "--bets-per-agency", "1000", "--out", dir];
      assert.equal(await main(args), 0);
      assert.equal(await main(["--", ...args]), 0);
    } finally {
      console.log = original;
    }
    const line = `dataset: generated 2 files in ${dir} (2000 rows; winners per agency: 1=1, 2=1)`;
    assert.deepEqual(lines, [line, line]);
  });
});

Deno.test("main() --help prints the usage and exits with 0", async () => {
  const lines: string[] = [];
  const original = console.log;
  console.log = (...data: unknown[]) => lines.push(data.join(" "));
  try {
    assert.equal(await main(["--help"]), 0);
  } finally {
    console.log = original;
  }
  assert.equal(lines.length, 1);
  assert.match(lines[0]!, /^Usage:\n {2}deno task dataset generate/);
});
