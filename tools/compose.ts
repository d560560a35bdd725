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
import { parseArgs } from "node:util";
import { dirname, isAbsolute, resolve } from "node:path";
import YAML from "yaml";
import { assertDockerEngine, lastLine, run, runMain, ToolError } from "./_docker.ts";
import { ConfigError } from "../shared/errors.ts";
import { buildImages, type BuildPath } from "./images.ts";
import {
  CLIENT_MODES,
  type ClientMode,
  DEFAULT_OUTPUT,
  NETWORK_NAME,
  parseClientCount,
  PROJECT,
  writeCompose,
} from "./gen_compose.ts";

/**
 * Picks the Compose command from what answers: v2 first, then v1.
 *
 * @param available Whether `docker compose version` and `docker-compose version` succeed.
 * @returns The argv prefix, e.g. `["docker", "compose"]`.
 * @throws {ToolError} When neither is installed.
 *
 * @example Usage
 * ```ts
 * import { pickCompose } from "./compose.ts";
 * pickCompose({ v2: false, v1: true }); // ["docker-compose"]
 * ```
 */
export function pickCompose(available: { readonly v2: boolean; readonly v1: boolean }): string[] {
  if (available.v2) return ["docker", "compose"];
  if (available.v1) return ["docker-compose"];
  throw new ToolError(
    "Cannot find Docker Compose: install the compose plugin (docker compose) or docker-compose " +
      "(tools/provision_docker.sh)",
  );
}

/**
 * Finds the installed Compose command.
 *
 * @returns The argv prefix.
 * @throws {ToolError} When neither v2 nor v1 is installed.
 */
