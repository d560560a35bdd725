import assert from "node:assert/strict";
import { courseParts, parseLog, parseLogLine } from "./log_line.ts";

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

Deno.test("courseParts() keeps a part without a colon, without a value", () => {
  assert.deepEqual(courseParts(`${AT}action: a | loose | k: v`), {
    level: "INFO",
    parts: [["action", "a"], ["loose"], ["k", "v"]],
  });
});
