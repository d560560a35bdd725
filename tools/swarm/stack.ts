/**
 * The Docker Swarm stack file of the deployment, built as a pure function of its options
 * (`deno task gen-compose --swarm [OUTPUT] N`, and `deno task swarm up`, which writes it
 * before deploying). Plain `docker stack deploy -c docker-stack.yaml tp0` runs it:
 *
 * - one overlay network, attachable (a one-off `nc` container can join it), named
 *   `tp0_testing_net` once deployed as stack `tp0`, as the Compose network is;
 * - the server with `endpoint_mode: dnsrr` (service VIPs need IPVS, which some kernels
 *   lack; the name `server` then resolves to the task's own address), its bets on a
 *   volume, pinned to a manager unless `--server-constraint` says otherwise, restarted
 *   whenever it stops;
 * - Swarm configs for `server/config.ini` and `client/config.yaml` (read by
 *   `docker stack deploy` on the manager; nodes need no copy of them);
 * - agency data from a bind mount of one data folder, read-only, which must exist at the
 *   same absolute path on every node that runs an agency;
 * - agencies restarted only on failure (one that finished stays finished);
 * - with `--secrets`, Docker secrets: the server's `agencies.ini`, and each agency's own
 *   env file, whose `CLI_SECRET` a small shell entrypoint exports before running the
 *   client (the client reads its secret from the environment, Swarm delivers files).
 *
 * @module
 */
import { isAbsolute } from "node:path";
import { isDeepStrictEqual } from "node:util";
import { fileURLToPath } from "node:url";
import YAML from "yaml";
import { CLIENT_MODES } from "../../client/config.ts";
import { IMAGES } from "../images.ts";
import { parseCli, UsageError } from "../_cli.ts";
import { clientEnvFile, SECRETS_DIR, SECRETS_FILE, SERVER_SECRETS_PATH } from "../secrets.ts";
import {
  type ClientMode,
  NETWORK,
  parseClientCount,
  sampleBet,
  SERVER_HEALTHCHECK,
  SERVER_STORAGE_PATH,
} from "../gen_compose.ts";

const CLIENT_SECRET_ENV = "CLI_SECRET";

/** The stack's name: `docker stack deploy … tp0` (its services are `tp0_server`, …). */
export const STACK = "tp0";

/** The default stack file. */
export const DEFAULT_STACK_FILE = "docker-stack.yaml";

/** The overlay network's name once deployed: the Compose network's name too. */
export const STACK_NETWORK = `${STACK}_${NETWORK}`;

/** The bets volume's key in the stack file. */
const BETS_VOLUME_KEY = "swarm_bets";

/**
 * The bets volume's name on the server's node once deployed; apart from the Compose
 * deployment's `tp0_bets`, so neither ever reads the other's draw.
 */
export const BETS_VOLUME = `${STACK}_${BETS_VOLUME_KEY}`;

/** Where the server runs unless told otherwise: its bets volume lives on that node. */
const DEFAULT_SERVER_CONSTRAINT = "node.role == manager";

/** The repository's own data folder, the default `--data-dir`. */
export const DEFAULT_DATA_DIR: string = fileURLToPath(new URL("../../.data", import.meta.url));

/** Where an agency's Docker secret (its env file) appears in its container. */
const AGENCY_SECRET_TARGET = "/run/secrets/agency.env";

/** How many times Swarm restarts a failing agency before leaving it failed. */
const AGENCY_MAX_ATTEMPTS = 10;

/** Options of {@linkcode stackDocument}. */
export interface StackOptions {
  /** How many agencies (`client1` … `clientN`); 0 gives the server alone. */
  readonly clients: number;
  /**
   * The host folder of `agency-{i}.csv`, bind-mounted read-only into every agency. It must
   * be absolute and exist on each node that runs an agency.
   */
  readonly dataDir: string;
  /**
   * What the clients do.
   * @default "agency"
   */
  readonly mode?: ClientMode;
  /**
   * The server's INI file, relative to the stack file (read by `docker stack deploy`).
   * @default "./server/config.ini"
   */
  readonly serverConfig?: string;
  /**
   * The clients' YAML file, relative to the stack file.
   * @default "./client/config.yaml"
   */
  readonly clientConfig?: string;
  /**
   * Docker secrets from `<secretsDir>/agencies.ini` (server) and
   * `<secretsDir>/client<N>.env` (each agency), as `gen-compose --secrets` writes them.
   * With 0 clients nothing is added.
   * @default false
   */
  readonly secrets?: boolean;
  /**
   * The folder of the secrets files, relative to the stack file.
   * @default "./.secrets"
   */
  readonly secretsDir?: string;
  /**
   * Placement constraints of the server, in Swarm's syntax.
   * @default ["node.role == manager"]
   */
  readonly serverConstraints?: readonly string[];
  /**
   * Placement constraints of every agency, in Swarm's syntax.
   * @default []
   */
  readonly agencyConstraints?: readonly string[];
  /**
   * How long a stop waits for a clean exit before SIGKILL.
   * @default "10s"
   */
  readonly stopGracePeriod?: string;
}

