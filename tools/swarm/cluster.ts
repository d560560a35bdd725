/**
 * What `deno task swarm` asks of the engines, each command bounded in time and each failure
 * one {@linkcode ToolError} line.
 *
 * @module
 */
import { resolve } from "node:path";
import { lastLine, run, runOrThrow, ToolError } from "../_cli.ts";
import { NETWORK_NAME, PROJECT, STACK_BETS_VOLUME } from "../gen_compose.ts";
import { IMAGES } from "../images.ts";
import { parseTasks, type Task, TASK_FORMAT } from "./tasks.ts";

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The argv of a docker command on the local engine, or on `host` (`-H`). */
function docker(host: string | undefined, ...args: string[]): string[] {
  return host === undefined ? ["docker", ...args] : ["docker", "-H", host, ...args];
}

/**
 * Reads the place in a swarm of the engine `host` (`-H`), or of the local one: its state
 * (`inactive`, `pending`, `active`, `locked` or `error`), whether it is a manager, and its
 * node id (`""` outside a swarm).
 *
 * @throws {ToolError} When the engine does not answer.
 */
export async function swarmState(
  host?: string,
): Promise<{ state: string; manager: boolean; nodeId: string }> {
  const format = "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}} {{.Swarm.NodeID}}";
  const result = await run(docker(host, "info", "--format", format), { timeoutMs: 20_000 });
  const [state = "", manager = "", nodeId = ""] = result.stdout.trim().split(" ");
  if (result.code !== 0 || state === "") {
    const detail = result.timedOut ? "no answer within 20 s" : lastLine(result.stderr);
    throw new ToolError(`Cannot reach the Docker engine ${host ?? "(local)"}: ${detail}`);
  }
  return { state, manager: manager === "true", nodeId };
}

/**
 * Makes the local engine a swarm manager: a single-node swarm when it is in none (then
 * says so).
 *
 * @throws {ToolError} When it is a worker, or its swarm is locked or broken.
 */
export async function ensureManager(say: (line: string) => void): Promise<void> {
  const { state, manager } = await swarmState();
  if (state === "active" && !manager) {
    throw new ToolError(
      "Cannot deploy: this engine is a swarm worker, not a manager (run on a manager; " +
        "docker node ls there lists them)",
    );
  }
  if (state === "active") return;
  if (state !== "inactive") {
    throw new ToolError(
      `Cannot deploy: this engine's swarm state is "${state}" (docker info; unlock or ` +
        "repair it, or docker swarm leave --force)",
    );
  }
  await runOrThrow(
    ["docker", "swarm", "init"],
    "Cannot initialise a single-node swarm (on a host with several addresses, run docker " +
      "swarm init --advertise-addr ADDR first)",
    { timeoutMs: 60_000 },
  );
  say("initialised a single-node swarm on this engine (docker swarm leave --force undoes it)");
}

/**
 * Checks that every node (a Docker host URL) answers and is a member of this swarm.
 *
 * @throws {ToolError} Naming the first node that cannot be reached or is not a member.
 */
export async function checkNodes(nodes: readonly string[]): Promise<void> {
  if (nodes.length === 0) return;
  const members = await runOrThrow(["docker", "node", "ls", "--quiet"], "Cannot list the nodes", {
    timeoutMs: 20_000,
  });
  for (const node of nodes) {
    const { state, nodeId } = await swarmState(node).catch((error: ToolError) => {
      throw new ToolError(`Cannot reach node ${node}: ${error.message.replace(/^.*?: /, "")}`);
    });
    if (state !== "active" || !members.split("\n").includes(nodeId)) {
      throw new ToolError(
        `Cannot use node ${node}: it is not a member of this swarm (join it with the command ` +
          "docker swarm join-token worker prints)",
      );
    }
  }
}

/**
 * Gives a node the local build of each image it lacks or holds in another build (image ids
 * survive save and load), with `docker save | docker -H node load`: no registry involved.
 *
 * @throws {ToolError} When an image is missing here or the transfer fails.
 */
export async function loadImages(node: string, say: (line: string) => void): Promise<void> {
  const id = async (host: string | undefined, tag: string) => {
    const result = await run(docker(host, "image", "inspect", "--format", "{{.Id}}", tag), {
      timeoutMs: 20_000,
    });
    return result.code === 0 ? result.stdout.trim() : undefined;
  };
  const stale = [];
  for (const tag of [IMAGES.server, IMAGES.client]) {
    const local = await id(undefined, tag);
    if (local === undefined) {
      throw new ToolError(`Cannot load ${tag} into ${node}: no such image here`);
    }
    if (await id(node, tag) !== local) stale.push(tag);
  }
  if (stale.length > 0) {
    // Node and tags as the script's arguments, never spliced into its text.
    const pipe = 'docker save "${@:2}" | docker -H "$1" load --quiet';
    await runOrThrow(
      ["bash", "-o", "pipefail", "-c", pipe, "bash", node, ...stale],
      `Cannot load ${stale.join(", ")} into ${node}`,
      { timeoutMs: 600_000 },
    );
  }
  say(`${node}: ${stale.length === 0 ? "has the images" : `loaded ${stale.join(", ")}`}`);
}

