#!/usr/bin/env -S deno run -A
/**
 * Drives the deployment on Docker Swarm, as stack `tp0`:
 *
 * ```sh
 * deno task swarm up        # swarm init if needed, images to every node, stack file, deploy, wait
 * deno task swarm status    # each service's tasks and their nodes
 * deno task swarm logs      # every service's log, in the course's line format
 * deno task swarm down      # remove the stack and the bets volume (a fresh draw next time)
 * ```
 *
 * `up` takes the stack file's flags (`--clients N`, `--mode`, `--secrets`, `--data-dir`,
 * `--server-constraint`, `--agency-constraint`, …; see `tools/swarm/stack.ts`) or an
 * existing file with `--file F`, plus `--node DOCKER_HOST_URL` (repeatable) for each
 * other engine that should get the images, `--advertise-addr` for `swarm init`,
 * `--path`/`--no-build` for the images, `--detach` (do not wait) and `--timeout S`.
 * `down` takes `--keep-bets` and `--node` (engines whose bets volume to delete too).
 * `gen-compose --swarm [OUTPUT] N` writes the stack file alone ({@linkcode genStackMain}).
 *
 * @module
 */
import { dirname, resolve } from "node:path";
import { parseCli, run, runMain, ToolError, UsageError, writeFileAtomic } from "../_cli.ts";
import { assertDockerEngine, buildImages, type BuildPath, IMAGES } from "../images.ts";
import { SECRETS_DIR, SECRETS_FILE, type SecretsResult, writeSecrets } from "../secrets.ts";
import {
  BETS_VOLUME,
  DEFAULT_DATA_DIR,
  DEFAULT_STACK_FILE,
  GEN_STACK_USAGE,
  parseGenStackArgs,
  renderStack,
  STACK,
  STACK_FLAGS,
  STACK_NETWORK,
  type StackOptions,
  stackOptionsFrom,
} from "./stack.ts";
import {
  checkNodes,
  deployStack,
  ensureManager,
  hasBetsVolume,
  loadImages,
  removeBetsVolume,
  removeStack,
  stackServices,
  stackTasks,
  swarmState,
} from "./cluster.ts";
import { judge, newEvents, type Task } from "./tasks.ts";

/**
 * Writes the stack file atomically and, with `secrets`, the secrets beside it first (the
 * same `.secrets/` files as `gen-compose --secrets`, kept across regenerations).
 *
 * @param output The stack file.
 * @param options The stack's options.
 * @returns The secrets written, if any.
 * @throws {ToolError} When existing secrets cannot be reused.
 */
export async function writeStack(
  output: string,
  options: StackOptions & { readonly command?: string },
): Promise<SecretsResult | undefined> {
  let secrets: SecretsResult | undefined;
  if ((options.secrets ?? false) && options.clients > 0) {
    const dir = resolve(dirname(resolve(output)), options.secretsDir ?? SECRETS_DIR);
    secrets = await writeSecrets(dir, options.clients);
  }
  await writeFileAtomic(output, renderStack(options, options.command));
  return secrets;
}

/**
 * `gen-compose --swarm [OUTPUT] N [flags]`: writes the stack file (and secrets).
 *
 * @param args The arguments without `--swarm`.
 * @returns The exit code.
 * @throws {ToolError} For bad arguments or secrets that cannot be reused.
 */
export async function genStackMain(args: readonly string[]): Promise<number> {
  if (args.includes("--help") || args.includes("-h")) {
    console.log(GEN_STACK_USAGE);
    return 0;
  }
  const { output, options } = parseGenStackArgs(args);
  const secrets = await writeStack(output, {
    ...options,
    command: `deno task gen-compose --swarm ${args.join(" ")}`,
  });
  console.log(
    `gen-compose: wrote ${output}: stack ${STACK}, server + ${options.clients} agencies ` +
      `(mode ${options.mode}), data folder ${options.dataDir}; deploy with ` +
      `deno task swarm up --file ${output} (or docker stack deploy -c ${output} ${STACK})`,
  );
  if (secrets !== undefined) {
    console.log(
      `gen-compose: secrets of ${secrets.secrets.size} agencies in ${secrets.dir} ` +
        `(${secrets.secrets.size - secrets.reused} new, ${secrets.reused} kept): ${SECRETS_FILE} ` +
        "for the server, client<N>.env for each agency (Docker secrets once deployed)",
    );
  }
  return 0;
}

