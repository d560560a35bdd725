/**
 * The Docker Swarm end-to-end test (`deno task test:swarm`): a real two-node swarm on
 * this machine (`_cluster.ts`: the host engine as manager, a second engine in a network
 * namespace as worker), the stack deployed with `deno task swarm`'s own functions, the
 * server on the manager and every agency on the worker, on the course's dataset
 * (extracted into a scratch folder, never into the repository; without it the test is
 * skipped). Each step a fresh draw: a healthy run (with the CLI's `status`, `logs`,
 * `validate-echo --swarm` and the course's `./validar-echo-server.sh`); a run with
 * `--secrets`; the CLI's one-line errors; the worker cut off mid-ingestion for longer than
 * `CLI_TIMEOUT`, then healed; the server's container killed mid-ingestion. Each run ends
 * with one `sorteo`, each agency's own winners, and `bets.csv` (read from the server's
 * volume) holding every bet exactly once. Everything the test makes is removed on every
 * path (if the test process dies, by Ctrl-C or a kill, the cluster's guard process does
 * it), and every wait is bounded.
 */
import assert from "node:assert/strict";
import { run, runOrThrow } from "../../tools/_cli.ts";
import { assertDockerEngine, buildImages } from "../../tools/images.ts";
import { stackTasks } from "../../tools/swarm/cluster.ts";
import { down, up } from "../../tools/swarm/main.ts";
import { judge } from "../../tools/swarm/tasks.ts";
import { PROJECT, STACK_BETS_VOLUME, type StackOptions } from "../../tools/gen_compose.ts";
import { SUCCESS_LINE } from "../../tools/validate_echo.ts";
import { type LogLine, parseLog } from "../../shared/log_line.ts";
import { loadSecrets } from "../../server/secrets.ts";
import { course, HAS_COURSE_ZIP, ROOT, runTool, Workspace } from "../docker/_helpers.ts";
import { account, expectedRows } from "../faults/_faults.ts";
import { type Cluster, startCluster, WORKER_HOSTNAME } from "./_cluster.ts";

if (!HAS_COURSE_ZIP) {
  console.log("swarm e2e: skipped: the course's dataset ../shared/data/dataset.zip is absent");
}

/** Agencies' client config for the fault runs: slow enough to be cut mid-ingestion. */
const FAULT_CLIENT_CONFIG: readonly [RegExp, string][] = [
  [/maxAmount: \d+/, "maxAmount: 10\n  window: 2"],
  [/$/, '\ntimeout: "3s"\n'],
];
/**
 * How long the worker stays cut off: longer than the agencies' `timeout` (3 s) above, and
 * than the 15 s after which the manager declares a silent node down (three missed 5 s
 * heartbeats), so Swarm replaces the agencies' tasks while their old ones keep running.
 */
const PARTITION_MS = 20_000;

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One task of a service, with what `docker inspect` adds to `docker stack ps`. */
interface TaskInfo {
  readonly id: string;
  readonly nodeId: string;
  readonly state: string;
  /** `""` for a task that never had a container. */
  readonly containerId: string;
  readonly exitCode: number;
}

async function serviceTasks(service: string): Promise<TaskInfo[]> {
  const ids = (await stackTasks()).filter((task) => task.service === service).map((t) => t.id);
  if (ids.length === 0) return [];
  const format = "{{.ID}} {{.NodeID}} {{.Status.State}} " +
    "{{with .Status.ContainerStatus}}{{.ContainerID}} {{.ExitCode}}{{else}}- -1{{end}}";
  const out = await runOrThrow(
    ["docker", "inspect", "--format", format, ...ids],
    `Cannot inspect the tasks of ${service}`,
    { timeoutMs: 30_000 },
  );
  return out.split("\n").map((line) => {
    const [id = "", nodeId = "", state = "", container = "", code = ""] = line.split(" ");
    return {
      id,
      nodeId,
      state,
      containerId: container === "-" ? "" : container,
      exitCode: Number(code),
    };
  });
}

/**
 * A service's log: every task's container's, oldest first, read from the engine that ran
 * it. (`docker service logs` goes through the manager's log broker, which can refuse a
 * worker's logs for a while after the worker was cut off: "node … is not available".)
 */
