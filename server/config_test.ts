import assert from "node:assert/strict";
import { join } from "node:path";
import type { ConfigWarning } from "../shared/config.ts";
import { problemsOf, withFile } from "../testing/config_files.ts";
import { loadServerConfig, type ServerConfig } from "./config.ts";

const COURSE_INI = `[DEFAULT]
SERVER_PORT = 12345
SERVER_IP = server
SERVER_LISTEN_BACKLOG = 5
LOGGING_LEVEL = INFO
`;

const DEFAULTS: ServerConfig = {
  port: 12345,
  ip: "server",
  listenBacklog: 5,
  logLevel: "INFO",
  agencies: 5,
  storagePath: "./bets.csv",
  listenAddress: "0.0.0.0",
  fsync: "group",
  maxConnections: 2048,
  idleTimeout: { ms: 30_000, text: "30s" },
  maxFrameSize: 8192,
  drawWait: { ms: 1000, text: "1s" },
  progressInterval: { ms: 5000, text: "5s" },
  secretsPath: "",
  excludedAgencies: [],
  workers: Math.min(64, navigator.hardwareConcurrency),
};

Deno.test("loadServerConfig() fills every other key with its default for the course's minimal file", async () => {
  await withFile("config.ini", COURSE_INI, (path) => {
    assert.deepEqual(loadServerConfig({ env: {}, path }), DEFAULTS);
  });
});

Deno.test("loadServerConfig() reads every key from [DEFAULT]", async () => {
  const ini = `[DEFAULT]
SERVER_PORT = 23456
SERVER_IP = lottery
SERVER_LISTEN_BACKLOG = 64
LOGGING_LEVEL = DEBUG
SERVER_AGENCIES = 20
SERVER_STORAGE_PATH = /tmp/x/bets.csv
SERVER_LISTEN_ADDRESS = 127.0.0.1
SERVER_FSYNC = batch
SERVER_MAX_CONNECTIONS = 100
SERVER_IDLE_TIMEOUT = 1m30s
SERVER_MAX_FRAME_SIZE = 4096
SERVER_DRAW_WAIT = 250ms
SERVER_PROGRESS_INTERVAL = 1s
SERVER_SECRETS_PATH = /etc/secrets.ini
SERVER_EXCLUDED_AGENCIES = 4, 2
SERVER_WORKERS = 3
`;
  await withFile("config.ini", ini, (path) => {
    assert.deepEqual(loadServerConfig({ env: {}, path }), {
      agencies: 20,
      drawWait: { ms: 250, text: "250ms" },
      excludedAgencies: [2, 4],
      fsync: "batch",
      idleTimeout: { ms: 90_000, text: "1m30s" },
      ip: "lottery",
      listenAddress: "127.0.0.1",
      listenBacklog: 64,
      logLevel: "DEBUG",
      maxConnections: 100,
      maxFrameSize: 4096,
      port: 23456,
      progressInterval: { ms: 1000, text: "1s" },
      secretsPath: "/etc/secrets.ini",
      storagePath: "/tmp/x/bets.csv",
      workers: 3,
    });
  });
});

Deno.test("loadServerConfig() reads keys written before any section header", async () => {
  await withFile("config.ini", "SERVER_PORT = 4000\nLOGGING_LEVEL = ERROR\n", (path) => {
    const config = loadServerConfig({ env: {}, path });
    assert.equal(config.port, 4000);
    assert.equal(config.logLevel, "ERROR");
  });
});

Deno.test("loadServerConfig() lets env override the file with the same names", async () => {
  await withFile("config.ini", COURSE_INI, (path) => {
    const config = loadServerConfig({
      path,
      env: {
        SERVER_PORT: "5555",
        SERVER_LISTEN_BACKLOG: "10",
        LOGGING_LEVEL: "warning",
        SERVER_AGENCIES: "3",
        SERVER_STORAGE_PATH: "other.csv",
        SERVER_FSYNC: "OFF",
        SERVER_IDLE_TIMEOUT: "50ms",
        UNRELATED: "x",
      },
    });
    assert.deepEqual(config, {
      ...DEFAULTS,
      port: 5555,
      listenBacklog: 10,
      logLevel: "WARNING",
      agencies: 3,
      storagePath: "other.csv",
      fsync: "off",
      idleTimeout: { ms: 50, text: "50ms" },
    });
  });
});

