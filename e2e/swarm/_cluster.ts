/**
 * A real two-node Docker Swarm on one machine, for the Swarm end-to-end test: the host's
 * engine is the manager; a second engine, started in a network namespace the helper
 * makes and joined over a veth pair, is the worker. A firewall rule on the worker's end
 * of the veth cuts it off (and lifts).
 *
 * {@linkcode Cluster.stop} removes everything the helper made — stack, bets volume, swarm
 * membership of both engines, the second engine and what it left in its namespace, the
 * namespace, veth, mounts, scratch folder — and reports whatever is left over. A guard
 * process, detached from the test (its own session, so a Ctrl-C in the terminal does not
 * reach it), does the same from the cluster's state file if the test dies without
 * stopping the cluster (Ctrl-C, a kill, a crash).
 *
 * Needs root, `dockerd`, `ip`, `nsenter`, `unshare`, `setsid` and `iptables`
 * (`tools/provision_docker.sh` installs them), and a host engine in no swarm.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { errorText } from "../../shared/errors.ts";
import { run, runOrThrow } from "../../tools/_cli.ts";
import { removeBetsVolume, removeStack, swarmState } from "../../tools/swarm/cluster.ts";
import { waitFor } from "../docker/_helpers.ts";

/** The worker engine's hostname, so `docker node ls` and task lists tell the nodes apart. */
export const WORKER_HOSTNAME = "tp0-swarm-worker";

/** A running two-node swarm. */
export interface Cluster {
  /** The worker engine's Docker host URL (`unix:///…/docker.sock`). */
  readonly worker: string;
  /** The manager's (host engine's) node id. */
  readonly managerId: string;
  /** The worker's node id. */
  readonly workerId: string;
  /** An empty folder for the test's own files, removed with the cluster (guard included). */
  readonly scratch: string;
  /** Drops every packet on the worker's veth (swarm control, gossip and overlay alike). */
  partition(): Promise<void>;
  /** Lifts {@linkcode Cluster.partition}. */
  heal(): Promise<void>;
  /**
   * Removes everything the cluster made; idempotent.
   *
   * @returns What could not be removed or was left over (empty when clean).
   */
  stop(): Promise<string[]>;
}

/** What the teardown needs to know, written to `<dir>/cluster.json` before anything is made. */
interface ClusterState {
  /** The network namespace. */
  readonly ns: string;
  /** The host's end of the veth pair. */
  readonly hostEnd: string;
  /** The scratch folder (data and exec roots, socket, pid file, log). */
  readonly dir: string;
  /** The worker engine's Docker host URL. */
  readonly worker: string;
  /** The host's networks, volumes and namespaces before, to find leftovers. */
  readonly before: { networks: string[]; volumes: string[]; netns: string[] };
}

// Blocks for the veth link and the swarm's address pool; the first two that no host
// route touches are used.
const CANDIDATE_BLOCKS = [
  "10.213.0.0/16",
  "10.214.0.0/16",
  "10.215.0.0/16",
  "172.29.0.0/16",
  "172.30.0.0/16",
  "192.168.213.0/24",
  "192.168.214.0/24",
];

function toInt(address: string): number {
  return address.split(".").reduce((n, part) => n * 256 + Number(part), 0);
}

/**
 * Whether two IPv4 blocks share an address.
 *
 * @param a A block, `a.b.c.d/n`.
 * @param b Another.
 * @returns True when they overlap.
 */
function overlaps(a: string, b: string): boolean {
  const [aAddress = "", aBits = "32"] = a.split("/");
  const [bAddress = "", bBits = "32"] = b.split("/");
  const size = 2 ** (32 - Math.min(Number(aBits), Number(bBits)));
  return Math.floor(toInt(aAddress) / size) === Math.floor(toInt(bAddress) / size);
}

async function freeBlocks(count: number): Promise<string[]> {
  const routes = (await runOrThrow(
    ["ip", "-4", "-o", "route", "show", "table", "all"],
    "Cannot list routes",
  ))
    .split("\n")
    .map((line) => line.split(" ")[0] ?? "")
    .filter((dst) => /^\d+\.\d+\.\d+\.\d+(\/\d+)?$/.test(dst));
  const free = CANDIDATE_BLOCKS.filter((block) => !routes.some((route) => overlaps(block, route)));
  if (free.length < count) {
    throw new Error(
      `Cannot find ${count} free address blocks among ${CANDIDATE_BLOCKS.join(", ")}`,
    );
  }
  return free.slice(0, count);
}