/** Options of {@linkcode up}. */
export interface UpOptions {
  /**
   * Generate the stack file from these options (ignored with `file`).
   * @default 5 agencies, the repository's `.data`
   */
  readonly stack?: StackOptions;
  /**
   * Deploy this stack file as it is instead of generating one.
   * @default undefined
   */
  readonly file?: string;
  /**
   * Where the generated stack file goes.
   * @default "docker-stack.yaml"
   */
  readonly output?: string;
  /**
   * Other engines of the swarm (Docker host URLs) that get the images.
   * @default []
   */
  readonly nodes?: readonly string[];
  /**
   * The image build path.
   * @default "auto"
   */
  readonly path?: "auto" | BuildPath;
  /**
   * Build the images first (they must exist otherwise).
   * @default true
   */
  readonly build?: boolean;
  /**
   * `--advertise-addr` of `docker swarm init`, when the engine is in no swarm.
   * @default Docker's choice
   */
  readonly advertiseAddr?: string;
  /**
   * Wait until every agency has finished (or failed for good).
   * @default true
   */
  readonly wait?: boolean;
  /**
   * How long to wait, in milliseconds.
   * @default 600000
   */
  readonly timeoutMs?: number;
  /**
   * Hide `docker build`'s progress.
   * @default false
   */
  readonly quiet?: boolean;
  /**
   * Where progress lines go.
   * @default console.log
   */
  readonly say?: (line: string) => void;
}

/** What {@linkcode up} measured. */
export interface UpResult {
  /** From `docker stack deploy` until every service had a task running (or done). */
  readonly deployMs: number;
  /** From `docker stack deploy` until every agency finished (with `wait`). */
  readonly finishedMs?: number;
}

async function assertNoComposeNetwork(): Promise<void> {
  const result = await run(
    ["docker", "network", "ls", "--filter", `name=^${STACK_NETWORK}$`, "--format", "{{.Scope}}"],
    { timeoutMs: 20_000 },
  );
  if (result.stdout.split("\n").includes("local")) {
    throw new ToolError(
      `Cannot deploy: the Compose deployment's network ${STACK_NETWORK} exists on this engine ` +
        "and the stack's would share its name (deno task down first)",
    );
  }
}

/**
 * `up`: makes this engine a manager (a single-node swarm if it is in none), checks the
 * nodes, builds the images and loads them into every node that lacks them, writes the
 * stack file (unless given one), deploys it and waits until every agency has finished.
 *
 * @param options Stack, file, nodes, images, waiting.
 * @returns The time to deploy and to finish.
 * @throws {ToolError} For no engine, not a manager, a node that cannot be reached, a data
 *   folder missing on a node, an agency Swarm gave up on, or the time running out.
 */
export async function up(options: UpOptions = {}): Promise<UpResult> {
  const say = options.say ?? console.log;
  const nodes = options.nodes ?? [];
  await assertDockerEngine();
  await ensureManager({
    say,
    ...(options.advertiseAddr === undefined ? {} : { advertiseAddr: options.advertiseAddr }),
  });
  await checkNodes(nodes);
  await assertNoComposeNetwork();
  if ((await stackServices()).length > 0) {
    throw new ToolError(
      `Cannot deploy: stack ${STACK} is already deployed (deno task swarm status; ` +
        "deno task swarm down first for a fresh draw)",
    );
  }
  if (options.build ?? true) {
    await buildImages({
      path: options.path ?? "auto",
      quiet: options.quiet ?? false,
      say,
    });
  }
  for (const node of nodes) {
    const loaded = await loadImages(node, [IMAGES.server, IMAGES.client]);
    say(`${node}: ${loaded.length === 0 ? "has the images" : `loaded ${loaded.join(", ")}`}`);
  }
  let file = options.file;
  if (file === undefined) {
    file = options.output ?? DEFAULT_STACK_FILE;
    const stack = options.stack ?? { clients: 5, dataDir: DEFAULT_DATA_DIR };
    await writeStack(file, { ...stack, command: "deno task swarm up" });
    say(`wrote ${file}: server + ${stack.clients} agencies (mode ${stack.mode ?? "agency"})`);
  }
  for (const host of [undefined, ...nodes]) {
    if (await hasBetsVolume(host)) {
      say(
        `the bets volume ${BETS_VOLUME} on ${host ?? "this engine"} is reused (kept by ` +
          "swarm down --keep-bets): the server resumes that draw; swarm down for a fresh one",
      );
    }
  }
  const started = performance.now();
  await deployStack(resolve(file));
  say(`deployed ${file} as stack ${STACK}`);
  if (!(options.wait ?? true)) return { deployMs: performance.now() - started };
  return await watch({ started, say, timeoutMs: options.timeoutMs ?? 600_000 });
}

const isAgency = (service: string) => /^client\d+$/.test(service);

