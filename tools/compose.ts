#!/usr/bin/env -S deno run -A
/**
 * Drives the deployment with Docker Compose v2 (`docker compose`) or v1
 * (`docker-compose`), whichever is installed, always as project `tp0`:
 *
 * ```sh
 * deno task up     # gen-compose if the file is missing, build the images, start detached
 * deno task logs   # follow every container's log
 * deno task down   # stop (SIGTERM, 10 s grace), then remove containers and network
 * ```
 *
 * Flags: `--file F` (default `docker-compose-dev.yaml`); `up`: `--clients N`, `--mode M`
 * and `--secrets` (regenerate with these), `--path auto|offline|online`, `--no-build`;
 * `down`: `--timeout S`, `--volumes` (also delete the stored bets); `logs`: `--no-follow`.
 *
 * @module
 */
import { dirname, isAbsolute, resolve } from "node:path";
import YAML from "yaml";
import { CLIENT_MODES } from "../client/config.ts";
import {
  choiceArg,
  exists,
  integerArg,
  lastLine,
  parseCli,
  run,
  runMain,
  ToolError,
  UsageError,
} from "./_cli.ts";
import {
  type ClientMode,
  DEFAULT_OUTPUT,
  NETWORK_NAME,
  parseClientCount,
  PROJECT,
  writeDeployment,
} from "./gen_compose.ts";
import { assertDockerEngine, buildImages, type BuildImagesOptions } from "./images.ts";

/**
 * Finds the installed Compose command: v2 first, then v1.
 *
 * @returns The argv prefix, e.g. `["docker", "compose"]`.
 * @throws {ToolError} When neither is installed.
 */
export async function detectCompose(): Promise<string[]> {
  for (const prefix of [["docker", "compose"], ["docker-compose"]]) {
    if ((await run([...prefix, "version"], { timeoutMs: 20_000 })).code === 0) return prefix;
  }
  throw new ToolError(
    "Cannot find Docker Compose: install the compose plugin (docker compose) or docker-compose " +
      "(tools/provision_docker.sh)",
  );
}

/**
 * Builds a Compose command line for project `tp0`.
 *
 * @param compose The argv prefix from {@linkcode detectCompose}.
 * @param options The compose file and the subcommand with its arguments.
 * @returns The argv.
 *
 * @example Usage
 * ```ts
 * composeArgv(["docker-compose"], { file: "dc.yaml", command: ["up", "-d"] });
 * // ["docker-compose", "-p", "tp0", "-f", "dc.yaml", "up", "-d"]
 * ```
 */
export function composeArgv(
  compose: readonly string[],
  options: { readonly file: string; readonly command: readonly string[] },
): string[] {
  return [...compose, "-p", PROJECT, "-f", options.file, ...options.command];
}

/**
 * Lists the host paths a compose document reads: bind mounts (short `src:dst[:mode]`
 * syntax with a path source, or long syntax with `type: bind`) and env files (a path or
 * a list; Compose v2 also takes `{ path }`), resolved against the file's folder.
 *
 * @param doc The parsed compose document.
 * @param baseDir The folder of the compose file.
 * @returns The absolute host paths, each once.
 */
export function hostSources(doc: unknown, baseDir: string): string[] {
  const sources = new Set<string>();
  const add = (path: unknown) => {
    if (typeof path === "string") sources.add(isAbsolute(path) ? path : resolve(baseDir, path));
  };
  type Service = { volumes?: unknown[]; "env_file"?: unknown };
  const services = (doc as { services?: Record<string, Service> })?.services;
  for (const service of Object.values(services ?? {})) {
    for (const volume of service?.volumes ?? []) {
      const head = typeof volume === "string" ? volume.split(":")[0]! : "";
      if (/^[.\/~]/.test(head)) add(head);
      const long = volume as { type?: string; source?: unknown } | null;
      if (long?.type === "bind") add(long.source);
    }
    const envFiles = service?.env_file;
    for (const entry of Array.isArray(envFiles) ? envFiles : [envFiles]) {
      add(typeof entry === "string" ? entry : (entry as { path?: unknown } | null)?.path);
    }
  }
  return [...sources];
}

/** Runs a Compose subcommand on `file`; quiet keeps its output for the error line. */
async function compose(command: readonly string[], file: string, quiet: boolean): Promise<void> {
  const prefix = await detectCompose();
  const result = await run(composeArgv(prefix, { file, command }), {
    output: quiet ? "capture" : "inherit",
    timeoutMs: 600_000,
  });
  if (result.code !== 0) {
    const detail = quiet ? `: ${lastLine(result.stderr)}` : "";
    throw new ToolError(
      `Cannot run ${prefix.join(" ")} ${command[0]}: exit ${result.code}${detail}`,
    );
  }
}

/** Options of {@linkcode up}; `path`, `quiet` and `say` are the image build's. */
export interface UpOptions extends Omit<BuildImagesOptions, "rebuildBase"> {
  /**
   * The compose file.
   * @default "docker-compose-dev.yaml"
   */
  readonly file?: string;
  /**
   * Regenerate the file with this many agencies; without it an existing file is used
   * as is and a missing one is generated with 5.
   */
  readonly clients?: number;
  /**
   * The clients' mode when (re)generating.
   * @default "agency"
   */
  readonly mode?: ClientMode;
  /**
   * Per-agency secrets when (re)generating (see `gen-compose --secrets`).
   * @default false
   */
  readonly secrets?: boolean;
  /**
   * Build the images first (without it they must exist).
   * @default true
   */
  readonly build?: boolean;
}

