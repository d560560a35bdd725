import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import YAML from "yaml";
import {
  composeDocument,
  DEFAULT_OUTPUT,
  MAX_CLIENTS,
  NETWORK,
  NETWORK_NAME,
  parseClientCount,
  parseGenComposeArgs,
  renderCompose,
  sampleBet,
  SERVER_STORAGE_PATH,
  shadowedSettings,
  SUBNET,
  validateCompose,
  writeCompose,
} from "./gen_compose.ts";
import { IMAGES } from "./images.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

interface Service {
  "container_name": string;
  image: string;
  environment: Record<string, string>;
  volumes: string[];
  networks: string[];
  "depends_on"?: { server: { condition: string } };
  healthcheck?: { test: string[] };
  "stop_grace_period": string;
}

function services(doc: Record<string, unknown>): Record<string, Service> {
  return doc["services"] as Record<string, Service>;
}

/** Every key the course's config files carry, which the compose file must never shadow. */
const COURSE_ENV_KEYS = [
  "SERVER_PORT",
  "SERVER_IP",
  "SERVER_LISTEN_BACKLOG",
  "LOGGING_LEVEL",
  "CLI_SERVER_ADDRESS",
  "CLI_LOOP_AMOUNT",
  "CLI_LOOP_PERIOD",
  "CLI_LOG_LEVEL",
  "CLI_BATCH_MAXAMOUNT",
];

Deno.test("composeDocument() names the server and client1…clientN", () => {
  const doc = composeDocument({ clients: 5 });
  assert.deepEqual(Object.keys(services(doc)), [
    "server",
    "client1",
    "client2",
    "client3",
    "client4",
    "client5",
  ]);
  for (const [name, service] of Object.entries(services(doc))) {
    assert.equal(service.container_name, name);
    assert.deepEqual(service.networks, [NETWORK]);
    assert.equal(service.stop_grace_period, "10s");
  }
});

Deno.test("composeDocument() declares the testing_net network with its fixed name and subnet", () => {
  assert.deepEqual(composeDocument({ clients: 1 })["networks"], {
    testing_net: {
      name: NETWORK_NAME,
      ipam: { driver: "default", config: [{ subnet: SUBNET }] },
    },
  });
  assert.equal(NETWORK_NAME, "tp0_testing_net");
  assert.equal(SUBNET, "172.25.125.0/24");
});

Deno.test("composeDocument() mounts configs and bet storage and tells the server N", () => {
  const server = services(composeDocument({ clients: 3 }))["server"]!;
  assert.equal(server.image, IMAGES.server);
  assert.deepEqual(server.environment, {
    SERVER_AGENCIES: "3",
    SERVER_STORAGE_PATH,
  });
  assert.ok(server.volumes.includes("./server/config.ini:/app/server/config.ini:ro"));
  assert.ok(server.volumes.some((volume) => volume.endsWith(":/data")), "bets on a volume");
  assert.ok(SERVER_STORAGE_PATH.startsWith("/data/"));
  assert.deepEqual(server.healthcheck?.test.slice(0, 3), ["CMD", "sh", "-c"]);
});

Deno.test("composeDocument() gives each agency its id, config, data file and health dependency", () => {
  const doc = composeDocument({ clients: 2, dataDir: "./data/" });
  const client2 = services(doc)["client2"]!;
  assert.equal(client2.image, IMAGES.client);
  assert.deepEqual(client2.environment, { CLI_ID: "2", CLI_MODE: "agency" });
  assert.deepEqual(client2.volumes, [
    "./client/config.yaml:/app/client/config.yaml:ro",
    "./data/agency-2.csv:/app/.data/agency-2.csv:ro",
  ]);
  assert.deepEqual(client2.depends_on, { server: { condition: "service_healthy" } });
});

Deno.test("composeDocument() with 0 clients holds the server alone, with its own agency count", () => {
  const doc = composeDocument({ clients: 0 });
  assert.deepEqual(Object.keys(services(doc)), ["server"]);
  assert.deepEqual(services(doc)["server"]!.environment, { SERVER_STORAGE_PATH });
});