/**
 * Lists the stack's tasks, the finished and failed ones included (Swarm keeps a few per
 * slot); none when it is not deployed.
 *
 * @throws {ToolError} When the engine does not answer.
 */
export async function stackTasks(): Promise<Task[]> {
  const argv = ["docker", "stack", "ps", PROJECT, "--no-trunc", "--format", TASK_FORMAT];
  const result = await run(argv, { timeoutMs: 30_000 });
  if (result.code === 0) return parseTasks(result.stdout, PROJECT);
  if (/nothing found in stack/i.test(result.stderr)) return [];
  throw new ToolError(`Cannot list the tasks of stack ${PROJECT}: ${lastLine(result.stderr)}`);
}

/**
 * The stack's services without its prefix, server first and agencies in order; none when
 * it is not deployed.
 *
 * @throws {ToolError} When the engine does not answer.
 */
export async function stackServices(): Promise<string[]> {
  const argv = ["docker", "stack", "services", PROJECT, "--format", "{{.Name}}"];
  const result = await run(argv, { timeoutMs: 30_000 });
  if (result.code !== 0 && !/nothing found in stack/i.test(result.stderr)) {
    throw new ToolError(`Cannot list the services of stack ${PROJECT}: ${lastLine(result.stderr)}`);
  }
  const order = (name: string) => name === "server" ? 0 : Number(name.replace(/\D/g, ""));
  return result.stdout.split("\n").filter((name) => name !== "")
    .map((name) => name.replace(`${PROJECT}_`, ""))
    .sort((a, b) => order(a) - order(b));
}

/**
 * Deploys a stack file as stack `tp0`, without asking a registry for image digests (the
 * nodes were given the images; there may be no registry at all).
 *
 * @throws {ToolError} With Docker's reason when it refuses.
 */
export async function deployStack(file: string): Promise<void> {
  await runOrThrow(
    ["docker", "stack", "deploy", "--resolve-image", "never", "-c", resolve(file), PROJECT],
    `Cannot deploy ${file} as stack ${PROJECT}`,
    { timeoutMs: 120_000 },
  );
}

/**
 * Removes the stack (services, network, configs, secrets) and waits, at most `timeoutMs`,
 * until its containers are gone from the local engine and the other `nodes` (each gets its
 * stop grace period); says whether the stack existed.
 *
 * @throws {ToolError} When Docker refuses or containers outlive the wait.
 */
export async function removeStack(nodes: readonly string[], timeoutMs = 90_000): Promise<boolean> {
  const existed = (await stackServices()).length > 0;
  if (existed) {
    await runOrThrow(["docker", "stack", "rm", PROJECT], `Cannot remove stack ${PROJECT}`, {
      timeoutMs: 60_000,
    });
  }
  const deadline = Date.now() + timeoutMs;
  for (const host of [undefined, ...nodes]) {
    const where = host ?? "this engine";
    const label = `label=com.docker.stack.namespace=${PROJECT}`;
    const argv = docker(host, "ps", "--all", "--quiet", "--filter", label);
    while (await runOrThrow(argv, `Cannot list the stack's containers on ${where}`) !== "") {
      if (Date.now() > deadline) {
        throw new ToolError(
          `Cannot remove stack ${PROJECT}: its containers on ${where} still exist after ` +
            `${timeoutMs / 1000} s (docker ps --all there)`,
        );
      }
      await delay(500);
    }
  }
  return existed;
}

/** Whether the stack's bets volume is on the engine `host`, or on the local one. */
export async function hasBetsVolume(host: string | undefined): Promise<boolean> {
  const result = await run(docker(host, "volume", "inspect", STACK_BETS_VOLUME));
  return result.code === 0;
}

/**
 * Deletes the stack's bets volume (a fresh draw next time) on the engine `host` or the
 * local one, waiting while a stopping container still holds it; says whether there was one.
 *
 * @throws {ToolError} When it cannot be deleted within 30 s.
 */
export async function removeBetsVolume(host?: string): Promise<boolean> {
  for (const deadline = Date.now() + 30_000;; await delay(500)) {
    const argv = docker(host, "volume", "rm", STACK_BETS_VOLUME);
    const result = await run(argv, { timeoutMs: 20_000 });
    if (result.code === 0) return true;
    if (/no such volume/i.test(result.stderr)) return false;
    if (Date.now() > deadline || !/in use/i.test(result.stderr)) {
      throw new ToolError(
        `Cannot delete the bets volume ${STACK_BETS_VOLUME} on ${host ?? "this engine"}: ` +
          lastLine(result.stderr),
      );
    }
  }
}

/**
 * What the local engine's network `tp0_testing_net` is: the stack's attachable overlay
 * (`stack`), the Compose deployment's bridge (`compose`), or `none`.
 */
export async function networkKind(): Promise<"stack" | "compose" | "none"> {
  const format = "{{.Scope}} {{.Driver}} {{.Attachable}}";
  const argv = ["docker", "network", "inspect", "--format", format, NETWORK_NAME];
  const result = await run(argv, { timeoutMs: 20_000 });
  if (result.code !== 0) return "none";
  return result.stdout.trim() === "swarm overlay true" ? "stack" : "compose";
}