/**
 * `up`: generates the compose file if needed, builds the images, checks every file it
 * mounts exists, and starts the deployment detached (clients wait for a healthy server).
 *
 * @param options File, agency count, mode, build path.
 * @throws {ToolError} When a step fails.
 */
export async function up(options: UpOptions = {}): Promise<void> {
  const say = options.say ?? console.log;
  const file = options.file ?? DEFAULT_OUTPUT;
  const quiet = options.quiet ?? false;
  await assertDockerEngine();
  if (options.clients !== undefined || !(await exists(file))) {
    const clients = options.clients ?? 5;
    const mode = options.mode ?? "agency";
    const secrets = options.secrets ?? false;
    await writeDeployment(file, { clients, mode, secrets });
    say(
      `up: wrote ${file} (server + ${clients} agencies, mode ${mode}` +
        `${secrets ? ", secrets in .secrets/" : ""})`,
    );
  } else if (options.secrets) {
    say(`up: warning: --secrets ignored: ${file} exists and is used as is (add --clients N)`);
  }
  const doc = YAML.parse(await Deno.readTextFile(file), { version: "1.1" });
  const missing = [];
  for (const source of hostSources(doc, dirname(resolve(file)))) {
    if (!(await exists(source))) missing.push(source);
  }
  if (missing.length > 0) {
    throw new ToolError(
      `Cannot start: mounted files are missing: ${missing.join(", ")} ` +
        "(agency data: deno task dataset, or copy agency-{i}.csv into .data/; " +
        "secrets: deno task gen-compose N --secrets)",
    );
  }
  if (options.build ?? true) {
    await buildImages({ ...options, say: (line) => say(`up: ${line}`) });
  }
  await compose(["up", "-d"], file, quiet);
  say(
    `up: project ${PROJECT} running on ${NETWORK_NAME}; deno task logs to follow, deno task down to stop`,
  );
}

/** Options of {@linkcode down}. */
export interface DownOptions {
  /**
   * The compose file.
   * @default "docker-compose-dev.yaml"
   */
  readonly file?: string;
  /**
   * Seconds each container gets to exit after SIGTERM.
   * @default 10
   */
  readonly timeoutSeconds?: number;
  /**
   * Also delete the named volumes (the stored bets).
   * @default false
   */
  readonly volumes?: boolean;
  /**
   * Hide Compose's progress.
   * @default false
   */
  readonly quiet?: boolean;
}

/**
 * `down`: stops every container of project `tp0` with SIGTERM and a grace period, then
 * removes containers and network. Works without the compose file too (then every
 * container of the project is an orphan and goes).
 *
 * @param options File, grace period, volumes.
 * @throws {ToolError} When Compose fails.
 */
export async function down(options: DownOptions = {}): Promise<void> {
  await assertDockerEngine();
  const timeout = String(options.timeoutSeconds ?? 10);
  const quiet = options.quiet ?? false;
  let file = options.file ?? DEFAULT_OUTPUT;
  let temp: string | undefined;
  if (!(await exists(file))) {
    temp = await Deno.makeTempDir({ prefix: "tp0-down-" });
    file = `${temp}/${DEFAULT_OUTPUT}`;
    await writeDeployment(file, { clients: 0 });
  }
  try {
    await compose(["stop", "-t", timeout], file, quiet);
    const volumes = options.volumes ? ["--volumes"] : [];
    await compose(["down", "-t", timeout, "--remove-orphans", ...volumes], file, quiet);
  } finally {
    if (temp !== undefined) await Deno.remove(temp, { recursive: true }).catch(() => {});
  }
}

const USAGE = "usage: deno task up|down|logs [--file F] " +
  "[up: --clients N --mode agency|bet|echo --secrets --path auto|offline|online --no-build " +
  "--quiet] [down: --timeout S --volumes --quiet] [logs: --no-follow]";

/**
 * The CLI: `compose.ts up|down|logs [flags]`.
 *
 * @param args Command-line arguments.
 * @returns The exit code.
 * @throws {UsageError} For a bad command line.
 */
export async function main(args: readonly string[]): Promise<number> {
  const { values, positionals } = parseCli(args, {
    file: { type: "string", default: DEFAULT_OUTPUT },
    clients: { type: "string" },
    mode: { type: "string", default: "agency" },
    secrets: { type: "boolean", default: false },
    path: { type: "string", default: "auto" },
    "no-build": { type: "boolean", default: false },
    quiet: { type: "boolean", default: false },
    timeout: { type: "string", default: "10" },
    volumes: { type: "boolean", default: false },
    "no-follow": { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  }, true);
  const [command, ...rest] = positionals;
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (rest.length > 0 || (command !== "up" && command !== "down" && command !== "logs")) {
    throw new UsageError(`expected up, down or logs, not "${positionals.join(" ")}" (${USAGE})`);
  }
  const { file, quiet } = values;
  if (command === "up") {
    const path = choiceArg("--path", values.path, ["auto", "offline", "online"] as const);
    await up({
      file,
      ...(values.clients === undefined ? {} : { clients: parseClientCount(values.clients) }),
      mode: choiceArg("--mode", values.mode, CLIENT_MODES),
      secrets: values.secrets,
      path,
      build: !values["no-build"],
      quiet,
    });
  } else if (command === "down") {
    const timeoutSeconds = integerArg("--timeout", values.timeout, 0, 600);
    await down({ file, timeoutSeconds, volumes: values.volumes, quiet });
  } else {
    await assertDockerEngine();
    await compose(values["no-follow"] ? ["logs"] : ["logs", "-f"], file, false);
  }
  return 0;
}

if (import.meta.main) await runMain("compose", () => main(Deno.args));
