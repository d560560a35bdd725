import assert from "node:assert/strict";
import { join } from "node:path";
import { captureLogger } from "../testing/log_capture.ts";
import {
  flattenKeys,
  iniWarnings,
  logConfigWarnings,
  readConfigText,
  resolveSettings,
  type Setting,
  unknownKeyWarnings,
} from "./config.ts";
import {
  duration,
  durationIn,
  hostPort,
  integer,
  logLevel,
  oneOf,
  secret,
  text,
} from "./config_values.ts";
import { parseDuration } from "./duration.ts";
import { ConfigError } from "./errors.ts";
import { formatAction } from "./log.ts";

const SETTINGS = {
  port: { file: "PORT", env: "APP_PORT", parser: integer(1, 65535), default: 8080 },
  period: {
    file: "loop.period",
    env: "APP_PERIOD",
    parser: duration,
    default: parseDuration("100ms"),
  },
  level: { file: "log.level", env: "APP_LEVEL", parser: logLevel, default: "INFO" },
  mode: { file: "mode", env: "APP_MODE", parser: oneOf(["a", "b"] as const), default: "a" },
  id: { file: "id", env: "APP_ID", parser: integer(1, 10) },
} as const satisfies Record<string, Setting<unknown>>;

function sources(
  fileValues: Record<string, unknown>,
  env: Record<string, string | undefined> = {},
) {
  return { fileName: "app.yaml", fileValues: new Map(Object.entries(fileValues)), env };
}

