#!/usr/bin/env -S deno run --allow-read --allow-write
/**
 * Generates the Docker Compose file of the deployment:
 *
 * ```sh
 * deno task gen-compose 5                            # docker-compose-dev.yaml, 5 agencies
 * deno task gen-compose docker-compose-dev.yaml 5    # explicit output name
 * deno task gen-compose --mode echo 5                # clients run Part 1's echo loop
 * deno task gen-compose 0                            # the server alone
 * ```
 *
 * Containers `server`, `client1` … `clientN` on the network `testing_net`
 * (172.25.125.0/24, named `tp0_testing_net` so Compose v1 and v2 agree; start it as
 * project `tp0`). Configs, agency data and the bet storage are volumes; the only
 * environment variables set are the ones the config files do not carry (agency id and
 * mode, expected agency count, storage path, exercise 5's bet), and a warning names any
 * that a config file sets too. Written with the `yaml` package and parsed back to check.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { isDeepStrictEqual } from "node:util";
import { dirname, resolve } from "node:path";
import YAML from "yaml";
import { parse as parseIni } from "ini";
import { flattenKeys } from "../shared/config.ts";
import { SERVER_SETTINGS } from "../server/config.ts";
import { CLIENT_SETTINGS } from "../client/config.ts";
import { IMAGES } from "./images.ts";
import { runMain, ToolError } from "./_docker.ts";

/** What the clients do: Part 1's echo loop, exercise 5's single bet, or a whole agency. */
export const CLIENT_MODES = ["agency", "bet", "echo"] as const;

/** One of {@linkcode CLIENT_MODES}. */
export type ClientMode = typeof CLIENT_MODES[number];

/** The compose project name; pass it as `-p tp0` (Compose v1 rejects a top-level `name:`). */
export const PROJECT = "tp0";

/** The network's name inside the file. */
export const NETWORK = "testing_net";

/** The network's real name, fixed so `docker-compose` v1 and `docker compose` v2 agree. */
export const NETWORK_NAME = "tp0_testing_net";

/** The network's subnet. */
export const SUBNET = "172.25.125.0/24";

/** The named volume holding the server's bets, so they survive container removal. */
export const BETS_VOLUME = "tp0_bets";

/** The default output file. */
export const DEFAULT_OUTPUT = "docker-compose-dev.yaml";

/** The most agencies the /24 subnet holds beside the server and the gateway. */
export const MAX_CLIENTS = 252;

/** Where the server's bets go inside its container (on {@linkcode BETS_VOLUME}). */
export const SERVER_STORAGE_PATH = "/data/bets.csv";

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
   * The server's INI file, relative to the compose file.
   * @default "./server/config.ini"
   */
  readonly serverConfig?: string;
  /**
   * The clients' YAML file, relative to the compose file.
   * @default "./client/config.yaml"
   */
  readonly clientConfig?: string;
  /**
   * The folder of `agency-{i}.csv`, relative to the compose file.
   * @default "./.data"
   */
  readonly dataDir?: string;
  /**
   * How long `docker stop` waits for a clean exit before SIGKILL.
   * @default "10s"
   */
  readonly stopGracePeriod?: string;
}

/** A bet for exercise 5 (`--mode bet`): the values of `NOMBRE` … `NUMERO`. */
export interface SampleBet {
  /** `NOMBRE`. */
  readonly NOMBRE: string;
  /** `APELLIDO`. */
  readonly APELLIDO: string;
  /** `DOCUMENTO`. */
  readonly DOCUMENTO: string;
  /** `NACIMIENTO`, YYYY-MM-DD. */
  readonly NACIMIENTO: string;
  /** `NUMERO`. */
  readonly NUMERO: string;
}

const FIRST_NAMES = ["Santiago Lionel", "María", "Juan Pablo", "Lucía", "Martín"];
const LAST_NAMES = ["Lorca", "Fernández", "Gómez", "Pereyra", "Sosa"];

