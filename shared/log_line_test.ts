import assert from "node:assert/strict";
import { logLineProblem, logProblems, parseLog, parseLogLine } from "./log_line.ts";

const AT = "2026-11-22 12:02:02 INFO     ";

Deno.test("parseLogLine() reads level, action, result and fields in order", () => {
  const parsed = parseLogLine(`${AT}action: sorteo | result: success | ganadores: 10 | ms: 272`);
  assert.ok(parsed);
  assert.equal(parsed.level, "INFO");
  assert.equal(parsed.action, "sorteo");
  assert.equal(parsed.result, "success");
  assert.deepEqual([...parsed.fields], [
    ["action", "sorteo"],
    ["result", "success"],
    ["ganadores", "10"],
    ["ms", "272"],
  ]);
});

Deno.test("parseLogLine() cuts each part at its last colon, as the course does", async (t) => {
  await t.step("an address with a colon keeps only its port", () => {
    const line = parseLogLine(`${AT}action: a | result: in_progress | address: 127.0.0.1:12399`);
    assert.equal(line?.fields.get("address"), undefined);
    assert.equal(line?.fields.get("address: 127.0.0.1"), "12399");
  });
  await t.step("a line without timestamp, as validate-echo prints it", () => {
    const line = parseLogLine("action: test_echo_server | result: success");
    assert.equal(line?.level, "");
    assert.equal(line?.result, "success");
  });
  await t.step("a line without a result", () => {
    assert.equal(parseLogLine("action: x | no result here")?.result, "");
  });
  await t.step("a line that is not an action line", () => {
    assert.equal(parseLogLine("client: cannot read config"), undefined);
  });
});

Deno.test("parseLog() keeps the action lines in order", () => {
  const text = [
    `${AT}action: config | result: success | client_id: 1`,
    "a stack trace line",
    `${AT}action: consulta_ganadores | result: success | cant_ganadores: 2`,
    "",
  ].join("\n");
  assert.deepEqual(parseLog(text).map((line) => line.action), ["config", "consulta_ganadores"]);
  assert.equal(parseLog(text)[1]?.fields.get("cant_ganadores"), "2");
});

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