/** Asserts `fn` throws a ConfigError and returns its problems. */
function configProblems(fn: () => unknown): readonly string[] {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${error}`);
    assert.equal(error.name, "ConfigError");
    assert.equal(error.message, error.problems.join("; "));
    return error.problems;
  }
  assert.fail("expected a ConfigError");
}

Deno.test("resolveSettings() takes env over file over default", async (t) => {
  /** One step: `src` must resolve to exactly `expected`. */
  async function resolves(name: string, src: ReturnType<typeof sources>, expected: object) {
    await t.step(name, () => assert.deepEqual(resolveSettings(SETTINGS, src), expected));
  }
  await resolves(
    "defaults when neither is set",
    sources({ id: 3 }),
    { port: 8080, period: { ms: 100, text: "100ms" }, level: "INFO", mode: "a", id: 3 },
  );
  await resolves(
    "file over default",
    sources({ PORT: "9000", "loop.period": "5s", "log.level": "debug", mode: "B", id: 4 }),
    { port: 9000, period: { ms: 5000, text: "5s" }, level: "DEBUG", mode: "b", id: 4 },
  );
  await resolves(
    "env over file",
    sources(
      { PORT: "9000", "loop.period": "5s", "log.level": "DEBUG", mode: "b", id: 4 },
      { APP_PORT: "9001", APP_PERIOD: "1m30s", APP_LEVEL: "warn", APP_MODE: "a", APP_ID: "5" },
    ),
    { port: 9001, period: { ms: 90_000, text: "1m30s" }, level: "WARNING", mode: "a", id: 5 },
  );
  await t.step("a valid env value hides an invalid file value", () => {
    const config = resolveSettings(SETTINGS, sources({ PORT: "abc", id: 1 }, { APP_PORT: "1" }));
    assert.equal(config.port, 1);
  });
  await t.step("an empty env value counts as unset", () => {
    const config = resolveSettings(SETTINGS, sources({ PORT: "9000", id: 1 }, { APP_PORT: "" }));
    assert.equal(config.port, 9000);
  });
  await t.step("an empty or null file value takes the default", () => {
    const config = resolveSettings(SETTINGS, sources({ PORT: "", "log.level": null, id: 1 }));
    assert.equal(config.port, 8080);
    assert.equal(config.level, "INFO");
  });
});

Deno.test("resolveSettings() reports every bad value at once", () => {
  const problems = configProblems(() =>
    resolveSettings(
      SETTINGS,
      sources(
        { PORT: "abc", "loop.period": 5, mode: "c" },
        { APP_LEVEL: "LOUD" },
      ),
    )
  );
  assert.deepEqual(problems, [
    'Invalid config value "abc" from app.yaml key PORT: expected a whole number from 1 to 65535',
    'Invalid config value 5 from app.yaml key loop.period: expected a duration such as "100ms", "5s" or "1m30s"',
    'Invalid config value "LOUD" from env APP_LEVEL: expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL',
    'Invalid config value "c" from app.yaml key mode: expected one of a, b',
    "Missing config value id: set it in app.yaml or env APP_ID (expected a whole number from 1 to 10)",
  ]);
});

Deno.test("resolveSettings() names a missing required key with its file key and env var", () => {
  const problems = configProblems(() => resolveSettings(SETTINGS, sources({})));
  assert.deepEqual(problems, [
    "Missing config value id: set it in app.yaml or env APP_ID (expected a whole number from 1 to 10)",
  ]);
});

Deno.test("integer() accepts whole numbers in range only", async (t) => {
  const parser = integer(0, 100);
  assert.equal(parser.expected, "a whole number from 0 to 100");
  const good: [unknown, number][] = [["0", 0], ["100", 100], [" 42 ", 42], [7, 7]];
  for (const [raw, value] of good) {
    await t.step(`accepts ${JSON.stringify(raw)}`, () => assert.equal(parser.parse(raw), value));
  }
  for (const raw of ["-1", "101", "1.5", 1.5, "1e2", "abc", "", "0x10", true, {}, []]) {
    await t.step(
      `rejects ${JSON.stringify(raw)}`,
      () => assert.equal(parser.parse(raw), undefined),
    );
  }
});

Deno.test("duration parses Go durations, keeping the text", () => {
  assert.deepEqual(duration.parse("250ms"), { ms: 250, text: "250ms" });
  assert.deepEqual(duration.parse(" 5s "), { ms: 5000, text: "5s" });
  assert.deepEqual(duration.parse(0), { ms: 0, text: "0" });
  assert.equal(duration.parse("5"), undefined);
  assert.equal(duration.parse(5), undefined);
  assert.equal(duration.parse("-1s"), undefined);
  assert.equal(duration.parse({}), undefined);
});

Deno.test("logLevel accepts the course's names in any case and WARN", async (t) => {
  const cases: [string, string | undefined][] = [
    ["DEBUG", "DEBUG"],
    ["info", "INFO"],
    ["Warning", "WARNING"],
    ["WARN", "WARNING"],
    ["error", "ERROR"],
    ["CRITICAL", "CRITICAL"],
    ["LOUD", undefined],
    ["FATAL", undefined],
    ["", undefined],
  ];
  for (const [raw, value] of cases) {
    await t.step(raw || "(empty)", () => assert.equal(logLevel.parse(raw), value));
  }
});

Deno.test("oneOf() matches case-insensitively and returns the canonical word", () => {
  const parser = oneOf(["group", "batch", "off"] as const);
  assert.equal(parser.expected, "one of group, batch, off");
  assert.equal(parser.parse("GROUP"), "group");
  assert.equal(parser.parse(" off "), "off");
  assert.equal(parser.parse("sometimes"), undefined);
  assert.equal(parser.parse(1), undefined);
});

Deno.test("text() accepts non-empty text up to the limit", () => {
  const parser = text(5);
  assert.equal(parser.expected, "non-empty text of at most 5 characters");
  assert.equal(parser.parse(" abc "), "abc");
  assert.equal(parser.parse("abcde"), "abcde");
  assert.equal(parser.parse("abcdef"), undefined);
  assert.equal(parser.parse("   "), undefined);
  assert.equal(parser.parse(12), "12");
  assert.equal(parser.parse(null), undefined);
});

Deno.test("hostPort parses host:port", async (t) => {
  const good: [string, { hostname: string; port: number; text: string }][] = [
    ["server:12345", { hostname: "server", port: 12345, text: "server:12345" }],
    ["127.0.0.1:1", { hostname: "127.0.0.1", port: 1, text: "127.0.0.1:1" }],
    ["[::1]:65535", { hostname: "::1", port: 65535, text: "[::1]:65535" }],
  ];
  for (const [raw, value] of good) {
    await t.step(raw, () => assert.deepEqual(hostPort.parse(raw), value));
  }
  for (
    const raw of ["server", "server:", ":12345", "server:0", "server:65536", "a b:1", "s:123456"]
  ) {
    await t.step(`rejects ${raw}`, () => assert.equal(hostPort.parse(raw), undefined));
  }
});

Deno.test("flattenKeys() turns nested objects into dotted keys", () => {
  const flat = flattenKeys({
    server: { address: "server:12345" },
    loop: { amount: 5, period: "5s" },
    list: [1, 2],
    empty: null,
  });
  assert.deepEqual(
    [...flat],
    [
      ["server.address", "server:12345"],
      ["loop.amount", 5],
      ["loop.period", "5s"],
      ["list", [1, 2]],
      ["empty", null],
    ],
  );
  assert.equal(flattenKeys(null).size, 0);
  assert.equal(flattenKeys("scalar").size, 0);
});

Deno.test("readConfigText() reads a missing default file as empty, a missing explicit file as an error", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "config_test_" });
  try {
    const missing = join(dir, "nope.ini");
    await t.step("missing default path", () => assert.equal(readConfigText(missing, false), ""));
    await t.step("missing explicit path", () => {
      const problems = configProblems(() => readConfigText(missing, true));
      assert.equal(problems.length, 1);
      assert.match(problems[0]!, new RegExp(`^Cannot read config file ${missing}: `));
      try {
        readConfigText(missing, true);
      } catch (error) {
        assert.ok((error as Error).cause instanceof Deno.errors.NotFound);
      }
    });
    await t.step("an existing file is read either way", async () => {
      const path = join(dir, "ok.ini");
      await Deno.writeTextFile(path, "A = 1\n");
      assert.equal(readConfigText(path, false), "A = 1\n");
      assert.equal(readConfigText(path, true), "A = 1\n");
    });
    await t.step("a directory at the default path is an error, not empty", () => {
      const problems = configProblems(() => readConfigText(dir, false));
      assert.match(problems[0]!, /^Cannot read config file /);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("unknownKeyWarnings() and iniWarnings() find the known key a typo meant", async (t) => {
  const settingsOf = (keys: readonly string[]) =>
    Object.fromEntries(keys.map((key) => [key, { file: key, env: key, parser: text() }]));
  const client = settingsOf(["server.address", "loop.amount", "loop.period", "log.level"]);
  const server = settingsOf(["SERVER_PORT", "SERVER_IP", "SERVER_LISTEN_BACKLOG", "LOGGING_LEVEL"]);
  const yamlCases: [string, string][] = [
    ["loop.amout", "loop.amount"],
    ["log.levle", "log.level"],
    ["server.adress", "server.address"],
    ["LOOP.PERIOD", "loop.period"],
  ];
  /** One step: the warning for `typo` must name `meant` as the closest key. */
  async function suggests(typo: string, meant: string, closest: () => string | undefined) {
    await t.step(`${typo} → ${meant}`, () => assert.equal(closest(), meant));
  }
  for (const [typo, meant] of yamlCases) {
    await suggests(typo, meant, () => unknownKeyWarnings(client, "c.yaml", [typo])[0]?.closest);
  }
  const iniCases: [string, string][] = [
    ["LOGING_LEVEL = INFO", "LOGGING_LEVEL"],
    ["SERVER_PROT = 1", "SERVER_PORT"],
    ["server_ip = x", "SERVER_IP"],
    ["SERVER_LISTEN_BACKLOG 5", "SERVER_LISTEN_BACKLOG"],
  ];
  for (const [line, meant] of iniCases) {
    await suggests(line, meant, () => iniWarnings(server, "s.ini", line)[0]?.closest);
  }
});

Deno.test("unknownKeyWarnings() names each key no setting reads, with the closest known key", () => {
  const keys = ["PORT", "loop.perod", "log", "mode", "extra.deep.key"];
  assert.deepEqual(unknownKeyWarnings(SETTINGS, "app.yaml", keys), [
    {
      file: "app.yaml",
      key: "loop.perod",
      closest: "loop.period",
      problem: "unknown key, ignored",
    },
    {
      file: "app.yaml",
      key: "extra.deep.key",
      closest: "log.level",
      problem: "unknown key, ignored",
    },
  ]);
});

Deno.test("iniWarnings() names lines that do not parse, unknown keys and other sections", () => {
  const text = [
    "; a comment",
    "# another",
    "[DEFAULT]",
    "PORT = 1",
    "PROT = 2",
    "",
    "MODE b",
    "= 3",
    "  mode = a  ",
    "[EXTRA]",
    "PORT = 4",
  ].join("\r\n");
  assert.deepEqual(iniWarnings(SETTINGS, "app.ini", text), [
    { file: "app.ini", line: 5, key: "PROT", closest: "PORT", problem: "unknown key, ignored" },
    {
      file: "app.ini",
      line: 7,
      key: "MODE",
      closest: "mode",
      problem: "not a KEY = value line, ignored",
    },
    {
      file: "app.ini",
      line: 8,
      key: "= 3",
      closest: "id",
      problem: "not a KEY = value line, ignored",
    },
    {
      file: "app.ini",
      line: 10,
      key: "[EXTRA]",
      closest: "[DEFAULT]",
      problem: "a section other than [DEFAULT], its keys are ignored",
    },
  ]);
  assert.deepEqual(iniWarnings(SETTINGS, "app.ini", "PORT=1\nid = 2\n"), []);
});

Deno.test("logConfigWarnings() logs one WARNING line per warning, in the course's format", () => {
  const { log, lines } = captureLogger();
  logConfigWarnings(log, [
    { file: "client/config.yaml", key: "loop.amout", closest: "loop.amount", problem: "unknown" },
    { file: "server/config.ini", line: 3, key: "X", closest: "PORT", problem: "unknown" },
  ]);
  assert.deepEqual(
    lines.map((l) => [l.level, formatAction(l.action, l.result, l.fields)]),
    [
      [
        "WARNING",
        "action: config_warning | result: fail | file: client/config.yaml | key: loop.amout | closest: loop.amount | detail: unknown",
      ],
      [
        "WARNING",
        "action: config_warning | result: fail | file: server/config.ini | line: 3 | key: X | closest: PORT | detail: unknown",
      ],
    ],
  );
});

Deno.test("durationIn() accepts its range, and 0 only when it says what 0 means", () => {
  const bounded = durationIn("10ms", "576h", "no timeout");
  assert.equal(bounded.parse("10ms")?.ms, 10);
  assert.equal(bounded.parse("576h")?.ms, 576 * 3_600_000);
  assert.equal(bounded.parse("0")?.ms, 0);
  assert.equal(bounded.parse("9ms"), undefined);
  assert.equal(bounded.parse("577h"), undefined);
  assert.equal(bounded.parse("soon"), undefined);
  assert.equal(durationIn("10ms", "10m").parse("0"), undefined, "0 refused without a meaning");
  assert.match(bounded.expected, /from 10ms to 576h, or 0 for no timeout$/);
  assert.throws(() => durationIn("1ms", "600h"), RangeError, "no range past a timer's limit");
});

Deno.test("secret parses up to 255 UTF-8 bytes and is never shown", () => {
  assert.equal(secret.parse("ñ".repeat(127)), "ñ".repeat(127));
  assert.equal(secret.parse("ñ".repeat(128)), undefined, "256 bytes");
  assert.equal(secret.hidden, true);
});
