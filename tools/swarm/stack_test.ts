import assert from "node:assert/strict";
import YAML from "yaml";
import { IMAGES } from "../images.ts";
import { SERVER_HEALTHCHECK, SERVER_STORAGE_PATH } from "../gen_compose.ts";
import { SERVER_SECRETS_PATH } from "../secrets.ts";
import {
  DEFAULT_DATA_DIR,
  DEFAULT_STACK_FILE,
  parseGenStackArgs,
  renderStack,
  stackDocument,
} from "./stack.ts";

interface Service {
  image: string;
  entrypoint?: string[];
  environment: Record<string, string>;
  configs: { source: string; target: string }[];
  secrets?: { source: string; target: string }[];
  volumes?: { type: string; source: string; target: string; "read_only"?: boolean }[];
  networks: string[];
  healthcheck?: unknown;
  init: boolean;
  sysctls?: Record<string, string>;
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
  services: Record<string, Service>;
  networks: Record<string, { driver: string; attachable: boolean }>;
  volumes: Record<string, unknown>;
  configs: Record<string, { file: string }>;
  secrets?: Record<string, { file: string }>;
}

const DATA = "/srv/tp0/.data";
const BETS_VOLUME_KEY = "swarm_bets";
const AGENCY_SECRET_TARGET = "/run/secrets/agency.env";
const doc = (options: Partial<Parameters<typeof stackDocument>[0]> = {}): Stack =>
  stackDocument({ clients: 3, dataDir: DATA, ...options }) as unknown as Stack;

Deno.test("stackDocument() puts the server on the overlay with dnsrr, a volume and a manager", () => {
  const { services, networks, volumes } = doc();
  const server = services["server"]!;
  assert.equal(server.image, IMAGES.server);
  assert.equal(server.deploy["endpoint_mode"], "dnsrr");
  assert.deepEqual(server.deploy.placement.constraints, ["node.role == manager"]);
  assert.equal(server.deploy.replicas, 1);
  assert.equal(server.deploy["restart_policy"].condition, "any");
  assert.deepEqual(server.volumes, [{ type: "volume", source: BETS_VOLUME_KEY, target: "/data" }]);
  assert.deepEqual(server.environment, { SERVER_AGENCIES: "3", SERVER_STORAGE_PATH });
  assert.deepEqual(server.healthcheck, SERVER_HEALTHCHECK);
  assert.equal(server.init, true);
  assert.equal(server["stop_grace_period"], "10s");
  assert.deepEqual(networks, { testing_net: { driver: "overlay", attachable: true } });
  assert.deepEqual(volumes, { [BETS_VOLUME_KEY]: {} });
});

