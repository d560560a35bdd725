import assert from "node:assert/strict";
import { UsageError } from "./_cli.ts";
import { echoMatches, FAIL_LINE, main, probeArgv, SUCCESS_LINE } from "./validate_echo.ts";

const OPTIONS = {
  network: "tp0_testing_net",
  host: "server",
  port: 12345,
  timeoutSeconds: 5,
  message: 'it\'s a "test" | $(rm -rf /)',
};

Deno.test("the result lines are the course's, exactly", () => {
  assert.equal(SUCCESS_LINE, "action: test_echo_server | result: success");
  assert.equal(FAIL_LINE, "action: test_echo_server | result: fail");
});

Deno.test("echoMatches() wants the message back, trailing whitespace aside", async (t) => {
  const cases: [string, string, boolean][] = [
    ["hello", "hello\n", true],
    ["hello", "hello\r\n", true],
    // A server that echoes the bytes as received sends back the line break sent.
    ["hello", "hello \t\n", true],
    ["hello", "hello", true],
    ["hello", "hello\nextra\n", false],
    ["hello", "", false],
    ["hello", "\n", false],
    ["hello", "HELLO\n", false],
    ["hello", "hello world\n", false],
    ["hello", " hello\n", false],
    // The course's failing mock: the message behind an error text.
    ["hello", "ERROR: hello\n", false],
    ["N°1 ñ", "N°1 ñ\n", true],
    ["", "\n", false],
  ];
  for (const [sent, received, expected] of cases) {
    await t.step(`${JSON.stringify(sent)} / ${JSON.stringify(received)}`, () => {
      assert.equal(echoMatches(sent, received), expected);
    });
  }
});

Deno.test("main() prints the fail line for a bad command line, then refuses it", async (t) => {
  const cases: [string[], RegExp][] = [
    [["--port", "x"], /--port must be a whole number from 1 to 65535, not "x"/],
    [["--message", "a\nb"], /--message must be a single line/],
    [["--message", "  "], /--message must not be blank/],
    [["--bogus"], /unknown option "--bogus"/],
  ];
  for (const [args, message] of cases) {
    await t.step(args.join(" "), async () => {
      const printed: string[] = [];
      const log = console.log;
      console.log = (...parts: unknown[]) => printed.push(parts.join(" "));
      try {
        await assert.rejects(main(args), (error: unknown) => {
          assert.ok(error instanceof UsageError);
          assert.match(error.message, message);
          return true;
        });
      } finally {
        console.log = log;
      }
      assert.deepEqual(printed, [FAIL_LINE]);
    });
  }
});

Deno.test("probeArgv() runs nc on the compose network, bounded, publishing nothing", () => {
  const argv = probeArgv("probe-1", "tp0-busybox:local", OPTIONS);
  assert.deepEqual(argv.slice(0, 7), [
    "docker",
    "run",
    "--rm",
    "--name",
    "probe-1",
    "--network",
    "tp0_testing_net",
  ]);
  assert.ok(!argv.some((arg) => arg === "-p" || arg.startsWith("--publish")));
  const script = argv.at(-1)!;
  assert.match(script, /timeout 5 nc server 12345$/);
  // The message travels in the environment, never inside the shell script.
  assert.ok(argv.includes(`MSG=${OPTIONS.message}`));
  assert.ok(!script.includes(OPTIONS.message));
});
