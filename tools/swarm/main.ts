#!/usr/bin/env -S deno run -A
/**
 * Drives the deployment on Docker Swarm as stack `tp0` (docs/deployment.md, "Docker Swarm"):
 * `up` (swarm init if needed, images to every node, stack file, deploy, wait), `status`,
 * `logs`, `down` (removes the stack and its bets volume); USAGE lists the flags. Every
 * Docker command is bounded in time, and every failure is one line.
 *
 * @module
 */
import { CLIENT_MODES } from "../../client/config.ts";
import {
  choiceArg,
  integerArg,
  parseCommand,
  refuseStray,
  run,
  runMain,
  ToolError,
  UsageError,
} from "../_cli.ts";
import { DEPLOY_OPTIONS, type UpOptions as ComposeUpOptions } from "../compose.ts";
import {
  NETWORK_NAME,
  parseClientCount,
  PROJECT,
  STACK_BETS_VOLUME,
  STACK_FILE,
  STACK_FLAGS,
  stackFlags,
  type StackOptions,
  writeDeployment,
} from "../gen_compose.ts";
import { assertDockerEngine, BUILD_PATHS, buildImages } from "../images.ts";
import {
  checkNodes,
  deployStack,
  ensureManager,
  hasBetsVolume,
  loadImages,
  networkKind,
  removeBetsVolume,
  removeStack,
  stackServices,
  stackTasks,
  swarmState,
} from "./cluster.ts";
import { judge, newEvents } from "./tasks.ts";

/**
 * Options of {@linkcode up}: the stack file, written from `stack` when given; `nodes` (Docker
 * host URLs) get the images; `wait` (default true) is bounded by `timeoutMs` (10 minutes).
 */
export interface UpOptions
  extends Pick<ComposeUpOptions, "file" | "build" | "path" | "quiet" | "say"> {
  readonly stack?: StackOptions;
  readonly nodes?: readonly string[];
  readonly wait?: boolean;
  readonly timeoutMs?: number;
}

/**
 * What {@linkcode up} measured from `docker stack deploy` on: until every service had a task
 * running or done (at once with `wait: false`), and until every agency finished (with `wait`).
 */
export interface UpResult {
  readonly deployMs: number;
  readonly finishedMs?: number;
}

/**
 * `up`: a manager (a one-node swarm if none), nodes checked, images loaded where missing,
 * stack file written when given `stack`, deployed, and waited on until every agency finished.
 *
 * @throws {ToolError} For no engine, not a manager, a node that cannot be reached, a data
 *   folder missing on a node, an agency Swarm gave up on, or the time running out.
 */
export async function up(options: UpOptions = {}): Promise<UpResult> {
  const say = options.say ?? console.log;
  const nodes = options.nodes ?? [];
  const file = options.file ?? STACK_FILE;
  await assertDockerEngine();
  await ensureManager(say);
  await checkNodes(nodes);
  if (await networkKind() === "compose") {
    throw new ToolError(
      `Cannot deploy: the Compose deployment's network ${NETWORK_NAME} exists on this engine ` +
        "and the stack's would share its name (deno task down first)",
    );
  }
  if ((await stackServices()).length > 0) {
    throw new ToolError(
      `Cannot deploy: stack ${PROJECT} is already deployed (deno task swarm status; ` +
        "deno task swarm down first for a fresh draw)",
    );
  }
  if (options.build ?? true) {
    await buildImages({ path: options.path ?? "auto", quiet: options.quiet ?? false, say });
  }
  for (const node of nodes) await loadImages(node, say);
  if (options.stack !== undefined) {
    await writeDeployment(file, options.stack);
    const { clients, mode = "agency" } = options.stack;
    say(`wrote ${file}: server + ${clients} agencies (mode ${mode})`);
  }
  for (const host of [undefined, ...nodes]) {
    if (await hasBetsVolume(host)) {
      say(
        `the bets volume ${STACK_BETS_VOLUME} on ${host ?? "this engine"} is reused (kept by ` +
          "swarm down --keep-bets): the server resumes that draw; swarm down for a fresh one",
      );
    }
  }
  const started = performance.now();
  await deployStack(file);
  say(`deployed ${file} as stack ${PROJECT}`);
  if (!(options.wait ?? true)) return { deployMs: performance.now() - started };
  return await watch(started, options.timeoutMs ?? 600_000, say);
}