const CONSTRAINT =
  /^(node\.(id|hostname|role|platform\.os|platform\.arch)|(node|engine)\.labels\.[\w.-]+)\s*(==|!=)\s*\S+$/;

/**
 * Checks a placement constraint against Swarm's syntax (`<attribute> ==|!= <value>`).
 *
 * @param expression E.g. `node.role==worker` or `node.labels.site == north`.
 * @returns The expression, trimmed.
 * @throws {SyntaxError} When Swarm would refuse it.
 */
function checkConstraint(expression: string): string {
  const trimmed = expression.trim();
  if (!CONSTRAINT.test(trimmed)) {
    throw new SyntaxError(
      `Cannot use the placement constraint "${expression}": expected <attribute> == <value> ` +
        "or != (attributes node.id, node.hostname, node.role, node.platform.os, " +
        "node.platform.arch, node.labels.<key>, engine.labels.<key>)",
    );
  }
  return trimmed;
}

// The client reads its secret from CLI_SECRET; Swarm delivers secrets as files. `$$` is
// how a stack file writes a literal `$` (docker stack deploy interpolates `$NAME`).
const SECRET_ENTRYPOINT = `export ${CLIENT_SECRET_ENV}="$$(sed -n 's/^${CLIENT_SECRET_ENV}=//p' ` +
  `${AGENCY_SECRET_TARGET})" && exec /app/bin/client`;

function dataDir(options: StackOptions): string {
  return options.dataDir.replace(/(?<=.)\/+$/, "");
}

/**
 * Builds the stack document as a plain object.
 *
 * @param options Agency count, data folder, mode, paths, secrets, placement.
 * @returns The document, ready for `YAML.stringify`.
 * @throws {TypeError} When `dataDir` is not absolute.
 *
 * @example Usage
 * ```ts
 * import { stackDocument } from "./stack.ts";
 * const doc = stackDocument({ clients: 5, dataDir: "/srv/tp0/.data" });
 * ```
 */
