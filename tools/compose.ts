#!/usr/bin/env -S deno run -A
/**
 * Drives the deployment with Docker Compose v2 or v1, whichever is installed, as project
 * `tp0`: `deno task up|down|logs` (`--help` lists the flags).
 *
 * @module
 */
import { dirname, resolve } from "node:path";
import YAML from "yaml";
import { CLIENT_MODES } from "../client/config.ts";
import { type LogLine, parseLog } from "../shared/log_line.ts";
import {
  choiceArg,
  exists,
  integerArg,
  lastLine,
  parseCommand,
  run,
  runMain,
  runOrThrow,
  ToolError,
} from "./_cli.ts";
import {
  BETS_VOLUME,
  CLIENT_DATA_DIR,
  type ClientMode,
  composeDocument,
  DEFAULT_OUTPUT,
  defaultMode,
  NETWORK_NAME,
  parseClientCount,
  PROJECT,
  SERVER_STORAGE_PATH,
  writeDeployment,
} from "./gen_compose.ts";
import { assertDockerEngine, BUILD_PATHS, buildImages, type BuildImagesOptions } from "./images.ts";

let detected: Promise<string[]> | undefined;

/**
 * Finds the installed Compose command's argv prefix, v2 first; asked once per process
 * (`docker-compose version` alone takes most of a second).
 *
 * @throws {ToolError} When neither is installed.
 */
export function detectCompose(): Promise<string[]> {
  return detected ??= (async () => {
    for (const prefix of [["docker", "compose"], ["docker-compose"]]) {
      if ((await run([...prefix, "version"], { timeoutMs: 20_000 })).code === 0) return prefix;
    }
    throw new ToolError(
      "Cannot find Docker Compose: install the compose plugin (docker compose) or " +
        "docker-compose (tools/provision_docker.sh)",
    );
  })();
}

/** Builds a Compose command line for project `tp0`: the file, then the subcommand. */
export function composeArgv(
  compose: readonly string[],
  options: { readonly file: string; readonly command: readonly string[] },
): string[] {
  return [...compose, "-p", PROJECT, "-f", options.file, ...options.command];
}

/** What a compose file deploys: agencies, their mode (`mixed`, `none`), bets volume, secrets. */
export interface Deployment {
  readonly clients: number;
  readonly mode: string;
  readonly keepBets: boolean;
  readonly secrets: boolean;
}

type Service = { environment?: Record<string, unknown>; volumes?: unknown[]; "env_file"?: unknown };

function servicesOf(doc: unknown): Record<string, Service> {
  return (doc as { services?: Record<string, Service> } | null)?.services ?? {};
}

/** Reads back what a parsed compose document (as gen-compose writes it) deploys. */
export function readDeployment(doc: unknown): Deployment {
  const services = servicesOf(doc);
  const clients = Object.keys(services).filter((name) => /^client\d+$/.test(name));
  const modes = new Set(clients.map((name) => services[name]?.environment?.["CLI_MODE"]));
  const server = services["server"];
  return {
    clients: clients.length,
    mode: modes.size === 0 ? "none" : modes.size > 1 ? "mixed" : String([...modes][0] ?? "agency"),
    keepBets: (server?.volumes ?? []).includes(`${BETS_VOLUME}:${dirname(SERVER_STORAGE_PATH)}`),
    secrets: server?.environment?.["SERVER_SECRETS_PATH"] !== undefined,
  };
}

/**
 * Checks the host paths a compose document mounts (relative to `baseDir`) before Docker
 * does, which would make a folder in place of a missing file.
 *
 * @returns One phrase per problem; empty when all is there.
 */