Deno.test("composeDocument() modes: echo mounts no data, bet passes exercise 5's variables", () => {
  const echo = services(composeDocument({ clients: 2, mode: "echo" }))["client1"]!;
  assert.deepEqual(echo.environment, { CLI_ID: "1", CLI_MODE: "echo" });
  assert.equal(echo.volumes.length, 1, "only the config");
  const bet = services(composeDocument({ clients: 2, mode: "bet" }))["client2"]!;
  assert.deepEqual(bet.environment, { CLI_ID: "2", CLI_MODE: "bet", ...sampleBet(2) });
});

Deno.test("composeDocument() never sets an env var that shadows a course config key", async (t) => {
  for (const mode of ["agency", "bet", "echo"] as const) {
    await t.step(mode, () => {
      for (const service of Object.values(services(composeDocument({ clients: 3, mode })))) {
        for (const key of COURSE_ENV_KEYS) {
          assert.ok(!(key in service.environment), `${key} must come from the config file`);
        }
      }
    });
  }
});

Deno.test("sampleBet() is deterministic, well-formed, and agency 1 holds the winning number", () => {
  assert.deepEqual(sampleBet(3), sampleBet(3));
  assert.equal(sampleBet(1).NUMERO, "7574");
  for (let id = 1; id <= 40; id++) {
    const bet = sampleBet(id);
    assert.match(bet.NACIMIENTO, /^\d{4}-\d{2}-\d{2}$/);
    assert.match(bet.DOCUMENTO, /^\d{8}$/);
    assert.ok(bet.NOMBRE !== "" && bet.APELLIDO !== "");
  }
});

Deno.test("renderCompose() parses back to the same document, as YAML 1.1 too", () => {
  const options = { clients: 4, mode: "bet" } as const;
  const text = renderCompose(options);
  assert.ok(text.startsWith("# Generated by"));
  assert.deepEqual(YAML.parse(text), composeDocument(options));
  // Compose v1 reads YAML 1.1, where an unquoted 1971-03-17 would be a date.
  assert.deepEqual(YAML.parse(text, { version: "1.1" }), composeDocument(options));
  assert.match(text, /NACIMIENTO: "\d{4}-\d{2}-\d{2}"/);
  assert.ok(!/^name:/m.test(text), "no top-level name: Compose v1 rejects it");
});

Deno.test("validateCompose() rejects a file that does not match", async (t) => {
  const doc = composeDocument({ clients: 2 });
  const text = renderCompose({ clients: 2 });
  await t.step("changed", () => {
    assert.throws(
      () => validateCompose(text.replace("client2", "clientX"), doc),
      SyntaxError,
    );
  });
  await t.step("unparsable", () => {
    assert.throws(() => validateCompose("services: [", doc), SyntaxError);
  });
  await t.step("wrong shape", () => {
    const bad = composeDocument({ clients: 2 });
    services(bad)["client2"]!.container_name = "other";
    assert.throws(() => validateCompose(YAML.stringify(bad), bad), SyntaxError);
  });
});

Deno.test("shadowedSettings() names env vars a config file also sets", () => {
  const doc = composeDocument({ clients: 1 });
  assert.deepEqual(
    shadowedSettings(doc, {
      server: new Set(["SERVER_PORT", "LOGGING_LEVEL"]),
      client: new Set(["server.address", "log.level"]),
    }),
    [],
  );
  assert.deepEqual(
    shadowedSettings(doc, {
      server: new Set(["SERVER_AGENCIES"]),
      client: new Set(["mode"]),
    }),
    [
      "server: SERVER_AGENCIES shadows SERVER_AGENCIES of the INI file",
      "client1: CLI_MODE shadows mode of the YAML file",
    ],
  );
});

Deno.test("parseClientCount() accepts 0…MAX_CLIENTS and rejects the rest", async (t) => {
  assert.equal(parseClientCount("0"), 0);
  assert.equal(parseClientCount("20"), 20);
  assert.equal(parseClientCount(String(MAX_CLIENTS)), MAX_CLIENTS);
  for (const bad of ["", "x", "1.5", "-1", String(MAX_CLIENTS + 1), "5e1"]) {
    await t.step(JSON.stringify(bad), () => {
      assert.throws(() => parseClientCount(bad), RangeError);
    });
  }
});

