import assert from "node:assert/strict";
import { UsageError } from "../_cli.ts";
import { USAGE } from "./args.ts";
import { main } from "./main.ts";

Deno.test("main() refuses a missing dataset zip with one UsageError line", async () => {
  await assert.rejects(
    main(["--dataset", "/nonexistent.zip"]),
    UsageError,
    'Cannot run bench: dataset "/nonexistent.zip" not found',
  );
});

Deno.test("main() --help prints the usage and exits with 0", async () => {
  const lines: string[] = [];
  const original = console.log;
  console.log = (...data: unknown[]) => lines.push(data.join(" "));
  try {
    assert.equal(await main(["--", "--help"]), 0);
  } finally {
    console.log = original;
  }
  assert.deepEqual(lines, [USAGE]);
});
