import assert from "node:assert/strict";
import { resetSync } from "@logtape/logtape";
import {
  formatAction,
  formatLogLine,
  getActionLogger,
  LOG_LEVELS,
  type LogLevelName,
  setupLogging,
} from "./log.ts";

/** The course's parser: split on `|`, then each part on its LAST `:`. */
function parseCourseLine(line: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of line.split("|")) {
    const at = part.lastIndexOf(":");
    assert.ok(at >= 0, `part without a colon: ${JSON.stringify(part)}`);
    out.set(part.slice(0, at).trim(), part.slice(at + 1).trim());
  }
  return out;
}

const LINE_PREFIX = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} (DEBUG|INFO|WARNING|ERROR|CRITICAL) +/;

/** Runs `fn` with LogTape writing into an array, then resets LogTape. */
function captureLogs(level: LogLevelName, fn: () => void): string[] {
  const lines: string[] = [];
  setupLogging(level, { writer: (line) => lines.push(line) });
  try {
    fn();
  } finally {
    resetSync();
  }
  return lines;
}

Deno.test("formatAction() writes action, result and fields in order", async (t) => {
  const cases: [string, string, Parameters<typeof formatAction>][] = [
    ["no fields", "action: sorteo | result: success", ["sorteo", "success"]],
    [
      "one number",
      "action: apuesta_recibida | result: success | cantidad: 80",
      ["apuesta_recibida", "success", { cantidad: 80 }],
    ],
    [
      "fail with count",
      "action: apuesta_recibida | result: fail | cantidad: 3",
      ["apuesta_recibida", "fail", { cantidad: 3 }],
    ],
    [
      "several fields keep insertion order",
      "action: apuesta_enviada | result: success | dni: 30904465 | numero: 7574",
      ["apuesta_enviada", "success", { dni: "30904465", numero: 7574 }],
    ],
    [
      "server config line",
      "action: config | result: success | port: 12345 | listen_backlog: 5 | logging_level: INFO",
      ["config", "success", { port: 12345, listen_backlog: 5, logging_level: "INFO" }],
    ],
    [
      "in_progress, bigint and boolean",
      "action: progreso | result: in_progress | big: 12345678901234567890 | ok: true",
      ["progreso", "in_progress", { big: 12345678901234567890n, ok: true }],
    ],
    [
      "echo message with a colon-free value",
      "action: receive_message | result: success | client_id: 1 | msg: [CLIENT 1] Message N°1",
      ["receive_message", "success", { client_id: 1, msg: "[CLIENT 1] Message N°1" }],
    ],
  ];
  for (const [name, expected, args] of cases) {
    await t.step(name, () => assert.equal(formatAction(...args), expected));
  }
});

Deno.test("formatAction() sanitizes `|` and line breaks out of keys and values", () => {
  const line = formatAction("a|b", "fail", { "k|ey": "x | y", msg: "one\r\ntwo\nthree\rfour" });
  assert.equal(line, "action: a¦b | result: fail | k¦ey: x ¦ y | msg: one two three four");
  assert.ok(!/[\r\n]/.test(line));
  assert.equal(line.split("|").length, 4);
});

Deno.test("formatLogLine() pads the level like Python's %(levelname)-8s", async (t) => {
  const date = new Date(2024, 0, 2, 3, 4, 5);
  const cases: [LogLevelName, string][] = [
    ["DEBUG", "2024-01-02 03:04:05 DEBUG    msg"],
    ["INFO", "2024-01-02 03:04:05 INFO     msg"],
    ["WARNING", "2024-01-02 03:04:05 WARNING  msg"],
    ["ERROR", "2024-01-02 03:04:05 ERROR    msg"],
    ["CRITICAL", "2024-01-02 03:04:05 CRITICAL msg"],
  ];
  for (const [level, expected] of cases) {
    await t.step(level, () => assert.equal(formatLogLine(date, level, "msg"), expected));
  }
  await t.step("two-digit fields are not padded further", () => {
    assert.equal(
      formatLogLine(new Date(1999, 11, 31, 23, 59, 58), "INFO", "x"),
      "1999-12-31 23:59:58 INFO     x",
    );
  });
});

Deno.test("formatLogLine() output parses back with the course's rule", async (t) => {
  const date = new Date(2024, 5, 7, 8, 9, 10);
  await t.step("bet stored", () => {
    const line = formatLogLine(
      date,
      "INFO",
      formatAction("apuesta_almacenada", "success", { dni: "30904465", numero: 7574 }),
    );
    const parsed = parseCourseLine(line);
    assert.equal(parsed.get("2024-06-07 08:09:10 INFO     action"), "apuesta_almacenada");
    assert.equal(parsed.get("result"), "success");
    assert.equal(parsed.get("dni"), "30904465");
    assert.equal(parsed.get("numero"), "7574");
    assert.equal(parsed.size, 4);
  });
  await t.step("winners query", () => {
    const line = formatLogLine(
      date,
      "INFO",
      formatAction("consulta_ganadores", "success", { cant_ganadores: 2 }),
    );
    const parsed = parseCourseLine(line);
    assert.equal(parsed.get("result"), "success");
    assert.equal(parsed.get("cant_ganadores"), "2");
  });
  await t.step("a sanitized `|` in a value does not add a part", () => {
    const line = formatLogLine(
      date,
      "ERROR",
      formatAction("apuesta_recibida", "fail", { cantidad: 2, detail: "bad | value\nmore" }),
    );
    const parsed = parseCourseLine(line);
    assert.equal(parsed.size, 4);
    assert.equal(parsed.get("cantidad"), "2");
    assert.equal(parsed.get("detail"), "bad ¦ value more");
  });
});

