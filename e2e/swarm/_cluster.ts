/**
 * A real two-node Docker Swarm on one machine, for the Swarm end-to-end test: the host's
 * engine is the manager; a second engine, started in a network namespace the helper
 * makes and joined over a veth pair, is the worker. A firewall rule on the worker's end
 * of the veth cuts it off (and lifts). {@linkcode Cluster.stop} removes everything the
 * helper made — stack, swarm membership of both engines, the second engine and its
 * processes, namespace, veth, mounts, scratch folder — on every path, and reports
 * whatever it finds left over.
 *
 * Needs root, `dockerd`, `ip`, `nsenter`, `unshare` and `iptables`
 * (`tools/provision_docker.sh` installs them), and a host engine in no swarm.
 *
 * @module
 */
import { run, runOrThrow } from "../../tools/_docker.ts";
import { removeBetsVolume, removeStack, swarmState } from "../../tools/swarm/cluster.ts";

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
export function overlaps(a: string, b: string): boolean {
  const [aAddress = "", aBits = "32"] = a.split("/");
  const [bAddress = "", bBits = "32"] = b.split("/");
  const bits = Math.min(Number(aBits), Number(bBits));
  const size = 2 ** (32 - bits);
  return Math.floor(toInt(aAddress) / size) === Math.floor(toInt(bAddress) / size);
}