async function serviceLog(cluster: Cluster, service: string): Promise<string> {
  let text = "";
  for (const task of (await serviceTasks(service)).reverse()) {
    if (task.containerId === "") continue;
    const host = task.nodeId === cluster.workerId ? ["-H", cluster.worker] : [];
    const result = await run(["docker", ...host, "logs", task.containerId], { timeoutMs: 60_000 });
    assert.equal(result.code, 0, `the log of ${service} task ${task.id}: ${result.stderr}`);
    text += result.stdout + result.stderr;
  }
  return text;
}

async function betsCsvPath(): Promise<string> {
  const mountpoint = await runOrThrow(
    ["docker", "volume", "inspect", "--format", "{{.Mountpoint}}", STACK_BETS_VOLUME],
    `Cannot find the volume ${STACK_BETS_VOLUME}`,
  );
  return `${mountpoint}/bets.csv`;
}

async function storedRows(): Promise<number> {
  const text = await Deno.readTextFile(await betsCsvPath()).catch(() => "");
  return text.split("\r\n").length - 1;
}

/** Waits until the server has stored some of the bets (not all), bounded. */
async function waitMidIngestion(total: number): Promise<number> {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    const size = await betsCsvPath().then((path) => Deno.stat(path)).then((s) => s.size, () => 0);
    // About 60 bytes a row: act once about a sixth of the bets are in.
    if (size > (total * 60) / 6) return await storedRows();
    await delay(100);
  }
  throw new Error("Timed out after 120 s waiting for the server to store bets");
}

/** Waits until every agency has finished (as `swarm up` judges it), bounded. */
async function waitFinished(agencies: number, timeoutMs: number): Promise<void> {
  const services = Array.from({ length: agencies }, (_, i) => `client${i + 1}`);
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const tasks = await stackTasks();
    const { finished, givenUp } = judge(tasks, services);
    assert.deepEqual(givenUp, [], "Swarm gave up on no agency");
    if (finished.length === agencies) return;
    if (Date.now() > deadline) {
      throw new Error(
        `Timed out after ${seconds(timeoutMs)} waiting for the agencies; tasks: ${
          JSON.stringify(tasks)
        }`,
      );
    }
    await delay(500);
  }
}

/** Checks a finished run: one draw, each agency's own winners, every bet exactly once. */
async function assertDraw(
  cluster: Cluster,
  counts: ReadonlyMap<number, { rows: number; winners: number }>,
  expected: readonly string[],
  options: { readonly healthy: boolean },
): Promise<LogLine[]> {
  const server = parseLog(await serviceLog(cluster, "server"));
  assert.equal(server.filter((line) => line.action === "sorteo").length, 1, "exactly one sorteo");
  const failures: string[] = [];
  for (const [id, count] of counts) {
    const log = await serviceLog(cluster, `client${id}`);
    const lines = parseLog(log);
    const answers = lines.filter((line) =>
      line.action === "consulta_ganadores" && line.result === "success"
    );
    if (answers.length === 0) {
      // Only on failure: an assert's message is built (its tasks inspected) even when it passes.
      assert.fail(
        `client${id} got its winners; its tasks: ${
          JSON.stringify(await serviceTasks(`client${id}`))
        }; its log ends: ${log.slice(-1500)}`,
      );
    }
    for (const answer of answers) {
      assert.equal(
        answer.fields.get("cant_ganadores"),
        String(count.winners),
        `client${id}'s own winners`,
      );
    }
    failures.push(
      ...lines.filter((line) => line.result === "fail").map((line) =>
        `client${id}: ${line.action}`
      ),
    );
  }
  failures.push(
    ...server.filter((line) => line.result === "fail").map((line) => `server: ${line.action}`),
  );
  if (options.healthy) {
    assert.deepEqual(failures, [], "no line may say result: fail in a healthy run");
  }
  const accounting = await account(await betsCsvPath(), expected);
  assert.deepEqual(
    { lost: accounting.lost, duplicated: accounting.duplicated, endsWhole: accounting.endsWhole },
    { lost: 0, duplicated: 0, endsWhole: true },
    `every bet exactly once in bets.csv (${accounting.stored} rows of ${accounting.sent})`,
  );
  return server;
}