/**
 * The exercise 5 bet of agency `id`: deterministic, the first one with the winning number.
 *
 * @param id The agency id, from 1.
 * @returns The bet's environment variables.
 *
 * @example Usage
 * ```ts
 * import { sampleBet } from "./gen_compose.ts";
 * sampleBet(1).NUMERO; // "7574"
 * ```
 */
export function sampleBet(id: number): SampleBet {
  const pick = (list: readonly string[]) => list[(id - 1) % list.length] ?? list[0] ?? "";
  return {
    NOMBRE: pick(FIRST_NAMES),
    APELLIDO: pick(LAST_NAMES),
    DOCUMENTO: String(30904465 + id - 1),
    NACIMIENTO: `19${String(70 + (id % 30)).padStart(2, "0")}-03-17`,
    NUMERO: id === 1 ? "7574" : String(1000 + id),
  };
}

/**
 * Checks an agency count.
 *
 * @param raw The count as given on the command line.
 * @returns The count.
 * @throws {RangeError} When it is not a whole number from 0 to {@linkcode MAX_CLIENTS}.
 */
export function parseClientCount(raw: string): number {
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= 0 && n <= MAX_CLIENTS)) {
    throw new RangeError(
      `Cannot generate the compose file: the agency count must be a whole number from 0 to ${MAX_CLIENTS}, not "${raw}"`,
    );
  }
  return n;
}

// Healthy once a TCP socket listens in the server's own network namespace. It reads
// /proc instead of connecting, so it adds no connections (and no log lines) to the server.
const LISTENING_CHECK = "cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | grep -q ' 0A '";

/**
 * Builds the compose document as a plain object.
 *
 * @param options Agency count, mode, paths.
 * @returns The document, ready for `YAML.stringify`.
 */
export function composeDocument(options: ComposeOptions): Record<string, unknown> {
  const mode = options.mode ?? "agency";
  const grace = options.stopGracePeriod ?? "10s";
  const serverConfig = options.serverConfig ?? "./server/config.ini";
  const clientConfig = options.clientConfig ?? "./client/config.yaml";
  const dataDir = (options.dataDir ?? "./.data").replace(/\/+$/, "");
  const services: Record<string, unknown> = {
    server: {
      container_name: "server",
      image: IMAGES.server,
      // With no agencies the server keeps its own expected count: it only serves (echo).
      environment: options.clients > 0
        ? { SERVER_AGENCIES: String(options.clients), SERVER_STORAGE_PATH }
        : { SERVER_STORAGE_PATH },
      volumes: [`${serverConfig}:/app/server/config.ini:ro`, `${BETS_VOLUME}:/data`],
      networks: [NETWORK],
      healthcheck: {
        test: ["CMD", "sh", "-c", LISTENING_CHECK],
        interval: "1s",
        timeout: "3s",
        retries: 60,
        start_period: "30s",
      },
      stop_grace_period: grace,
    },
  };
  for (let id = 1; id <= options.clients; id++) {
    const environment: Record<string, string> = { CLI_ID: String(id), CLI_MODE: mode };
    const volumes = [`${clientConfig}:/app/client/config.yaml:ro`];
    if (mode === "agency") {
      volumes.push(`${dataDir}/agency-${id}.csv:/app/.data/agency-${id}.csv:ro`);
    } else if (mode === "bet") {
      Object.assign(environment, sampleBet(id));
    }
    services[`client${id}`] = {
      container_name: `client${id}`,
      image: IMAGES.client,
      environment,
      volumes,
      networks: [NETWORK],
      depends_on: { server: { condition: "service_healthy" } },
      stop_grace_period: grace,
    };
  }
  return {
    services,
    networks: {
      [NETWORK]: {
        name: NETWORK_NAME,
        ipam: { driver: "default", config: [{ subnet: SUBNET }] },
      },
    },
    volumes: { [BETS_VOLUME]: { name: BETS_VOLUME } },
  };
}

/**
 * Parses a generated file back and checks it is the document it was made from and has
 * the expected shape (services, network, volume).
 *
 * @param text The YAML text.
 * @param expected The document it should hold.
 * @throws {SyntaxError} When it does not parse or does not match.
 */