async function freeBlocks(count: number): Promise<string[]> {
  const routes =
    (await runOrThrow(["ip", "-4", "-o", "route", "show", "table", "all"], "Cannot list routes"))
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

async function hostState(): Promise<
  { networks: Set<string>; volumes: Set<string>; netns: Set<string> }
> {
  const lines = async (argv: string[]) =>
    new Set(
      (await runOrThrow(argv, `Cannot run ${argv.join(" ")}`, { timeoutMs: 20_000 })).split("\n")
        .filter((x) => x !== ""),
    );
  return {
    networks: await lines(["docker", "network", "ls", "--format", "{{.Name}}"]),
    volumes: await lines(["docker", "volume", "ls", "--quiet"]),
    netns: new Set([...(await lines(["ip", "netns", "list"]))].map((line) => line.split(" ")[0]!)),
  };
}

async function preflight(): Promise<void> {
  if (Deno.uid() !== 0) {
    throw new Error(
      "Cannot make a two-node swarm: needs root (namespaces, veth, a second dockerd)",
    );
  }
  for (
    const [tool, flag] of [["dockerd", "--version"], ["ip", "-V"], ["nsenter", "--version"], [
      "unshare",
      "--version",
    ], ["iptables", "--version"]]
  ) {
    if ((await run([tool!, flag!], { timeoutMs: 20_000 })).code === 127) {
      throw new Error(
        `Cannot make a two-node swarm: ${tool} is missing (tools/provision_docker.sh installs it)`,
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

async function waitUntil(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) {
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/**
 * Makes the two-node swarm. On any failure it removes what it made so far, then throws.
 *
 * @param say Where progress lines go.
 * @returns The cluster; call {@linkcode Cluster.stop} in a `finally`.
 */
export async function startCluster(say: (line: string) => void = () => {}): Promise<Cluster> {
  await preflight();
  const before = await hostState();
  const [linkBlock, poolBlock] = await freeBlocks(2);
  const base = linkBlock!.split("/")[0]!.split(".").slice(0, 3).join(".");
  const hostIp = `${base}.1`;
  const workerIp = `${base}.2`;
  const tag = crypto.randomUUID().slice(0, 6);
  const ns = `tp0sw-${tag}`;
  const hostEnd = `tp0sw${tag}h`;
  const workerEnd = `tp0sw${tag}w`;
  const dir = await Deno.makeTempDir({ prefix: "tp0sw-" });
  const socket = `${dir}/docker.sock`;
  const worker = `unix://${socket}`;
  const inNs = (argv: readonly string[]) => ["nsenter", `--net=/var/run/netns/${ns}`, ...argv];
  let dockerd: Deno.ChildProcess | undefined;
  let stopping: Promise<string[]> | undefined;

  async function stopEngine(problems: string[]): Promise<void> {
    if (dockerd === undefined) return;
    try {
      dockerd.kill("SIGTERM");
    } catch {
      // Already gone.
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const exited = await Promise.race([
      dockerd.status.then(() => true),
      new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), 30_000)),
    ]);
    clearTimeout(timer);
    if (!exited) {
      problems.push("the second dockerd ignored SIGTERM for 30 s: killed");
      dockerd.kill("SIGKILL");
      await dockerd.status;
    }
    // What the engine left in its namespace (containerd, shims): started by us, by pid.
    const pids = (await run(["ip", "netns", "pids", ns])).stdout.split("\n").filter((pid) =>
      pid !== ""
    );
    for (const pid of pids) {
      problems.push(`process ${pid} was still running in ${ns}: killed`);
      await run(["kill", "-KILL", pid]);
    }
  }

  async function stop(): Promise<string[]> {
    const problems: string[] = [];
    const attempt = async (what: string, step: () => Promise<unknown>) => {
      try {
        await step();
      } catch (error) {
        problems.push(`${what}: ${error instanceof Error ? error.message : String(error)}`);
      }
    };
    const { state } = await swarmState().catch(() => ({ state: "unknown" }));
    if (state === "active") {
      await attempt(
        "remove the stack",
        () => removeStack(dockerd === undefined ? [] : [worker], 60_000),
      );
      await attempt("delete the bets volume", () => removeBetsVolume());
    }
    if (dockerd !== undefined) {
      await run(["docker", "-H", worker, "swarm", "leave", "--force"], { timeoutMs: 30_000 });
    }
    if (state !== "inactive") {
      await attempt(
        "leave the swarm",
        () =>
          runOrThrow(["docker", "swarm", "leave", "--force"], "Cannot leave the swarm", {
            timeoutMs: 60_000,
          }),
      );
    }
    await stopEngine(problems);
    if (!before.networks.has("docker_gwbridge")) {
      await run(["docker", "network", "rm", "docker_gwbridge"], { timeoutMs: 30_000 });
    }
    await run(["ip", "link", "del", hostEnd]);
    await run(["ip", "netns", "del", ns]);
    const mounts = (await Deno.readTextFile("/proc/self/mountinfo")).split("\n")
      .map((line) => line.split(" ")[4] ?? "")
      .filter((point) => point.startsWith(`${dir}/`))
      .sort((a, b) => b.length - a.length);
    for (const point of mounts) await run(["umount", "--lazy", point]);
    await attempt("remove the scratch folder", () => Deno.remove(dir, { recursive: true }));
    const after = await hostState().catch(() => before);
    for (const kind of ["networks", "volumes", "netns"] as const) {
      for (const name of after[kind]) {
        if (!before[kind].has(name)) problems.push(`left on the host: ${kind} ${name}`);
      }
    }
    const { state: finalState } = await swarmState().catch(() => ({ state: "unknown" }));
    if (finalState !== "inactive") problems.push(`the host engine's swarm state is ${finalState}`);
    return problems;
  }

  const cluster: Cluster = {
    worker,
    managerId: "",
    workerId: "",
    partition: async () => {
      for (const rule of [["INPUT", "-i"], ["OUTPUT", "-o"]]) {
        await runOrThrow(
          inNs(["iptables", "-w", "-I", rule[0]!, rule[1]!, workerEnd, "-j", "DROP"]),
          "Cannot cut the worker off",
        );
      }
    },
    heal: async () => {
      for (const rule of [["INPUT", "-i"], ["OUTPUT", "-o"]]) {
        await runOrThrow(
          inNs(["iptables", "-w", "-D", rule[0]!, rule[1]!, workerEnd, "-j", "DROP"]),
          "Cannot reconnect the worker",
        );
      }
    },
    stop: () => stopping ??= stop(),
  };

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
    // needs); a UTS namespace of its own gives the worker its own hostname.
    const dockerdArgs = [
      `--data-root=${dir}/data`,
      `--exec-root=${dir}/x`,
      `--pidfile=${dir}/docker.pid`,
      `--host=${worker}`,
      "--iptables=false",
      "--bridge=none",
    ].join(" ");
    dockerd = new Deno.Command("nsenter", {
      args: [
        `--net=/var/run/netns/${ns}`,
        "unshare",
        "--uts",
        "sh",
        "-c",
        `hostname ${WORKER_HOSTNAME} && exec dockerd ${dockerdArgs} >${dir}/dockerd.log 2>&1`,
      ],
      // With no registry, tasks use the loaded image at once instead of trying a pull first.
      env: { DOCKER_SERVICE_PREFER_OFFLINE_IMAGE: "1" },
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const engine = dockerd;
    let exited = false;
    engine.status.then(() => exited = true);
    await waitUntil("the second dockerd to answer", async () => {
      if (exited) {
        const log = await Deno.readTextFile(`${dir}/dockerd.log`).catch(() => "");
        throw new Error(
          `Cannot start the second dockerd: ${log.trim().split("\n").slice(-3).join(" / ")}`,
        );
      }
      return (await run(["docker", "-H", worker, "version"], { timeoutMs: 10_000 })).code === 0;
    }, 60_000);

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
    const ids = {
      managerId: (await swarmState()).nodeId,
      workerId: (await swarmState(worker)).nodeId,
    };
    await waitUntil("the worker to be ready", async () => {
      const out = await sh([
        "docker",
        "node",
        "inspect",
        "--format",
        "{{.Status.State}}",
        ids.workerId,
      ], "Cannot inspect the worker");
      return out === "ready";
    }, 60_000);
    say(
      `swarm: manager ${ids.managerId} (host engine), worker ${ids.workerId} (${WORKER_HOSTNAME})`,
    );
    return { ...cluster, ...ids };
  } catch (error) {
    const problems = await cluster.stop();
    if (problems.length > 0) say(`cleanup after a failed start: ${problems.join("; ")}`);
    throw error;
  }
}
