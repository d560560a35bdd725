import assert from "node:assert/strict";
import { dirname, isAbsolute } from "node:path";
import { fileURLToPath } from "node:url";
import YAML from "yaml";
import { loadSecrets } from "../server/secrets.ts";
import { ToolError, UsageError } from "./_cli.ts";
import {
  BETS_VOLUME,
  composeDocument,
  DEFAULT_OUTPUT,
  main,
  MAX_CLIENTS,
  NETWORK,
  NETWORK_NAME,
  parseClientCount,
  renderDeployment,
  sampleBet,
  SERVER_STORAGE_PATH,
  STACK_BETS_VOLUME,
  stackDocument,
  stackFlags,
  type StackOptions,
  SUBNET,
  writeDeployment,
} from "./gen_compose.ts";
import { IMAGES } from "./images.ts";
import {
  clientEnvFile,
  newSecret,
  SECRETS_FILE,
  SERVER_SECRETS_PATH,
  writeSecrets,
} from "./secrets.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

async function withTempDir(prefix: string, fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function modeOf(path: string): Promise<number> {
  return ((await Deno.stat(path)).mode ?? 0) & 0o777;
}

/** Agency secrets as the client sees them: `CLI_SECRET` of each env file. */
async function envFileSecrets(dir: string): Promise<Map<number, string>> {
  const secrets = new Map<number, string>();
  for await (const entry of Deno.readDir(dir)) {
    const match = /^client(\d+)\.env$/.exec(entry.name);
    if (match === null) continue;
    const text = await Deno.readTextFile(`${dir}/${entry.name}`);
    const line = text.split("\n").find((l) => l.startsWith("CLI_SECRET="));
    secrets.set(Number(match[1]), line?.slice("CLI_SECRET=".length) ?? "");
  }
  return secrets;
}

interface Service {
  "container_name": string;
  image: string;
  environment: Record<string, string>;
  volumes: string[];
  networks: string[];
  "depends_on"?: { server: { condition: string } };
  "env_file"?: string;
  healthcheck?: { test: string[] };
  "stop_grace_period": string;
  init?: boolean;
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
    assert.equal(service.init, true, `${name} runs under an init that forwards signals`);
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

Deno.test("composeDocument() mounts the config, keeps the bets in the server container and tells the server N", () => {
  const doc = composeDocument({ clients: 3 });
  const server = services(doc)["server"]!;
  assert.equal(server.image, IMAGES.server);
  assert.deepEqual(server.environment, {
    SERVER_AGENCIES: "3",
    SERVER_STORAGE_PATH,
  });
  // No volume at all: the bets live and die with the container, as in the course's own
  // deployment, so down then up is a fresh draw.
  assert.deepEqual(server.volumes, ["./server/config.ini:/app/server/config.ini:ro"]);
  assert.equal(doc["volumes"], undefined);
  assert.deepEqual(server.healthcheck?.test.slice(0, 3), ["CMD", "sh", "-c"]);
});

Deno.test("composeDocument() with keepBets puts the bets on the named volume tp0_bets", () => {
  const doc = composeDocument({ clients: 3, keepBets: true });
  const server = services(doc)["server"]!;
  assert.deepEqual(server.volumes, [
    "./server/config.ini:/app/server/config.ini:ro",
    `${BETS_VOLUME}:/data`,
  ]);
  assert.ok(SERVER_STORAGE_PATH.startsWith("/data/"));
  assert.deepEqual(doc["volumes"], { tp0_bets: { name: "tp0_bets" } });
  assert.equal(BETS_VOLUME, "tp0_bets");
});

Deno.test("server/Dockerfile gives the app user its own /data, where the storage path points", () => {
  // Without a volume the server writes into its image's /data: it must be the app user's.
  const dockerfile = Deno.readTextFileSync(`${ROOT}server/Dockerfile`);
  assert.match(dockerfile, /mkdir -p [^;]*\/out\/data/);
  assert.match(dockerfile, /chown -R "\$APP_UID:\$APP_UID" \/out\/data/);
  assert.match(dockerfile, /SERVER_STORAGE_PATH=\/data\/bets\.csv/);
  assert.doesNotMatch(dockerfile, /^VOLUME/m, "an image VOLUME would outlive the container");
});

Deno.test("composeDocument() gives each agency its id, config, the data folder read-only and health dependency", () => {
  const doc = composeDocument({ clients: 2 });
  const client2 = services(doc)["client2"]!;
  assert.equal(client2.image, IMAGES.client);
  assert.deepEqual(client2.environment, { CLI_ID: "2", CLI_MODE: "agency" });
  // The folder, not agency-2.csv: were the file missing, Docker would make a directory in
  // its place on the host; this way the agency reports the missing file itself.
  assert.deepEqual(client2.volumes, [
    "./client/config.yaml:/app/client/config.yaml:ro",
    "./.data:/app/.data:ro",
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

Deno.test("renderDeployment() parses back to the same document, as YAML 1.1 too", () => {
  const options = { clients: 4, mode: "bet" } as const;
  const text = renderDeployment(options);
  assert.ok(text.startsWith("# Generated by"));
  assert.deepEqual(YAML.parse(text), composeDocument(options));
  // Compose v1 reads YAML 1.1, where an unquoted 1971-03-17 would be a date.
  assert.deepEqual(YAML.parse(text, { version: "1.1" }), composeDocument(options));
  assert.match(text, /NACIMIENTO: "\d{4}-\d{2}-\d{2}"/);
  assert.ok(!/^name:/m.test(text), "no top-level name: Compose v1 rejects it");
});

Deno.test("parseClientCount() accepts 0…MAX_CLIENTS and rejects the rest", async (t) => {
  assert.equal(parseClientCount("0"), 0);
  assert.equal(parseClientCount("20"), 20);
  assert.equal(parseClientCount(String(MAX_CLIENTS)), MAX_CLIENTS);
  for (const bad of ["", "x", "1.5", "-1", String(MAX_CLIENTS + 1), "5e1"]) {
    await t.step(JSON.stringify(bad), () => {
      assert.throws(() => parseClientCount(bad), UsageError);
    });
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
    const kept = await genCompose(dir, ["kept.yaml", "2", "--keep-bets"]);
    assert.equal(kept.code, 0, kept.stderr);
    assert.match(kept.stdout, /bets kept across down in volume tp0_bets/);
    const text = await Deno.readTextFile(`${dir}/kept.yaml`);
    assert.match(
      text,
      /^# Generated by `deno task gen-compose kept\.yaml 2 --mode agency --keep-bets`/,
    );
    assert.deepEqual(YAML.parse(text), composeDocument({ clients: 2, keepBets: true }));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("./generar-compose.sh <output> <clients>: the course's name runs gen-compose", async () => {
  await withTempDir("generar_compose_", async (dir) => {
    // As make does: the pinned Deno from PATH (or installed by tools/bootstrap_deno.sh).
    const env = { PATH: `${dirname(Deno.execPath())}:${Deno.env.get("PATH") ?? ""}` };
    const script = (args: string[]) =>
      new Deno.Command(`${ROOT}generar-compose.sh`, { args, cwd: dir, env }).output();
    const made = await script(["docker-compose-dev.yaml", "5", "--mode", "bet"]);
    const decoder = new TextDecoder();
    assert.equal(made.code, 0, decoder.decode(made.stderr));
    assert.match(decoder.decode(made.stdout), /^gen-compose: wrote .*docker-compose-dev\.yaml/);
    assert.equal(decoder.decode(made.stderr), "", "no task banner, no noise");
    // Written where it was asked from, not in the repository.
    const text = await Deno.readTextFile(`${dir}/docker-compose-dev.yaml`);
    assert.deepEqual(YAML.parse(text), composeDocument({ clients: 5, mode: "bet" }));
    const usage = await script(["only-one-argument.yaml"]);
    assert.equal(usage.code, 2);
    assert.match(
      decoder.decode(usage.stderr),
      /^usage: \.\/generar-compose\.sh <output> <clients>/,
    );
  });
});

Deno.test("composeDocument() adds no secrets unless asked", () => {
  for (const service of Object.values(services(composeDocument({ clients: 3 })))) {
    assert.equal(service.env_file, undefined);
    assert.ok(!("SERVER_SECRETS_PATH" in service.environment));
    assert.ok(!service.volumes.some((volume) => volume.includes("secrets")));
  }
});

Deno.test("composeDocument() with secrets mounts the file into the server and gives each client its env file", async (t) => {
  for (const mode of ["agency", "bet", "echo"] as const) {
    await t.step(mode, () => {
      const doc = services(composeDocument({ clients: 3, mode, secrets: true }));
      const server = doc["server"]!;
      assert.equal(server.environment["SERVER_SECRETS_PATH"], SERVER_SECRETS_PATH);
      assert.ok(
        server.volumes.includes(`./.secrets/${SECRETS_FILE}:${SERVER_SECRETS_PATH}:ro`),
        server.volumes.join(", "),
      );
      assert.equal(server.env_file, undefined);
      for (let id = 1; id <= 3; id++) {
        const client = doc[`client${id}`]!;
        assert.equal(client.env_file, `./.secrets/client${id}.env`);
        assert.ok(!("CLI_SECRET" in client.environment), "the secret stays out of the YAML");
      }
    });
  }
});

Deno.test("composeDocument() with secrets mounts under /app, the only folder besides /data the server reads", () => {
  // server/Dockerfile grants --allow-read=/app,/data.
  assert.ok(SERVER_SECRETS_PATH.startsWith("/app/"));
  const dockerfile = Deno.readTextFileSync(`${ROOT}server/Dockerfile`);
  assert.match(dockerfile, /--allow-read=\/app,\/data\b/);
});

Deno.test("composeDocument() with secrets and 0 clients holds the plain server alone", () => {
  assert.deepEqual(
    composeDocument({ clients: 0, secrets: true }),
    composeDocument({ clients: 0 }),
  );
});

Deno.test("newSecret() gives 32 random hex characters", () => {
  const seen = new Set<string>();
  for (let i = 0; i < 100; i++) {
    const secret = newSecret();
    assert.match(secret, /^[0-9a-f]{32}$/);
    seen.add(secret);
  }
  assert.equal(seen.size, 100);
});

Deno.test("writeSecrets() writes agencies.ini and one env file per agency, with safe modes", async () => {
  await withTempDir("gen_compose_secrets_", async (dir) => {
    const secretsDir = `${dir}/.secrets`;
    const result = await writeSecrets(secretsDir, 3);
    assert.equal(result.reused, 0);
    assert.equal(result.secrets.size, 3);
    assert.equal(await modeOf(secretsDir), 0o700, "the folder keeps other host users out");
    // The server container runs as uid 1993: a root-only file would make it exit 2.
    assert.equal(await modeOf(`${secretsDir}/${SECRETS_FILE}`), 0o644);
    for (let id = 1; id <= 3; id++) {
      // Compose reads env files on the host, as the user who runs it.
      assert.equal(await modeOf(`${secretsDir}/${clientEnvFile(id)}`), 0o600);
      assert.match(result.secrets.get(id)!, /^[0-9a-f]{32}$/);
    }
    // The server reads exactly these secrets, and each client gets its own.
    assert.deepEqual(await loadSecrets(`${secretsDir}/${SECRETS_FILE}`, 3), result.secrets);
    assert.deepEqual(await envFileSecrets(secretsDir), result.secrets);
    assert.equal(new Set(result.secrets.values()).size, 3, "each agency its own secret");
  });
});

Deno.test("writeSecrets() reuses the secrets already in agencies.ini", async (t) => {
  await withTempDir("gen_compose_secrets_", async (dir) => {
    const first = await writeSecrets(dir, 2);
    await t.step("same count: every secret kept", async () => {
      const again = await writeSecrets(dir, 2);
      assert.equal(again.reused, 2);
      assert.deepEqual(again.secrets, first.secrets);
    });
    await t.step("more agencies: old ones kept, new ones added", async () => {
      const more = await writeSecrets(dir, 4);
      assert.equal(more.reused, 2);
      assert.equal(more.secrets.get(1), first.secrets.get(1));
      assert.equal(more.secrets.get(2), first.secrets.get(2));
      assert.equal(new Set(more.secrets.values()).size, 4);
      assert.deepEqual(await envFileSecrets(dir), more.secrets);
    });
    await t.step(
      "fewer agencies: the file holds 1..N only (the server refuses higher ids)",
      async () => {
        const fewer = await writeSecrets(dir, 1);
        assert.deepEqual([...fewer.secrets.keys()], [1]);
        assert.equal(fewer.secrets.get(1), first.secrets.get(1));
        assert.deepEqual(await loadSecrets(`${dir}/${SECRETS_FILE}`, 1), fewer.secrets);
        assert.deepEqual([...(await envFileSecrets(dir)).keys()], [1], "stale env files removed");
      },
    );
    await t.step("a secret written by hand is kept verbatim", async () => {
      await Deno.writeTextFile(`${dir}/${SECRETS_FILE}`, "# mine\n2 = hand-made.Secret\n");
      const kept = await writeSecrets(dir, 2);
      assert.equal(kept.secrets.get(2), "hand-made.Secret");
      assert.equal((await envFileSecrets(dir)).get(2), "hand-made.Secret");
      assert.match(kept.secrets.get(1)!, /^[0-9a-f]{32}$/);
    });
  });
});

Deno.test("writeSecrets() refuses an agencies.ini it cannot reuse, and leaves it as it was", async (t) => {
  const cases = [
    ["a bad line", "one = x\n"],
    ["a secret an env file would change", "1 = a$b c\n"],
  ] as const;
  for (const [name, text] of cases) {
    await t.step(name, async () => {
      await withTempDir("gen_compose_secrets_", async (dir) => {
        await Deno.writeTextFile(`${dir}/${SECRETS_FILE}`, text);
        await assert.rejects(() => writeSecrets(dir, 2), ToolError);
        assert.equal(await Deno.readTextFile(`${dir}/${SECRETS_FILE}`), text);
      });
    });
  }
});

Deno.test("writeDeployment() with secrets writes them beside the compose file and none into it", async () => {
  await withTempDir("gen_compose_secrets_", async (dir) => {
    const output = `${dir}/dc.yaml`;
    const options = { clients: 3, secrets: true } as const;
    const result = await writeDeployment(output, options);
    assert.equal(result?.dir, `${dir}/.secrets`);
    const text = await Deno.readTextFile(output);
    for (const secret of result!.secrets.values()) {
      assert.ok(!text.includes(secret), "no secret in the YAML");
    }
    assert.ok(!text.includes("CLI_SECRET"), "not even the variable's name");
    assert.deepEqual(YAML.parse(text, { version: "1.1" }), composeDocument(options));
    assert.match(text, /^# Generated by .*--secrets/);
    // Regenerating keeps the secrets, so running agencies are not locked out.
    const again = await writeDeployment(output, options);
    assert.deepEqual(again?.secrets, result?.secrets);
  });
});

Deno.test("writeDeployment() with secrets and 0 clients writes no secrets; gen-compose says so", async () => {
  await withTempDir("gen_compose_secrets_", async (dir) => {
    assert.equal(await writeDeployment(`${dir}/dc.yaml`, { clients: 0, secrets: true }), undefined);
    await assert.rejects(() => Deno.stat(`${dir}/.secrets`), Deno.errors.NotFound);
    const result = await genCompose(dir, ["0", "--secrets"]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /--secrets with 0 agencies/);
  });
});

Deno.test("writeDeployment() writes the file, which parses back to the document", async () => {
  await withTempDir("gen_compose_test_", async (dir) => {
    assert.equal(await writeDeployment(`${dir}/dc.yaml`, { clients: 2 }), undefined);
    const text = await Deno.readTextFile(`${dir}/dc.yaml`);
    assert.deepEqual(YAML.parse(text, { version: "1.1" }), composeDocument({ clients: 2 }));
    assert.match(text, /^# Generated by `deno task gen-compose .*dc\.yaml 2 --mode agency`/);
  });
});

Deno.test("gen-compose CLI --secrets works with the task's permissions and keeps secrets on rerun", async () => {
  await withTempDir("gen_compose_cli_", async (dir) => {
    const first = await genCompose(dir, ["2", "--secrets"]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /secrets of 2 agencies .*\(2 new, 0 kept\)/);
    const secrets = await loadSecrets(`${dir}/.secrets/${SECRETS_FILE}`, 2);
    assert.equal(secrets.size, 2);
    const second = await genCompose(dir, ["2", "--secrets"]);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /\(0 new, 2 kept\)/);
    assert.deepEqual(await loadSecrets(`${dir}/.secrets/${SECRETS_FILE}`, 2), secrets);
    for (const secret of secrets.values()) {
      assert.ok(!first.stdout.includes(secret) && !second.stdout.includes(secret), "never printed");
      assert.ok(!(await Deno.readTextFile(`${dir}/${DEFAULT_OUTPUT}`)).includes(secret));
    }
    await Deno.writeTextFile(`${dir}/.secrets/${SECRETS_FILE}`, "x = y\n");
    const bad = await genCompose(dir, ["2", "--secrets"]);
    assert.equal(bad.code, 1);
    assert.equal(bad.stderr.trim().split("\n").length, 1, bad.stderr);
    assert.match(bad.stderr, /^gen-compose: Cannot reuse the secrets/);
  });
});

Deno.test("gen-compose CLI without --secrets leaves no secrets behind (the course's deployment)", async () => {
  await withTempDir("gen_compose_cli_", async (dir) => {
    const result = await genCompose(dir, ["3"]);
    assert.equal(result.code, 0, result.stderr);
    await assert.rejects(() => Deno.stat(`${dir}/.secrets`), Deno.errors.NotFound);
    const doc = YAML.parse(await Deno.readTextFile(`${dir}/${DEFAULT_OUTPUT}`));
    assert.ok(!JSON.stringify(doc).includes("secrets"));
  });
});

// The Docker Swarm stack file: the same services, run by Swarm.

interface StackService {
  image: string;
  entrypoint?: string[];
  environment: Record<string, string>;
  configs: { source: string; target: string }[];
  secrets?: { source: string; target: string }[];
  volumes?: { type: string; source: string; target: string; "read_only"?: boolean }[];
  networks: string[];
  healthcheck?: unknown;
  init: boolean;
  "stop_grace_period": string;
  deploy: {
    "endpoint_mode"?: string;
    replicas: number;
    placement: { constraints: string[] };
    "restart_policy": { condition: string; delay: string; "max_attempts"?: number };
  };
}

interface Stack {
  version: string;
  services: Record<string, StackService>;
  networks: Record<string, { driver: string; attachable: boolean }>;
  volumes: Record<string, unknown>;
  configs: Record<string, { file: string }>;
  secrets?: Record<string, { file: string }>;
}

const DATA = "/srv/tp0/.data";
const stack = (options: Partial<StackOptions> = {}): Stack =>
  stackDocument({ clients: 3, dataDir: DATA, ...options }) as unknown as Stack;

Deno.test("stackDocument() puts the server on the overlay with dnsrr, a volume and a manager", () => {
  const { services: stackServices, networks, volumes } = stack();
  const server = stackServices["server"]!;
  assert.equal(server.image, IMAGES.server);
  assert.equal(server.deploy["endpoint_mode"], "dnsrr");
  assert.deepEqual(server.deploy.placement.constraints, ["node.role == manager"]);
  assert.equal(server.deploy.replicas, 1);
  assert.equal(server.deploy["restart_policy"].condition, "any");
  assert.deepEqual(server.volumes, [{ type: "volume", source: "swarm_bets", target: "/data" }]);
  assert.equal(STACK_BETS_VOLUME, "tp0_swarm_bets", "apart from the Compose deployment's");
  assert.deepEqual(server.environment, { SERVER_AGENCIES: "3", SERVER_STORAGE_PATH });
  // One description: the Compose file's healthcheck, init and grace.
  assert.deepEqual(
    server.healthcheck,
    services(composeDocument({ clients: 3 }))["server"]!.healthcheck,
  );
  assert.equal(server.init, true);
  assert.equal(server["stop_grace_period"], "10s");
  assert.deepEqual(networks, { testing_net: { driver: "overlay", attachable: true } });
  assert.deepEqual(volumes, { swarm_bets: {} });
});

Deno.test("stackDocument() gives configs, not bind mounts, for both config files", () => {
  const { services, configs } = stack();
  assert.deepEqual(configs, {
    server_config: { file: "./server/config.ini" },
    client_config: { file: "./client/config.yaml" },
  });
  assert.deepEqual(services["server"]!.configs, [
    { source: "server_config", target: "/app/server/config.ini" },
  ]);
  for (const id of [1, 2, 3]) {
    const client = services[`client${id}`]!;
    assert.deepEqual(client.configs, [
      { source: "client_config", target: "/app/client/config.yaml" },
    ]);
    assert.ok(!(client.volumes ?? []).some((volume) => volume.target.includes("config")));
  }
});

Deno.test("stackDocument() mounts the data folder whole and read-only into each agency", () => {
  const { services } = stack({ dataDir: `${DATA}//` });
  for (const id of [1, 2, 3]) {
    const client = services[`client${id}`]!;
    assert.equal(client.image, IMAGES.client);
    assert.deepEqual(client.environment, { CLI_ID: String(id), CLI_MODE: "agency" });
    assert.deepEqual(client.volumes, [
      { type: "bind", source: DATA, target: "/app/.data", "read_only": true },
    ]);
    assert.deepEqual(client.deploy["restart_policy"], {
      condition: "on-failure",
      delay: "5s",
      "max_attempts": 10,
    });
    assert.equal(client.deploy.replicas, 1);
    assert.equal(client.deploy["endpoint_mode"], undefined);
    assert.equal(client.init, true);
    assert.equal(client.entrypoint, undefined);
  }
});

Deno.test("stackDocument() takes placement constraints for the server and the agencies", () => {
  const { services } = stack({
    serverConstraints: ["node.labels.site == central"],
    agencyConstraints: ["node.role==worker", "node.labels.site != central"],
  });
  assert.deepEqual(services["server"]!.deploy.placement.constraints, [
    "node.labels.site == central",
  ]);
  assert.deepEqual(services["client2"]!.deploy.placement.constraints, [
    "node.role==worker",
    "node.labels.site != central",
  ]);
  assert.deepEqual(stack().services["client1"]!.deploy.placement.constraints, []);
});

Deno.test("stackDocument() turns --secrets into Docker secrets, never into values", () => {
  const doc = stack({ secrets: true });
  assert.deepEqual(doc.secrets, {
    server_secrets: { file: "./.secrets/agencies.ini" },
    client1_secret: { file: "./.secrets/client1.env" },
    client2_secret: { file: "./.secrets/client2.env" },
    client3_secret: { file: "./.secrets/client3.env" },
  });
  const server = doc.services["server"]!;
  assert.deepEqual(server.secrets, [{ source: "server_secrets", target: SERVER_SECRETS_PATH }]);
  assert.equal(server.environment["SERVER_SECRETS_PATH"], SERVER_SECRETS_PATH);
  const client = doc.services["client2"]!;
  assert.deepEqual(client.secrets, [{
    source: "client2_secret",
    target: "/run/secrets/agency.env",
  }]);
  // The entrypoint exports the env file's CLI_SECRET, then runs the client as PID 2 (tini 1).
  assert.deepEqual(client.entrypoint?.slice(0, 2), ["sh", "-c"]);
  assert.match(
    client.entrypoint![2]!,
    /export CLI_SECRET="\$\$\(sed .*agency\.env\)" && exec \/app\/bin\/client$/,
  );
  assert.equal(client.environment["CLI_SECRET"], undefined);
  assert.equal(stack({ secrets: true, clients: 0 }).secrets, undefined);
});

Deno.test("stackDocument() follows the mode, and 0 agencies is the server alone", () => {
  const bet = stack({ mode: "bet" }).services["client1"]!;
  assert.equal(bet.environment["CLI_MODE"], "bet");
  assert.equal(bet.environment["NUMERO"], "7574");
  assert.equal(bet.volumes, undefined);
  assert.equal(stack({ mode: "echo" }).services["client3"]!.environment["CLI_MODE"], "echo");
  const alone = stack({ clients: 0 });
  assert.deepEqual(Object.keys(alone.services), ["server"]);
  assert.deepEqual(alone.services["server"]!.environment, { SERVER_STORAGE_PATH });
});

Deno.test("renderDeployment() writes a stack file that parses back to the document, with a header", () => {
  const text = renderDeployment({ clients: 2, dataDir: DATA, secrets: true }, "deno task x");
  assert.match(text, /^# Generated by `deno task x`/);
  assert.match(text, /docker stack deploy -c <this file> tp0/);
  assert.deepEqual(YAML.parse(text, { version: "1.1" }), stack({ clients: 2, secrets: true }));
  assert.equal((YAML.parse(text) as Stack).version, "3.8");
  assert.doesNotMatch(text, /[&*]a\d/, "no YAML anchors or aliases");
});

Deno.test("stackFlags() takes an absolute data folder and constraints in Swarm's syntax only", async (t) => {
  assert.ok(isAbsolute(stackFlags({}).dataDir) && stackFlags({}).dataDir.endsWith("/.data"));
  assert.throws(() => stackFlags({ "data-dir": "./.data" }), {
    name: "UsageError",
    message: /--data-dir must be an absolute path .*"\.\/\.data"/,
  });
  const constraints = (expression: string) =>
    stackFlags({ "agency-constraint": [expression] }).agencyConstraints;
  for (const good of ["node.role==worker", " node.role == manager ", "node.labels.site!=north"]) {
    await t.step(`accepts ${JSON.stringify(good)}`, () => {
      assert.deepEqual(constraints(good), [good.trim()]);
    });
  }
  for (const bad of ["role==worker", "node.role=worker", "node.role==", "", "node.labels.==x"]) {
    await t.step(`refuses ${JSON.stringify(bad)}`, () => {
      assert.throws(() => constraints(bad), {
        name: "UsageError",
        message: /placement constraint .*expected <attribute> == <value>/,
      });
    });
  }
});

Deno.test("gen-compose --swarm CLI reads [OUTPUT] N and the stack flags, with the task's permissions", async () => {
  await withTempDir("gen_compose_swarm_", async (dir) => {
    const plain = await genCompose(dir, ["--swarm", "5"]);
    assert.equal(plain.code, 0, plain.stderr);
    assert.match(
      plain.stdout,
      /^gen-compose: wrote docker-stack\.yaml: stack tp0, server \+ 5 agencies/,
    );
    const text = await Deno.readTextFile(`${dir}/docker-stack.yaml`);
    assert.deepEqual(YAML.parse(text), stackDocument({ clients: 5, ...stackFlags({}) }));
    const full = await genCompose(dir, [
      "out.yaml",
      "3",
      "--swarm",
      "--mode",
      "echo",
      "--data-dir",
      "/x/data",
      "--server-constraint",
      "node.hostname==a",
      "--agency-constraint",
      "node.role==worker",
      "--agency-constraint",
      "node.labels.site == north",
    ]);
    assert.equal(full.code, 0, full.stderr);
    const written = await Deno.readTextFile(`${dir}/out.yaml`);
    assert.deepEqual(
      YAML.parse(written),
      stackDocument({
        clients: 3,
        mode: "echo",
        dataDir: "/x/data",
        serverConstraints: ["node.hostname==a"],
        agencyConstraints: ["node.role==worker", "node.labels.site == north"],
      }),
    );
    assert.match(
      written,
      /^# Generated by `deno task gen-compose --swarm out\.yaml 3 --mode echo --data-dir \/x\/data --server-constraint 'node\.hostname==a' --agency-constraint 'node\.role==worker' --agency-constraint 'node\.labels\.site == north'`/,
    );
  });
});

Deno.test("gen-compose --swarm refuses bad input with one line and exit code 2", async (t) => {
  const cases: [string[], RegExp][] = [
    [["--swarm"], /expected \[OUTPUT\] N/],
    [["--swarm", "a", "b", "3"], /expected \[OUTPUT\] N/],
    [["--swarm", "x"], /agency count must be a whole number/],
    [["--swarm", "3", "--mode", "lotto"], /--mode must be one of agency, bet, echo, not "lotto"/],
    [["--swarm", "3", "--data-dir", ".data"], /--data-dir must be an absolute path/],
    [["--swarm", "3", "--agency-constraint", "worker"], /placement constraint "worker"/],
    [["--swarm", "3", "--bogus"], /unknown option "--bogus"/],
    [["--swarm", "3", "--keep-bets"], /--keep-bets is for Compose/],
    [["3", "--data-dir", "/x"], /need --swarm/],
  ];
  for (const [args, message] of cases) {
    await t.step(args.join(" "), async () => {
      await assert.rejects(() => main(args), (error: Error) => {
        assert.ok(error instanceof UsageError, `${error.name}: ${error.message}`);
        assert.match(error.message, message);
        assert.ok(!error.message.includes("\n"), "one line");
        return true;
      });
    });
  }
});

Deno.test("writeDeployment() of a stack writes the secrets first, none into the file", async () => {
  await withTempDir("gen_compose_swarm_", async (dir) => {
    const output = `${dir}/docker-stack.yaml`;
    const options = { clients: 2, dataDir: "/srv/data", secrets: true };
    const secrets = await writeDeployment(output, options);
    const text = await Deno.readTextFile(output);
    assert.deepEqual(YAML.parse(text, { version: "1.1" }), stackDocument(options));
    assert.equal(secrets?.secrets.size, 2);
    const stored = await loadSecrets(`${dir}/.secrets/agencies.ini`, 2);
    for (const [id, secret] of stored) {
      assert.equal(secrets?.secrets.get(id), secret);
      assert.ok(!text.includes(secret), "no secret in the stack file");
      assert.match(await Deno.readTextFile(`${dir}/.secrets/client${id}.env`), new RegExp(secret));
    }
    // Regenerating keeps the secrets agencies already hold.
    assert.equal((await writeDeployment(output, options))?.reused, 2);
  });
});
