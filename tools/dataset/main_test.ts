import assert from "node:assert/strict";
import { main } from "./main.ts";
import { withTempDir } from "./_test_helpers.ts";

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