export function stackDocument(options: StackOptions): Record<string, unknown> {
  if (!isAbsolute(options.dataDir)) {
    throw new TypeError(
      `Cannot build the stack file: the data folder must be an absolute path (it is bind-mounted ` +
        `on each node), not "${options.dataDir}"`,
    );
  }
  const mode = options.mode ?? "agency";
  const grace = options.stopGracePeriod ?? "10s";
  const secretsDir = (options.secretsDir ?? SECRETS_DIR).replace(/\/+$/, "");
  const secrets = (options.secrets ?? false) && options.clients > 0;
  const serverEnvironment: Record<string, string> = options.clients > 0
    ? { SERVER_AGENCIES: String(options.clients), SERVER_STORAGE_PATH }
    : { SERVER_STORAGE_PATH };
  if (secrets) Object.assign(serverEnvironment, { SERVER_SECRETS_PATH });
  const server: Record<string, unknown> = {
    image: IMAGES.server,
    environment: serverEnvironment,
    configs: [{ source: "server_config", target: "/app/server/config.ini" }],
    ...(secrets ? { secrets: [{ source: "server_secrets", target: SERVER_SECRETS_PATH }] } : {}),
    volumes: [{ type: "volume", source: BETS_VOLUME_KEY, target: "/data" }],
    networks: [NETWORK],
    healthcheck: { ...SERVER_HEALTHCHECK, test: [...SERVER_HEALTHCHECK.test] },
    init: true,
    "stop_grace_period": grace,
    deploy: {
      "endpoint_mode": "dnsrr",
      replicas: 1,
      placement: { constraints: [...(options.serverConstraints ?? [DEFAULT_SERVER_CONSTRAINT])] },
      "restart_policy": { condition: "any", delay: "1s" },
    },
  };
  const services: Record<string, unknown> = { server };
  const stackSecrets: Record<string, unknown> = {};
  if (secrets) stackSecrets["server_secrets"] = { file: `${secretsDir}/${SECRETS_FILE}` };
  for (let id = 1; id <= options.clients; id++) {
    const environment: Record<string, string> = { CLI_ID: String(id), CLI_MODE: mode };
    if (mode === "bet") Object.assign(environment, sampleBet(id));
    const secret = `client${id}_secret`;
    if (secrets) stackSecrets[secret] = { file: `${secretsDir}/${clientEnvFile(id)}` };
    services[`client${id}`] = {
      image: IMAGES.client,
      ...(secrets ? { entrypoint: ["sh", "-c", SECRET_ENTRYPOINT] } : {}),
      environment,
      configs: [{ source: "client_config", target: "/app/client/config.yaml" }],
      ...(secrets ? { secrets: [{ source: secret, target: AGENCY_SECRET_TARGET }] } : {}),
      ...(mode === "agency"
        ? {
          volumes: [{
            type: "bind",
            source: dataDir(options),
            target: "/app/.data",
            "read_only": true,
          }],
        }
        : {}),
      networks: [NETWORK],
      init: true,
      // A connect to an address no task holds any more (the server's, just after Swarm
      // replaced its task) gets no answer at all: without this the kernel retries the SYN
      // for about two minutes before the agency may retry; with it, about 7 s.
      sysctls: { "net.ipv4.tcp_syn_retries": "2" },
      "stop_grace_period": grace,
      deploy: {
        replicas: 1,
        placement: { constraints: [...(options.agencyConstraints ?? [])] },
        "restart_policy": {
          condition: "on-failure",
          delay: "5s",
          "max_attempts": AGENCY_MAX_ATTEMPTS,
        },
      },
    };
  }
  return {
    version: "3.8",
    services,
    networks: { [NETWORK]: { driver: "overlay", attachable: true } },
    volumes: { [BETS_VOLUME_KEY]: {} },
    configs: {
      server_config: { file: options.serverConfig ?? "./server/config.ini" },
      client_config: { file: options.clientConfig ?? "./client/config.yaml" },
    },
    ...(secrets ? { secrets: stackSecrets } : {}),
  };
}

/**
 * Renders the stack file: a header saying how it was made and how to run it, then the
 * document, checked by parsing it back.
 *
 * @param options As for {@linkcode stackDocument}.
 * @param command The command line that made it, for the header.
 * @returns The YAML text.
 * @throws {SyntaxError} When the text does not parse back into the document.
 */
export function renderStack(
  options: StackOptions,
  command = "deno task gen-compose --swarm",
): string {
  const doc = stackDocument(options);
  const text =
    `# Generated by \`${command}\` (tools/swarm/stack.ts); regenerate instead of editing.\n` +
    `# Deploy it on a swarm manager: \`deno task swarm up --file <this file>\` or\n` +
    `# \`docker stack deploy -c <this file> ${STACK}\`. Every node that runs an agency needs\n` +
    `# ${dataDir(options)} and the images (deno task swarm up --node … loads them).\n` +
    YAML.stringify(doc, { version: "1.1", lineWidth: 0, aliasDuplicateObjects: false });
  if (!isDeepStrictEqual(YAML.parse(text, { version: "1.1" }), doc)) {
    throw new SyntaxError("Cannot validate the generated stack file: it does not parse back");
  }
  return text;
}

/** The flags that shape a stack file, shared by `gen-compose --swarm` and `swarm up`. */
export const STACK_FLAGS = {
  mode: { type: "string", default: "agency" },
  secrets: { type: "boolean", default: false },
  "data-dir": { type: "string", default: DEFAULT_DATA_DIR },
  "server-config": { type: "string", default: "./server/config.ini" },
  "client-config": { type: "string", default: "./client/config.yaml" },
  "server-constraint": { type: "string", multiple: true },
  "agency-constraint": { type: "string", multiple: true },
  "stop-grace-period": { type: "string", default: "10s" },
} as const;

