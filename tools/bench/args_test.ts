import assert from "node:assert/strict";
import { UsageError } from "../_cli.ts";
import { parseBenchArgs } from "./args.ts";

Deno.test("parseBenchArgs() applies defaults", () => {
  const options = parseBenchArgs([]);
  assert.equal(options.dataset, undefined);
  assert.equal(options.agencies, 5);
  assert.equal(options.betsPerAgency, 20_000);
  assert.equal(options.repeat, 1);
  assert.equal(options.runs, 3);
  assert.equal(options.fsync, "group");
  assert.equal(options.batch, 100);
  assert.equal(options.timeoutMs, undefined);
  assert.equal(options.help, false);
});

Deno.test("parseBenchArgs() reads every option", () => {
  const options = parseBenchArgs([
    "--dataset",
    "../shared/data/dataset.zip",
    "--repeat",
    "10",
    "--runs",
    "5",
    "--fsync",
    "off",
    "--batch",
    "80",
    "--timeout",
    "1m30s",
  ]);
  assert.equal(options.dataset, "../shared/data/dataset.zip");
  assert.equal(options.repeat, 10);
  assert.equal(options.runs, 5);
  assert.equal(options.fsync, "off");
  assert.equal(options.batch, 80);
  assert.equal(options.timeoutMs, 90_000);
});

Deno.test("parseBenchArgs() skips the `--` that deno task passes on", () => {
  const options = parseBenchArgs(["--", "--agencies", "3", "--bets-per-agency", "7"]);
  assert.equal(options.agencies, 3);
  assert.equal(options.betsPerAgency, 7);
});

Deno.test("parseBenchArgs() rejects bad command lines with one clear message", async (t) => {
  const cases: [string, string[], RegExp][] = [
    ["unknown option", ["--bogus"], /unknown option "--bogus"/],
    ["missing value", ["--runs"], /option "--runs" needs a value/],
    ["zero runs", ["--runs", "0"], /--runs must be a whole number from 1 to 100, not "0"/],
    ["fraction", ["--repeat", "1.5"], /--repeat must be a whole number/],
    ["negative", ["--batch=-3"], /--batch must be a whole number/],
    ["fsync mode", ["--fsync", "always"], /--fsync must be one of group, batch, off/],
    ["timeout", ["--timeout", "soon"], /--timeout must be a positive duration/],
    ["agencies with zip", ["--dataset", "d.zip", "--agencies", "3"], /does not apply/],
    ["bets with zip", ["--dataset", "d.zip", "--bets-per-agency", "3"], /does not apply/],
    ["empty dataset", ["--dataset", ""], /--dataset needs a path/],
    ["positional", ["extra"], /Unexpected argument 'extra'/],
    ["timeout zero", ["--timeout", "0s"], /--timeout must be a positive duration/],
  ];
  for (const [name, args, message] of cases) {
    await t.step(name, () => {
      assert.throws(() => parseBenchArgs(args), (error: unknown) => {
        assert.ok(error instanceof UsageError);
        assert.match(error.message, message);
        assert.ok(!error.message.includes("\n"), "one line");
        return true;
      });
    });
  }
});

Deno.test("parseBenchArgs() reads the SERVER_WORKERS settings and the load's own defaults", () => {
  assert.deepEqual(parseBenchArgs([]).workers, ["default", "1"]);
  assert.deepEqual(parseBenchArgs(["--workers", "4, 1"]).workers, ["4", "1"]);
  const load = parseBenchArgs(["--load"]);
  assert.deepEqual([load.load, load.agencies, load.betsPerAgency], [true, 1000, 1000]);
  assert.deepEqual(load.workers, ["1", "2", "4"]);
  assert.throws(() => parseBenchArgs(["--workers", "0"]), UsageError);
  assert.throws(() => parseBenchArgs(["--load", "--dataset", "x.zip"]), UsageError);
});
