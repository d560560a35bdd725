import assert from "node:assert/strict";
import { logLineProblem, logProblems, uncaughtLines } from "./_log_check.ts";

const AT = "2026-11-22 12:02:02 INFO     ";

Deno.test("logLineProblem() accepts what the course's rule reads as logged", () => {
  for (
    const message of [
      "action: sorteo | result: success | ganadores: 10",
      "action: accept_connections | result: in_progress | address: 0.0.0.0꞉12345",
      "action: connection | result: fail | detail: a ¦ b꞉ c",
      "action: config | result: success | client_id: 1 | server_address: server:12345 | " +
      "loop_amount: 5 | loop_period: 5s | log_level: INFO",
    ]
  ) {
    assert.equal(logLineProblem(AT + message), undefined, message);
  }
});

Deno.test("logLineProblem() names what the course's rule would misread", async (t) => {
  const cases: [string, string, RegExp][] = [
    ["a colon in a value", "action: a | result: success | address: 0.0.0.0:1", /address: 0.0.0.0/],
    ["a part without a colon", "action: a | result: success | loose", /part "loose" has no ":"/],
    ["a repeated key", "action: a | result: success | k: 1 | k: 2", /"k"/],
    ["an unknown result", "action: a | result: maybe", /result "maybe"/],
    ["no result", "action: a | k: 1", /not action, then result/],
    [
      "server_address outside config",
      "action: a | result: success | server_address: s:1",
      /"server_address: s"/,
    ],
  ];
  for (const [name, message, problem] of cases) {
    await t.step(name, () => assert.match(logLineProblem(AT + message) ?? "", problem));
  }
  await t.step("a line that is not a log line", () => {
    assert.equal(logLineProblem("Error: boom"), "no timestamp and level");
  });
});

Deno.test("logProblems() checks every whole line and skips an unended last one", () => {
  const good = `${AT}action: a | result: success\n`;
  assert.deepEqual(logProblems(good + good + `${AT}action: cut sho`), []);
  assert.deepEqual(logProblems(good + "oops\n"), ["line 2: no timestamp and level: oops"]);
  assert.deepEqual(logProblems(""), []);
});

Deno.test("uncaughtLines() finds an uncaught error and stack frames, nothing else", () => {
  const trace = "error: Uncaught (in promise) NotFound: open '/x/bets.csv'\n" +
    "    at async Object.open (ext:deno_fs/30_fs.js:1:1)\nserver: done\n";
  assert.deepEqual(uncaughtLines(trace), [
    "line 1: error: Uncaught (in promise) NotFound: open '/x/bets.csv'",
    "line 2:     at async Object.open (ext:deno_fs/30_fs.js:1:1)",
  ]);
  assert.deepEqual(
    uncaughtLines(
      "2026-01-01 00:00:00 INFO     action: x | result: success | detail: look at it\n",
    ),
    [],
  );
});