export async function mountProblems(doc: unknown, baseDir: string): Promise<string[]> {
  const wanted = new Map<string, boolean>(); // path → must be a file
  const add = (path: string, file: boolean) => wanted.set(resolve(baseDir, path), file);
  for (const service of Object.values(servicesOf(doc))) {
    const env = service?.environment ?? {};
    for (const volume of service?.volumes ?? []) {
      const [source = "", target = ""] = typeof volume === "string" ? volume.split(":") : [];
      if (!/^[.\/~]/.test(source)) continue; // a named volume, not a host path
      // A target named like a file (config.ini, not .data) mounts a file.
      add(source, /^[^.].*\.\w+$/.test(target.split("/").at(-1)!));
      if (target === CLIENT_DATA_DIR && (env["CLI_MODE"] ?? "agency") === "agency") {
        add(`${source}/agency-${env["CLI_ID"]}.csv`, true);
      }
    }
    const envFiles = service?.env_file;
    for (const path of Array.isArray(envFiles) ? envFiles : [envFiles]) {
      if (typeof path === "string") add(path, true);
    }
  }
  const problems: string[] = [];
  for (const [path, file] of wanted) {
    const info = await Deno.stat(path).catch((error) => {
      if (error instanceof Deno.errors.NotFound) return undefined;
      throw error;
    });
    if (info === undefined) problems.push(`${path} is missing`);
    else if (file && info.isDirectory) {
      problems.push(
        `${path} is a folder, not a file (Docker makes one where a mounted file is missing; ` +
          "remove it with rmdir)",
      );
    }
  }
  return problems;
}

/** The line `up` says about the storage the server opened (its `open_storage` fields). */
export function storageLine(
  opened: ReadonlyMap<string, string>,
  options: { readonly keepBets: boolean; readonly runningSince?: string },
): string {
  const bets = opened.get("apuestas") ?? "0";
  const fresh = (opened.get("estado") ?? (bets === "0" ? "nuevo" : "existente")) === "nuevo";
  const afresh = `for a fresh draw: deno task down${options.keepBets ? " --volumes" : ""}, then up`;
  if (options.runningSince !== undefined) {
    return `up: the server was already running (since ${options.runningSince}): its draw goes on; ${afresh}`;
  }
  if (fresh) {
    return `up: a fresh draw (${
      options.keepBets ? `bets kept in volume ${BETS_VOLUME}` : "bets live in the server container"
    })`;
  }
  const done = opened.get("agencias_listas");
  const draw = opened.get("sorteo");
  const facts = [
    `${bets} bets stored`,
    ...(done === undefined ? [] : [`agencies done: ${done === "-" ? "none" : done}`]),
    ...(draw === undefined ? [] : [draw === "realizado" ? "draw done" : "draw not done yet"]),
  ];
  return `up: the server reuses the stored draw: ${facts.join(", ")}; ${afresh}`;
}

/** The server container's state: whether it runs, and when it last started. */
async function serverState(): Promise<{ running: boolean; startedAt: string } | undefined> {
  const format = "{{.State.Running}} {{.State.StartedAt}}";
  const result = await run(["docker", "container", "inspect", "--format", format, "server"], {
    timeoutMs: 20_000,
  });
  const [running, startedAt = ""] = result.stdout.trim().split(" ");
  return result.code === 0 ? { running: running === "true", startedAt } : undefined;
}

/** The server container's log lines and stderr since it last started. */
async function currentServerRun(): Promise<{ lines: LogLine[]; stderr: string }> {
  const since = (await serverState())?.startedAt;
  const argv = ["docker", "logs", ...(since ? ["--since", since] : []), "server"];
  const { stdout, stderr } = await run(argv, { timeoutMs: 20_000 });
  return { lines: parseLog(stdout), stderr };
}

/** Waits (bounded) for the server's `open_storage` line of its current run. */
async function openedStorage(timeoutMs = 30_000): Promise<LogLine | undefined> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline;) {
    const opened = (await currentServerRun()).lines.find((line) => line.action === "open_storage");
    if (opened !== undefined || !(await serverState())?.running) return opened;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return undefined;
}