/** Tells each task that starts, finishes or fails, until every agency has finished. */
async function watch(started: number, timeoutMs: number, say: (line: string) => void) {
  const services = await stackServices();
  const agencies = services.filter((service) => service !== "server");
  const said = new Set<string>();
  const seconds = () => ((performance.now() - started) / 1000).toFixed(1);
  let deployMs: number | undefined;
  for (;; await new Promise((resolve) => setTimeout(resolve, 1000))) {
    const tasks = await stackTasks();
    for (const line of newEvents(tasks, said)) say(line);
    const { finished, givenUp, missingFolder } = judge(tasks, agencies);
    const isUp = (service: string) =>
      tasks.some((task) => task.service === service && /^(Running|Complete)$/.test(task.state));
    if (deployMs === undefined && services.every(isUp)) {
      deployMs = performance.now() - started;
      say(`every service started in ${seconds()} s`);
    }
    if (missingFolder !== undefined) {
      const { task, path } = missingFolder;
      throw new ToolError(
        `Cannot run ${task.service} on node ${task.node}: the folder ${path} does not exist ` +
          "there (the data folder must exist on every node that runs an agency: --data-dir; " +
          "deno task swarm down to remove the stack)",
      );
    }
    if (givenUp.length > 0) {
      const reason = tasks.find((task) => task.service === givenUp[0] && task.error !== "")?.error;
      throw new ToolError(
        `${givenUp.join(", ")} failed and Swarm stopped restarting it ` +
          `(${reason ?? "no reason given"}; deno task swarm logs, then swarm down)`,
      );
    }
    if (deployMs !== undefined && finished.length === agencies.length) {
      say(
        `${agencies.length} agencies finished in ${seconds()} s; deno task swarm logs to ` +
          "read them, deno task swarm down to remove the stack",
      );
      return { deployMs, finishedMs: performance.now() - started };
    }
    if (performance.now() - started > timeoutMs) {
      const waiting = agencies.filter((agency) => !finished.includes(agency));
      throw new ToolError(
        `Cannot finish within ${timeoutMs / 1000} s: still waiting for ` +
          `${waiting.join(", ") || "the server"} (deno task swarm status)`,
      );
    }
  }
}

/**
 * `down`: removes the stack (its containers get their stop grace period) and, unless
 * `keepBets`, the bets volume on this engine and every given node, so the next `up` is a
 * fresh draw.
 *
 * @throws {ToolError} For no engine, a worker engine, or Docker refusing.
 */
export async function down(
  options: {
    readonly nodes?: readonly string[];
    readonly keepBets?: boolean;
    readonly say?: (line: string) => void;
  } = {},
): Promise<void> {
  const say = options.say ?? console.log;
  const nodes = options.nodes ?? [];
  await assertDockerEngine();
  const { state, manager } = await swarmState();
  if (state === "active" && !manager) {
    throw new ToolError("Cannot remove the stack: this engine is a swarm worker, not a manager");
  }
  if (state === "active") {
    const tasks = (await stackTasks()).filter((task) => task.service === "server");
    const ran = [...new Set(tasks.map((task) => task.node))].join(", ");
    const removed = await removeStack(nodes);
    say(
      removed
        ? `removed stack ${PROJECT}${ran && ` (server ran on ${ran})`}`
        : `stack ${PROJECT} was not deployed`,
    );
  } else {
    say("this engine is in no swarm: no stack to remove");
  }
  for (const host of [undefined, ...nodes]) {
    const where = host ?? "this engine";
    if (options.keepBets ?? false) {
      if (await hasBetsVolume(host)) say(`kept the bets volume ${STACK_BETS_VOLUME} on ${where}`);
    } else if (await removeBetsVolume(host)) {
      say(`deleted the bets volume ${STACK_BETS_VOLUME} on ${where}: the next up is a fresh draw`);
    }
  }
}

/**
 * `logs`: `docker service logs` of every service, each line after the task's name, node and
 * `|` (as Compose's logs are after the container's). With `follow`, until interrupted;
 * without, each task's log in turn, finished and failed ones too. Returns the exit code.
 *
 * @throws {ToolError} When the stack is not deployed.
 */
export async function logs(follow: boolean): Promise<number> {
  await assertDockerEngine();
  const services = await stackServices();
  if (services.length === 0) {
    throw new ToolError(`Cannot show logs: stack ${PROJECT} is not deployed`);
  }
  // Per task without following: `docker service logs` of a whole service can hang once a
  // task of it was killed. Tasks are listed newest first: the oldest log first.
  const tasks = (await stackTasks()).reverse();
  const sources = follow
    ? services.map((service) => `${PROJECT}_${service}`)
    : services.flatMap((service) =>
      tasks.filter((task) => task.service === service).map((task) => task.id)
    );
  const show = (source: string) =>
    run(["docker", "service", "logs", ...(follow ? ["--follow"] : []), source], {
      output: "inherit",
      ...(follow ? {} : { timeoutMs: 60_000 }),
    });
  const results = follow ? await Promise.all(sources.map(show)) : [];
  for (const source of follow ? [] : sources) results.push(await show(source));
  return Math.max(0, ...results.map((result) => result.code));
}

