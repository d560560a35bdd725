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
 * deno task gen-compose --swarm 5                    # docker-stack.yaml for Docker Swarm
 * ```
 *
 * Containers `server`, `client1` … `clientN` on the network `testing_net`
 * (172.25.125.0/24, named `tp0_testing_net` so Compose v1 and v2 agree; start it as
 * project `tp0`). Configs, agency data and the bet storage are volumes; the only
 * environment variables set are the ones the config files do not carry (agency id and
 * mode, expected agency count, storage path, exercise 5's bet), and a warning names any
 * that a config file sets too. Written with the `yaml` package and parsed back to check.
 *
 * With `--secrets`, each agency gets a random secret: `.secrets/agencies.ini` (mounted
 * read-only into the server, named by `SERVER_SECRETS_PATH`) and `.secrets/client<N>.env`
 * (`CLI_SECRET`, the client's `env_file`), both beside the compose file. Secrets already in
 * `agencies.ini` are kept, so regenerating does not lock out running agencies; no secret
 * ever appears in the compose file. Off by default: the course's deployment has none.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { isDeepStrictEqual } from "node:util";
import { dirname, join, resolve } from "node:path";
import YAML from "yaml";
import { parseClientConfigFile } from "../client/config.ts";
import { parseServerConfigFile } from "../server/config.ts";
import { SERVER_SETTINGS } from "../server/config.ts";
import { CLIENT_SETTINGS } from "../client/config.ts";
import { loadSecrets } from "../server/secrets.ts";
import { IMAGES } from "./images.ts";
import { runMain, ToolError } from "./_docker.ts";
import { ConfigError } from "../shared/errors.ts";

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

/** The folder of the secrets, beside the compose file (git- and docker-ignored). */
export const SECRETS_DIR = "./.secrets";

/** The server's secrets file inside {@linkcode SECRETS_DIR}. */
export const SECRETS_FILE = "agencies.ini";

/**
 * Where the server's secrets file is mounted: under /app, which the server image's
 * Deno permissions let it read (`--allow-read=/app,/data`).
 */
export const SERVER_SECRETS_PATH = "/app/secrets/agencies.ini";

/** The variable that carries an agency's secret (config key `secret`). */
export const CLIENT_SECRET_ENV = "CLI_SECRET";

/**
 * The env file of agency `id` inside {@linkcode SECRETS_DIR}.
 *
 * @param id The agency id.
 * @returns Its file name, `client<id>.env`.
 */
export function clientEnvFile(id: number): string {
  return `client${id}.env`;
}

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
  /**
   * Authenticate agencies with per-agency secrets: the server mounts
   * `<secretsDir>/agencies.ini`, each client reads `<secretsDir>/client<N>.env`. With 0
   * clients there is nothing to authenticate and nothing is added.
   * @default false
   */
  readonly secrets?: boolean;
  /**
   * The folder of the secrets files, relative to the compose file.
   * @default "./.secrets"
   */
  readonly secretsDir?: string;
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

/**
 * The server's healthcheck (Compose and Swarm stack files alike): healthy once a TCP socket
 * listens in the server's own network namespace. It reads /proc instead of connecting, so
 * it adds no connections (and no log lines) to the server.
 */
export const SERVER_HEALTHCHECK = {
  test: ["CMD", "sh", "-c", "cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | grep -q ' 0A '"],
  interval: "1s",
  timeout: "3s",
  retries: 60,
  start_period: "30s",
} as const;

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
  const secretsDir = (options.secretsDir ?? SECRETS_DIR).replace(/\/+$/, "");
  const secrets = (options.secrets ?? false) && options.clients > 0;
  // With no agencies the server keeps its own expected count: it only serves (echo).
  const serverEnvironment: Record<string, string> = options.clients > 0
    ? { SERVER_AGENCIES: String(options.clients), SERVER_STORAGE_PATH }
    : { SERVER_STORAGE_PATH };
  const serverVolumes = [`${serverConfig}:/app/server/config.ini:ro`, `${BETS_VOLUME}:/data`];
  if (secrets) {
    // The path only, never a secret: those stay in the mounted file.
    Object.assign(serverEnvironment, { SERVER_SECRETS_PATH });
    serverVolumes.push(`${secretsDir}/${SECRETS_FILE}:${SERVER_SECRETS_PATH}:ro`);
  }
  const services: Record<string, unknown> = {
    server: {
      container_name: "server",
      image: IMAGES.server,
      environment: serverEnvironment,
      volumes: serverVolumes,
      networks: [NETWORK],
      healthcheck: { ...SERVER_HEALTHCHECK, test: [...SERVER_HEALTHCHECK.test] },
      // Docker's tini as PID 1: a SIGTERM that arrives before the program has installed its
      // handler still stops it (PID 1 would ignore it, and docker stop would wait and kill).
      init: true,
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
      // Compose reads the env file on the host and passes CLI_SECRET to the container;
      // the secret is in neither the compose file nor the image.
      ...(secrets ? { env_file: `${secretsDir}/${clientEnvFile(id)}` } : {}),
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
  const services = doc["services"] as Record<
    string,
    { environment?: Record<string, string>; env_file?: unknown }
  >;
  for (const [name, service] of Object.entries(services)) {
    const isServer = name === "server";
    // A generated env file carries exactly the agency's secret.
    const fromEnvFile = service.env_file === undefined ? [] : [CLIENT_SECRET_ENV];
    for (const variable of [...Object.keys(service.environment ?? {}), ...fromEnvFile]) {
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

/**
 * A new agency secret: 32 hex characters (128 bits) from `crypto.getRandomValues`.
 *
 * @returns The secret.
 *
 * @example Usage
 * ```ts
 * import { newSecret } from "./gen_compose.ts";
 * newSecret().length; // 32
 * ```
 */
export function newSecret(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/**
 * Writes a file atomically: a new file beside it with the final mode, flushed to disk,
 * then renamed over the old one. A reader (or a crash) sees the old file or the new one,
 * never half of one, and a secret is never readable under a wider mode, even briefly.
 *
 * @param path The file.
 * @param options The text and the file mode (e.g. `0o600`).
 */
export async function writeFileAtomic(
  path: string,
  options: { readonly text: string; readonly mode: number },
): Promise<void> {
  const temp = `${path}.tmp-${newSecret().slice(0, 8)}`;
  const data = new TextEncoder().encode(options.text);
  try {
    const file = await Deno.open(temp, { write: true, createNew: true, mode: options.mode });
    try {
      // The umask may have narrowed the mode given at creation; set it exactly.
      await Deno.chmod(temp, options.mode);
      for (let written = 0; written < data.length;) {
        written += await file.write(data.subarray(written));
      }
      await file.syncData();
    } finally {
      file.close();
    }
    await Deno.rename(temp, path);
  } catch (error) {
    await Deno.remove(temp).catch(() => {});
    throw error;
  }
}

// Characters that both Compose v1 (verbatim) and v2 (quotes, `$` interpolation, ` #`
// comments) read the same from an unquoted env-file value.
const ENV_SAFE = /^[A-Za-z0-9._~+\/=:@%-]{1,255}$/;

