#!/usr/bin/env -S deno run --allow-read --allow-write
/**
 * Generates the Docker Compose file of the deployment:
 *
 * ```sh
 * deno task gen-compose 5                            # docker-compose-dev.yaml, 5 agencies
 * deno task gen-compose docker-compose-dev.yaml 5    # explicit output name
 * deno task gen-compose --mode echo 5                # clients run Part 1's echo loop
 * deno task gen-compose 0                            # the server alone
 * deno task gen-compose 3 --secrets                  # per-agency secrets in .secrets/
 * deno task gen-compose 5 --keep-bets                # bets kept across down (volume tp0_bets)
 * ```
 *
 * Containers `server`, `client1` … `clientN` on the network `testing_net`
 * (172.25.125.0/24, named `tp0_testing_net` so Compose v1 and v2 agree; start it as
 * project `tp0`). Configs and the agency data folder are mounted read-only; the bets stay
 * in the server container's own layer, so they live and die with it (a run is a draw),
 * unless `--keep-bets` puts them on a named volume. The only environment variables set
 * are the ones the config files do not carry (agency id and mode, expected agency count,
 * storage path, exercise 5's bet). With `--secrets`, see `secrets.ts`.
 *
 * @module
 */
import { dirname, resolve } from "node:path";
import YAML from "yaml";
import { CLIENT_MODES, type ClientConfig } from "../client/config.ts";
import { choiceArg, integerArg, parseCli, runMain, UsageError, writeFileAtomic } from "./_cli.ts";
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

/** The compose project name; pass it as `-p tp0` (Compose v1 rejects a top-level `name:`). */
export const PROJECT = "tp0";

/** The network's name inside the file. */
export const NETWORK = "testing_net";

/** The network's real name, fixed so `docker-compose` v1 and `docker compose` v2 agree. */
export const NETWORK_NAME = "tp0_testing_net";

/** The network's subnet. */
export const SUBNET = "172.25.125.0/24";

/** The named volume holding the server's bets with `--keep-bets`, so they survive `down`. */
export const BETS_VOLUME = "tp0_bets";

/** The default output file. */
export const DEFAULT_OUTPUT = "docker-compose-dev.yaml";

/** The most agencies the /24 subnet holds beside the server and the gateway. */
export const MAX_CLIENTS = 252;

/**
 * Where the server's bets go inside its container: its image's `/data`, in the container's
 * own layer, or on {@linkcode BETS_VOLUME} with `--keep-bets`.
 */
export const SERVER_STORAGE_PATH = "/data/bets.csv";

/** Where the agencies' data folder is mounted (the client's `data.path` default reads it). */
export const CLIENT_DATA_DIR = "/app/.data";

/** Options of {@linkcode composeDocument}. */
export interface ComposeOptions {
  /** How many agencies (`client1` … `clientN`); 0 gives the server alone. */
  readonly clients: number;
  /**
   * What the clients do.
   * @default "agency"
   */
  readonly mode?: ClientMode;
  /**
   * Authenticate agencies with per-agency secrets in {@linkcode SECRETS_DIR} (nothing is
   * added with 0 clients: there is no one to authenticate).
   * @default false
   */
  readonly secrets?: boolean;
  /**
   * Keep the bets on the named volume {@linkcode BETS_VOLUME}, so they outlive the server
   * container (`down`, then `up`, continues the same draw). Without it they live in the
   * container: a restart keeps them, `down` ends the draw.
   * @default false
   */
  readonly keepBets?: boolean;
}

const FIRST_NAMES = ["Santiago Lionel", "María", "Juan Pablo", "Lucía", "Martín"];
const LAST_NAMES = ["Lorca", "Fernández", "Gómez", "Pereyra", "Sosa"];

/**
 * The exercise 5 bet of agency `id` (`NOMBRE` … `NUMERO`): deterministic, the first one
 * with the winning number.
 *
 * @param id The agency id, from 1.
 * @returns The bet's environment variables.
 */
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
 * @param raw The count as given on the command line.
 * @returns The count.
 * @throws {UsageError} When it is not a whole number from 0 to {@linkcode MAX_CLIENTS}.
 */
export function parseClientCount(raw: string): number {
  return integerArg("the agency count", raw, 0, MAX_CLIENTS);
}

// Healthy once a TCP socket listens in the server's own network namespace. It reads
// /proc instead of connecting, so it adds no connections (and no log lines) to the server.
const LISTENING_CHECK = "cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | grep -q ' 0A '";

/**
 * Builds the compose document as a plain object.
 *
 * @param options Agency count, mode, secrets, storage.
 * @returns The document, ready for `YAML.stringify`.
 */