async function assertPlacement(cluster: Cluster, agencies: number): Promise<void> {
  for (const task of await serviceTasks("server")) {
    assert.equal(task.nodeId, cluster.managerId, "the server runs on the manager");
  }
  for (let id = 1; id <= agencies; id++) {
    // A replacement made while the worker was cut off may never have had a node.
    for (const task of (await serviceTasks(`client${id}`)).filter((task) => task.nodeId !== "")) {
      assert.equal(task.nodeId, cluster.workerId, `client${id} runs on the worker`);
    }
  }
}

Deno.test({
  name: "swarm deployment - two nodes: the course's draw, a partition, a server kill",
  ignore: !HAS_COURSE_ZIP,
  sanitizeResources: true,
  sanitizeOps: true,
}, async (t) => {
  const testStarted = performance.now();
  await assertDockerEngine();
  const say = (line: string) => console.log(`   ${line}`);
  let cluster: Cluster | undefined;
  let stopping: Promise<void> | undefined;
  const cleanUp = () =>
    stopping ??= (async () => {
      const problems = await cluster?.stop() ?? [];
      assert.deepEqual(problems, [], "the cluster left nothing behind");
    })();
  // Every wait is bounded; this bounds their sum.
  const watchdog = setTimeout(() => {
    console.error("swarm e2e: over 20 minutes: removing the cluster");
    cleanUp().finally(() => Deno.exit(1));
  }, 20 * 60_000);
  try {
    const built = performance.now();
    await buildImages({ quiet: true, say: () => {} });
    say(`images built in ${seconds(performance.now() - built)}`);
    const clusterStarted = performance.now();
    cluster = await startCluster(say);
    const node = cluster;
    say(`two-node swarm up in ${seconds(performance.now() - clusterStarted)}`);
    // Configs, data and stack file in the cluster's scratch folder: removed with it.
    const ws = await Workspace.create(node.scratch);
    const counts = await ws.extractCourseDataset();
    const paths = [...counts.keys()].sort().map((id) => `${ws.dir}/.data/agency-${id}.csv`);
    const expected = await expectedRows(paths);
    const stack: StackOptions = {
      clients: counts.size,
      dataDir: `${ws.dir}/.data`,
      agencyConstraints: ["node.role==worker"],
    };
    const deploy = (options: { wait: boolean }) =>
      up({
        stack,
        file: `${ws.dir}/docker-stack.yaml`,
        nodes: [node.worker],
        build: false,
        wait: options.wait,
        timeoutMs: 300_000,
        say,
      });
    const fresh = async () => {
      await down({ nodes: [node.worker], say });
      assert.equal((await stackTasks()).length, 0, "the stack is gone");
      const volume = await run(["docker", "volume", "inspect", STACK_BETS_VOLUME]);
      assert.notEqual(volume.code, 0, "down deleted the bets volume: the next up is a fresh draw");
    };
    /** Runs a step, then removes its stack and bets whatever happened. */
    const inFreshDraw = (step: () => Promise<void>) => async () => {
      try {
        await step();
      } finally {
        await fresh();
      }
    };

    await t.step(
      "the course's dataset, server on the manager, every agency on the worker",
      inFreshDraw(async () => {
        const { deployMs, finishedMs } = await deploy({ wait: true });
        say(
          `time to deploy ${seconds(deployMs)}, to all agencies finished ${
            seconds(finishedMs ?? NaN)
          }`,
        );
        await assertPlacement(node, counts.size);
        const server = await assertDraw(node, counts, expected, { healthy: true });
        const received = server.filter((line) =>
          line.action === "apuesta_recibida" && line.result === "success"
        )
          .reduce((sum, line) => sum + Number(line.fields.get("cantidad")), 0);
        assert.equal(received, expected.length, "apuesta_recibida sums to every bet");
        const echo = await runTool("validate_echo.ts", ["--swarm"]);
        assert.equal(echo.stdout.trim(), SUCCESS_LINE, `validate-echo --swarm: ${echo.stderr}`);
        const script = await course(["./validar-echo-server.sh"]);
        assert.equal(
          script.stdout.trim(),
          SUCCESS_LINE,
          `./validar-echo-server.sh: ${script.stderr}`,
        );
        // The CLI's status and logs, as a user reads them.
        const status = await runTool("swarm/main.ts", ["status"]);
        assert.equal(status.code, 0, status.stderr);
        const rows = status.stdout.trim().split("\n").slice(1).map((row) => row.split(/\s+/));
        assert.deepEqual(
          rows.map(([service, node, desired, state]) => `${service} ${node} ${desired} ${state}`),
          [
            ...[...counts.keys()].sort().map((id) =>
              `client${id} ${WORKER_HOSTNAME} Shutdown Complete`
            ),
            `server ${Deno.hostname()} Running Running`,
          ],
        );
        const logs = await runTool("swarm/main.ts", ["logs", "--no-follow"]);
        assert.equal(logs.code, 0, logs.stderr);
        const lines = logs.stdout.trim().split("\n");
        // Docker's own prefix: the task (service, slot, id) and its node, then `|`.
        const task = (service: string) => `^${PROJECT}_${service}\\.1\\.\\w+@\\S+ +\\| `;
        assert.ok(
          lines.every((line) => new RegExp(task("(server|client\\d)")).test(line)),
          "each line names its task",
        );
        const sorteo = new RegExp(`${task("server")}.*action: sorteo \\| result: success`);
        assert.equal(lines.filter((line) => sorteo.test(line)).length, 1);
        for (const [id, count] of counts) {
          const answer = new RegExp(
            `${
              task(`client${id}`)
            }.*action: consulta_ganadores \\| result: success .*cant_ganadores: ${count.winners}$`,
          );
          assert.ok(
            lines.some((line) => answer.test(line)),
            `swarm logs shows client${id}'s winners`,
          );
        }
      }),
    );

    await t.step(
      "--secrets: Docker secrets, each agency with its own",
      inFreshDraw(async () => {
        // Its own folder: 3 generated agencies beside the course's 5 would not add up.
        const own = await Workspace.create(`${node.scratch}/secrets`);
        const small = await own.generateData(3, { betsPerAgency: 300, seed: 8, winnerShare: 0.02 });
        const rows = await expectedRows([1, 2, 3].map((id) => `${own.dir}/.data/agency-${id}.csv`));
        const output = `${own.dir}/docker-stack.yaml`;
        await up({
          stack: { ...stack, clients: 3, dataDir: `${own.dir}/.data`, secrets: true },
          file: output,
          nodes: [node.worker],
          build: false,
          timeoutMs: 120_000,
          say: () => {},
        });
        const secrets = await loadSecrets(`${own.dir}/.secrets/agencies.ini`, 3);
        const stackText = await Deno.readTextFile(output);
        const containers = [];
        for (const id of secrets.keys()) {
          containers.push(...(await serviceTasks(`client${id}`)).map((task) => task.containerId));
        }
        const configs = await runOrThrow(
          ["docker", "-H", node.worker, "inspect", "--format", "{{json .Config}}", ...containers],
          "Cannot inspect the agencies' containers",
        );
        for (const secret of secrets.values()) {
          assert.ok(!stackText.includes(secret), "no secret in the stack file");
          assert.ok(!configs.includes(secret), "no secret in a container's configuration");
        }
        const server = await assertDraw(node, small, rows, { healthy: true });
        const config = server.find((line) => line.action === "config");
        assert.equal(config?.fields.get("secrets"), "3", "the server loaded 3 secrets");
      }),
    );

    await t.step(
      "errors: one line and a non-zero exit",
      inFreshDraw(async () => {
        const swarm = (args: readonly string[], env: Record<string, string> = {}) =>
          run([Deno.execPath(), "run", "-A", `${ROOT}tools/swarm/main.ts`, ...args], {
            env,
            timeoutMs: 120_000,
          });
        const cases: [readonly string[], Record<string, string>, RegExp][] = [
          [
            ["status"],
            { DOCKER_HOST: `unix://${ws.dir}/no-engine.sock` },
            /^swarm: Cannot reach the Docker engine/,
          ],
          [
            ["up", "--no-build"],
            { DOCKER_HOST: node.worker },
            /^swarm: Cannot deploy: this engine is a swarm worker, not a manager/,
          ],
          [
            ["up", "--no-build", "--node", `unix://${ws.dir}/gone.sock`],
            {},
            /^swarm: Cannot reach node unix:\/\/.*gone\.sock/,
          ],
        ];
        for (const [args, env, message] of cases) {
          const result = await swarm(args, env);
          assert.equal(result.code, 1, `${args.join(" ")}: exit code`);
          assert.match(result.stderr, message);
          assert.equal(result.stderr.trim().split("\n").length, 1, `${args.join(" ")}: one line`);
        }
        // A data folder missing on the node that runs the agencies: named, with the node.
        await assert.rejects(
          () =>
            up({
              stack: { ...stack, dataDir: `${ws.dir}/missing` },
              file: `${ws.dir}/missing.yaml`,
              nodes: [node.worker],
              build: false,
              timeoutMs: 120_000,
              say: () => {},
            }),
          new RegExp(
            `Cannot run client\\d on node ${WORKER_HOSTNAME}: the folder ${ws.dir}/missing does not exist there`,
          ),
        );
      }),
    );

    await t.step(
      "the worker cut off mid-ingestion longer than CLI_TIMEOUT, then healed",
      inFreshDraw(async () => {
        await ws.editConfig("client/config.yaml", FAULT_CLIENT_CONFIG);
        const started = performance.now();
        await deploy({ wait: false });
        const before = await waitMidIngestion(expected.length);
        assert.ok(
          before < expected.length,
          `cut mid-ingestion (${before} of ${expected.length} stored)`,
        );
        await node.partition();
        const cut = performance.now();
        const atCut = await storedRows();
        let workerDown = false;
        try {
          while (performance.now() - cut < PARTITION_MS) {
            await delay(1000);
            const status = await run([
              "docker",
              "node",
              "inspect",
              "--format",
              "{{.Status.State}}",
              node.workerId,
            ]);
            workerDown ||= status.stdout.trim() === "down";
          }
        } finally {
          await node.heal();
        }
        const stored = await storedRows();
        const healed = performance.now();
        // 5 agencies × a window of 2 batches × 10 bets were in flight at most.
        assert.ok(stored - atCut <= 100, `the cut stopped ingestion (${atCut} → ${stored})`);
        assert.ok(workerDown, "the manager declared the worker down and replaced its tasks");
        await waitFinished(counts.size, 300_000);
        say(
          `cut at ${atCut} of ${expected.length} bets for ${seconds(healed - cut)} ` +
            `(${stored - atCut} stored meanwhile, the worker declared down); all finished ` +
            `${seconds(performance.now() - healed)} after healing, ` +
            `${seconds(performance.now() - started)} after deploy`,
        );
        await assertPlacement(node, counts.size);
        await assertDraw(node, counts, expected, { healthy: false });
      }),
    );

    await t.step(
      "the server's container killed mid-ingestion: Swarm restarts it, it recovers",
      inFreshDraw(async () => {
        const started = performance.now();
        await deploy({ wait: false });
        const before = await waitMidIngestion(expected.length);
        const container = await runOrThrow(
          [
            "docker",
            "ps",
            "--quiet",
            "--filter",
            `label=com.docker.swarm.service.name=${PROJECT}_server`,
          ],
          "Cannot find the server's container",
        );
        await runOrThrow(["docker", "kill", container], "Cannot kill the server's container");
        const killed = performance.now();
        assert.ok(
          before < expected.length,
          `killed mid-ingestion (${before} of ${expected.length} stored)`,
        );
        await waitFinished(counts.size, 300_000);
        say(
          `killed at ${before} of ${expected.length} bets; all finished ${
            seconds(performance.now() - killed)
          } ` +
            `after the kill, ${seconds(performance.now() - started)} after deploy`,
        );
        const tasks = await serviceTasks("server");
        assert.ok(
          tasks.some((task) => task.state === "failed" && task.exitCode === 137),
          "the killed task failed (137)",
        );
        assert.ok(tasks.some((task) => task.state === "running"), "Swarm restarted the server");
        await assertPlacement(node, counts.size);
        const server = await assertDraw(node, counts, expected, { healthy: false });
        const opened = server.filter((line) => line.action === "open_storage").map((line) =>
          Number(line.fields.get("apuestas"))
        );
        assert.equal(opened.length, 2, "the server opened its storage twice");
        assert.equal(opened[0], 0, "a fresh draw at first");
        assert.ok(
          opened[1]! > 0,
          `the restarted server recovered ${opened[1]} bets from its volume`,
        );
      }),
    );
  } finally {
    clearTimeout(watchdog);
    await cleanUp();
    say(`swarm e2e: total ${seconds(performance.now() - testStarted)}`);
  }
});