/** `status`: each task of the stack: service, node, desired and current state, Swarm's error. */
export async function status(): Promise<number> {
  await assertDockerEngine();
  const tasks = await stackTasks();
  if (tasks.length === 0) {
    console.error(`swarm: stack ${PROJECT} is not deployed`);
    return 1;
  }
  const rows = [
    ["SERVICE", "NODE", "DESIRED", "STATE", "ERROR"],
    ...tasks.map((task) => [task.service, task.node, task.desired, task.state, task.error]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  for (const row of rows) {
    console.log(row.map((cell, i) => cell.padEnd(widths[i]!)).join("  ").trimEnd());
  }
  return 0;
}

const USAGE = "usage: deno task swarm up|down|logs|status\n" +
  "  up     [--clients N] [--mode agency|bet|echo] [--secrets] [--data-dir ABSOLUTE_PATH]\n" +
  "         [--server-constraint EXPR]… [--agency-constraint EXPR]… [--file STACK_FILE]\n" +
  "         [--node DOCKER_HOST_URL]… [--path auto|offline|online] [--no-build] [--quiet]\n" +
  "         [--detach] [--timeout SECONDS]\n" +
  "  down   [--keep-bets] [--node DOCKER_HOST_URL]…\n" +
  "  logs   [--no-follow]\n" +
  "  status";

/** What `up` makes a stack file from; refused with `--file`. */
const STACK_MAKING = ["clients", "mode", "secrets", ...Object.keys(STACK_FLAGS)];

/** The flags each command takes. */
const FLAGS: ReadonlyMap<string, readonly string[]> = new Map([
  ["up", [...STACK_MAKING, "file", "node", "path", "no-build", "quiet", "detach", "timeout"]],
  ["down", ["keep-bets", "node"]],
  ["logs", ["no-follow"]],
  ["status", []],
]);

/** What a flag the command line left out means. */
const DEFAULTS = {
  clients: "5",
  mode: "agency",
  secrets: false,
  node: [] as string[],
  path: "auto",
  "no-build": false,
  quiet: false,
  detach: false,
  timeout: "600",
  "keep-bets": false,
  "no-follow": false,
};

/**
 * The CLI: `main.ts up|down|logs|status [flags]`; returns the exit code.
 *
 * @throws {UsageError} For a bad command line.
 */
export async function main(args: readonly string[]): Promise<number> {
  // No defaults in the parser: `given` holds only the flags the command line gave.
  const parsed = parseCommand(args, {
    commands: FLAGS,
    usage: USAGE,
    options: {
      ...DEPLOY_OPTIONS,
      ...STACK_FLAGS,
      node: { type: "string", multiple: true },
      detach: { type: "boolean" },
    },
  });
  if (parsed === undefined) return 0;
  const { command, given } = parsed;
  // A stack file given with --file is deployed as it is: what would build one does not apply.
  if (command === "up" && given.file !== undefined) {
    refuseStray("up --file", given, FLAGS.get("up")!.filter((f) => !STACK_MAKING.includes(f)));
  }
  const values = { ...DEFAULTS, ...given };
  const nodes = values.node;
  const bad = nodes.find((node) => !/^(unix|ssh|tcp|fd):\/\/\S+$/.test(node));
  if (bad !== undefined) {
    throw new UsageError(
      `--node "${bad}": expected a Docker host URL (unix:///path, ssh://user@host, tcp://host:port)`,
    );
  }
  const say = (line: string) => console.log(`swarm: ${line}`);
  if (command === "up") {
    const stack: StackOptions = {
      clients: parseClientCount(values.clients),
      mode: choiceArg("--mode", values.mode, CLIENT_MODES),
      secrets: values.secrets,
      ...stackFlags(values),
    };
    await up({
      ...(values.file === undefined ? { stack } : { file: values.file }),
      nodes,
      path: choiceArg("--path", values.path, BUILD_PATHS),
      build: !values["no-build"],
      wait: !values.detach,
      timeoutMs: integerArg("--timeout", values.timeout, 1, 86_400) * 1000,
      quiet: values.quiet,
      say,
    });
  } else if (command === "down") {
    await down({ nodes, keepBets: values["keep-bets"], say });
  } else {
    return command === "logs" ? await logs(!values["no-follow"]) : await status();
  }
  return 0;
}

if (import.meta.main) await runMain("swarm", () => main(Deno.args));
