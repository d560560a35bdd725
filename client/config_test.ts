import assert from "node:assert/strict";
import type { ConfigWarning } from "../shared/config.ts";
import { problemsOf, withFile } from "../testing/config_files.ts";
import { type ClientConfig, loadClientConfig } from "./config.ts";

const COURSE_YAML = `server:
  address: "server:12345"
loop:
  amount: 5
  period: "5s"
log:
  level: "INFO"
batch:
  maxAmount: 100
`;

const DEFAULTS_FOR_1: ClientConfig = {
  id: 1,
  serverAddress: { hostname: "server", port: 12345, text: "server:12345" },
  loopAmount: 5,
  loopPeriod: { ms: 5000, text: "5s" },
  logLevel: "INFO",
  batchMaxAmount: 100,
  mode: "agency",
  dataPath: ".data/agency-1.csv",
  window: 128,
  secret: "",
  connectAttempts: 10,
  connectBackoff: { ms: 100, text: "100ms" },
  connectTimeout: { ms: 5000, text: "5s" },
  timeout: { ms: 30_000, text: "30s" },
};

Deno.test("loadClientConfig() fills defaults for the course's minimal file", async () => {
  await withFile("config.yaml", COURSE_YAML, (path) => {
    assert.deepEqual(loadClientConfig({ env: { CLI_ID: "1" }, path }), DEFAULTS_FOR_1);
  });
});

Deno.test("loadClientConfig() keeps loop.period as written", async (t) => {
  for (const period of ["5s", "50ms", "100ms", "250ms", "1m30s"]) {
    await t.step(`unquoted ${period}`, async () => {
      await withFile("config.yaml", `loop:\n  period: ${period}\n`, (path) => {
        const config = loadClientConfig({ env: { CLI_ID: "1" }, path });
        assert.equal(config.loopPeriod.text, period);
      });
    });
  }
});

Deno.test("loadClientConfig() reads every key from the YAML file", async () => {
  const yaml = `id: 4
server:
  address: 127.0.0.1:23456
loop:
  amount: 12
  period: 250ms
log:
  level: debug
batch:
  maxAmount: 50
  window: 4
mode: echo
data:
  path: /tmp/bets-4.csv
secret: s3cr3t
connect:
  attempts: 3
  backoff: 50ms
  timeout: 750ms
timeout: 2s
`;
  await withFile("config.yaml", yaml, (path) => {
    assert.deepEqual(loadClientConfig({ env: {}, path }), {
      batchMaxAmount: 50,
      connectAttempts: 3,
      connectBackoff: { ms: 50, text: "50ms" },
      connectTimeout: { ms: 750, text: "750ms" },
      dataPath: "/tmp/bets-4.csv",
      id: 4,
      logLevel: "DEBUG",
      loopAmount: 12,
      loopPeriod: { ms: 250, text: "250ms" },
      mode: "echo",
      secret: "s3cr3t",
      serverAddress: { hostname: "127.0.0.1", port: 23456, text: "127.0.0.1:23456" },
      timeout: { ms: 2000, text: "2s" },
      window: 4,
    });
  });
});

/** Each CLI_* variable the override test sets, its value, and the setting it must give. */
const OVERRIDES: readonly [string, string, keyof ClientConfig, unknown][] = [
  ["CLI_ID", "3", "id", 3],
  ["CLI_SERVER_ADDRESS", "localhost:9000", "serverAddress", {
    hostname: "localhost",
    port: 9000,
    text: "localhost:9000",
  }],
  ["CLI_LOOP_AMOUNT", "2", "loopAmount", 2],
  ["CLI_LOOP_PERIOD", "100ms", "loopPeriod", { ms: 100, text: "100ms" }],
  ["CLI_LOG_LEVEL", "ERROR", "logLevel", "ERROR"],
  ["CLI_BATCH_MAXAMOUNT", "7", "batchMaxAmount", 7],
  ["CLI_MODE", "bet", "mode", "bet"],
  ["CLI_DATA_PATH", "custom.csv", "dataPath", "custom.csv"],
  ["CLI_CONNECT_TIMEOUT", "2s", "connectTimeout", { ms: 2000, text: "2s" }],
];

