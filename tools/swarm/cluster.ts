/**
 * What `deno task swarm` asks of the engines: the local engine's swarm role (and a
 * single-node swarm when it is in none), the nodes it is given (reachable, members,
 * holding the images), the stack's deployment, tasks and removal, and the bets volume.
 * Every command is bounded in time and every failure is one {@linkcode ToolError} line.
 *
 * @module
 */
import { lastLine, run, runOrThrow, ToolError } from "../_cli.ts";
import { parseTasks, type Task, TASK_FORMAT } from "./tasks.ts";
import { BETS_VOLUME, STACK, STACK_NETWORK } from "./stack.ts";

/** The argv of a docker command on the local engine, or on `host` (`-H`). */
function dockerArgv(host: string | undefined, args: readonly string[]): string[] {
  return host === undefined ? ["docker", ...args] : ["docker", "-H", host, ...args];
}

/** The local engine's place in a swarm, from `docker info`. */
export interface SwarmState {
  /** `inactive`, `pending`, `active`, `locked` or `error`. */
  readonly state: string;
  /** Whether it is a manager. */
  readonly manager: boolean;
  /** Its node id in the swarm (`""` outside one). */
  readonly nodeId: string;
}

/**
 * Reads an engine's swarm state.
 *
 * @param host The engine (`-H`), or the local one.
 * @returns State, role and node id.
 * @throws {ToolError} When the engine does not answer.
 */
export async function swarmState(host?: string): Promise<SwarmState> {
  const format = "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}} {{.Swarm.NodeID}}";
  const result = await run(dockerArgv(host, ["info", "--format", format]), { timeoutMs: 20_000 });
  const [state = "", manager = "", nodeId = ""] = result.stdout.trim().split(" ");
  if (result.code !== 0 || state === "") {
    const detail = result.timedOut ? "no answer within 20 s" : lastLine(result.stderr);
    throw new ToolError(`Cannot reach the Docker engine ${host ?? "(local)"}: ${detail}`);
  }
  return { state, manager: manager === "true", nodeId };
}

/**
 * Makes sure the local engine is a swarm manager: initialises a single-node swarm when
 * the engine is in none.
 *
 * @param options `advertiseAddr` for `docker swarm init` (needed on a host with several
 *   addresses), and where progress lines go.
 * @returns Whether a swarm was initialised now.
 * @throws {ToolError} When the engine is a worker, or its swarm is locked or broken.
 */
export async function ensureManager(
  options: { readonly advertiseAddr?: string; readonly say: (line: string) => void },
): Promise<boolean> {
  const { state, manager } = await swarmState();
  if (state === "active" && manager) return false;
  if (state === "active") {
    throw new ToolError(
      "Cannot deploy: this engine is a swarm worker, not a manager (run on a manager; " +
        "docker node ls there lists them)",
    );
  }
  if (state !== "inactive") {
    throw new ToolError(
      `Cannot deploy: this engine's swarm state is "${state}" (docker info; unlock or ` +
        "repair it, or docker swarm leave --force)",
    );
  }
  const address = options.advertiseAddr === undefined
    ? []
    : ["--advertise-addr", options.advertiseAddr];
  await runOrThrow(
    ["docker", "swarm", "init", ...address],
    "Cannot initialise a single-node swarm (give --advertise-addr ADDR if the host has " +
      "several addresses)",
    { timeoutMs: 60_000 },
  );
  options.say(
    "initialised a single-node swarm on this engine (docker swarm leave --force undoes it)",
  );
  return true;
}

/**
 * Checks that every node URL answers and is a member of this swarm.
 *
 * @param nodes Docker host URLs (`unix:///…`, `ssh://user@host`, `tcp://…`).
 * @throws {ToolError} Naming the first node that cannot be reached or is not a member.
 */
export async function checkNodes(nodes: readonly string[]): Promise<void> {
  if (nodes.length === 0) return;
  const members = (await runOrThrow(
    ["docker", "node", "ls", "--quiet"],
    "Cannot list the swarm's nodes",
    { timeoutMs: 20_000 },
  )).split("\n");
  for (const node of nodes) {
    const { state, nodeId } = await swarmState(node).catch((error: ToolError) => {
      throw new ToolError(`Cannot reach node ${node}: ${error.message.replace(/^.*?: /, "")}`);
    });
    if (state !== "active" || !members.includes(nodeId)) {
      throw new ToolError(
        `Cannot use node ${node}: it is not a member of this swarm (join it with the command ` +
          "docker swarm join-token worker prints)",
      );
    }
  }
}

