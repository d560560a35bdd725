import assert from "node:assert/strict";
import {
  actionLogger as log,
  formatAction,
  LOG_LEVELS,
  LogAction,
  type LogLevelName,
  setupLogging,
} from "./log.ts";
import { parseLogLine } from "./log_line.ts";

const LINE_PREFIX = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} (DEBUG|INFO|WARNING|ERROR|CRITICAL) +/;

/** Runs `fn` with logging into an array, then turns logging off again. */
function captureLogs(level: LogLevelName, fn: () => void): string[] {
  const lines: string[] = [];
  setupLogging(level, (line) => lines.push(line));
  try {
    fn();
  } finally {
    setupLogging("CRITICAL", () => {});
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

Deno.test("formatAction() writes `:` in values as `꞉`, but keeps the course's server_address", () => {
  assert.equal(
    formatAction("accept_connections", "in_progress", { address: "0.0.0.0:12345" }),
    "action: accept_connections | result: in_progress | address: 0.0.0.0꞉12345",
  );
  assert.equal(
    formatAction("connection", "fail", { detail: "ConnectionError: Cannot read: lost" }),
    "action: connection | result: fail | detail: ConnectionError꞉ Cannot read꞉ lost",
  );
  assert.equal(
    formatAction(LogAction.CONFIG, "success", { client_id: 1, server_address: "server:12345" }),
    "action: config | result: success | client_id: 1 | server_address: server:12345",
  );
  assert.equal(
    formatAction("progreso", "success", { server_address: "a:1" }),
    "action: progreso | result: success | server_address: a꞉1",
    "only the config line keeps it",
  );
});

Deno.test("log lines pad the level like Python's %(levelname)-8s", () => {
  const lines = captureLogs("DEBUG", () => {
    log.debug(LogAction.SORTEO, "success");
    log.info(LogAction.SORTEO, "success");
    log.warning(LogAction.SORTEO, "success");
    log.error(LogAction.SORTEO, "success");
    log.critical(LogAction.SORTEO, "success");
  });
  assert.deepEqual(
    lines.map((line) => line.slice(20)),
    ["DEBUG   ", "INFO    ", "WARNING ", "ERROR   ", "CRITICAL"].map((level) =>
      `${level} action: sorteo | result: success`
    ),
  );
  for (const line of lines) assert.match(line, /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} /);
});

Deno.test("log lines parse back with the course's rule into the fields logged", async (t) => {
  const cases: [string, Parameters<typeof log.info>, [string, string][]][] = [
    ["bet stored", ["apuesta_almacenada", "success", { dni: "30904465", numero: 7574 }], [
      ["dni", "30904465"],
      ["numero", "7574"],
    ]],
    ["winners query", ["consulta_ganadores", "success", { cant_ganadores: 2 }], [
      ["cant_ganadores", "2"],
    ]],
    ["`|`, `:` and line breaks in a value", ["apuesta_recibida", "fail", {
      cantidad: 2,
      detail: "bad | value\nmore: 1",
    }], [["cantidad", "2"], ["detail", "bad ¦ value more꞉ 1"]]],
    ["an address", ["accept_connections", "in_progress", { address: "0.0.0.0:12345" }], [
      ["address", "0.0.0.0꞉12345"],
    ]],
  ];
  for (const [name, args, fields] of cases) {
    await t.step(name, () => {
      const [line] = captureLogs("INFO", () => log.info(...args));
      const parsed = parseLogLine(line!);
      assert.deepEqual([...parsed!.fields], [["action", args[0]], ["result", args[1]], ...fields]);
    });
  }
});

Deno.test("setupLogging() prints course lines at or above the level", () => {
  const lines = captureLogs("INFO", () => {
    log.debug(LogAction.HELLO, "success");
    log.info(LogAction.APUESTA_RECIBIDA, "success", { cantidad: 1 });
    log.warning(LogAction.RECONEXION, "in_progress");
    log.error(LogAction.CONNECTION, "fail");
    log.critical(LogAction.SHUTDOWN, "fail", { code: 9 });
  });
  assert.equal(lines.length, 4);
  const [info, warning, error, critical] = lines as [string, string, string, string];
  assert.match(info, LINE_PREFIX);
  assert.ok(
    info.endsWith(" INFO     action: apuesta_recibida | result: success | cantidad: 1"),
    info,
  );
  assert.ok(warning.endsWith(" WARNING  action: reconexion | result: in_progress"), warning);
  assert.ok(error.endsWith(" ERROR    action: connection | result: fail"), error);
  assert.ok(
    critical.endsWith(" CRITICAL action: shutdown | result: fail | code: 9"),
    critical,
  );
  for (const line of lines) assert.ok(!line.includes("hello"));
});

Deno.test("setupLogging() at DEBUG prints DEBUG lines, at ERROR hides WARNING", async (t) => {
  await t.step("DEBUG", () => {
    const lines = captureLogs("DEBUG", () => {
      log.debug(LogAction.CONNECT, "in_progress", { attempt: 2 });
    });
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, LINE_PREFIX);
    assert.ok(lines[0]!.endsWith(" DEBUG    action: connect | result: in_progress | attempt: 2"));
  });
  await t.step("ERROR", () => {
    const lines = captureLogs("ERROR", () => {
      log.info(LogAction.SORTEO, "success");
      log.warning(LogAction.RECONEXION, "success");
      log.error(LogAction.CONNECTION, "fail");
    });
    assert.deepEqual(lines.map((l) => l.replace(LINE_PREFIX, "")), [
      "action: connection | result: fail",
    ]);
  });
  await t.step("every level name is accepted", () => {
    for (const level of LOG_LEVELS) {
      const lines = captureLogs(level, () => log.critical(LogAction.SHUTDOWN, "fail"));
      assert.equal(lines.length, 1, level);
    }
  });
});

Deno.test("setupLogging() prints values with {braces} literally", () => {
  const lines = captureLogs("INFO", () => {
    log.info(LogAction.RECEIVE_MESSAGE, "success", {
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
  setupLogging("INFO", (line) => first.push(line));
  try {
    log.info(LogAction.SORTEO, "success");
    setupLogging("WARNING", (line) => second.push(line));
    log.info(LogAction.CONFIG, "success");
    log.warning(LogAction.RECONEXION, "success");
  } finally {
    setupLogging("CRITICAL", () => {});
  }
  assert.equal(first.length, 1);
  assert.ok(first[0]!.endsWith("action: sorteo | result: success"));
  assert.equal(second.length, 1);
  assert.ok(second[0]!.endsWith("action: reconexion | result: success"));
});

/** Runs a script that logs to the real stdout through `setupLogging`; returns its output. */
async function runLoggingScript(body: string): Promise<{ code: number; lines: string[] }> {
  const logModule = new URL("./log.ts", import.meta.url).href;
  const script = `import { actionLogger as log, setupLogging } from "${logModule}";
setupLogging("INFO");
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
