import assert from "node:assert/strict";
import { formatAction, formatLogLine } from "./log.ts";
import { parseLog, parseLogLine } from "./log_line.ts";

Deno.test("parseLogLine() reads back what formatLogLine() writes", () => {
  const line = formatLogLine(
    new Date(2026, 10, 22, 12, 2, 2),
    "INFO",
    formatAction("sorteo", "success", { ganadores: 10, ms: 272 }),
  );
  const parsed = parseLogLine(line);
  assert.ok(parsed);
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
  await t.step("an address keeps only its port", () => {
    const line = parseLogLine(
      "2026-11-22 12:02:00 INFO     action: accept_connections | result: in_progress | address: 127.0.0.1:12399",
    );
    assert.equal(line?.action, "accept_connections");
    assert.equal(line?.fields.get("address"), undefined);
    assert.equal(line?.fields.get("127.0.0.1"), "12399");
  });
  await t.step("a line without a result", () => {
    assert.deepEqual(parseLogLine("action: x | no result here")?.result, "");
  });
  await t.step("a line that is not an action line", () => {
    assert.equal(parseLogLine("client: cannot read config"), undefined);
  });
});

Deno.test("parseLog() keeps the action lines in order", () => {
  const text = [
    "2026-11-22 12:02:00 INFO     action: config | result: success | client_id: 1",
    "a stack trace line",
    "2026-11-22 12:02:01 INFO     action: consulta_ganadores | result: success | cant_ganadores: 2",
    "",
  ].join("\n");
  assert.deepEqual(parseLog(text).map((line) => line.action), ["config", "consulta_ganadores"]);
  assert.equal(parseLog(text)[1]?.fields.get("cant_ganadores"), "2");
});