async function imageId(host: string | undefined, tag: string): Promise<string | undefined> {
  const result = await run(dockerArgv(host, ["image", "inspect", "--format", "{{.Id}}", tag]), {
    timeoutMs: 20_000,
  });
  return result.code === 0 ? result.stdout.trim() : undefined;
}

/**
 * Gives a node the local build of each image it lacks or holds in another build:
 * `docker save | docker -H node load`, no registry involved. Image ids survive save and
 * load, so equal ids mean the same build.
 *
 * @param node The node's Docker host URL.
 * @param tags The images.
 * @returns The images loaded (empty when the node had them all).
 * @throws {ToolError} When an image is missing locally or the transfer fails.
 */
export async function loadImages(node: string, tags: readonly string[]): Promise<string[]> {
  const stale: string[] = [];
  for (const tag of tags) {
    const local = await imageId(undefined, tag);
    if (local === undefined) {
      throw new ToolError(`Cannot load ${tag} into ${node}: no such image here`);
    }
    if (await imageId(node, tag) !== local) stale.push(tag);
  }
  if (stale.length === 0) return [];
  const save = new Deno.Command("docker", {
    args: ["save", ...stale],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const load = new Deno.Command("docker", {
    args: ["-H", node, "load", "--quiet"],
    stdin: "piped",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const limit = setTimeout(() => {
    for (const child of [save, load]) {
      try {
        child.kill("SIGKILL");
      } catch {
        // Already gone.
      }
    }
  }, 600_000);
  try {
    const [piped, saved, saveErrors, loaded] = await Promise.all([
      save.stdout.pipeTo(load.stdin).then(() => "", (error: Error) => error.message),
      save.status,
      new Response(save.stderr).text(),
      load.output(),
    ]);
    const loadErrors = new TextDecoder().decode(loaded.stderr);
    if (saved.code !== 0 || loaded.code !== 0 || piped !== "") {
      const detail = lastLine(saveErrors) || lastLine(loadErrors) || piped ||
        `exit codes ${saved.code} and ${loaded.code}`;
      throw new ToolError(`Cannot load ${stale.join(", ")} into ${node}: ${detail}`);
    }
  } finally {
    clearTimeout(limit);
  }
  return stale;
}

/**
 * Lists the stack's tasks.
 *
 * @returns Every task, the finished and failed ones included (Swarm keeps a few per slot).
 * @throws {ToolError} When the engine does not answer.
 */
export async function stackTasks(): Promise<Task[]> {
  const result = await run(
    ["docker", "stack", "ps", STACK, "--no-trunc", "--format", TASK_FORMAT],
    { timeoutMs: 30_000 },
  );
  if (result.code !== 0) {
    if (/nothing found in stack/i.test(result.stderr)) return [];
    throw new ToolError(`Cannot list the tasks of stack ${STACK}: ${lastLine(result.stderr)}`);
  }
  return parseTasks(result.stdout, STACK);
}

/**
 * The stack's services, without the stack's prefix, server first and agencies in order.
 *
 * @returns E.g. `["server", "client1", "client2"]`; empty when the stack is not deployed.
 */
export async function stackServices(): Promise<string[]> {
  const out = await runOrThrow(
    ["docker", "stack", "services", STACK, "--format", "{{.Name}}"],
    `Cannot list the services of stack ${STACK}`,
    { timeoutMs: 30_000 },
  ).catch((error: ToolError) => {
    if (/nothing found in stack/i.test(error.message)) return "";
    throw error;
  });
  const order = (name: string) => name === "server" ? 0 : Number(name.replace(/\D/g, "")) || 1e6;
  return out.split("\n").filter((name) => name !== "")
    .map((name) => name.replace(`${STACK}_`, ""))
    .sort((a, b) => order(a) - order(b) || a.localeCompare(b));
}

/**
 * Deploys a stack file as stack `tp0`, without asking a registry for image digests (the
 * nodes were given the images; there may be no registry at all).
 *
 * @param file The stack file.
 * @throws {ToolError} With Docker's reason when it refuses.
 */
export async function deployStack(file: string): Promise<void> {
  await runOrThrow(
    ["docker", "stack", "deploy", "--resolve-image", "never", "--compose-file", file, STACK],
    `Cannot deploy ${file} as stack ${STACK}`,
    { timeoutMs: 120_000 },
  );
}

async function stackContainers(host: string | undefined): Promise<string[]> {
  const out = await runOrThrow(
    dockerArgv(host, [
      "ps",
      "--all",
      "--quiet",
      "--filter",
      `label=com.docker.stack.namespace=${STACK}`,
    ]),
    `Cannot list the containers of stack ${STACK} on ${host ?? "this engine"}`,
    { timeoutMs: 20_000 },
  );
  return out.split("\n").filter((id) => id !== "");
}

/**
 * Removes the stack (services, network, configs, secrets) and waits until its containers
 * are gone from the local engine and every given node: each agency and the server get
 * their stop grace period to exit cleanly.
 *
 * @param nodes Other engines to wait on.
 * @param timeoutMs How long to wait for the containers.
 * @returns Whether the stack existed.
 * @throws {ToolError} When Docker refuses or containers outlive the wait.
 */
export async function removeStack(nodes: readonly string[], timeoutMs = 90_000): Promise<boolean> {
  const existed = (await stackServices()).length > 0;
  if (existed) {
    await runOrThrow(["docker", "stack", "rm", STACK], `Cannot remove stack ${STACK}`, {
      timeoutMs: 60_000,
    });
  }
  const deadline = Date.now() + timeoutMs;
  for (const host of [undefined, ...nodes]) {
    while ((await stackContainers(host)).length > 0) {
      if (Date.now() > deadline) {
        throw new ToolError(
          `Cannot remove stack ${STACK}: its containers on ${host ?? "this engine"} ` +
            `still exist after ${timeoutMs / 1000} s (docker ps --all there)`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
  return existed;
}

/**
 * Whether the bets volume exists on an engine.
 *
 * @param host The engine, or the local one.
 * @returns True when it does.
 */
export async function hasBetsVolume(host?: string): Promise<boolean> {
  const result = await run(dockerArgv(host, ["volume", "inspect", BETS_VOLUME]), {
    timeoutMs: 20_000,
  });
  return result.code === 0;
}

/**
 * Deletes the bets volume on an engine (a fresh draw next time), waiting while a
 * stopping container still holds it.
 *
 * @param host The engine, or the local one.
 * @returns Whether there was one.
 * @throws {ToolError} When it cannot be deleted within 30 s.
 */
export async function removeBetsVolume(host?: string): Promise<boolean> {
  const deadline = Date.now() + 30_000;
  while (true) {
    const result = await run(dockerArgv(host, ["volume", "rm", BETS_VOLUME]), {
      timeoutMs: 20_000,
    });
    if (result.code === 0) return true;
    if (/no such volume/i.test(result.stderr)) return false;
    if (Date.now() > deadline || !/in use/i.test(result.stderr)) {
      throw new ToolError(
        `Cannot delete the bets volume ${BETS_VOLUME} on ${host ?? "this engine"}: ` +
          lastLine(result.stderr),
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/**
 * Why the stack's network cannot take a one-off `nc` container, if it cannot: it must be
 * the stack's attachable overlay, not the Compose deployment's bridge of the same name.
 *
 * @returns The problem, or `undefined` when the network is the stack's.
 */
export async function stackNetworkProblem(): Promise<string | undefined> {
  const result = await run(
    [
      "docker",
      "network",
      "inspect",
      "--format",
      "{{.Scope}} {{.Driver}} {{.Attachable}}",
      STACK_NETWORK,
    ],
    { timeoutMs: 20_000 },
  );
  if (result.code !== 0) {
    return `network ${STACK_NETWORK} not found: is the stack up? (deno task swarm up)`;
  }
  if (result.stdout.trim() !== "swarm overlay true") {
    return `network ${STACK_NETWORK} is not the stack's attachable overlay (${result.stdout.trim()}): ` +
      "the Compose deployment's? (deno task validate-echo without --swarm)";
  }
  return undefined;
}