Deno.test("loadClientConfig() lets CLI_* env vars override the file", async () => {
  await withFile("config.yaml", COURSE_YAML, (path) => {
    const env = Object.fromEntries(OVERRIDES.map(([name, value]) => [name, value]));
    const config = loadClientConfig({ path, env });
    const overridden = Object.fromEntries(OVERRIDES.map(([, , key, want]) => [key, want]));
    assert.deepEqual(config, { ...DEFAULTS_FOR_1, ...overridden });
  });
});

Deno.test("loadClientConfig() derives dataPath from the id", async () => {
  await withFile("config.yaml", COURSE_YAML, (path) => {
    assert.equal(loadClientConfig({ env: { CLI_ID: "17" }, path }).dataPath, ".data/agency-17.csv");
  });
});

Deno.test("loadClientConfig() finds the file through CLI_CONFIG", async () => {
  await withFile("config.yaml", "batch:\n  maxAmount: 9\n", (path) => {
    assert.equal(loadClientConfig({ env: { CLI_ID: "1", CLI_CONFIG: path } }).batchMaxAmount, 9);
  });
});

Deno.test("loadClientConfig() requires CLI_ID", async () => {
  await withFile("config.yaml", COURSE_YAML, (path) => {
    assert.deepEqual(problemsOf(() => loadClientConfig({ env: {}, path })), [
      `Missing config value id: set it in ${path} or env CLI_ID (expected a whole number from 1 to 65535)`,
    ]);
  });
});

Deno.test("loadClientConfig() reports every bad value at once", async (t) => {
  const yaml = `server:
  address: "server"
loop:
  amount: -1
  period: 5
log:
  level: LOUD
batch:
  maxAmount: 0
`;
  await withFile("config.yaml", yaml, async (path) => {
    await t.step("from the file", () => {
      assert.deepEqual(problemsOf(() => loadClientConfig({ env: { CLI_ID: "x" }, path })), [
        'Invalid config value "x" from env CLI_ID: expected a whole number from 1 to 65535',
        `Invalid config value "server" from ${path} key server.address: expected an address "host:port" with a port from 1 to 65535`,
        `Invalid config value -1 from ${path} key loop.amount: expected a whole number from 0 to 1000000`,
        `Invalid config value 5 from ${path} key loop.period: expected a duration such as "100ms", "5s" or "1m30s" from 1ms to 576h, or 0 for no wait between messages`,
        `Invalid config value "LOUD" from ${path} key log.level: expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL`,
        `Invalid config value 0 from ${path} key batch.maxAmount: expected a whole number from 1 to 65535`,
      ]);
    });
    await t.step("env overrides fix the file's values", () => {
      const config = loadClientConfig({
        path,
        env: {
          CLI_ID: "2",
          CLI_SERVER_ADDRESS: "server:1",
          CLI_LOOP_AMOUNT: "0",
          CLI_LOOP_PERIOD: "1s",
          CLI_LOG_LEVEL: "INFO",
          CLI_BATCH_MAXAMOUNT: "1",
        },
      });
      assert.equal(config.loopAmount, 0);
      assert.equal(config.batchMaxAmount, 1);
    });
  });
});

Deno.test("loadClientConfig() reports bad env values with the env var name", async () => {
  await withFile("config.yaml", COURSE_YAML, (path) => {
    assert.deepEqual(
      problemsOf(() =>
        loadClientConfig({
          path,
          env: {
            CLI_ID: "1",
            CLI_LOOP_PERIOD: "soon",
            CLI_MODE: "lottery",
            CLI_BATCH_MAXAMOUNT: "9e9",
          },
        })
      ),
      [
        'Invalid config value "soon" from env CLI_LOOP_PERIOD: expected a duration such as "100ms", "5s" or "1m30s" from 1ms to 576h, or 0 for no wait between messages',
        'Invalid config value "9e9" from env CLI_BATCH_MAXAMOUNT: expected a whole number from 1 to 65535',
        'Invalid config value "lottery" from env CLI_MODE: expected one of agency, bet, echo',
      ],
    );
  });
});