Deno.test("setupLogging() prints course lines at or above the level", () => {
  const lines = captureLogs("INFO", () => {
    const log = getActionLogger("test");
    log.debug("hidden", "success");
    log.info("shown_info", "success", { cantidad: 1 });
    log.warning("shown_warning", "in_progress");
    log.error("shown_error", "fail");
    log.critical("shown_critical", "fail", { code: 9 });
  });
  assert.equal(lines.length, 4);
  const [info, warning, error, critical] = lines as [string, string, string, string];
  assert.match(info, LINE_PREFIX);
  assert.ok(
    info.endsWith(" INFO     action: shown_info | result: success | cantidad: 1"),
    info,
  );
  assert.ok(warning.endsWith(" WARNING  action: shown_warning | result: in_progress"), warning);
  assert.ok(error.endsWith(" ERROR    action: shown_error | result: fail"), error);
  assert.ok(
    critical.endsWith(" CRITICAL action: shown_critical | result: fail | code: 9"),
    critical,
  );
  for (const line of lines) assert.ok(!line.includes("hidden"));
});

Deno.test("setupLogging() at DEBUG prints DEBUG lines, at ERROR hides WARNING", async (t) => {
  await t.step("DEBUG", () => {
    const lines = captureLogs("DEBUG", () => {
      const log = getActionLogger("test");
      assert.equal(log.isDebugEnabled(), true);
      log.debug("detail", "in_progress", { attempt: 2 });
    });
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, LINE_PREFIX);
    assert.ok(lines[0]!.endsWith(" DEBUG    action: detail | result: in_progress | attempt: 2"));
  });
  await t.step("ERROR", () => {
    const lines = captureLogs("ERROR", () => {
      const log = getActionLogger("test");
      assert.equal(log.isDebugEnabled(), false);
      log.info("a", "success");
      log.warning("b", "success");
      log.error("c", "fail");
    });
    assert.deepEqual(lines.map((l) => l.replace(LINE_PREFIX, "")), ["action: c | result: fail"]);
  });
  await t.step("every level name is accepted", () => {
    for (const level of LOG_LEVELS) {
      const lines = captureLogs(level, () => getActionLogger("test").critical("x", "fail"));
      assert.equal(lines.length, 1, level);
    }
  });
});

Deno.test("setupLogging() prints values with {braces} literally", () => {
  const lines = captureLogs("INFO", () => {
    getActionLogger("test").info("receive_message", "success", {
      msg: "{line} {0} {{x}} ${y}",
    });
  });
  assert.equal(lines.length, 1);
  assert.ok(
    lines[0]!.endsWith("action: receive_message | result: success | msg: {line} {0} {{x}} ${y}"),
    lines[0],
  );
});

Deno.test("setupLogging() called again replaces the previous setup", () => {
  const first: string[] = [];
  const second: string[] = [];
  setupLogging("INFO", { writer: (line) => first.push(line) });
  try {
    getActionLogger("test").info("one", "success");
    setupLogging("WARNING", { writer: (line) => second.push(line) });
    getActionLogger("test").info("two", "success");
    getActionLogger("test").warning("three", "success");
  } finally {
    resetSync();
  }
  assert.equal(first.length, 1);
  assert.ok(first[0]!.endsWith("action: one | result: success"));
  assert.equal(second.length, 1);
  assert.ok(second[0]!.endsWith("action: three | result: success"));
});

/** Runs a script that logs to the real stdout through `setupLogging`; returns its output. */
async function runLoggingScript(body: string): Promise<{ code: number; lines: string[] }> {
  const logModule = new URL("./log.ts", import.meta.url).href;
  const script = `import { getActionLogger, setupLogging } from "${logModule}";
setupLogging("INFO");
const log = getActionLogger("test");
${body}`;
  const { code, stdout } = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--config", new URL("../deno.json", import.meta.url).pathname, script],
    stdout: "piped",
    stderr: "null",
  }).output();
  const text = new TextDecoder().decode(stdout);
  assert.ok(text === "" || text.endsWith("\n"), `a half line: ${JSON.stringify(text)}`);
  return { code, lines: text.split("\n").filter((line) => line !== "") };
}

Deno.test("stdout gets every line whole and in order, even when the process exits at once", async (t) => {
  await t.step("lines of one turn, then an await, then more", async () => {
    const { lines } = await runLoggingScript(`
for (let i = 1; i <= 3; i++) log.info("apuesta_recibida", "success", { cantidad: i });
await new Promise((resolve) => setTimeout(resolve, 5));
log.info("sorteo", "success");`);
    assert.deepEqual(
      lines.map((line) => line.replace(LINE_PREFIX, "")),
      [1, 2, 3].map((i) => `action: apuesta_recibida | result: success | cantidad: ${i}`)
        .concat("action: sorteo | result: success"),
    );
  });
  await t.step("Deno.exit right after logging", async () => {
    const { code, lines } = await runLoggingScript(`
log.info("one", "success");
log.info("two", "success");
Deno.exit(4);`);
    assert.equal(code, 4);
    assert.equal(lines.length, 2);
  });
  await t.step("an error line, then SIGKILL in the same turn", async () => {
    const { code, lines } = await runLoggingScript(`
log.info("before", "success");
log.error("crash", "fail");
Deno.kill(Deno.pid, "SIGKILL");`);
    assert.notEqual(code, 0);
    assert.deepEqual(lines.map((line) => line.replace(LINE_PREFIX, "")), [
      "action: before | result: success",
      "action: crash | result: fail",
    ]);
  });
});
