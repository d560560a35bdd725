import assert from "node:assert/strict";
import { parseArgs } from "node:util";
import { parseArgsErrorDetail } from "./_parse_args.ts";

function detailOf(args: string[], allowPositionals = false): string {
  try {
    parseArgs({
      args,
      allowPositionals,
      strict: true,
      options: { runs: { type: "string" }, help: { type: "boolean" } },
    });
  } catch (error) {
    return parseArgsErrorDetail(error);
  }
  throw new Error("parseArgs accepted the arguments");
}

Deno.test("parseArgsErrorDetail() names the option in one line", async (t) => {
  await t.step("unknown option", () => {
    assert.equal(detailOf(["--bogus"]), 'unknown option "--bogus"');
  });
  await t.step("missing value", () => {
    assert.equal(detailOf(["--runs"]), 'option "--runs" needs a value');
  });
  await t.step("positional", () => {
    assert.match(detailOf(["extra"]), /^unexpected argument \(.*'extra'.*\)$/);
  });
  await t.step("anything else: the first line of the message", () => {
    assert.equal(parseArgsErrorDetail(new Error("first\nsecond")), "first");
  });
});
