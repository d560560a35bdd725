import assert from "node:assert/strict";
import { USAGE } from "./args.ts";
import { main } from "./main.ts";

async function capture(
  stream: "log" | "error",
  fn: () => Promise<number>,
): Promise<{ code: number; lines: string[] }> {
  const lines: string[] = [];
  const original = console[stream];
  console[stream] = (...data: unknown[]) => lines.push(data.join(" "));
  try {
    return { code: await fn(), lines };
  } finally {
    console[stream] = original;
  }
}

Deno.test("main() exits with 2 and one line on a bad command line", async () => {
  const { code, lines } = await capture("error", () => main(["--runs", "0"]));
  assert.equal(code, 2);
  assert.deepEqual(lines, [
    'Cannot run bench: --runs must be a whole number from 1 to 100, got "0"',
  ]);
});

Deno.test("main() exits with 2 when the dataset zip is missing", async () => {
  const { code, lines } = await capture("error", () => main(["--dataset", "/nonexistent.zip"]));
  assert.equal(code, 2);
  assert.deepEqual(lines, ['Cannot run bench: dataset "/nonexistent.zip" not found']);
});

Deno.test("main() --help prints the usage and exits with 0", async () => {
  const { code, lines } = await capture("log", () => main(["--", "--help"]));
  assert.equal(code, 0);
  assert.deepEqual(lines, [USAGE]);
});