export async function detectCompose(): Promise<string[]> {
  const v2 = (await run(["docker", "compose", "version"], { timeoutMs: 20_000 })).code === 0;
  const v1 = v2
    ? false
    : (await run(["docker-compose", "version"], { timeoutMs: 20_000 })).code === 0;
  return pickCompose({ v2, v1 });
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
 * import { composeArgv } from "./compose.ts";
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
 * Lists the host paths a compose document bind-mounts (short `src:dst[:mode]` syntax with
 * a path source, or long syntax with `type: bind`), resolved against the file's folder.
 *
 * @param doc The parsed compose document.
 * @param baseDir The folder of the compose file.
 * @returns The absolute host paths, each once.
 */
export function bindSources(doc: unknown, baseDir: string): string[] {
  const sources = new Set<string>();
  const services = (doc as { services?: Record<string, { volumes?: unknown[] }> })?.services;
  for (const service of Object.values(services ?? {})) {
    for (const volume of service?.volumes ?? []) {
      let source: string | undefined;
      if (typeof volume === "string") {
        const head = volume.split(":")[0] ?? "";
        if (head.startsWith(".") || head.startsWith("/") || head.startsWith("~")) source = head;
      } else if (volume !== null && typeof volume === "object") {
        const long = volume as { type?: string; source?: string };
        if (long.type === "bind" && typeof long.source === "string") source = long.source;
      }
      if (source !== undefined) sources.add(isAbsolute(source) ? source : resolve(baseDir, source));
    }
  }
  return [...sources];
}

/**
 * Lists the env files a compose document names (`env_file`, a path or a list of paths),
 * resolved against the file's folder; Compose reads them on the host.
 *
 * @param doc The parsed compose document.
 * @param baseDir The folder of the compose file.
 * @returns The absolute paths, each once.
 */
export function envFileSources(doc: unknown, baseDir: string): string[] {
  const sources = new Set<string>();
  const services = (doc as { services?: Record<string, { env_file?: unknown }> })?.services;
  for (const service of Object.values(services ?? {})) {
    const value = service?.env_file;
    for (const entry of Array.isArray(value) ? value : [value]) {
      // Compose v2 also takes `{ path, required }`.
      const path = typeof entry === "string" ? entry : (entry as { path?: unknown } | null)?.path;
      if (typeof path === "string") sources.add(isAbsolute(path) ? path : resolve(baseDir, path));
    }
  }
  return [...sources];
}

async function missingBindSources(file: string): Promise<string[]> {
  const doc = YAML.parse(await Deno.readTextFile(file), { version: "1.1" });
  const missing: string[] = [];
  const base = dirname(resolve(file));
  for (const source of [...bindSources(doc, base), ...envFileSources(doc, base)]) {
    try {
      await Deno.stat(source);
    } catch {
      missing.push(source);
    }
  }
  return missing;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

async function compose(
  command: readonly string[],
  file: string,
  quiet = false,
): Promise<{ code: number; detail: string }> {
  const prefix = await detectCompose();
  const result = await run(composeArgv(prefix, { file, command }), {
    inherit: !quiet,
    timeoutMs: 600_000,
  });
  return { code: result.code, detail: quiet ? lastLine(result.stderr) : "" };
}

/** Options of {@linkcode up}. */
export interface UpOptions {
  /**
   * The compose file.
   * @default "docker-compose-dev.yaml"
   */
  readonly file?: string;
  /**
   * Regenerate the file with this many agencies; without it an existing file is used
   * as is and a missing one is generated with 5.
   * @default undefined
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
   * The image build path.
   * @default "auto"
   */
  readonly path?: "auto" | BuildPath;
  /**
   * Skip building the images (they must exist).
   * @default false
   */
  readonly build?: boolean;
  /**
   * Hide the progress of `docker build` and Compose.
   * @default false
   */
  readonly quiet?: boolean;
  /**
   * Where progress lines go.
   * @default console.log
   */
  readonly say?: (line: string) => void;
}

/**
 * `up`: generates the compose file if needed, builds the images, checks every mounted
 * file exists, and starts the deployment detached (clients wait for a healthy server).
 *
 * @param options File, agency count, mode, build path.
 * @throws {ToolError} When a step fails.
 */
export async function up(options: UpOptions = {}): Promise<void> {
  const say = options.say ?? console.log;
  const file = options.file ?? DEFAULT_OUTPUT;
  await assertDockerEngine();
  const prefix = await detectCompose();
  if (options.clients !== undefined || !(await exists(file))) {
    const clients = options.clients ?? 5;
    const mode = options.mode ?? "agency";
    const secrets = options.secrets ?? false;
    let warnings: string[];
    try {
      warnings = await writeCompose(file, { clients, mode, secrets });
    } catch (error) {
      if (error instanceof ConfigError) throw new ToolError(error.message);
      throw error;
    }
    for (const warning of warnings) say(`up: warning: ${warning}`);
    say(
      `up: wrote ${file} (server + ${clients} agencies, mode ${mode}` +
        `${secrets ? ", secrets in .secrets/" : ""})`,
    );
  } else if (options.secrets ?? false) {
    say(`up: warning: --secrets ignored: ${file} exists and is used as is (add --clients N)`);
  }
  const missing = await missingBindSources(file);
  if (missing.length > 0) {
    throw new ToolError(
      `Cannot start: mounted files are missing: ${missing.join(", ")} ` +
        "(agency data: deno task dataset, or copy agency-{i}.csv into .data/; " +
        "secrets: deno task gen-compose N --secrets)",
    );
  }
  if (options.build ?? true) {
    await buildImages({
      path: options.path ?? "auto",
      quiet: options.quiet ?? false,
      say: (line) => say(`up: ${line}`),
    });
  }
  const quiet = options.quiet ?? false;
  const result = await run(composeArgv(prefix, { file, command: ["up", "-d"] }), {
    inherit: !quiet,
    timeoutMs: 600_000,
  });
  if (result.code !== 0) {
    const detail = quiet ? `: ${lastLine(result.stderr)}` : "";
    throw new ToolError(
      `Cannot start the deployment: ${prefix.join(" ")} up exited ${result.code}${detail}`,
    );
  }
  say(
    `up: project ${PROJECT} running on ${NETWORK_NAME} (${prefix.join(" ")}); ` +
      "deno task logs to follow, deno task down to stop",
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
  let file = options.file ?? DEFAULT_OUTPUT;
  let temp: string | undefined;
  if (!(await exists(file))) {
    temp = await Deno.makeTempDir({ prefix: "tp0-down-" });
    file = `${temp}/${DEFAULT_OUTPUT}`;
    await writeCompose(file, { clients: 0 });
  }
  try {
    const quiet = options.quiet ?? false;
    const stop = await compose(["stop", "-t", timeout], file, quiet);
    const args = ["down", "-t", timeout, "--remove-orphans"];
    if (options.volumes ?? false) args.push("--volumes");
    const removed = await compose(args, file, quiet);
    const failed = stop.code !== 0 ? stop : removed;
    if (failed.code !== 0) {
      const detail = failed.detail === "" ? "" : `: ${failed.detail}`;
      throw new ToolError(`Cannot stop the deployment: compose exited ${failed.code}${detail}`);
    }
  } finally {
    if (temp !== undefined) await Deno.remove(temp, { recursive: true }).catch(() => {});
  }
}

/**
 * `logs`: prints every container's log, following by default.
 *
 * @param options File and whether to follow.
 * @returns Compose's exit code.
 */
export async function logs(
  options: { readonly file?: string; readonly follow?: boolean } = {},
): Promise<number> {
  await assertDockerEngine();
  const args = (options.follow ?? true) ? ["logs", "-f"] : ["logs"];
  return (await compose(args, options.file ?? DEFAULT_OUTPUT)).code;
}

const USAGE = "usage: deno task up|down|logs [--file F] " +
  "[up: --clients N --mode agency|bet|echo --secrets --path auto|offline|online --no-build " +
  "--quiet] " +
  "[down: --timeout S --volumes --quiet] [logs: --no-follow]";

/**
 * The CLI: `compose.ts up|down|logs [flags]`.
 *
 * @param args Command-line arguments.
 * @returns The exit code.
 */
export async function main(args: readonly string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...args],
    options: {
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
    },
    strict: true,
    allowPositionals: true,
  });
  const [command, ...rest] = positionals;
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (rest.length > 0 || (command !== "up" && command !== "down" && command !== "logs")) {
    throw new ToolError(`Cannot run "${positionals.join(" ")}": ${USAGE}`);
  }
  if (command === "up") {
    if (!(CLIENT_MODES as readonly string[]).includes(values.mode)) {
      throw new ToolError(`Cannot start: --mode must be one of ${CLIENT_MODES.join(", ")}`);
    }
    const path = values.path;
    if (path !== "auto" && path !== "offline" && path !== "online") {
      throw new ToolError(`Cannot start: --path must be auto, offline or online, not "${path}"`);
    }
    let clients: number | undefined;
    try {
      clients = values.clients === undefined ? undefined : parseClientCount(values.clients);
    } catch (error) {
      throw new ToolError((error as Error).message);
    }
    await up({
      file: values.file,
      ...(clients === undefined ? {} : { clients }),
      mode: values.mode as ClientMode,
      secrets: values.secrets,
      path,
      build: !values["no-build"],
      quiet: values.quiet,
    });
    return 0;
  }
  if (command === "down") {
    const timeoutSeconds = Number(values.timeout);
    if (!Number.isInteger(timeoutSeconds) || timeoutSeconds < 0 || timeoutSeconds > 600) {
      throw new ToolError(`Cannot stop: --timeout must be whole seconds from 0 to 600`);
    }
    await down({
      file: values.file,
      timeoutSeconds,
      volumes: values.volumes,
      quiet: values.quiet,
    });
    return 0;
  }
  return await logs({ file: values.file, follow: !values["no-follow"] });
}

if (import.meta.main) {
  await runMain("compose", () => main(Deno.args));
}