Deno.test("loadServerConfig() finds the file through SERVER_CONFIG", async () => {
  await withFile("config.ini", "[DEFAULT]\nSERVER_AGENCIES = 7\n", (path) => {
    assert.equal(loadServerConfig({ env: { SERVER_CONFIG: path } }).agencies, 7);
  });
});

Deno.test("loadServerConfig() reports each bad value with key, source and expected form", async (t) => {
  const ini = `[DEFAULT]
SERVER_PORT = abc
SERVER_IP = server
SERVER_LISTEN_BACKLOG = 5
LOGGING_LEVEL = LOUD
SERVER_FSYNC = sometimes
`;
  await withFile("config.ini", ini, async (path) => {
    await t.step("all file problems at once", () => {
      assert.deepEqual(problemsOf(() => loadServerConfig({ env: {}, path })), [
        `Invalid config value "abc" from ${path} key SERVER_PORT: expected a whole number from 0 to 65535`,
        `Invalid config value "LOUD" from ${path} key LOGGING_LEVEL: expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL`,
        `Invalid config value "sometimes" from ${path} key SERVER_FSYNC: expected one of group, batch, off`,
      ]);
    });
    await t.step("env problems name the env var", () => {
      assert.deepEqual(
        problemsOf(() =>
          loadServerConfig({
            path,
            env: {
              SERVER_PORT: "70000",
              LOGGING_LEVEL: "INFO",
              SERVER_FSYNC: "group",
              SERVER_IDLE_TIMEOUT: "30",
              SERVER_AGENCIES: "0",
            },
          })
        ),
        [
          'Invalid config value "70000" from env SERVER_PORT: expected a whole number from 0 to 65535',
          'Invalid config value "0" from env SERVER_AGENCIES: expected a whole number from 1 to 65535',
          'Invalid config value "30" from env SERVER_IDLE_TIMEOUT: expected a duration such as "100ms", "5s" or "1m30s" from 10ms to 576h, or 0 for no timeout',
        ],
      );
    });
  });
});

Deno.test("loadServerConfig() refuses an empty SERVER_STORAGE_PATH, which would mean ./bets.csv", async (t) => {
  await t.step("from env", async () => {
    await withFile("config.ini", COURSE_INI, (path) => {
      assert.deepEqual(
        problemsOf(() => loadServerConfig({ path, env: { SERVER_STORAGE_PATH: "" } })),
        [
          'Invalid config value "" from env SERVER_STORAGE_PATH: expected the path of the bets file (leave the setting out for ./bets.csv)',
        ],
      );
    });
  });
  await t.step("from the file", async () => {
    await withFile("config.ini", `${COURSE_INI}SERVER_STORAGE_PATH =\n`, (path) => {
      assert.deepEqual(problemsOf(() => loadServerConfig({ path, env: {} })), [
        `Invalid config value "" from ${path} key SERVER_STORAGE_PATH: expected the path of the bets file (leave the setting out for ./bets.csv)`,
      ]);
    });
  });
});

Deno.test("loadServerConfig() reads SERVER_EXCLUDED_AGENCIES as agencies of the draw, not all", async (t) => {
  await withFile("config.ini", COURSE_INI, async (path) => {
    const load = (value: string, agencies = "5") =>
      loadServerConfig({
        path,
        env: { SERVER_EXCLUDED_AGENCIES: value, SERVER_AGENCIES: agencies },
      });
    await t.step("spaces or commas", () => {
      assert.deepEqual(load("3").excludedAgencies, [3]);
      assert.deepEqual(load("5 1,3, 1").excludedAgencies, [1, 3, 5]);
    });
    await t.step("not a list of ids", () => {
      assert.deepEqual(problemsOf(() => load("x")), [
        'Invalid config value "x" from env SERVER_EXCLUDED_AGENCIES: expected agency ids from 1 to 65535 separated by spaces or commas, e.g. "4" or "2,4"',
      ]);
    });
    await t.step("an agency outside the draw, or every agency", () => {
      const expected =
        "from env SERVER_EXCLUDED_AGENCIES: expected agency ids from 1 to 3 (SERVER_AGENCIES), not all of them";
      assert.deepEqual(problemsOf(() => load("4", "3")), [`Invalid config value "4" ${expected}`]);
      assert.deepEqual(problemsOf(() => load("1 2 3", "3")), [
        `Invalid config value "1 2 3" ${expected}`,
      ]);
    });
  });
});

