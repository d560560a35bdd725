import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import {
  choiceArg,
  exists,
  freePort,
  integerArg,
  lastLine,
  parseCli,
  parseCommand,
  run,
  runOrThrow,
  stripAnsi,
  ToolError,
  UsageError,
  writeFileAtomic,
} from "./_cli.ts";
import { FAIL_LINE } from "./validate_echo.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

Deno.test("parseCli() reads flags and positionals, skipping deno task's `--`", () => {
  const options = {
    mode: { type: "string", default: "agency" },
    quiet: { type: "boolean" },
  } as const;
  const { values, positionals } = parseCli(["--", "--mode", "echo", "--quiet", "5"], options, true);
  assert.deepEqual({ ...values }, { mode: "echo", quiet: true });
  assert.deepEqual(positionals, ["5"]);
});

Deno.test("parseCli(), integerArg() and choiceArg() name what is wrong in one UsageError line", async (t) => {
  const cases: [string, () => unknown, string | RegExp][] = [
    ["unknown option", () => parseCli(["--bogus"], {}), 'unknown option "--bogus"'],
    [
      "missing value",
      () => parseCli(["--runs"], { runs: { type: "string" } }),
      'option "--runs" needs a value',
    ],
    ["positional", () => parseCli(["extra"], {}), /^Unexpected argument 'extra'/],
    [
      "not a number",
      () => integerArg("--runs", "two", 1, 9),
      '--runs must be a whole number from 1 to 9, not "two"',
    ],
    ["out of range", () => integerArg("--runs", "0", 1, 9), /from 1 to 9, not "0"/],
    ["fraction", () => integerArg("--runs", "1.5", 1, 9), /not "1\.5"/],
    [
      "choice",
      () => choiceArg("--fsync", "always", ["group", "off"]),
      '--fsync must be one of group, off, not "always"',
    ],
  ];
  for (const [name, call, message] of cases) {
    await t.step(name, () => {
      assert.throws(call, (error: unknown) => {
        assert.ok(error instanceof UsageError);
        assert.ok(!error.message.includes("\n"), "one line");
        if (typeof message === "string") assert.equal(error.message, message);
        else assert.match(error.message, message);
        return true;
      });
    });
  }
  assert.equal(integerArg("--port", " 80 ", 1, 65535), 80);
  assert.equal(choiceArg("--fsync", "off", ["group", "off"]), "off");
});

Deno.test("parseCommand() takes a known command, its operand and the flags that apply to it", async (t) => {
  const spec = {
    options: { out: { type: "string" }, seed: { type: "string" } },
    commands: new Map([["generate", ["out", "seed"]], ["import", ["out"]], ["list", []]]),
    usage: "usage: x generate|import|list",
    operands: new Map([["import", "one zip file"]]),
  } as const;
  const parsed = parseCommand(["import", "a.zip", "--out", "d"], spec);
  assert.deepEqual({ ...parsed, given: { ...parsed?.given } }, {
    command: "import",
    operand: "a.zip",
    given: { out: "d" },
  });
  assert.equal(parseCommand(["generate", "--seed", "1"], spec)?.operand, undefined);
  const cases: [string[], string][] = [
    [["frob"], 'expected generate, import or list, not "frob"'],
    [["generate", "extra"], 'expected generate, import or list, not "generate extra"'],
    [["import", "--seed", "1", "a.zip"], 'option "--seed" does not apply to import'],
    [["import"], "import takes one zip file"],
  ];
  for (const [args, message] of cases) {
    await t.step(args.join(" "), () => {
      assert.throws(() => parseCommand(args, spec), new UsageError(message));
    });
  }
});