export function composeDocument(options: ComposeOptions): Record<string, unknown> {
  const mode = options.mode ?? "agency";
  // How long `docker stop` waits for a clean exit before SIGKILL.
  const grace = "10s";
  const secrets = (options.secrets ?? false) && options.clients > 0;
  // With no agencies the server keeps its own expected count: it only serves (echo).
  const serverEnvironment: Record<string, string> = options.clients > 0
    ? { SERVER_AGENCIES: String(options.clients), SERVER_STORAGE_PATH }
    : { SERVER_STORAGE_PATH };
  const keepBets = options.keepBets ?? false;
  const serverVolumes = [
    "./server/config.ini:/app/server/config.ini:ro",
    ...(keepBets ? [`${BETS_VOLUME}:${dirname(SERVER_STORAGE_PATH)}`] : []),
  ];
  if (secrets) {
    // The path only, never a secret: those stay in the mounted file.
    serverEnvironment["SERVER_SECRETS_PATH"] = SERVER_SECRETS_PATH;
    serverVolumes.push(`${SECRETS_DIR}/${SECRETS_FILE}:${SERVER_SECRETS_PATH}:ro`);
  }
  const services: Record<string, unknown> = {
    server: {
      container_name: "server",
      image: IMAGES.server,
      environment: serverEnvironment,
      volumes: serverVolumes,
      networks: [NETWORK],
      healthcheck: {
        test: ["CMD", "sh", "-c", LISTENING_CHECK],
        interval: "1s",
        timeout: "3s",
        retries: 60,
        start_period: "30s",
      },
      // Docker's tini as PID 1: a SIGTERM that arrives before the program has installed its
      // handler still stops it (PID 1 would ignore it, and docker stop would wait and kill).
      init: true,
      stop_grace_period: grace,
    },
  };
  for (let id = 1; id <= options.clients; id++) {
    const volumes = ["./client/config.yaml:/app/client/config.yaml:ro"];
    // The folder, not each file: were a file missing, Docker would make a folder in its
    // place on the host; this way the agency reports the missing file itself.
    if (mode === "agency") volumes.push(`./.data:${CLIENT_DATA_DIR}:ro`);
    services[`client${id}`] = {
      container_name: `client${id}`,
      image: IMAGES.client,
      environment: { CLI_ID: String(id), CLI_MODE: mode, ...(mode === "bet" ? sampleBet(id) : {}) },
      // Compose reads the env file on the host and passes CLI_SECRET to the container;
      // the secret is in neither the compose file nor the image.
      ...(secrets ? { env_file: `${SECRETS_DIR}/${clientEnvFile(id)}` } : {}),
      volumes,
      networks: [NETWORK],
      depends_on: { server: { condition: "service_healthy" } },
      init: true,
      stop_grace_period: grace,
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

/**
 * Renders the compose file: a header saying how it was made, then the document.
 *
 * @param options Agency count, mode, secrets, storage.
 * @param command The command line that made it, for the header.
 * @returns The YAML text.
 */
export function renderCompose(options: ComposeOptions, command = "deno task gen-compose"): string {
  return `# Generated by \`${command}\` (tools/gen_compose.ts); regenerate instead of editing.\n` +
    `# Start it as project ${PROJECT}: \`deno task up\` or \`docker compose -p ${PROJECT} -f <this file> up -d\`.\n` +
    // YAML 1.1, as Compose v1 (PyYAML) reads it: quotes 1971-03-17, yes, on, 0755 and the like.
    YAML.stringify(composeDocument(options), { version: "1.1", lineWidth: 0 });
}

/**
 * Writes the compose file (atomically) and, with `secrets` and at least one agency, the
 * secrets beside it first (so the file never names secrets that are not there yet).
 *
 * @param output The compose file.
 * @param options Agency count, mode, secrets, storage.
 * @returns The secrets written, if any.
 * @throws {ToolError} When existing secrets cannot be reused (see `writeSecrets`).
 */
export async function writeDeployment(
  output: string,
  options: ComposeOptions,
): Promise<SecretsResult | undefined> {
  const withSecrets = (options.secrets ?? false) && options.clients > 0;
  const secrets = withSecrets
    ? await writeSecrets(resolve(dirname(resolve(output)), SECRETS_DIR), options.clients)
    : undefined;
  const flags = [
    ...(options.secrets ? ["--secrets"] : []),
    ...(options.keepBets ? ["--keep-bets"] : []),
  ];
  const command = [
    `deno task gen-compose ${output} ${options.clients} --mode ${options.mode ?? "agency"}`,
    ...flags,
  ].join(" ");
  await writeFileAtomic(output, renderCompose(options, command));
  return secrets;
}

const USAGE = "deno task gen-compose [OUTPUT] N [--mode agency|bet|echo] [--secrets] [--keep-bets]";

/**
 * The CLI: `gen_compose.ts [OUTPUT] N [flags]`.
 *
 * @param args Command-line arguments.
 * @returns The exit code.
 * @throws {UsageError} For a bad command line.
 */
export async function main(args: readonly string[]): Promise<number> {
  const { values, positionals } = parseCli(args, {
    mode: { type: "string", default: "agency" },
    secrets: { type: "boolean", default: false },
    "keep-bets": { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  }, true);
  if (values.help) {
    console.log(`usage: ${USAGE}`);
    return 0;
  }
  if (positionals.length < 1 || positionals.length > 2) {
    throw new UsageError(`expected [OUTPUT] N (usage: ${USAGE})`);
  }
  const output = positionals.length === 2 ? positionals[0]! : DEFAULT_OUTPUT;
  const options: ComposeOptions = {
    clients: parseClientCount(positionals.at(-1)!),
    mode: choiceArg("--mode", values.mode, CLIENT_MODES),
    secrets: values.secrets,
    keepBets: values["keep-bets"],
  };
  const secrets = await writeDeployment(output, options);
  console.log(
    `gen-compose: wrote ${output}: server + ${options.clients} agencies (mode ${options.mode}), ` +
      `network ${NETWORK_NAME} ${SUBNET}${
        options.keepBets ? `, bets kept across down in volume ${BETS_VOLUME}` : ""
      }; start with deno task up`,
  );
  if (secrets !== undefined) {
    const { dir, secrets: all, reused } = secrets;
    console.log(
      `gen-compose: secrets of ${all.size} agencies in ${dir} (${all.size - reused} new, ` +
        `${reused} kept): ${SECRETS_FILE} for the server, client<N>.env for each agency`,
    );
  } else if (options.secrets) {
    console.error("gen-compose: --secrets with 0 agencies: nothing to authenticate, no secrets");
  }
  return 0;
}

if (import.meta.main) await runMain("gen-compose", () => main(Deno.args));