/** The values `parseArgs` gives for {@linkcode STACK_FLAGS}. */
export interface StackFlagValues {
  /** `--mode`. */
  readonly mode: string;
  /** `--secrets`. */
  readonly secrets: boolean;
  /** `--data-dir`. */
  readonly "data-dir": string;
  /** `--server-config`. */
  readonly "server-config": string;
  /** `--client-config`. */
  readonly "client-config": string;
  /** `--server-constraint`, repeatable. */
  readonly "server-constraint"?: readonly string[];
  /** `--agency-constraint`, repeatable. */
  readonly "agency-constraint"?: readonly string[];
  /** `--stop-grace-period`. */
  readonly "stop-grace-period": string;
}

/**
 * Turns parsed {@linkcode STACK_FLAGS} and an agency count into stack options.
 *
 * @param clients The agency count, as given.
 * @param values The flags' values.
 * @returns The options.
 * @throws {RangeError} For a bad agency count.
 * @throws {TypeError} For a bad mode, data folder or grace period.
 * @throws {SyntaxError} For a bad placement constraint.
 */
export function stackOptionsFrom(clients: string, values: StackFlagValues): StackOptions {
  const count = parseClientCount(clients);
  if (!(CLIENT_MODES as readonly string[]).includes(values.mode)) {
    throw new TypeError(
      `Cannot build the stack file: --mode must be one of ${
        CLIENT_MODES.join(", ")
      }, not "${values.mode}"`,
    );
  }
  if (!isAbsolute(values["data-dir"])) {
    throw new TypeError(
      `Cannot build the stack file: --data-dir must be an absolute path (it is bind-mounted on ` +
        `each node), not "${values["data-dir"]}"`,
    );
  }
  if (!/^\d+(ms|s|m)$/.test(values["stop-grace-period"])) {
    throw new TypeError(
      `Cannot build the stack file: --stop-grace-period must look like 10s, not "${
        values["stop-grace-period"]
      }"`,
    );
  }
  const server = values["server-constraint"]?.map(checkConstraint);
  return {
    clients: count,
    dataDir: values["data-dir"],
    mode: values.mode as ClientMode,
    secrets: values.secrets,
    serverConfig: values["server-config"],
    clientConfig: values["client-config"],
    ...(server === undefined ? {} : { serverConstraints: server }),
    agencyConstraints: (values["agency-constraint"] ?? []).map(checkConstraint),
    stopGracePeriod: values["stop-grace-period"],
  };
}

/** The parsed command line of `gen-compose --swarm`. */
export interface GenStackArgs {
  /** The output file. */
  readonly output: string;
  /** The stack's options. */
  readonly options: StackOptions;
}

/** Usage of `gen-compose --swarm`. */
export const GEN_STACK_USAGE = "usage: deno task gen-compose --swarm [OUTPUT] N " +
  "[--mode agency|bet|echo] [--secrets] [--data-dir ABSOLUTE_PATH] " +
  "[--server-constraint EXPR]… [--agency-constraint EXPR]… [--server-config PATH] " +
  "[--client-config PATH] [--stop-grace-period 10s]";

/**
 * Parses `gen-compose --swarm`'s command line (without `--swarm`): `[OUTPUT] N` plus
 * {@linkcode STACK_FLAGS}.
 *
 * @param args The arguments.
 * @returns The output file and the stack's options.
 * @throws {TypeError} For a wrong number of arguments, an unknown flag, a bad mode.
 * @throws {RangeError} For a bad agency count.
 * @throws {SyntaxError} For a bad placement constraint.
 *
 * @example Usage
 * ```ts
 * import { parseGenStackArgs } from "./stack.ts";
 * parseGenStackArgs(["5", "--agency-constraint", "node.role==worker"]).output; // "docker-stack.yaml"
 * ```
 */
export function parseGenStackArgs(args: readonly string[]): GenStackArgs {
  const { values, positionals } = parseCli(args, STACK_FLAGS, true);
  if (positionals.length < 1 || positionals.length > 2) {
    throw new UsageError(`Cannot build the stack file: expected [OUTPUT] N (${GEN_STACK_USAGE})`);
  }
  const output = positionals.length === 2 ? positionals[0]! : DEFAULT_STACK_FILE;
  return { output, options: stackOptionsFrom(positionals.at(-1)!, values) };
}