Deno.test("loadClientConfig() fails on unparsable YAML and on a missing explicit file", async (t) => {
  await withFile("config.yaml", "loop: [unclosed\n", async (path) => {
    await t.step("bad YAML", () => {
      const problems = problemsOf(() => loadClientConfig({ env: { CLI_ID: "1" }, path }));
      assert.equal(problems.length, 1);
      assert.ok(problems[0]!.startsWith(`Cannot parse ${path}: `), problems[0]);
      assert.ok(!problems[0]!.includes("\n"), "one line");
    });
    await t.step("missing file", () => {
      const missing = `${path}.missing`;
      const problems = problemsOf(() => loadClientConfig({ env: { CLI_ID: "1" }, path: missing }));
      assert.ok(problems[0]!.startsWith(`Cannot read config file ${missing}: `), problems[0]);
    });
  });
});

Deno.test("loadClientConfig() reports keys it does not know, and goes on", async () => {
  const yaml = `server:
  address: "server:12345"
loop:
  amout: 3
log:
  levle: DEBUG
batch:
  maxAmount: 100
conect:
  attempts: 2
`;
  await withFile("config.yaml", yaml, (path) => {
    const warnings: ConfigWarning[] = [];
    const config = loadClientConfig({
      env: { CLI_ID: "1" },
      path,
      onWarning: (w) => warnings.push(w),
    });
    assert.deepEqual(config, DEFAULTS_FOR_1);
    assert.deepEqual(
      warnings.map((w) => [w.file, w.key, w.closest]),
      [
        [path, "loop.amout", "loop.amount"],
        [path, "log.levle", "log.level"],
        [path, "conect.attempts", "connect.attempts"],
      ],
    );
  });
});

Deno.test("loadClientConfig() reports no warning for the course's file", async () => {
  await withFile("config.yaml", COURSE_YAML, (path) => {
    const warnings: ConfigWarning[] = [];
    loadClientConfig({ env: { CLI_ID: "1" }, path, onWarning: (w) => warnings.push(w) });
    assert.deepEqual(warnings, []);
  });
});

Deno.test("loadClientConfig() bounds every duration and says what 0 means", async () => {
  await withFile("config.yaml", COURSE_YAML, (path) => {
    const load = (env: Record<string, string>) =>
      loadClientConfig({ path, env: { CLI_ID: "1", ...env } });
    assert.deepEqual(
      problemsOf(() =>
        load({
          CLI_LOOP_PERIOD: "600h",
          CLI_CONNECT_BACKOFF: "0",
          CLI_CONNECT_TIMEOUT: "600h",
          CLI_TIMEOUT: "1ms",
        })
      ),
      [
        'Invalid config value "600h" from env CLI_LOOP_PERIOD: expected a duration such as "100ms", "5s" or "1m30s" from 1ms to 576h, or 0 for no wait between messages',
        'Invalid config value "0" from env CLI_CONNECT_BACKOFF: expected a duration such as "100ms", "5s" or "1m30s" from 1ms to 5s',
        'Invalid config value "600h" from env CLI_CONNECT_TIMEOUT: expected a duration such as "100ms", "5s" or "1m30s" from 10ms to 576h, or 0 for no timeout',
        'Invalid config value "1ms" from env CLI_TIMEOUT: expected a duration such as "100ms", "5s" or "1m30s" from 10ms to 576h, or 0 for no timeout',
      ],
    );
    const config = load({ CLI_LOOP_PERIOD: "0", CLI_CONNECT_TIMEOUT: "0", CLI_TIMEOUT: "576h" });
    assert.equal(config.loopPeriod.ms, 0, "0 is no wait");
    assert.equal(config.connectTimeout.ms, 0, "0 is no timeout");
    assert.ok(config.timeout.ms < 2 ** 31, "the longest stays under a timer's limit");
  });
});

Deno.test("loadClientConfig() refuses a secret over 255 bytes without printing it", async () => {
  await withFile("config.yaml", COURSE_YAML, (path) => {
    const secret = "ñ".repeat(200);
    const problems = problemsOf(() =>
      loadClientConfig({ path, env: { CLI_ID: "1", CLI_SECRET: secret } })
    );
    assert.deepEqual(problems, [
      "Invalid config value (not shown, 400 bytes) from env CLI_SECRET: expected text of at most 255 bytes (UTF-8)",
    ]);
    assert.equal(
      loadClientConfig({ path, env: { CLI_ID: "1", CLI_SECRET: "ñ".repeat(127) } }).secret.length,
      127,
    );
  });
});