/** What {@linkcode writeSecrets} wrote. */
export interface SecretsResult {
  /** The folder, resolved. */
  readonly dir: string;
  /** The secret of each agency 1..N. */
  readonly secrets: ReadonlyMap<number, string>;
  /** How many came from the existing `agencies.ini`. */
  readonly reused: number;
}

async function readExistingSecrets(path: string): Promise<Map<number, string>> {
  try {
    await Deno.stat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return new Map();
    throw error;
  }
  try {
    // Parsed as the server parses it; every id a HELLO can carry is accepted here.
    return await loadSecrets(path, 0xffff);
  } catch (error) {
    throw new ConfigError(
      [`Cannot reuse the secrets of ${path}: ${(error as Error).message}`],
      { cause: error },
    );
  }
}

/**
 * Writes the secrets of agencies 1..`clients` into `dir` (made mode 0700):
 * `agencies.ini` with `<id> = <secret>` lines, for the server, and `client<id>.env` with
 * `CLI_SECRET=<secret>`, for each client. A secret already in `agencies.ini` is kept (so
 * regenerating does not lock out agencies already deployed); the others are new. Only
 * ids 1..`clients` are written (the server refuses ids above its agency count), and env
 * files of agencies beyond `clients` are removed.
 *
 * Modes: `agencies.ini` is 0644 because it is bind-mounted into the server container,
 * whose process runs as another uid (1993) and must read it; the 0700 folder keeps other
 * host users out. The env files are 0600: Compose reads them on the host, as the user
 * who runs it, and passes the value to the container as an environment variable.
 *
 * @param dir The secrets folder.
 * @param clients The agency count.
 * @returns The folder, the secrets and how many were reused.
 * @throws {ConfigError} When the existing `agencies.ini` cannot be read back, or holds a
 *   secret an env file cannot carry verbatim.
 */