export function validateCompose(text: string, expected: Record<string, unknown>): void {
  let parsed: unknown;
  try {
    parsed = YAML.parse(text, { version: "1.1" });
  } catch (error) {
    throw new SyntaxError(`Cannot parse the generated compose file: ${String(error)}`);
  }
  if (!isDeepStrictEqual(parsed, expected)) {
    throw new SyntaxError("Cannot validate the generated compose file: it does not parse back");
  }
  const doc = parsed as {
    services?: Record<string, { container_name?: string }>;
    networks?: Record<string, { name?: string }>;
  };
  const names = Object.keys(doc.services ?? {});
  const clients = names.filter((name) => name !== "server");
  const wanted = clients.map((_, i) => `client${i + 1}`);
  if (
    names[0] !== "server" || !isDeepStrictEqual(clients, wanted) ||
    names.some((name) => doc.services?.[name]?.container_name !== name) ||
    doc.networks?.[NETWORK]?.name !== NETWORK_NAME
  ) {
    throw new SyntaxError(
      "Cannot validate the generated compose file: services or network are not as expected",
    );
  }
}

/**
 * Renders the compose file: a header saying how it was made, then the document.
 *
 * @param options Agency count, mode, paths.
 * @param command The command line that made it, for the header.
 * @returns The YAML text, already validated by parsing it back.
 */
export function renderCompose(options: ComposeOptions, command = "deno task gen-compose"): string {
  const doc = composeDocument(options);
  const text =
    `# Generated by \`${command}\` (tools/gen_compose.ts); regenerate instead of editing.\n` +
    `# Start it as project ${PROJECT}: \`deno task up\` or \`docker compose -p ${PROJECT} -f <this file> up -d\`.\n` +
    // YAML 1.1, as Compose v1 (PyYAML) reads it: quotes 1971-03-17, yes, on, 0755 and the like.
    YAML.stringify(doc, { version: "1.1", lineWidth: 0 });
  validateCompose(text, doc);
  return text;
}

/**
 * Names the environment variables of a compose document that a config file also sets,
 * which would silently override the file's value.
 *
 * @param doc A document from {@linkcode composeDocument}.
 * @param fileKeys The keys each config file sets: `server` (INI keys), `client` (dotted YAML keys).
 * @returns One `service: VAR shadows <file key>` line per clash.
 */
export function shadowedSettings(
  doc: Record<string, unknown>,
  fileKeys: { readonly server: ReadonlySet<string>; readonly client: ReadonlySet<string> },
): string[] {
  const envToFile = (settings: Record<string, { env: string; file?: string }>) =>
    new Map(Object.values(settings).map((s) => [s.env, s.file]));
  const serverKeys = envToFile(SERVER_SETTINGS);
  const clientKeys = envToFile(CLIENT_SETTINGS);
  const clashes: string[] = [];
  const services = doc["services"] as Record<string, { environment?: Record<string, string> }>;
  for (const [name, service] of Object.entries(services)) {
    const isServer = name === "server";
    for (const variable of Object.keys(service.environment ?? {})) {
      const key = (isServer ? serverKeys : clientKeys).get(variable);
      if (key !== undefined && (isServer ? fileKeys.server : fileKeys.client).has(key)) {
        clashes.push(
          `${name}: ${variable} shadows ${key} of the ${isServer ? "INI" : "YAML"} file`,
        );
      }
    }
  }
  return clashes;
}

function readKeys(path: string, kind: "ini" | "yaml"): Set<string> {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch {
    return new Set();
  }
  try {
    if (kind === "yaml") return new Set(flattenKeys(YAML.parse(text)).keys());
    const parsed = parseIni(text) as Record<string, unknown>;
    const section = parsed["DEFAULT"];
    const keys = new Set(Object.keys(parsed).filter((key) => key !== "DEFAULT"));
    if (section !== null && typeof section === "object") {
      for (const key of Object.keys(section)) keys.add(key);
    }
    return keys;
  } catch {
    return new Set();
  }
}

/** The parsed command line of gen-compose. */
export interface GenComposeArgs {
  /** Output file. */
  readonly output: string;
  /** Document options. */
  readonly options: ComposeOptions;
}