Deno.test("stackDocument() gives configs, not bind mounts, for both config files", () => {
  const { services, configs } = doc({ serverConfig: "./s.ini", clientConfig: "./c.yaml" });
  assert.deepEqual(configs, {
    server_config: { file: "./s.ini" },
    client_config: { file: "./c.yaml" },
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
  const { services } = doc({ dataDir: `${DATA}//` });
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
    assert.deepEqual(client.sysctls, { "net.ipv4.tcp_syn_retries": "2" });
    assert.equal(client.init, true);
    assert.equal(client.entrypoint, undefined);
  }
});

Deno.test("stackDocument() takes placement constraints for the server and the agencies", () => {
  const { services } = doc({
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
  assert.deepEqual(doc().services["client1"]!.deploy.placement.constraints, []);
});

Deno.test("stackDocument() turns --secrets into Docker secrets, never into values", () => {
  const stack = doc({ secrets: true });
  assert.deepEqual(stack.secrets, {
    server_secrets: { file: "./.secrets/agencies.ini" },
    client1_secret: { file: "./.secrets/client1.env" },
    client2_secret: { file: "./.secrets/client2.env" },
    client3_secret: { file: "./.secrets/client3.env" },
  });
  const server = stack.services["server"]!;
  assert.deepEqual(server.secrets, [{ source: "server_secrets", target: SERVER_SECRETS_PATH }]);
  assert.equal(server.environment["SERVER_SECRETS_PATH"], SERVER_SECRETS_PATH);
  const client = stack.services["client2"]!;
  assert.deepEqual(client.secrets, [{ source: "client2_secret", target: AGENCY_SECRET_TARGET }]);
  // The entrypoint exports the env file's CLI_SECRET, then runs the client as PID 2 (tini 1).
  assert.deepEqual(client.entrypoint?.slice(0, 2), ["sh", "-c"]);
  assert.match(
    client.entrypoint![2]!,
    /export CLI_SECRET="\$\$\(sed .*agency\.env\)" && exec \/app\/bin\/client$/,
  );
  assert.equal(client.environment["CLI_SECRET"], undefined);
  assert.equal(doc({ secrets: true, clients: 0 }).secrets, undefined);
});

Deno.test("stackDocument() follows the mode, and 0 agencies is the server alone", () => {
  const bet = doc({ mode: "bet" }).services["client1"]!;
  assert.equal(bet.environment["CLI_MODE"], "bet");
  assert.equal(bet.environment["NUMERO"], "7574");
  assert.equal(bet.volumes, undefined);
  assert.equal(doc({ mode: "echo" }).services["client3"]!.environment["CLI_MODE"], "echo");
  const alone = doc({ clients: 0 });
  assert.deepEqual(Object.keys(alone.services), ["server"]);
  assert.deepEqual(alone.services["server"]!.environment, { SERVER_STORAGE_PATH });
});

Deno.test("stackDocument() refuses a relative data folder", () => {
  assert.throws(
    () => doc({ dataDir: "./.data" }),
    { name: "TypeError", message: /absolute path .*"\.\/\.data"/ },
  );
});

Deno.test("renderStack() writes YAML that parses back to the document, with a header", () => {
  const text = renderStack({ clients: 2, dataDir: DATA, secrets: true }, "deno task x");
  assert.match(text, /^# Generated by `deno task x`/);
  assert.match(text, /docker stack deploy -c <this file> tp0/);
  assert.deepEqual(YAML.parse(text, { version: "1.1" }), doc({ clients: 2, secrets: true }));
  assert.equal((YAML.parse(text) as Stack).version, "3.8");
  assert.doesNotMatch(text, /[&*]a\d/, "no YAML anchors or aliases");
});

Deno.test("parseGenStackArgs() takes placement constraints in Swarm's syntax only", async (t) => {
  const constraints = (expression: string) =>
    parseGenStackArgs(["1", "--agency-constraint", expression]).options.agencyConstraints;
  for (const good of ["node.role==worker", " node.role == manager ", "node.labels.site!=north"]) {
    await t.step(`accepts ${JSON.stringify(good)}`, () => {
      assert.deepEqual(constraints(good), [good.trim()]);
    });
  }
  for (const bad of ["role==worker", "node.role=worker", "node.role==", "", "node.labels.==x"]) {
    await t.step(`refuses ${JSON.stringify(bad)}`, () => {
      assert.throws(() => constraints(bad), {
        name: "SyntaxError",
        message: /placement constraint .*expected <attribute> == <value>/,
      });
    });
  }
});

Deno.test("parseGenStackArgs() reads [OUTPUT] N and the stack flags", () => {
  const plain = parseGenStackArgs(["5"]);
  assert.equal(plain.output, DEFAULT_STACK_FILE);
  assert.equal(plain.options.clients, 5);
  assert.equal(plain.options.dataDir, DEFAULT_DATA_DIR);
  assert.equal(plain.options.serverConstraints, undefined);
  const full = parseGenStackArgs([
    "out.yaml",
    "3",
    "--mode",
    "echo",
    "--secrets",
    "--data-dir",
    "/x/data",
    "--server-constraint",
    "node.hostname==a",
    "--agency-constraint",
    "node.role==worker",
    "--agency-constraint",
    "node.labels.site==north",
  ]);
  assert.equal(full.output, "out.yaml");
  assert.deepEqual(full.options, {
    clients: 3,
    dataDir: "/x/data",
    mode: "echo",
    secrets: true,
    serverConfig: "./server/config.ini",
    clientConfig: "./client/config.yaml",
    serverConstraints: ["node.hostname==a"],
    agencyConstraints: ["node.role==worker", "node.labels.site==north"],
    stopGracePeriod: "10s",
  });
});

Deno.test("parseGenStackArgs() refuses bad input with one line", async (t) => {
  const cases: [string[], string | RegExp][] = [
    [[], /expected \[OUTPUT\] N/],
    [["a", "b", "3"], /expected \[OUTPUT\] N/],
    [["x"], /agency count must be a whole number/],
    [["3", "--mode", "lotto"], /--mode must be one of agency, bet, echo, not "lotto"/],
    [["3", "--data-dir", ".data"], /--data-dir must be an absolute path/],
    [["3", "--agency-constraint", "worker"], /placement constraint "worker"/],
    [["3", "--stop-grace-period", "soon"], /--stop-grace-period must look like 10s/],
    [["3", "--bogus"], /unknown option "--bogus"/],
  ];
  for (const [args, message] of cases) {
    await t.step(args.join(" ") || "(none)", () => {
      assert.throws(() => parseGenStackArgs(args), (error: Error) => {
        assert.match(error.message, message instanceof RegExp ? message : new RegExp(message));
        assert.ok(!error.message.includes("\n"), "one line");
        return true;
      });
    });
  }
});