export async function writeSecrets(dir: string, clients: number): Promise<SecretsResult> {
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  await Deno.chmod(dir, 0o700);
  const iniPath = join(dir, SECRETS_FILE);
  const existing = await readExistingSecrets(iniPath);
  const secrets = new Map<number, string>();
  let reused = 0;
  for (let id = 1; id <= clients; id++) {
    const kept = existing.get(id);
    if (kept !== undefined && !ENV_SAFE.test(kept)) {
      throw new ConfigError([
        `Cannot reuse the secret of agency ${id} in ${iniPath}: an env file cannot carry it ` +
        "verbatim (use letters, digits and ._~+/=:@%-, or delete the line for a new one)",
      ]);
    }
    if (kept !== undefined) reused++;
    secrets.set(id, kept ?? newSecret());
  }
  const lines = [...secrets].map(([id, secret]) => `${id} = ${secret}\n`);
  await writeFileAtomic(iniPath, {
    text: "# Agency secrets, generated by `deno task gen-compose --secrets`: <agency id> = " +
      "<secret>.\n# Mounted read-only into the server (SERVER_SECRETS_PATH). Keep private; " +
      "never commit.\n" + lines.join(""),
    mode: 0o644,
  });
  for (const [id, secret] of secrets) {
    await writeFileAtomic(join(dir, clientEnvFile(id)), {
      text: `# Agency ${id}'s secret, from ${SECRETS_FILE}; read by Compose (env_file).\n` +
        `${CLIENT_SECRET_ENV}=${secret}\n`,
      mode: 0o600,
    });
  }
  for await (const entry of Deno.readDir(dir)) {
    const match = /^client(\d+)\.env$/.exec(entry.name);
    if (entry.isFile && match !== null && Number(match[1]) > clients) {
      await Deno.remove(join(dir, entry.name));
    }
  }
  return { dir, secrets, reused };
}

function readKeys(path: string, kind: "ini" | "yaml"): Set<string> {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch {
    return new Set();
  }
  try {
    // The programs' own parsers: the keys seen here are the keys they will read.
    const values = kind === "yaml"
      ? parseClientConfigFile(text, path)
      : parseServerConfigFile(text, path);
    return new Set(values.keys());
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

const USAGE = "usage: deno task gen-compose [OUTPUT] N [--mode agency|bet|echo] [--secrets] " +
  "[--server-config PATH] [--client-config PATH] [--data-dir DIR] [--stop-grace-period 10s] " +
  "(a Docker Swarm stack file instead: --swarm --help)";

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
      secrets: { type: "boolean", default: false },
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
      secrets: values.secrets,
    },
  };
}

/** What {@linkcode writeDeployment} wrote. */
export interface DeploymentResult {
  /** Warning lines (env vars that shadow a config value, `--secrets` with 0 agencies). */
  readonly warnings: readonly string[];
  /** The secrets written, with `secrets` on and at least one agency. */
  readonly secrets?: SecretsResult;
}

