import assert from "node:assert/strict";
import { echoMatches, FAIL_LINE, probeArgv, resultLine, SUCCESS_LINE } from "./validate_echo.ts";

const OPTIONS = {
  network: "tp0_testing_net",
  host: "server",
  port: 12345,
  timeoutSeconds: 5,
  message: 'it\'s a "test" | $(rm -rf /)',
  image: "tp0-busybox:local",
};

Deno.test("resultLine() prints the course's exact lines", () => {
  assert.equal(resultLine(true), "action: test_echo_server | result: success");
  assert.equal(resultLine(false), "action: test_echo_server | result: fail");
  assert.equal(SUCCESS_LINE, resultLine(true));
  assert.equal(FAIL_LINE, resultLine(false));
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
  const argv = probeArgv("probe-1", OPTIONS);
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

Deno.test("validate-echo CLI prints one error line and exits 1 on bad flags", async (t) => {
  const cases = [["--port", "x"], ["--port", "70000"], ["--timeout", "0"], ["--bogus"], ["x"]];
  for (const args of cases) {
    await t.step(args.join(" "), async () => {
      const output = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", new URL("./validate_echo.ts", import.meta.url).pathname, ...args],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stderr = new TextDecoder().decode(output.stderr);
      assert.equal(output.code, 1);
      assert.equal(new TextDecoder().decode(output.stdout), "", "no result line for bad flags");
      assert.equal(stderr.trim().split("\n").length, 1, stderr);
      assert.match(stderr, /^validate-echo: /);
    });
  }
});