Deno.test("loadServerConfig() fails on a missing explicit file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "server_config_test_" });
  try {
    const path = join(dir, "missing.ini");
    const problems = problemsOf(() => loadServerConfig({ env: {}, path }));
    assert.equal(problems.length, 1);
    assert.ok(problems[0]!.startsWith(`Cannot read config file ${path}: `), problems[0]);
    const viaEnv = problemsOf(() => loadServerConfig({ env: { SERVER_CONFIG: path } }));
    assert.ok(viaEnv[0]!.startsWith(`Cannot read config file ${path}: `), viaEnv[0]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadServerConfig() reports ignored lines with the closest key, and goes on", async () => {
  const ini = `${COURSE_INI}LOGING_LEVEL = DEBUG\nSERVER_AGENCIES 3\n`;
  await withFile("config.ini", ini, (path) => {
    const warnings: ConfigWarning[] = [];
    const config = loadServerConfig({ env: {}, path, onWarning: (w) => warnings.push(w) });
    assert.deepEqual(config, DEFAULTS);
    assert.deepEqual(warnings, [
      {
        file: path,
        line: 6,
        key: "LOGING_LEVEL",
        closest: "LOGGING_LEVEL",
        problem: "unknown key, ignored",
      },
      {
        file: path,
        line: 7,
        key: "SERVER_AGENCIES",
        closest: "SERVER_AGENCIES",
        problem: "not a KEY = value line, ignored",
      },
    ]);
  });
  await withFile("config.ini", COURSE_INI, (path) => {
    const warnings: ConfigWarning[] = [];
    loadServerConfig({ env: {}, path, onWarning: (w) => warnings.push(w) });
    assert.deepEqual(warnings, [], "the course's file gives none");
  });
});

Deno.test("loadServerConfig() bounds every duration and says what 0 means", async () => {
  await withFile("config.ini", "[DEFAULT]\n", (path) => {
    const load = (env: Record<string, string>) => loadServerConfig({ path, env });
    assert.deepEqual(
      problemsOf(() =>
        load({
          SERVER_IDLE_TIMEOUT: "600h",
          SERVER_DRAW_WAIT: "0",
          SERVER_PROGRESS_INTERVAL: "5ms",
        })
      ),
      [
        'Invalid config value "600h" from env SERVER_IDLE_TIMEOUT: expected a duration such as "100ms", "5s" or "1m30s" from 10ms to 576h, or 0 for no timeout',
        'Invalid config value "0" from env SERVER_DRAW_WAIT: expected a duration such as "100ms", "5s" or "1m30s" from 10ms to 10m',
        'Invalid config value "5ms" from env SERVER_PROGRESS_INTERVAL: expected a duration such as "100ms", "5s" or "1m30s" from 10ms to 576h',
      ],
      "out of range is a problem naming the key and the range",
    );
    const config = load({
      SERVER_IDLE_TIMEOUT: "0",
      SERVER_DRAW_WAIT: "10m",
      SERVER_PROGRESS_INTERVAL: "576h",
    });
    assert.equal(config.idleTimeout.ms, 0, "0 is no timeout");
    assert.equal(config.drawWait.ms, 600_000);
    assert.ok(config.progressInterval.ms < 2 ** 31, "the longest stays under a timer's limit");
  });
});

Deno.test("loadServerConfig() refuses SERVER_WORKERS outside 1..64", async () => {
  await withFile("config.ini", COURSE_INI, (path) => {
    for (const value of ["0", "65", "two"]) {
      assert.throws(
        () => loadServerConfig({ path, env: { SERVER_WORKERS: value } }),
        new RegExp(
          `Invalid config value "${value}" from env SERVER_WORKERS: expected a whole number from 1 to 64`,
        ),
      );
    }
  });
});