/**
 * Writes the compose file (atomically) and, with `secrets`, the secrets files beside it
 * (first, so the file never names secrets that are not there yet).
 *
 * @param output The compose file.
 * @param options Agency count, mode, paths, secrets.
 * @returns Warnings and the secrets written.
 * @throws {ConfigError} When existing secrets cannot be reused (see {@linkcode writeSecrets}).
 */
export async function writeDeployment(
  output: string,
  options: ComposeOptions,
): Promise<DeploymentResult> {
  const base = dirname(resolve(output));
  const withSecrets = options.secrets ?? false;
  const warnings: string[] = [];
  let secrets: SecretsResult | undefined;
  if (withSecrets && options.clients > 0) {
    secrets = await writeSecrets(resolve(base, options.secretsDir ?? SECRETS_DIR), options.clients);
  } else if (withSecrets) {
    warnings.push("--secrets with 0 agencies: nothing to authenticate, no secrets written");
  }
  const command = `deno task gen-compose ${output} ${options.clients} --mode ${
    options.mode ?? "agency"
  }${withSecrets ? " --secrets" : ""}`;
  const text = renderCompose(options, command);
  for (const [id, secret] of secrets?.secrets ?? []) {
    // composeDocument never puts one there; this guards against a future change that would.
    if (text.includes(secret)) {
      throw new Error(`Cannot write ${output}: it would hold the secret of agency ${id}`);
    }
  }
  await writeFileAtomic(output, { text, mode: 0o644 });
  const doc = composeDocument(options);
  warnings.push(...shadowedSettings(doc, {
    server: readKeys(resolve(base, options.serverConfig ?? "./server/config.ini"), "ini"),
    client: readKeys(resolve(base, options.clientConfig ?? "./client/config.yaml"), "yaml"),
  }));
  return secrets === undefined ? { warnings } : { warnings, secrets };
}

/**
 * Writes the compose file (and the secrets, with `secrets` on) and returns the warnings.
 *
 * @param output The file to write.
 * @param options Agency count, mode, paths, secrets.
 * @returns Warning lines (empty when no env var shadows a config value).
 */
export async function writeCompose(output: string, options: ComposeOptions): Promise<string[]> {
  return [...(await writeDeployment(output, options)).warnings];
}

/**
 * The CLI.
 *
 * @param args Command-line arguments.
 * @returns The exit code.
 */
export async function main(args: readonly string[]): Promise<number> {
  if (args.includes("--swarm")) {
    // The Docker Swarm stack file instead (tools/swarm/; imported late: it imports this module).
    const { genStackMain } = await import("./swarm/main.ts");
    return await genStackMain(args.filter((arg) => arg !== "--swarm"));
  }
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
  let result: DeploymentResult;
  try {
    result = await writeDeployment(parsed.output, parsed.options);
  } catch (error) {
    if (error instanceof ConfigError) throw new ToolError(error.message);
    throw error;
  }
  for (const warning of result.warnings) console.error(`gen-compose: warning: ${warning}`);
  const { clients, mode } = parsed.options;
  console.log(
    `gen-compose: wrote ${parsed.output}: server + ${clients} agencies (mode ${mode}), ` +
      `network ${NETWORK_NAME} ${SUBNET}; start with deno task up`,
  );
  if (result.secrets !== undefined) {
    const { dir, secrets, reused } = result.secrets;
    console.log(
      `gen-compose: secrets of ${secrets.size} agencies in ${dir} ` +
        `(${secrets.size - reused} new, ${reused} kept): ${SECRETS_FILE} for the server, ` +
        `client<N>.env for each agency`,
    );
  }
  return 0;
}

if (import.meta.main) {
  // Not awaited: `--swarm` imports tools/swarm/, which imports this module, and that import
  // waits for this module's evaluation, which a top-level await would never end.
  runMain("gen-compose", () => main(Deno.args));
}
