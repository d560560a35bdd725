import assert from "node:assert/strict";
import { join } from "node:path";
import { ConfigError } from "../shared/errors.ts";
import { withFile } from "../testing/config_files.ts";
import { loadSecrets } from "./secrets.ts";

async function problemsOf(promise: Promise<unknown>): Promise<readonly string[]> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${error}`);
    return error.problems;
  }
  assert.fail("expected a ConfigError");
}

Deno.test("loadSecrets() reads `<agency> = <secret>` lines", async () => {
  await withFile(
    "secrets.ini",
    "1 = abc\n2=def\n; a comment\n\n5 = s3cr3t-with-dashes\n",
    async (path) => {
      assert.deepEqual(
        await loadSecrets(path, 5),
        new Map([[1, "abc"], [2, "def"], [5, "s3cr3t-with-dashes"]]),
      );
    },
  );
});

Deno.test("loadSecrets() keeps every secret verbatim", async (t) => {
  // A secret is compared byte for byte with the agency's CLI_SECRET: it must not be
  // typed (true, 123) or cut at `#` / `;` as INI inline comments.
  const cases: [string, string][] = [
    ["digits", "123"],
    ["a word INI parsers read as a boolean", "true"],
    ["a hash", "ab#cd"],
    ["a semicolon", "x;y"],
    ["an equals sign", "a=b"],
  ];
  for (const [name, secret] of cases) {
    await t.step(name, async () => {
      await withFile("secrets.ini", `1 = ${secret}\n`, async (path) => {
        assert.deepEqual(await loadSecrets(path, 1), new Map([[1, secret]]));
      });
    });
  }
});

Deno.test("loadSecrets() with no path means no secrets", async () => {
  assert.deepEqual(await loadSecrets("", 5), new Map());
});

Deno.test("loadSecrets() of an empty file is an empty map", async () => {
  await withFile(
    "secrets.ini",
    "",
    async (path) => assert.deepEqual(await loadSecrets(path, 5), new Map()),
  );
});

Deno.test("loadSecrets() rejects agency ids outside 1..N", async (t) => {
  for (const key of ["0", "6", "100", "abc", "-1", "1.5"]) {
    await t.step(key, async () => {
      await withFile("secrets.ini", `1 = ok\n${key} = x\n`, async (path) => {
        assert.deepEqual(await problemsOf(loadSecrets(path, 5)), [
          `Invalid key "${key}" in ${path}: expected an agency id from 1 to 5`,
        ]);
      });
    });
  }
});

Deno.test("loadSecrets() reports every bad line at once", async () => {
  await withFile("secrets.ini", `1 = ok\n7 = x\n2 =\n9 = y\n`, async (path) => {
    // The order is not part of the contract (an INI parser yields numeric keys sorted).
    assert.deepEqual([...await problemsOf(loadSecrets(path, 3))].sort(), [
      `Invalid key "7" in ${path}: expected an agency id from 1 to 3`,
      `Invalid key "9" in ${path}: expected an agency id from 1 to 3`,
      `Invalid secret for agency 2 in ${path}: 0 bytes, expected 1 to 255 bytes (UTF-8)`,
    ]);
  });
});

Deno.test("loadSecrets() rejects a secret over 255 bytes, saying its length, not the secret", async () => {
  await withFile(
    "secrets.ini",
    `1 = ${"s".repeat(255)}\n2 = ${"s".repeat(256)}\n3 = ${"ñ".repeat(200)}\n`,
    async (path) => {
      assert.deepEqual(await problemsOf(loadSecrets(path, 3)), [
        `Invalid secret for agency 2 in ${path}: 256 bytes, expected 1 to 255 bytes (UTF-8)`,
        `Invalid secret for agency 3 in ${path}: 400 bytes, expected 1 to 255 bytes (UTF-8)`,
      ]);
    },
  );
});

Deno.test("loadSecrets() fails with ConfigError for a missing file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "secrets_test_" });
  try {
    const path = join(dir, "missing.ini");
    try {
      await loadSecrets(path, 5);
      assert.fail("expected a ConfigError");
    } catch (error) {
      assert.ok(error instanceof ConfigError);
      assert.equal(error.problems.length, 1);
      assert.ok(error.problems[0]!.startsWith(`Cannot read secrets file ${path}: `));
      assert.ok(error.cause instanceof Deno.errors.NotFound);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