Deno.test("parseGenComposeArgs() reads [OUTPUT] N and the flags", () => {
  assert.equal(parseGenComposeArgs(["5"]).output, DEFAULT_OUTPUT);
  assert.equal(parseGenComposeArgs(["5"]).options.clients, 5);
  assert.equal(parseGenComposeArgs(["docker-compose-dev.yaml", "5"]).output, DEFAULT_OUTPUT);
  const parsed = parseGenComposeArgs(["out.yaml", "0", "--mode", "echo"]);
  assert.equal(parsed.output, "out.yaml");
  assert.equal(parsed.options.clients, 0);
  assert.equal(parsed.options.mode, "echo");
  assert.equal(parseGenComposeArgs(["--mode", "bet", "2"]).options.mode, "bet");
});

Deno.test("parseGenComposeArgs() rejects bad input", async (t) => {
  const cases: [string[], ErrorConstructor | RangeErrorConstructor][] = [
    [[], TypeError],
    [["a", "1", "2"], TypeError],
    [["--mode", "loop", "1"], TypeError],
    [["--bogus", "1"], TypeError],
    [["--stop-grace-period", "ten", "1"], TypeError],
    [["many"], RangeError],
  ];
  for (const [args, error] of cases) {
    await t.step(args.join(" ") || "(none)", () => {
      assert.throws(() => parseGenComposeArgs(args), error);
    });
  }
});

Deno.test("writeCompose() writes the file and warns about shadowed config values", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gen_compose_test_" });
  try {
    await Deno.mkdir(`${dir}/server`);
    await Deno.mkdir(`${dir}/client`);
    await Deno.writeTextFile(`${dir}/server/config.ini`, "[DEFAULT]\nSERVER_PORT = 12345\n");
    await Deno.writeTextFile(`${dir}/client/config.yaml`, "log:\n  level: INFO\n");
    assert.deepEqual(await writeCompose(`${dir}/dc.yaml`, { clients: 2 }), []);
    assert.deepEqual(
      YAML.parse(await Deno.readTextFile(`${dir}/dc.yaml`)),
      composeDocument({ clients: 2 }),
    );
    await Deno.writeTextFile(`${dir}/client/config.yaml`, "mode: echo\n");
    assert.deepEqual(await writeCompose(`${dir}/dc.yaml`, { clients: 1 }), [
      "client1: CLI_MODE shadows mode of the YAML file",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

async function genCompose(cwd: string, args: string[]) {
  // The task's own permissions, from deno.json, run in a scratch folder.
  const task = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`)).tasks["gen-compose"];
  const flags = (task as string).split(" ").filter((word) => word.startsWith("--allow"));
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...flags, `${ROOT}tools/gen_compose.ts`, ...args],
    cwd,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

Deno.test("gen-compose CLI writes the default or named file with the task's permissions", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gen_compose_cli_" });
  try {
    const first = await genCompose(dir, ["5"]);
    assert.equal(first.code, 0, first.stderr);
    const doc = YAML.parse(await Deno.readTextFile(`${dir}/${DEFAULT_OUTPUT}`));
    assert.equal(Object.keys(doc.services).length, 6);
    const second = await genCompose(dir, ["other.yaml", "0"]);
    assert.equal(second.code, 0, second.stderr);
    const alone = YAML.parse(await Deno.readTextFile(`${dir}/other.yaml`));
    assert.deepEqual(Object.keys(alone.services), ["server"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("gen-compose CLI prints one error line and exits 1 on bad input", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "gen_compose_cli_" });
  try {
    for (const args of [["300"], [], ["--mode", "loop", "2"], ["a", "b", "c"]]) {
      await t.step(args.join(" ") || "(none)", async () => {
        const result = await genCompose(dir, args);
        assert.equal(result.code, 1);
        assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
        assert.match(result.stderr, /^gen-compose: /);
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
