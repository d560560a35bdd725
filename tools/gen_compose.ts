#!/usr/bin/env -S deno run --allow-read --allow-write
/**
 * Generates the deployment's file: the Docker Compose file, or with `--swarm` the Docker
 * Swarm stack file, both rendered from one description of the services
 * (`deno task gen-compose --help`; docs/deployment.md tells what each holds).
 *
 * @module
 */
import { dirname, isAbsolute, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import YAML from "yaml";
import { CLIENT_MODES, type ClientConfig } from "../client/config.ts";
import {
  choiceArg,
  integerArg,
  parseCli,
  runMain,
  ToolError,
  UsageError,
  writeFileAtomic,
} from "./_cli.ts";
import { IMAGES } from "./images.ts";
import {
  clientEnvFile,
  SECRETS_DIR,
  SECRETS_FILE,
  type SecretsResult,
  SERVER_SECRETS_PATH,
  writeSecrets,
} from "./secrets.ts";

/** What the clients do: Part 1's echo loop, exercise 5's single bet, or a whole agency. */
export type ClientMode = ClientConfig["mode"];

/** The compose project name (`-p tp0`; Compose v1 rejects a top-level `name:`), and the stack's. */
export const PROJECT = "tp0";

/** The network's name inside the file. */
export const NETWORK = "testing_net";

/** The network's real name (the stack's overlay gets it too), the same under Compose v1 and v2. */
export const NETWORK_NAME = "tp0_testing_net";

/** The network's subnet. */
export const SUBNET = "172.25.125.0/24";

/** The named volume holding the server's bets with `--keep-bets`, so they survive `down`. */
export const BETS_VOLUME = "tp0_bets";

/** The default output file. */
export const DEFAULT_OUTPUT = "docker-compose-dev.yaml";

/** The default output file with `--swarm`. */
export const STACK_FILE = "docker-stack.yaml";

/** The stack's bets volume in the file; deployed as `tp0_swarm_bets`, apart from `tp0_bets`. */
const STACK_BETS = "swarm_bets";

/** The stack's bets volume on the server's node, as `docker stack deploy … tp0` names it. */
export const STACK_BETS_VOLUME = `${PROJECT}_${STACK_BETS}`;

/** The repository's own data folder, the default `--data-dir` of a stack file. */
const DEFAULT_DATA_DIR: string = fileURLToPath(new URL("../.data", import.meta.url));

/** The file that selects the course exercise on an `ejN` branch; absent on main (agency). */
export const EXERCISE_FILE: string = fileURLToPath(new URL("../exercise", import.meta.url));

/** The course's exercises, one branch each (`ej1` … `ej8`). */
export const EXERCISES = 8;

/** The clients' mode of a course exercise: Part 1's echo (1–4), one bet (5), agencies (6–8). */
export function exerciseMode(exercise: number): ClientMode {
  return exercise <= 4 ? "echo" : exercise === 5 ? "bet" : "agency";
}

/**
 * The clients' mode when none is asked for: the selected exercise's, else `agency`.
 *
 * @throws {ToolError} When the exercise file holds anything but a number from 1 to 8.
 */
export async function defaultMode(file: string = EXERCISE_FILE): Promise<ClientMode> {
  const text = await Deno.readTextFile(file).catch((error) => {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  });
  if (text === undefined) return "agency";
  const exercise = Number(text.trim());
  if (!/^\d+$/.test(text.trim()) || exercise < 1 || exercise > EXERCISES) {
    throw new ToolError(
      `Cannot read the exercise from ${file}: "${text.trim()}", expected a number from 1 to ` +
        `${EXERCISES}`,
    );
  }
  return exerciseMode(exercise);
}

/** The most agencies the /24 subnet holds beside the server and the gateway. */
export const MAX_CLIENTS = 252;

/** Where the server's bets go inside its container (a volume with `--keep-bets`). */
export const SERVER_STORAGE_PATH = "/data/bets.csv";

/** Where the agencies' data folder is mounted (the client's `data.path` default reads it). */
export const CLIENT_DATA_DIR = "/app/.data";

/** Where an agency's Docker secret (its env file) appears in a stack's container. */
const AGENCY_SECRET_TARGET = "/run/secrets/agency.env";

/**
 * Options of {@linkcode composeDocument}: agencies (0: the server alone), their mode, per-agency
 * secrets, and whether the bets outlive the server container on {@linkcode BETS_VOLUME}.
 */
export interface ComposeOptions {
  readonly clients: number;
  readonly mode?: ClientMode;
  readonly secrets?: boolean;
  readonly keepBets?: boolean;
}

/** Options of {@linkcode stackDocument}: the agency data folder and placement constraints. */
export interface StackOptions extends Omit<ComposeOptions, "keepBets"> {
  readonly dataDir: string;
  readonly serverConstraints?: readonly string[];
  readonly agencyConstraints?: readonly string[];
}

const FIRST_NAMES = ["Santiago Lionel", "María", "Juan Pablo", "Lucía", "Martín"];
const LAST_NAMES = ["Lorca", "Fernández", "Gómez", "Pereyra", "Sosa"];

/** The exercise 5 bet of agency `id` (from 1) as env variables; agency 1's number wins. */
export function sampleBet(
  id: number,
): Record<"NOMBRE" | "APELLIDO" | "DOCUMENTO" | "NACIMIENTO" | "NUMERO", string> {
  return {
    NOMBRE: FIRST_NAMES[(id - 1) % FIRST_NAMES.length]!,
    APELLIDO: LAST_NAMES[(id - 1) % LAST_NAMES.length]!,
    DOCUMENTO: String(30904465 + id - 1),
    NACIMIENTO: `19${String(70 + (id % 30)).padStart(2, "0")}-03-17`,
    NUMERO: id === 1 ? "7574" : String(1000 + id),
  };
}

/**
 * Reads an agency count.
 *
 * @throws {UsageError} When it is not a whole number from 0 to {@linkcode MAX_CLIENTS}.
 */
export function parseClientCount(raw: string): number {
  return integerArg("the agency count", raw, 0, MAX_CLIENTS);
}

// Healthy once a TCP socket listens in the server's own network namespace. It reads
// /proc instead of connecting, so it adds no connections (and no log lines) to the server.
const LISTENING_CHECK = "cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | grep -q ' 0A '";
const HEALTH_TIMING = { interval: "1s", timeout: "3s", retries: 60, "start_period": "30s" };

/** Each config file: its Swarm config's key, its host path (from the file's folder), its mount. */
const CONFIGS = {
  server: { key: "server_config", file: "./server/config.ini", target: "/app/server/config.ini" },
  client: { key: "client_config", file: "./client/config.yaml", target: "/app/client/config.yaml" },
} as const;

/** A service as both files describe it; each renderer adds how Compose or Swarm runs it. */
interface Service {
  readonly name: string;
  /** Image, environment, network, health, init, stop grace: the same in both files. */
  readonly common: Readonly<Record<string, unknown>>;
  readonly config: (typeof CONFIGS)[keyof typeof CONFIGS];
  /** Its secrets file on the host (`--secrets`): `agencies.ini`, or the agency's env file. */
  readonly secret?: string;
  /** Whether it reads the agency data folder. */
  readonly data: boolean;
}

/** The server and the agencies, as both files describe them. */
function describe(options: ComposeOptions | StackOptions): Service[] {
  const mode = options.mode ?? "agency";
  const secrets = (options.secrets ?? false) && options.clients > 0;
  const common = (name: string, environment: Record<string, string>) => ({
    image: name === "server" ? IMAGES.server : IMAGES.client,
    environment,
    networks: [NETWORK],
    ...(name === "server"
      ? { healthcheck: { test: ["CMD", "sh", "-c", LISTENING_CHECK], ...HEALTH_TIMING } }
      : {}),
    // Docker's tini as PID 1: a SIGTERM that arrives before the program has installed its
    // handler still stops it (PID 1 would ignore it, and docker stop would wait and kill).
    init: true,
    stop_grace_period: "10s",
  });
  const server = common("server", {
    // With no agencies the server keeps its own expected count: it only serves (echo).
    ...(options.clients > 0 ? { SERVER_AGENCIES: String(options.clients) } : {}),
    SERVER_STORAGE_PATH,
    // The path only, never a secret: those stay in the mounted file.
    ...(secrets ? { SERVER_SECRETS_PATH } : {}),
  });
  const agencies = Array.from({ length: options.clients }, (_, i): Service => ({
    name: `client${i + 1}`,
    common: common("client", {
      CLI_ID: String(i + 1),
      CLI_MODE: mode,
      ...(mode === "bet" ? sampleBet(i + 1) : {}),
    }),
    config: CONFIGS.client,
    ...(secrets ? { secret: `${SECRETS_DIR}/${clientEnvFile(i + 1)}` } : {}),
    data: mode === "agency",
  }));
  const serverSecret = secrets ? { secret: `${SECRETS_DIR}/${SECRETS_FILE}` } : {};
  return [
    { name: "server", common: server, config: CONFIGS.server, ...serverSecret, data: false },
    ...agencies,
  ];
}

/** Builds the compose document as a plain object, ready for `YAML.stringify`. */
export function composeDocument(options: ComposeOptions): Record<string, unknown> {
  const keepBets = options.keepBets ?? false;
  const services: Record<string, unknown> = {};
  for (const { name, config, secret, data, common } of describe(options)) {
    const server = name === "server";
    const volumes = [`${config.file}:${config.target}:ro`];
    // The folder, not each file: were a file missing, Docker would make a folder in its
    // place on the host; this way the agency reports the missing file itself.
    if (data) volumes.push(`./.data:${CLIENT_DATA_DIR}:ro`);
    if (server && keepBets) volumes.push(`${BETS_VOLUME}:${dirname(SERVER_STORAGE_PATH)}`);
    if (server && secret) volumes.push(`${secret}:${SERVER_SECRETS_PATH}:ro`);
    services[name] = {
      container_name: name,
      ...common,
      // Compose reads the env file on the host and passes CLI_SECRET to the container;
      // the secret is in neither the compose file nor the image.
      ...(!server && secret ? { env_file: secret } : {}),
      volumes,
      ...(server ? {} : { depends_on: { server: { condition: "service_healthy" } } }),
    };
  }
  return {
    services,
    networks: {
      [NETWORK]: { name: NETWORK_NAME, ipam: { driver: "default", config: [{ subnet: SUBNET }] } },
    },
    ...(keepBets ? { volumes: { [BETS_VOLUME]: { name: BETS_VOLUME } } } : {}),
  };
}

// The client reads its secret from CLI_SECRET; Swarm delivers secrets as files. `$$` is
// how a stack file writes a literal `$` (docker stack deploy interpolates `$NAME`).
const SECRET_ENTRYPOINT = `export CLI_SECRET="$$(sed -n 's/^CLI_SECRET=//p' ` +
  `${AGENCY_SECRET_TARGET})" && exec /app/bin/client`;

/** Builds the Docker Swarm stack document as a plain object, ready for `YAML.stringify`. */
export function stackDocument(options: StackOptions): Record<string, unknown> {
  const services: Record<string, unknown> = {};
  const configs: Record<string, { file: string }> = {};
  const secrets: Record<string, { file: string }> = {};
  const dataDir = options.dataDir.replace(/(?<=.)\/+$/, "");
  for (const { name, config, secret, data, common } of describe(options)) {
    const server = name === "server";
    configs[config.key] = { file: config.file };
    const key = server ? "server_secrets" : `${name}_secret`;
    if (secret) secrets[key] = { file: secret };
    const target = server ? SERVER_SECRETS_PATH : AGENCY_SECRET_TARGET;
    const volume = server
      ? { type: "volume", source: STACK_BETS, target: dirname(SERVER_STORAGE_PATH) }
      : { type: "bind", source: dataDir, target: CLIENT_DATA_DIR, read_only: true };
    services[name] = {
      ...common,
      ...(!server && secret ? { entrypoint: ["sh", "-c", SECRET_ENTRYPOINT] } : {}),
      configs: [{ source: config.key, target: config.target }],
      ...(secret ? { secrets: [{ source: key, target }] } : {}),
      ...(server || data ? { volumes: [volume] } : {}),
      deploy: server
        ? {
          endpoint_mode: "dnsrr",
          replicas: 1,
          placement: { constraints: [...(options.serverConstraints ?? ["node.role == manager"])] },
          restart_policy: { condition: "any", delay: "1s" },
        }
        : {
          replicas: 1,
          placement: { constraints: [...(options.agencyConstraints ?? [])] },
          // An agency that finished stays finished.
          restart_policy: { condition: "on-failure", delay: "5s", max_attempts: 10 },
        },
    };
  }
  return {
    version: "3.8",
    services,
    networks: { [NETWORK]: { driver: "overlay", attachable: true } },
    volumes: { [STACK_BETS]: {} },
    configs,
    ...(Object.keys(secrets).length > 0 ? { secrets } : {}),
  };
}

/** Renders the compose file, or the stack file for {@linkcode StackOptions}, with a header. */
export function renderDeployment(
  options: ComposeOptions | StackOptions,
  command = "deno task gen-compose",
): string {
  const stack = "dataDir" in options;
  const how = stack
    ? `# Deploy it on a swarm manager: \`deno task swarm up --file <this file>\` or\n` +
      `# \`docker stack deploy -c <this file> ${PROJECT}\`. Every node that runs an agency needs\n` +
      `# ${options.dataDir} and the images (deno task swarm up --node … loads them).\n`
    : `# Start it as project ${PROJECT}: \`deno task up\` or \`docker compose -p ${PROJECT} -f <this file> up -d\`.\n`;
  const doc = stack ? stackDocument(options) : composeDocument(options);
  return `# Generated by \`${command}\` (tools/gen_compose.ts); regenerate instead of editing.\n${how}` +
    // YAML 1.1, as Compose v1 (PyYAML) reads it: quotes 1971-03-17, yes, on, 0755 and the like.
    YAML.stringify(doc, { version: "1.1", lineWidth: 0, aliasDuplicateObjects: false });
}

/**
 * Writes the deployment file atomically, after its secrets (so it never names missing ones);
 * returns the secrets written, if any.
 *
 * @throws {ToolError} When existing secrets cannot be reused (see `writeSecrets`).
 */
export async function writeDeployment(
  output: string,
  options: ComposeOptions | StackOptions,
): Promise<SecretsResult | undefined> {
  const withSecrets = (options.secrets ?? false) && options.clients > 0;
  const secrets = withSecrets
    ? await writeSecrets(resolve(dirname(resolve(output)), SECRETS_DIR), options.clients)
    : undefined;
  const stack = "dataDir" in options;
  const flags = [
    `${stack ? "--swarm " : ""}${output} ${options.clients} --mode ${options.mode ?? "agency"}`,
    ...(options.secrets ? ["--secrets"] : []),
    ...(!stack && options.keepBets ? ["--keep-bets"] : []),
    ...(stack ? [`--data-dir ${options.dataDir}`] : []),
    ...(stack ? options.serverConstraints ?? [] : []).map((c) => `--server-constraint '${c}'`),
    ...(stack ? options.agencyConstraints ?? [] : []).map((c) => `--agency-constraint '${c}'`),
  ];
  await writeFileAtomic(
    output,
    renderDeployment(options, `deno task gen-compose ${flags.join(" ")}`),
  );
  return secrets;
}

// `<attribute> ==|!= <value>`, the attributes Swarm knows.
const CONSTRAINT =
  /^(node\.(id|hostname|role|platform\.os|platform\.arch)|(node|engine)\.labels\.[\w.-]+)\s*(==|!=)\s*\S+$/;

/** The flags that shape a stack file, beside `--mode` and `--secrets` (`gen-compose`, `swarm up`). */
export const STACK_FLAGS = {
  "data-dir": { type: "string" },
  "server-constraint": { type: "string", multiple: true },
  "agency-constraint": { type: "string", multiple: true },
} as const;

/**
 * Reads the values of {@linkcode STACK_FLAGS} into stack options.
 *
 * @throws {UsageError} For a relative data folder or a constraint Swarm would refuse.
 */
export function stackFlags(
  values: {
    readonly "data-dir"?: string;
    readonly "server-constraint"?: readonly string[];
    readonly "agency-constraint"?: readonly string[];
  },
): Pick<StackOptions, "dataDir" | "serverConstraints" | "agencyConstraints"> {
  const dataDir = values["data-dir"] ?? DEFAULT_DATA_DIR;
  if (!isAbsolute(dataDir)) {
    throw new UsageError(
      `--data-dir must be an absolute path (it is bind-mounted on each node), not "${dataDir}"`,
    );
  }
  const check = (expression: string) => {
    if (!CONSTRAINT.test(expression.trim())) {
      throw new UsageError(
        `the placement constraint "${expression}": expected <attribute> == <value> or != ` +
          "(attributes node.id, node.hostname, node.role, node.platform.os, " +
          "node.platform.arch, node.labels.<key>, engine.labels.<key>)",
      );
    }
    return expression.trim();
  };
  const server = values["server-constraint"]?.map(check);
  return {
    dataDir,
    ...(server === undefined ? {} : { serverConstraints: server }),
    agencyConstraints: (values["agency-constraint"] ?? []).map(check),
  };
}

const USAGE = "deno task gen-compose [OUTPUT] N [--mode agency|bet|echo] [--secrets] " +
  "[--keep-bets | --swarm [--data-dir ABSOLUTE_PATH] [--server-constraint EXPR]… " +
  "[--agency-constraint EXPR]…]";

/**
 * The CLI: `gen_compose.ts [OUTPUT] N [flags]`; returns the exit code.
 *
 * @throws {UsageError} For a bad command line.
 */
export async function main(args: readonly string[]): Promise<number> {
  const { values, positionals } = parseCli(args, {
    mode: { type: "string" },
    secrets: { type: "boolean", default: false },
    "keep-bets": { type: "boolean", default: false },
    swarm: { type: "boolean", default: false },
    ...STACK_FLAGS,
    help: { type: "boolean", short: "h", default: false },
  }, true);
  if (values.help) {
    console.log(`usage: ${USAGE}`);
    return 0;
  }
  if (positionals.length < 1 || positionals.length > 2) {
    throw new UsageError(`expected [OUTPUT] N (usage: ${USAGE})`);
  }
  const { swarm } = values;
  if (swarm && values["keep-bets"]) {
    throw new UsageError("--keep-bets is for Compose: a stack keeps its bets on a volume");
  }
  if (!swarm && Object.keys(STACK_FLAGS).some((flag) => flag in values)) {
    throw new UsageError("--data-dir, --server-constraint and --agency-constraint need --swarm");
  }
  const output = positionals.length === 2 ? positionals[0]! : swarm ? STACK_FILE : DEFAULT_OUTPUT;
  const base = {
    clients: parseClientCount(positionals.at(-1)!),
    mode: values.mode === undefined
      ? await defaultMode()
      : choiceArg("--mode", values.mode, CLIENT_MODES),
    secrets: values.secrets,
  };
  const options = swarm
    ? { ...base, ...stackFlags(values) }
    : { ...base, keepBets: values["keep-bets"] };
  const secrets = await writeDeployment(output, options);
  const what = `server + ${base.clients} agencies (mode ${base.mode})`;
  console.log(
    "dataDir" in options
      ? `gen-compose: wrote ${output}: stack ${PROJECT}, ${what}, data folder ${options.dataDir}; ` +
        `deploy with deno task swarm up --file ${output} (or docker stack deploy -c ${output} ${PROJECT})`
      : `gen-compose: wrote ${output}: ${what}, network ${NETWORK_NAME} ${SUBNET}${
        options.keepBets ? `, bets kept across down in volume ${BETS_VOLUME}` : ""
      }; start with deno task up`,
  );
  if (secrets !== undefined) {
    const { dir, secrets: all, reused } = secrets;
    console.log(
      `gen-compose: secrets of ${all.size} agencies in ${dir} (${all.size - reused} new, ` +
        `${reused} kept): ${SECRETS_FILE} for the server, client<N>.env for each agency`,
    );
  } else if (base.secrets) {
    console.error("gen-compose: --secrets with 0 agencies: nothing to authenticate, no secrets");
  }
  return 0;
}

if (import.meta.main) await runMain("gen-compose", () => main(Deno.args));
