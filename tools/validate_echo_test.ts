import assert from "node:assert/strict";
import { echoMatches, FAIL_LINE, probeArgv, SUCCESS_LINE } from "./validate_echo.ts";

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

Deno.test("echoMatches() wants the first line back unchanged", async (t) => {
  const cases: [string, string, boolean][] = [
    ["hello", "hello\n", true],
    ["hello", "hello\r\n", true],
    ["hello", "hello\nextra\n", true],
    ["hello", "hello", false],
    ["hello", "", false],
    ["hello", "HELLO\n", false],
    ["hello", "hello world\n", false],
    ["N°1 ñ", "N°1 ñ\n", true],
  ];
  for (const [sent, received, expected] of cases) {
    await t.step(`${JSON.stringify(sent)} / ${JSON.stringify(received)}`, () => {
      assert.equal(echoMatches(sent, received), expected);
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