async function watch(
  options: { started: number; say: (line: string) => void; timeoutMs: number },
): Promise<UpResult> {
  const { started, say } = options;
  const services = await stackServices();
  const agencies = services.filter(isAgency);
  const said = new Set<string>();
  let deployMs: number | undefined;
  while (true) {
    const tasks = await stackTasks();
    for (const line of newEvents(tasks, said)) say(line);
    const progress = judge(tasks, agencies);
    const seconds = () => ((performance.now() - started) / 1000).toFixed(1);
    if (deployMs === undefined && services.every((service) => hasStarted(tasks, service))) {
      deployMs = performance.now() - started;
      say(`every service started in ${seconds()} s`);
    }
    if (progress.missingFolder !== undefined) {
      const { task, path } = progress.missingFolder;
      throw new ToolError(
        `Cannot run ${task.service} on node ${task.node}: the folder ${path} does not exist ` +
          "there (the data folder must exist on every node that runs an agency: --data-dir; " +
          "deno task swarm down to remove the stack)",
      );
    }
    if (progress.givenUp.length > 0) {
      throw new ToolError(
        `${progress.givenUp.join(", ")} failed and Swarm stopped restarting it (` +
          `${lastError(tasks, progress.givenUp[0]!)}; deno task swarm logs, then swarm down)`,
      );
    }
    if (deployMs !== undefined && progress.finished.length === agencies.length) {
      const finishedMs = performance.now() - started;
      say(
        `${agencies.length} agencies finished in ${seconds()} s; deno task swarm logs to ` +
          "read them, deno task swarm down to remove the stack",
      );
      return { deployMs, finishedMs };
    }
    if (performance.now() - started > options.timeoutMs) {
      const waiting = agencies.filter((agency) => !progress.finished.includes(agency));
      throw new ToolError(
        `Cannot finish within ${options.timeoutMs / 1000} s: still waiting for ` +
          `${waiting.join(", ") || "the server"} (deno task swarm status)`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

function hasStarted(tasks: readonly Task[], service: string): boolean {
  return tasks.some((task) =>
    task.service === service && (task.state === "Running" || task.state === "Complete")
  );
}

function lastError(tasks: readonly Task[], service: string): string {
  return tasks.find((task) => task.service === service && task.error !== "")?.error ??
    "no reason given";
}

/**
 * `down`: removes the stack (its containers get their stop grace period) and, unless
 * `keepBets`, the bets volume on this engine and every given node, so the next `up` is a
 * fresh draw.
 *
 * @param options Nodes, whether to keep the bets, where lines go.
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
    const serverNodes = new Set(
      (await stackTasks()).filter((task) => task.service === "server").map((task) => task.node),
    );
    say(
      await removeStack(nodes)
        ? `removed stack ${STACK}${
          serverNodes.size > 0 ? ` (server ran on ${[...serverNodes].join(", ")})` : ""
        }`
        : `stack ${STACK} was not deployed`,
    );
  } else {
    say(`this engine is in no swarm: no stack to remove`);
  }
  for (const host of [undefined, ...nodes]) {
    const where = host ?? "this engine";
    if (options.keepBets ?? false) {
      if (await hasBetsVolume(host)) say(`kept the bets volume ${BETS_VOLUME} on ${where}`);
    } else if (await removeBetsVolume(host)) {
      say(`deleted the bets volume ${BETS_VOLUME} on ${where}: the next up is a fresh draw`);
    }
  }
}

/**
 * `logs`: every service's log (stdout and stderr), each line prefixed with its service
 * like Compose's logs. Without `follow`, each task's log in turn (finished and failed
 * ones too); with it, until interrupted.
 *
 * @param options Whether to follow.
 * @returns The exit code.
 * @throws {ToolError} When the stack is not deployed.
 */
export async function logs(options: { readonly follow?: boolean } = {}): Promise<number> {
  await assertDockerEngine();
  const services = await stackServices();
  if (services.length === 0) {
    throw new ToolError(`Cannot show logs: stack ${STACK} is not deployed`);
  }
  const width = Math.max(...services.map((service) => service.length));
  const prefix = (service: string) => `${service.padEnd(width)} | `;
  if (options.follow ?? true) {
    const codes = await Promise.all(
      services.map((service) =>
        streamLines(
          ["docker", "service", "logs", "--raw", "--follow", `${STACK}_${service}`],
          prefix(service),
        )
      ),
    );
    return Math.max(...codes);
  }
  const tasks = await stackTasks();
  for (const service of services) {
    // Listed newest first: print the oldest task's log first.
    for (const task of tasks.filter((task) => task.service === service).reverse()) {
      // Per task: `docker service logs` of a whole service can hang once a task was killed.
      const result = await run(["docker", "service", "logs", "--raw", task.id], {
        timeoutMs: 60_000,
      });
      for (const line of (result.stdout + result.stderr).split("\n")) {
        if (line !== "") console.log(prefix(service) + line);
      }
    }
  }
  return 0;
}

async function streamLines(argv: readonly string[], prefix: string): Promise<number> {
  const child = new Deno.Command(argv[0]!, {
    args: argv.slice(1),
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const print = async (stream: ReadableStream<Uint8Array>) => {
    let rest = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      const lines = (rest + chunk).split("\n");
      rest = lines.pop() ?? "";
      for (const line of lines) console.log(prefix + line);
    }
    if (rest !== "") console.log(prefix + rest);
  };
  await Promise.all([print(child.stdout), print(child.stderr)]);
  return (await child.status).code;
}

/**
 * `status`: each service's tasks: node, desired and current state, Swarm's error.
 *
 * @returns 0, or 1 when the stack is not deployed.
 */
export async function status(): Promise<number> {
  await assertDockerEngine();
  const tasks = await stackTasks();
  if (tasks.length === 0) {
    console.error(`swarm: stack ${STACK} is not deployed`);
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
  "         [--server-constraint EXPR]… [--agency-constraint EXPR]… [--server-config PATH]\n" +
  "         [--client-config PATH] [--stop-grace-period 10s] [--file STACK_FILE] [--output F]\n" +
  "         [--node DOCKER_HOST_URL]… [--advertise-addr ADDR] [--path auto|offline|online]\n" +
  "         [--no-build] [--quiet] [--detach] [--timeout SECONDS]\n" +
  "  down   [--keep-bets] [--node DOCKER_HOST_URL]…\n" +
  "  logs   [--no-follow]\n" +
  "  status";

const NODE_URL = /^(unix|ssh|tcp|fd):\/\/\S+$/;

/**
 * The CLI: `main.ts up|down|logs|status [flags]`.
 *
 * @param args Command-line arguments.
 * @returns The exit code.
 * @throws {ToolError} For bad arguments, or when the command fails.
 */
export async function main(args: readonly string[]): Promise<number> {
  const { values, positionals } = parseCli(args, {
    ...STACK_FLAGS,
    clients: { type: "string", default: "5" },
    file: { type: "string" },
    output: { type: "string", default: DEFAULT_STACK_FILE },
    node: { type: "string", multiple: true },
    "advertise-addr": { type: "string" },
    path: { type: "string", default: "auto" },
    "no-build": { type: "boolean", default: false },
    quiet: { type: "boolean", default: false },
    detach: { type: "boolean", default: false },
    timeout: { type: "string", default: "600" },
    "keep-bets": { type: "boolean", default: false },
    "no-follow": { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  }, true);
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const [command, ...rest] = positionals;
  if (rest.length > 0 || !["up", "down", "logs", "status"].includes(command ?? "")) {
    throw new UsageError(`Cannot run "${positionals.join(" ")}": ${USAGE.split("\n")[0]}`);
  }
  const nodes = values.node ?? [];
  for (const node of nodes) {
    if (!NODE_URL.test(node)) {
      throw new UsageError(
        `Cannot use --node "${node}": expected a Docker host URL (unix:///path, ssh://user@host, tcp://host:port)`,
      );
    }
  }
  const say = (line: string) => console.log(`swarm: ${line}`);
  if (command === "up") {
    const timeout = Number(values.timeout);
    const path = values.path;
    if (!Number.isInteger(timeout) || timeout < 1) {
      throw new UsageError(
        `Cannot deploy: --timeout must be whole seconds, not "${values.timeout}"`,
      );
    }
    if (path !== "auto" && path !== "offline" && path !== "online") {
      throw new UsageError(`Cannot deploy: --path must be auto, offline or online, not "${path}"`);
    }
    let stack: StackOptions;
    try {
      stack = stackOptionsFrom(values.clients, values);
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
    await up({
      stack,
      ...(values.file === undefined ? {} : { file: values.file }),
      output: values.output,
      nodes,
      path,
      build: !values["no-build"],
      ...(values["advertise-addr"] === undefined
        ? {}
        : { advertiseAddr: values["advertise-addr"] }),
      wait: !values.detach,
      timeoutMs: timeout * 1000,
      quiet: values.quiet,
      say,
    });
    return 0;
  }
  if (command === "down") {
    await down({ nodes, keepBets: values["keep-bets"], say });
    return 0;
  }
  if (command === "logs") return await logs({ follow: !values["no-follow"] });
  return await status();
}

if (import.meta.main) {
  await runMain("swarm", () => main(Deno.args));
}