Deno.test("every tool answers a bad command line with one line on stderr and exit code 2", async (t) => {
  const cases: [string, string[], RegExp][] = [
    ["gen_compose.ts", ["--bogus", "5"], /^gen-compose: unknown option "--bogus"$/],
    [
      "gen_compose.ts",
      ["five"],
      /^gen-compose: the agency count must be a whole number from 0 to 252/,
    ],
    [
      "gen_compose.ts",
      ["--mode", "party", "3"],
      /^gen-compose: --mode must be one of agency, bet, echo/,
    ],
    ["compose.ts", ["sideways"], /^compose: expected up, down or logs, not "sideways"/],
    [
      "gen_compose.ts",
      ["--swarm", "3", "--data-dir", "rel"],
      /^gen-compose: --data-dir must be an absolute path/,
    ],
    ["swarm/main.ts", ["sideways"], /^swarm: expected up, down, logs or status, not "sideways"/],
    ["compose.ts", ["down", "--timeout", "forever"], /^compose: --timeout must be a whole number/],
    [
      "compose.ts",
      ["down", "--clients", "3"],
      /^compose: option "--clients" does not apply to down$/,
    ],
    ["compose.ts", ["logs", "--volumes"], /^compose: option "--volumes" does not apply to logs$/],
    ["images.ts", ["--path", "sideways"], /^images: --path must be one of auto, offline, online/],
    [
      "validate_echo.ts",
      ["--port", "0"],
      /^validate-echo: --port must be a whole number from 1 to 65535/,
    ],
    ["dataset/main.ts", ["generate", "--bogus"], /^dataset: unknown option "--bogus"$/],
    [
      "bench/main.ts",
      ["--runs", "0"],
      /^bench: --runs must be a whole number from 1 to 100, not "0"$/,
    ],
    ["demo.ts", ["--agencies", "0"], /^demo: --agencies must be a whole number from 1 to 100/],
    ["build.ts", ["--bogus"], /^build: unknown option "--bogus"$/],
  ];
  for (const [script, args, message] of cases) {
    await t.step(`${script} ${args.join(" ")}`, async () => {
      const result = await run([Deno.execPath(), "run", "-A", `${ROOT}tools/${script}`, ...args]);
      assert.equal(result.code, 2, result.stderr);
      // validate-echo's stdout holds one of the course's two lines, whatever went wrong.
      assert.equal(result.stdout, script === "validate_echo.ts" ? `${FAIL_LINE}\n` : "");
      assert.match(result.stderr.trimEnd(), message);
      assert.equal(result.stderr.trimEnd().split("\n").length, 1, result.stderr);
    });
  }
});

Deno.test("run() captures output and exit code, bounds time, and reports a missing program", async () => {
  const ok = await run(["sh", "-c", "echo out; echo err >&2; exit 3"]);
  assert.deepEqual(ok, { code: 3, stdout: "out\n", stderr: "err\n", timedOut: false });
  const slow = await run(["sleep", "30"], { timeoutMs: 50 });
  assert.equal(slow.code, 124);
  assert.equal(slow.timedOut, true);
  assert.equal((await run(["no-such-program-tp0"])).code, 127);
  await assert.rejects(
    runOrThrow(["sh", "-c", "echo no >&2; exit 1"], "Cannot x"),
    ToolError,
    "Cannot x: no",
  );
  assert.equal(await runOrThrow(["echo", " hi "], "Cannot echo"), "hi");
});

Deno.test("lastLine() gives the last non-empty line without colours", () => {
  assert.equal(lastLine("config ok\n\x1b[31mCannot connect\x1b[0m\n\n"), "Cannot connect");
  assert.equal(lastLine(""), "");
  assert.equal(lastLine("x".repeat(300)).length, 201);
});

Deno.test("stripAnsi() removes colours and Compose v2's erase-line before a logs line", () => {
  assert.equal(
    stripAnsi("\x1b[2K\x1b[36mserver  |\x1b[0m action: sorteo | result: success"),
    "server  | action: sorteo | result: success",
  );
});

Deno.test("writeFileAtomic() replaces a file whole with the exact mode and leaves no temporary file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/f`;
    await writeFileAtomic(path, "one", 0o600);
    await writeFileAtomic(path, new TextEncoder().encode("two"), 0o640);
    assert.equal(await Deno.readTextFile(path), "two");
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o640);
    assert.deepEqual(await Array.fromAsync(Deno.readDir(dir), (e) => e.name), ["f"]);
    assert.equal(await exists(path), true);
    assert.equal(await exists(`${dir}/g`), false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("freePort() gives a port that can be bound", () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: freePort() });
  assert.ok(listener.addr.port > 0);
});