/** The server's own words when its current run failed, for an error line. */
async function serverFailure(): Promise<string> {
  const { lines, stderr } = await currentServerRun();
  const failed = lines.findLast((line) => line.result === "fail");
  const words = failed === undefined
    ? lastLine(stderr)
    : `${failed.action} ${failed.fields.get("error") ?? "failed"}`;
  return words === "" ? "" : `; the server says: ${words}`;
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

/**
 * Options of {@linkcode up}: gen-compose's options regenerate the file (keeping the ones not
 * given); without any, an existing file is used as it is.
 */
export interface UpOptions extends BuildImagesOptions {
  readonly file?: string;
  readonly clients?: number;
  readonly mode?: ClientMode;
  readonly secrets?: boolean;
  readonly keepBets?: boolean;
  readonly build?: boolean;
}

/** Uses, writes or rewrites the compose file as asked; returns what it deploys and its document. */
async function composeFileFor(
  file: string,
  options: UpOptions,
  say: (line: string) => void,
): Promise<{ deployment: Deployment; doc: unknown }> {
  const text = await Deno.readTextFile(file).catch((error) => {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  });
  const doc: unknown = text === undefined ? undefined : YAML.parse(text, { version: "1.1" });
  const current = text === undefined ? undefined : readDeployment(doc);
  const { clients, mode, secrets, keepBets } = options;
  if (current && [clients, mode, secrets, keepBets].every((option) => option === undefined)) {
    say(`up: using ${file} as it is (deno task up --clients N --mode M regenerates it)`);
    return { deployment: current, doc };
  }
  if (text !== undefined && !text.startsWith("# Generated by")) {
    throw new ToolError(`Cannot regenerate ${file}: gen-compose did not write it; pass --file`);
  }
  const asked = {
    clients: clients ?? current?.clients ?? 5,
    mode: mode ?? CLIENT_MODES.find((known) => known === current?.mode) ?? await defaultMode(),
    secrets: secrets ?? current?.secrets ?? false,
    keepBets: keepBets ?? current?.keepBets ?? false,
  };
  await writeDeployment(file, asked);
  say(`up: ${current ? "regenerated" : "wrote"} ${file}`);
  return {
    deployment: { ...asked, mode: asked.clients === 0 ? "none" : asked.mode },
    // The document the file was just rendered from.
    doc: composeDocument(asked),
  };
}

/**
 * `up`: the compose file, its mounts checked, the images built, the deployment started
 * detached, and whether the server opened a fresh draw.
 *
 * @throws {ToolError} When a step fails, or the server refuses to start (its own line).
 */
export async function up(options: UpOptions = {}): Promise<void> {
  const say = options.say ?? console.log;
  const file = options.file ?? DEFAULT_OUTPUT;
  const quiet = options.quiet ?? false;
  await assertDockerEngine();
  const { deployment, doc } = await composeFileFor(file, options, say);
  say(
    `up: starting server + ${deployment.clients} agencies, mode ${deployment.mode}, ` +
      (deployment.keepBets
        ? `bets kept across down in volume ${BETS_VOLUME}`
        : "bets live in the server container (down ends the draw)") +
      (deployment.secrets ? ", secrets in .secrets/" : ""),
  );
  const problems = await mountProblems(doc, dirname(resolve(file)));
  if (problems.length > 0) {
    throw new ToolError(
      `Cannot start: ${problems.join("; ")} (agency data: deno task dataset generate, or ` +
        "deno task dataset import dataset.zip; secrets: deno task gen-compose N --secrets)",
    );
  }
  if (options.build ?? true) {
    await buildImages({ ...options, say: (line) => say(`up: ${line}`) });
  }
  const before = await serverState();
  try {
    await compose(["up", "-d"], file, quiet);
  } catch (error) {
    throw new ToolError(`${(error as Error).message}${await serverFailure()}`);
  }
  const opened = await openedStorage();
  if (opened?.result !== "success") {
    throw new ToolError(
      `Cannot start: the server did not open its storage${await serverFailure()}`,
    );
  }
  // Compose left a running server alone when it did not restart it.
  const kept = before?.running && before.startedAt === (await serverState())?.startedAt;
  say(storageLine(opened.fields, {
    keepBets: deployment.keepBets,
    ...(kept ? { runningSince: before.startedAt } : {}),
  }));
  say(
    `up: project ${PROJECT} running on ${NETWORK_NAME}; deno task logs to follow, deno task down to stop`,
  );
}

/** Options of {@linkcode down}: file, SIGTERM grace (10 s), and whether volumes go too. */
export interface DownOptions {
  readonly file?: string;
  readonly timeoutSeconds?: number;
  readonly volumes?: boolean;
  readonly quiet?: boolean;
}

/**
 * `down`: stops project `tp0` with SIGTERM and a grace period, then removes it; keeps
 * {@linkcode BETS_VOLUME} unless `volumes`. Without the compose file every container goes.
 *
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
  if ((await run(["docker", "volume", "inspect", BETS_VOLUME])).code !== 0) return;
  if (options.volumes) {
    await runOrThrow(["docker", "volume", "rm", BETS_VOLUME], `Cannot remove ${BETS_VOLUME}`);
  } else {
    console.log(`down: the bets stay in volume ${BETS_VOLUME}; down --volumes deletes them`);
  }
}

const USAGE = "usage: deno task up|down|logs [--file F] " +
  "[up: --clients N --mode agency|bet|echo --secrets --keep-bets --path auto|offline|online " +
  "--no-build " +
  "--quiet] [down: --timeout S --volumes --quiet] [logs: --no-follow]";

/** The flags each command takes. */
const FLAGS: ReadonlyMap<string, readonly string[]> = new Map([
  ["up", ["file", "clients", "mode", "secrets", "keep-bets", "path", "no-build", "quiet"]],
  ["down", ["file", "timeout", "volumes", "quiet"]],
  ["logs", ["file", "no-follow"]],
]);

/** The flags `deno task up|down|logs` and `deno task swarm` share, as `parseArgs` takes them. */
export const DEPLOY_OPTIONS = {
  file: { type: "string" },
  clients: { type: "string" },
  mode: { type: "string" },
  secrets: { type: "boolean" },
  "keep-bets": { type: "boolean" },
  path: { type: "string" },
  "no-build": { type: "boolean" },
  quiet: { type: "boolean" },
  timeout: { type: "string" },
  "no-follow": { type: "boolean" },
} as const;

/**
 * The CLI: `compose.ts up|down|logs [flags]`; returns the exit code.
 *
 * @throws {UsageError} For a bad command line.
 */
export async function main(args: readonly string[]): Promise<number> {
  // No defaults in the parser: `given` holds only the flags the command line gave.
  const parsed = parseCommand(args, {
    commands: FLAGS,
    usage: USAGE,
    options: { ...DEPLOY_OPTIONS, volumes: { type: "boolean" } },
  });
  if (parsed === undefined) return 0;
  const { command, given } = parsed;
  const { file = DEFAULT_OUTPUT, quiet = false } = given;
  if (command === "up") {
    await up({
      file,
      ...(given.clients === undefined ? {} : { clients: parseClientCount(given.clients) }),
      ...(given.mode === undefined ? {} : { mode: choiceArg("--mode", given.mode, CLIENT_MODES) }),
      ...(given.secrets === undefined ? {} : { secrets: given.secrets }),
      ...(given["keep-bets"] === undefined ? {} : { keepBets: given["keep-bets"] }),
      path: choiceArg("--path", given.path ?? "auto", BUILD_PATHS),
      build: !given["no-build"],
      quiet,
    });
  } else if (command === "down") {
    const timeoutSeconds = integerArg("--timeout", given.timeout ?? "10", 0, 600);
    await down({ file, timeoutSeconds, volumes: given.volumes ?? false, quiet });
  } else {
    await assertDockerEngine();
    await compose(given["no-follow"] ? ["logs"] : ["logs", "-f"], file, false);
  }
  return 0;
}

if (import.meta.main) await runMain("compose", () => main(Deno.args));