async function lines(argv: readonly string[]): Promise<string[]> {
  const out = await runOrThrow(argv, `Cannot run ${argv.join(" ")}`, { timeoutMs: 20_000 });
  return out.split("\n").filter((line) => line !== "").map((line) => line.split(" ")[0]!);
}

async function hostState(): Promise<ClusterState["before"]> {
  return {
    networks: await lines(["docker", "network", "ls", "--format", "{{.Name}}"]),
    volumes: await lines(["docker", "volume", "ls", "--quiet"]),
    netns: await lines(["ip", "netns", "list"]),
  };
}

async function preflight(): Promise<void> {
  if (Deno.uid() !== 0) {
    throw new Error(
      "Cannot make a two-node swarm: needs root (namespaces, veth, a second dockerd)",
    );
  }
  const tools = [
    ["dockerd", "--version"],
    ["ip", "-V"],
    ["nsenter", "--version"],
    [
      "unshare",
      "--version",
    ],
    ["setsid", "--version"],
    ["iptables", "--version"],
  ];
  for (const argv of tools) {
    if ((await run(argv, { timeoutMs: 20_000 })).code === 127) {
      throw new Error(
        `Cannot make a two-node swarm: ${
          argv[0]
        } is missing (tools/provision_docker.sh installs it)`,
      );
    }
  }
  const { state } = await swarmState();
  if (state !== "inactive") {
    throw new Error(
      `Cannot make a two-node swarm: the host engine is already in a swarm (state ${state}); ` +
        "if it is a leftover of this test, docker swarm leave --force",
    );
  }
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function alive(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

async function stopEngine(state: ClusterState, problems: string[]): Promise<void> {
  const pid = Number(await Deno.readTextFile(`${state.dir}/docker.pid`).catch(() => "0"));
  if (pid > 0 && alive(pid)) {
    Deno.kill(pid, "SIGTERM");
    const deadline = Date.now() + 30_000;
    while (alive(pid) && Date.now() < deadline) await delay(100);
    if (alive(pid)) {
      problems.push("the second dockerd ignored SIGTERM for 30 s: killed");
      Deno.kill(pid, "SIGKILL");
    }
  }
  // What the engine left in its namespace (containerd, shims): ours, killed by pid.
  for (const left of (await run(["ip", "netns", "pids", state.ns])).stdout.split("\n")) {
    if (left === "") continue;
    problems.push(`process ${left} was still running in ${state.ns}: killed`);
    await run(["kill", "-KILL", left]);
  }
}

/**
 * Removes everything a cluster made, from its state file's content. Each step is tried
 * whatever the earlier ones did.
 *
 * @param state The cluster's state.
 * @returns What failed or was left over on the host.
 */
async function teardown(state: ClusterState): Promise<string[]> {
  const problems: string[] = [];
  const attempt = async (what: string, step: () => Promise<unknown>) => {
    try {
      await step();
    } catch (error) {
      problems.push(`${what}: ${errorText(error)}`);
    }
  };
  const engineUp = (await run(["docker", "-H", state.worker, "version"], { timeoutMs: 10_000 }))
    .code === 0;
  const { state: swarm } = await swarmState().catch(() => ({ state: "unknown" }));
  if (swarm === "active") {
    await attempt("remove the stack", () => removeStack(engineUp ? [state.worker] : [], 60_000));
    await attempt("delete the bets volume", () => removeBetsVolume());
  }
  if (engineUp) {
    await run(["docker", "-H", state.worker, "swarm", "leave", "--force"], { timeoutMs: 30_000 });
  }
  if (swarm !== "inactive") {
    await attempt(
      "leave the swarm",
      () =>
        runOrThrow(["docker", "swarm", "leave", "--force"], "Cannot leave the swarm", {
          timeoutMs: 60_000,
        }),
    );
  }
  await stopEngine(state, problems);
  if (!state.before.networks.includes("docker_gwbridge")) {
    await run(["docker", "network", "rm", "docker_gwbridge"], { timeoutMs: 30_000 });
  }
  await run(["ip", "link", "del", state.hostEnd]);
  await run(["ip", "netns", "del", state.ns]);
  const mounts = (await Deno.readTextFile("/proc/self/mountinfo")).split("\n")
    .map((line) => line.split(" ")[4] ?? "")
    .filter((point) => point.startsWith(`${state.dir}/`))
    .sort((a, b) => b.length - a.length);
  for (const point of mounts) await run(["umount", "--lazy", point]);
  await attempt("remove the scratch folder", () => Deno.remove(state.dir, { recursive: true }));
  const after = await hostState().catch(() => state.before);
  for (const kind of ["networks", "volumes", "netns"] as const) {
    for (const name of after[kind]) {
      if (!state.before[kind].includes(name)) problems.push(`left on the host: ${kind} ${name}`);
    }
  }
  const { state: final } = await swarmState().catch(() => ({ state: "unknown" }));
  if (final !== "inactive") problems.push(`the host engine's swarm state is ${final}`);
  return problems;
}

/**
 * Starts the guard: a process in its own session that waits while the test process lives
 * and the state file exists, and tears the cluster down if the test died first.
 */
async function startGuard(statePath: string): Promise<void> {
  const guard = [
    Deno.execPath(),
    "run",
    "-A",
    fileURLToPath(import.meta.url),
    "--guard",
    String(Deno.pid),
    statePath,
  ].map((arg) => `'${arg}'`).join(" ");
  // sh returns at once; setsid keeps the guard out of the terminal's process group.
  await runOrThrow(
    ["sh", "-c", `setsid ${guard} </dev/null >/dev/null 2>&1 &`],
    "Cannot start the guard",
  );
}

async function guard(testPid: number, statePath: string): Promise<void> {
  const exists = () => Deno.stat(statePath).then(() => true, () => false);
  while (alive(testPid) && await exists()) await delay(1000);
  if (await exists()) await teardown(JSON.parse(await Deno.readTextFile(statePath)));
}

/**
 * Makes the two-node swarm. On any failure it removes what it made so far, then throws.
 *
 * @param say Where progress lines go.
 * @returns The cluster; call {@linkcode Cluster.stop} in a `finally`.
 */
export async function startCluster(say: (line: string) => void = () => {}): Promise<Cluster> {
  await preflight();
  const [linkBlock, poolBlock] = await freeBlocks(2);
  const base = linkBlock!.split("/")[0]!.split(".").slice(0, 3).join(".");
  const hostIp = `${base}.1`;
  const workerIp = `${base}.2`;
  const tag = crypto.randomUUID().slice(0, 6);
  const workerEnd = `tp0sw${tag}w`;
  const dir = await Deno.makeTempDir({ prefix: "tp0sw-" });
  const state: ClusterState = {
    ns: `tp0sw-${tag}`,
    hostEnd: `tp0sw${tag}h`,
    dir,
    worker: `unix://${dir}/docker.sock`,
    before: await hostState(),
  };
  const { ns, hostEnd, worker } = state;
  const statePath = `${dir}/cluster.json`;
  await Deno.writeTextFile(statePath, JSON.stringify(state));
  await startGuard(statePath);
  const inNs = (argv: readonly string[]) => ["nsenter", `--net=/var/run/netns/${ns}`, ...argv];
  const drop = async (flag: "-I" | "-D", what: string) => {
    for (const [chain, direction] of [["INPUT", "-i"], ["OUTPUT", "-o"]] as const) {
      await runOrThrow(
        inNs(["iptables", "-w", flag, chain, direction, workerEnd, "-j", "DROP"]),
        what,
      );
    }
  };
  let stopping: Promise<string[]> | undefined;
  const stop = () => stopping ??= teardown(state);

  try {
    const sh = (argv: readonly string[], what: string) =>
      runOrThrow(argv, what, { timeoutMs: 60_000 });
    await sh(["ip", "netns", "add", ns], `Cannot add network namespace ${ns}`);
    await sh(
      ["ip", "link", "add", hostEnd, "type", "veth", "peer", "name", workerEnd],
      "Cannot add the veth pair",
    );
    await sh(
      ["ip", "link", "set", workerEnd, "netns", ns],
      "Cannot move the veth into the namespace",
    );
    await sh(["ip", "addr", "add", `${hostIp}/30`, "dev", hostEnd], "Cannot address the veth");
    await sh(["ip", "link", "set", hostEnd, "up"], "Cannot bring the veth up");
    await sh(
      inNs(["ip", "addr", "add", `${workerIp}/30`, "dev", workerEnd]),
      "Cannot address the veth",
    );
    await sh(inNs(["ip", "link", "set", workerEnd, "up"]), "Cannot bring the veth up");
    await sh(inNs(["ip", "link", "set", "lo", "up"]), "Cannot bring lo up");
    say(
      `network namespace ${ns}: ${hostEnd} ${hostIp} <-> ${workerEnd} ${workerIp}; swarm pool ${poolBlock}`,
    );

    // nsenter, not `ip netns exec` (which remounts /sys and hides the cgroup mounts dockerd
    // needs); its own UTS namespace gives the worker its own hostname; its own session
    // keeps a Ctrl-C in the terminal from stopping it before the teardown does.
    const dockerd = [
      "dockerd",
      `--data-root=${dir}/data`,
      `--exec-root=${dir}/x`,
      `--pidfile=${dir}/docker.pid`,
      `--host=${worker}`,
      "--iptables=false",
      "--bridge=none",
    ].join(" ");
    // With no registry, tasks use the loaded image at once instead of trying a pull first.
    const script = `hostname ${WORKER_HOSTNAME} && ` +
      `DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1 exec ${dockerd} >${dir}/dockerd.log 2>&1`;
    await sh(
      [
        "sh",
        "-c",
        `setsid ${
          inNs(["unshare", "--uts", "sh", "-c", `'${script}'`]).join(" ")
        } </dev/null >/dev/null 2>&1 &`,
      ],
      "Cannot start the second dockerd",
    );
    await waitFor("the second dockerd to answer", async () => {
      const answer = await run(["docker", "-H", worker, "version"], { timeoutMs: 10_000 });
      return answer.code === 0 || undefined;
    }, 60_000).catch(async (error) => {
      const log = await Deno.readTextFile(`${dir}/dockerd.log`).catch(() => "");
      throw new Error(
        `${error.message}; dockerd.log ends: ${log.trim().split("\n").slice(-3).join(" / ")}`,
      );
    });

    await sh(
      [
        "docker",
        "swarm",
        "init",
        "--advertise-addr",
        hostIp,
        "--listen-addr",
        `${hostIp}:2377`,
        "--default-addr-pool",
        poolBlock!,
        "--default-addr-pool-mask-length",
        "24",
      ],
      "Cannot initialise the swarm",
    );
    const token = await sh(
      ["docker", "swarm", "join-token", "--quiet", "worker"],
      "Cannot read the join token",
    );
    await sh(
      [
        "docker",
        "-H",
        worker,
        "swarm",
        "join",
        "--token",
        token,
        "--listen-addr",
        `${workerIp}:2377`,
        "--advertise-addr",
        workerIp,
        `${hostIp}:2377`,
      ],
      "Cannot join the worker",
    );
    const managerId = (await swarmState()).nodeId;
    const workerId = (await swarmState(worker)).nodeId;
    await waitFor("the worker to be ready", async () => {
      const out = await sh(
        ["docker", "node", "inspect", "--format", "{{.Status.State}}", workerId],
        "Cannot inspect the worker",
      );
      return out === "ready" || undefined;
    }, 60_000);
    say(`swarm: manager ${managerId} (host engine), worker ${workerId} (${WORKER_HOSTNAME})`);
    await Deno.mkdir(`${dir}/scratch`);
    return {
      worker,
      managerId,
      workerId,
      scratch: `${dir}/scratch`,
      partition: () => drop("-I", "Cannot cut the worker off"),
      heal: () => drop("-D", "Cannot reconnect the worker"),
      stop,
    };
  } catch (error) {
    const problems = await stop();
    if (problems.length > 0) say(`cleanup after a failed start: ${problems.join("; ")}`);
    throw error;
  }
}

if (import.meta.main && Deno.args[0] === "--guard") {
  await guard(Number(Deno.args[1]), Deno.args[2] ?? "");
}