const USAGE = "usage: deno task gen-compose [OUTPUT] N [--mode agency|bet|echo] " +
  "[--server-config PATH] [--client-config PATH] [--data-dir DIR] [--stop-grace-period 10s]";

/**
 * Parses gen-compose's command line: `[OUTPUT] N` plus flags.
 *
 * @param args The arguments.
 * @returns The output file and the document options.
 * @throws {TypeError} For a wrong number of positionals, an unknown flag or a bad mode.
 * @throws {RangeError} For a bad agency count.
 */
export function parseGenComposeArgs(args: readonly string[]): GenComposeArgs {
  const { values, positionals } = parseArgs({
    args: [...args],
    options: {
      mode: { type: "string", default: "agency" },
      "server-config": { type: "string", default: "./server/config.ini" },
      "client-config": { type: "string", default: "./client/config.yaml" },
      "data-dir": { type: "string", default: "./.data" },
      "stop-grace-period": { type: "string", default: "10s" },
    },
    strict: true,
    allowPositionals: true,
  });
  if (positionals.length < 1 || positionals.length > 2) {
    throw new TypeError(`Cannot generate the compose file: expected [OUTPUT] N (${USAGE})`);
  }
  const output = positionals.length === 2 ? positionals[0] ?? DEFAULT_OUTPUT : DEFAULT_OUTPUT;
  const clients = parseClientCount(positionals.at(-1) ?? "");
  const mode = values.mode;
  if (!(CLIENT_MODES as readonly string[]).includes(mode)) {
    throw new TypeError(
      `Cannot generate the compose file: --mode must be one of ${
        CLIENT_MODES.join(", ")
      }, not "${mode}"`,
    );
  }
  if (!/^\d+(ms|s|m)$/.test(values["stop-grace-period"])) {
    throw new TypeError(
      `Cannot generate the compose file: --stop-grace-period must look like 10s, not "${
        values["stop-grace-period"]
      }"`,
    );
  }
  return {
    output,
    options: {
      clients,
      mode: mode as ClientMode,
      serverConfig: values["server-config"],
      clientConfig: values["client-config"],
      dataDir: values["data-dir"],
      stopGracePeriod: values["stop-grace-period"],
    },
  };
}

/**
 * Writes the compose file and returns the warnings about shadowed config values.
 *
 * @param output The file to write.
 * @param options Agency count, mode, paths.
 * @returns Warning lines (empty when no env var shadows a config value).
 */
export async function writeCompose(output: string, options: ComposeOptions): Promise<string[]> {
  const command = `deno task gen-compose ${output} ${options.clients} --mode ${
    options.mode ?? "agency"
  }`;
  const text = renderCompose(options, command);
  await Deno.writeTextFile(output, text);
  const base = dirname(resolve(output));
  const doc = composeDocument(options);
  return shadowedSettings(doc, {
    server: readKeys(resolve(base, options.serverConfig ?? "./server/config.ini"), "ini"),
    client: readKeys(resolve(base, options.clientConfig ?? "./client/config.yaml"), "yaml"),
  });
}

/**
 * The CLI.
 *
 * @param args Command-line arguments.
 * @returns The exit code.
 */
export async function main(args: readonly string[]): Promise<number> {
  if (args.includes("--help") || args.includes("-h")) {
    console.log(USAGE);
    return 0;
  }
  let parsed: GenComposeArgs;
  try {
    parsed = parseGenComposeArgs(args);
  } catch (error) {
    throw new ToolError((error as Error).message);
  }
  const warnings = await writeCompose(parsed.output, parsed.options);
  for (const warning of warnings) console.error(`gen-compose: warning: ${warning}`);
  const { clients, mode } = parsed.options;
  console.log(
    `gen-compose: wrote ${parsed.output}: server + ${clients} agencies (mode ${mode}), ` +
      `network ${NETWORK_NAME} ${SUBNET}; start with deno task up`,
  );
  return 0;
}

if (import.meta.main) {
  await runMain("gen-compose", () => main(Deno.args));
}
