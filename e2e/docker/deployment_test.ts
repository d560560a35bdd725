/**
 * The Docker end-to-end test (`deno task test:docker`): the "Done when" list of the
 * Docker deployment, against real containers on the local engine. Every step starts from
 * `down --volumes` and waits with a bound; `down` runs at the end whatever happens.
 * Configs, data and the compose file live in a scratch folder; the course's dataset is
 * extracted there from `../shared/data/dataset.zip` and never enters the repository.
 */
import assert from "node:assert/strict";
import { run, runOrThrow } from "../../tools/_cli.ts";
import { assertDockerEngine, buildImages, ensureNetcatImage, IMAGES } from "../../tools/images.ts";
import { BETS_VOLUME, NETWORK_NAME, sampleBet } from "../../tools/gen_compose.ts";
import { down } from "../../tools/compose.ts";
import { clientEnvFile, newSecret, SECRETS_DIR, SECRETS_FILE } from "../../tools/secrets.ts";
import { loadSecrets } from "../../server/secrets.ts";
import type { LogAction } from "../../shared/log.ts";
import { FAIL_LINE, SUCCESS_LINE } from "../../tools/validate_echo.ts";
import {
  actions,
  course,
  HAS_COURSE_ZIP,
  imageId,
  inspect,
  type LogLine,
  logLines,
  projectContainers,
  runTool,
  waitExited,
  waitFor,
  Workspace,
} from "./_helpers.ts";

const clientNames = (n: number) => Array.from({ length: n }, (_, i) => `client${i + 1}`);

/** Rows and winners of one agency file. */
type Count = { rows: number; winners: number };

function sum(lines: readonly LogLine[], key: string): number {
  return lines.reduce((total, line) => total + Number(line.fields.get(key) ?? NaN), 0);
}

/** Fails listing every `result: fail` line of the given containers. */
async function assertNoFailLines(names: readonly string[]): Promise<void> {
  const failures: string[] = [];
  for (const name of names) {
    for (const line of await logLines(name)) {
      if (/\|\s*result:\s*fail\b/.test(line)) failures.push(`${name}: ${line}`);
    }
  }
  assert.deepEqual(failures, [], "no line may say result: fail in a healthy run");
}

/**
 * Checks a draw against the agency files it was fed: `apuesta_recibida` successes summing to
 * every bet, one `sorteo`, and each agency asking for its winners once and getting its own.
 */
async function assertDraw(counts: ReadonlyMap<number, Count>): Promise<void> {
  const received = (await actions("server", "apuesta_recibida"))
    .filter((line) => line.result === "success");
  const total = [...counts.values()].reduce((n, c) => n + c.rows, 0);
  assert.equal(sum(received, "cantidad"), total, "every bet of the dataset was stored once");
  assert.equal((await actions("server", "sorteo")).length, 1, "exactly one draw");
  for (const [id, count] of counts) {
    const winners = (await actions(`client${id}`, "consulta_ganadores"))
      .filter((line) => line.result === "success").map((line) => line.fields.get("cant_ganadores"));
    assert.deepEqual(winners, [String(count.winners)], `client${id} gets its own winners, once`);
  }
}

/** Checks a finished lottery run: the config lines, the draw, and no `result: fail`. */
async function assertLotteryRun(
  counts: ReadonlyMap<number, Count>,
): Promise<void> {
  const names = clientNames(counts.size);
  const config = await actions("server", "config");
  assert.equal(config.length, 1);
  for (const key of ["port", "listen_backlog", "logging_level"]) {
    assert.ok(config[0]!.fields.has(key), `server config line has ${key}`);
  }
  assert.equal(config[0]!.result, "success");
  for (const id of counts.keys()) {
    const name = `client${id}`;
    const clientConfig = await actions(name, "config");
    assert.equal(clientConfig.length, 1, `${name} logs its config once`);
    for (const key of ["client_id", "loop_amount", "loop_period", "log_level"]) {
      assert.ok(clientConfig[0]!.fields.has(key), `${name} config line has ${key}`);
    }
    // The course's own format: its parser reads `server_address: server` → `12345`.
    assert.equal(clientConfig[0]!.fields.get("server_address: server"), "12345");
    assert.equal(clientConfig[0]!.fields.get("client_id"), String(id));
  }
  await assertDraw(counts);
  await assertNoFailLines(["server", ...names]);
}

async function stopTimed(name: string): Promise<number> {
  const started = performance.now();
  await runOrThrow(["docker", "stop", "-t", "10", name], `Cannot stop ${name}`, {
    timeoutMs: 60_000,
  });
  return performance.now() - started;
}

Deno.test({
  name: "docker deployment - the Done-when list, on real containers",
  sanitizeResources: true,
  sanitizeOps: true,
}, async (t) => {
  await assertDockerEngine();
  const progress: string[] = [];
  const path = await buildImages({ quiet: true, say: (line) => progress.push(line) });
  const netcat = await ensureNetcatImage();
  console.log(`images: ${path} path; netcat image ${netcat}`);
  /** A netcat container that takes the name `server` on the network and runs `command`. */
  const startStandIn = (name: string, command: readonly string[]): Promise<unknown> =>
    runOrThrow([
      "docker",
      "run",
      "-d",
      "--name",
      name,
      "--network",
      NETWORK_NAME,
      "--network-alias",
      "server",
      netcat,
      ...["nc", "-ll", "-p", "12345", "-e", ...command],
    ], `Cannot start the stand-in ${name}`);
  const ws = await Workspace.create();
  const standIns: string[] = [];
  try {
    await ws.down();

    await t.step(
      "1. the course's workflow by its own names: exercise 5, down, exercise 6 on the course's " +
        "dataset, down, exercise 6 on generated data; each a fresh draw with the right winners",
      async () => {
        await ws.down();
        await ws.resetConfigs();
        const make = async (target: string): Promise<string[]> => {
          const result = await course(["make", target, `FILE=${ws.file}`]);
          assert.equal(result.code, 0, `make ${target}: ${result.stdout}${result.stderr}`);
          return result.stdout.split("\n").filter((line) => line.startsWith("up: "));
        };
        const generate = async (...flags: string[]) => {
          const result = await course(["./generar-compose.sh", ws.file, "5", ...flags]);
          assert.equal(result.code, 0, result.stderr);
        };
        /** `make docker-compose-up`: it says what it starts, and that the draw is fresh. */
        const up = async (mode: string) => {
          const said = await make("docker-compose-up");
          for (
            const line of [
              `up: using ${ws.file} as it is (deno task up --clients N --mode M regenerates it)`,
              `up: starting server + 5 agencies, mode ${mode}, bets live in the server container ` +
              "(down ends the draw)",
              "up: a fresh draw (bets live in the server container)",
            ]
          ) assert.ok(said.includes(line), `up says "${line}":\n${said.join("\n")}`);
        };
        const runs: string[] = [];
        /** Exercise 6: every agency exits 0 with its own winners, in one draw. */
        const lottery = async (what: string, counts: Map<number, Count>) => {
          const started = performance.now();
          await up("agency");
          const codes = await waitExited(clientNames(5), 300_000);
          runs.push(`${what} ${((performance.now() - started) / 1000).toFixed(1)} s`);
          assert.deepEqual([...codes.values()], [0, 0, 0, 0, 0], "the 5 clients exit 0");
          await assertLotteryRun(counts);
        };

        // Exercise 5: each agency sends the one bet of its environment.
        await generate("--mode", "bet");
        await up("bet");
        const exercise5 = await waitExited(clientNames(5), 120_000);
        assert.deepEqual([...exercise5.values()], [0, 0, 0, 0, 0], "the 5 clients exit 0");
        const bets = [1, 2, 3, 4, 5].map((id) =>
          `${sampleBet(id).DOCUMENTO} ${sampleBet(id).NUMERO}`
        );
        const stored = (await actions("server", "apuesta_almacenada"))
          .map((line) => `${line.fields.get("dni")} ${line.fields.get("numero")}`);
        assert.deepEqual(stored.sort(), bets.toSorted(), "the server stored each agency's bet");
        for (let id = 1; id <= 5; id++) {
          const sent = (await actions(`client${id}`, "apuesta_enviada"))
            .map((line) => `${line.fields.get("dni")} ${line.fields.get("numero")}`);
          assert.deepEqual(sent, [bets[id - 1]], `client${id} confirms its bet`);
        }
        await assertNoFailLines(["server", ...clientNames(5)]);
        await make("docker-compose-down");
        assert.deepEqual(await projectContainers(), []);

        // Exercise 6 on the course's dataset: agency 1's bet of exercise 5 (a winner) is gone.
        if (HAS_COURSE_ZIP) {
          const counts = await ws.extractCourseDataset();
          await generate();
          await lottery("course dataset", counts);
          await make("docker-compose-down");
        }
        // Exercise 6 again, on new data, with the same compose file: a fresh draw again.
        await generate();
        await lottery(
          "generated data",
          await ws.generateData(5, { betsPerAgency: 2000, seed: 6, winnerShare: 0.005 }),
        );
        const echo = await course(["./validar-echo-server.sh"]);
        assert.equal(echo.stdout, `${SUCCESS_LINE}\n`, echo.stderr);
        assert.equal(echo.code, 0);
        console.log(`   make docker-compose-up to all exited: ${runs.join(", ")}`);
      },
    );

    await t.step(
      "2. validate-echo: success against the server, fail against stand-ins",
      async () => {
        if ((await run(["docker", "container", "inspect", "server"])).code !== 0) {
          await ws.generate({ clients: 0 });
          await ws.up();
        }
        const good = await runTool("validate_echo.ts");
        assert.equal(good.stdout, `${SUCCESS_LINE}\n`, good.stderr);
        assert.equal(good.code, 0);
        // A stand-in takes the name `server` on the network and answers something else.
        await runOrThrow(["docker", "stop", "-t", "10", "server"], "Cannot stop server");
        const wrong = "tp0-e2e-standin-wrong";
        standIns.push(wrong);
        await startStandIn(wrong, ["echo", "wrong"]);
        const bad = await waitFor("the stand-in to answer", async () => {
          const result = await runTool("validate_echo.ts");
          return result.stderr.includes("wrong") ? result : undefined;
        }, 30_000);
        assert.equal(bad.stdout, `${FAIL_LINE}\n`);
        assert.equal(bad.code, 1);
        await run(["docker", "rm", "-f", wrong]);
        // A stand-in that accepts and never answers: fail, within the bound, not a hang.
        const silent = "tp0-e2e-standin-silent";
        standIns.push(silent);
        await startStandIn(silent, ["sleep", "120"]);
        const started = performance.now();
        const mute = await runTool("validate_echo.ts", ["--timeout", "2"]);
        const elapsed = performance.now() - started;
        assert.equal(mute.stdout, `${FAIL_LINE}\n`);
        assert.ok(elapsed < 20_000, `fail within the bound, took ${elapsed.toFixed(0)} ms`);
        await run(["docker", "rm", "-f", silent]);
      },
    );

    await t.step("6. gen-compose --mode echo 5: loop.amount 3, every message echoed", async () => {
      await ws.down();
      await ws.resetConfigs();
      await ws.editConfig("client/config.yaml", [
        [/amount: \d+/, "amount: 3"],
        [/period: "?[^"\n]+"?/, 'period: "250ms"'],
      ]);
      await ws.generate({ clients: 5, mode: "echo" });
      // An earlier gen-compose --mode echo file is never started silently: up names it.
      const said = await ws.up();
      assert.equal(
        said[0],
        `up: using ${ws.file} as it is (deno task up --clients N --mode M regenerates it)`,
      );
      assert.match(said[1]!, /^up: starting server \+ 5 agencies, mode echo, /);
      const codes = await waitExited(clientNames(5), 120_000);
      assert.deepEqual([...codes.values()], [0, 0, 0, 0, 0]);
      const serverMessages = (await actions("server", "receive_message"))
        .map((line) => line.fields.get("msg"));
      for (let id = 1; id <= 5; id++) {
        const name = `client${id}`;
        const expected = [1, 2, 3].map((i) => `[CLIENT ${id}] Message N°${i}`);
        const received = (await actions(name, "receive_message"))
          .filter((line) => line.result === "success")
          .map((line) => line.fields.get("msg"));
        assert.deepEqual(received, expected, `${name} logs each echoed message`);
        assert.equal((await actions(name, "loop_finished")).length, 1, `${name} loop_finished`);
        for (const message of expected) {
          assert.ok(serverMessages.includes(message), `server logs ${message}`);
        }
      }
      await assertNoFailLines(["server", ...clientNames(5)]);
    });

    await t.step("3. edited configs show after a restart, with the same images", async () => {
      if ((await run(["docker", "container", "inspect", "client1"])).code !== 0) {
        await ws.generate({ clients: 5, mode: "echo" });
        await ws.up();
        await waitExited(clientNames(5), 120_000);
      }
      const before = { server: await imageId(IMAGES.server), client: await imageId(IMAGES.client) };
      await ws.editConfig("server/config.ini", [[
        /LOGGING_LEVEL\s*=\s*\w+/,
        "LOGGING_LEVEL = DEBUG",
      ]]);
      await ws.editConfig("client/config.yaml", [
        [/level: "?\w+"?/, 'level: "DEBUG"'],
        [/maxAmount: \d+/, "maxAmount: 42"],
      ]);
      await ws.compose(["restart", "-t", "10", "server"]);
      await waitFor(
        "a healthy server",
        async () => (await inspect("server")).health === "healthy" ? true : undefined,
        60_000,
      );
      await ws.compose(["restart", "-t", "10", ...clientNames(5)]);
      await waitExited(clientNames(5), 120_000);
      const serverConfig = (await actions("server", "config")).at(-1);
      assert.equal(serverConfig?.fields.get("logging_level"), "DEBUG");
      for (const name of clientNames(5)) {
        const config = await actions(name, "config");
        assert.equal(config.length, 2, `${name} ran twice`);
        assert.equal(config[1]!.fields.get("log_level"), "DEBUG");
        assert.equal(config[1]!.fields.get("batch_max_amount"), "42");
        assert.equal((await inspect(name)).image, before.client, `${name} runs the same image`);
      }
      assert.equal(await imageId(IMAGES.server), before.server, "server image not rebuilt");
      assert.equal(await imageId(IMAGES.client), before.client, "client image not rebuilt");
      assert.equal((await inspect("server")).image, before.server);
    });

    await t.step({
      name: "4. docker stop -t 10 mid-ingestion: prompt exit 0, each resource closed",
      // Without the course's dataset beside the repository, as the other tests that read it.
      ignore: !HAS_COURSE_ZIP,
      fn: async () => {
        await ws.down();
        await ws.resetConfigs();
        // One bet per batch and one batch in flight (stop-and-wait) keep ingestion going long
        // enough to stop it halfway.
        await ws.editConfig("client/config.yaml", [
          [/level: "?\w+"?/, 'level: "DEBUG"'],
          [/maxAmount: \d+/, "maxAmount: 1\n  window: 1"],
        ]);
        const counts = await ws.extractCourseDataset();
        await ws.generate({ clients: counts.size });
        await ws.up();
        await waitFor(
          "ingestion to be under way",
          async () => (await actions("server", "apuesta_recibida")).length >= 20 ? true : undefined,
          60_000,
        );
        // client1's own progress line: it is sending, so its SIGTERM handler is installed (a
        // signal to a container's PID 1 before that is ignored, and docker stop would kill it).
        await waitFor(
          "client1 to be sending",
          async () => (await actions("client1", "progreso")).length > 0 ? true : undefined,
          60_000,
        );

        assert.equal((await actions("client1", "apuestas_enviadas")).length, 0, "client1 mid-way");
        const clientMs = await stopTimed("client1");
        const client1 = await inspect("client1");
        assert.equal(client1.exitCode, 0, "client1 exits 0 on SIGTERM");
        console.log(`   docker stop -t 10 client1: ${clientMs.toFixed(0)} ms`);
        const clientActions = (await actions("client1")).map((line) =>
          `${line.action}:${line.result}`
        );
        assert.ok(
          clientActions.includes("close_connection:success"),
          "client1 logs its socket closed",
        );
        assert.equal(clientActions.at(-1), "shutdown:success");

        assert.equal(
          (await actions("server", "sorteo")).length,
          0,
          "server stopped before the draw",
        );
        const serverMs = await stopTimed("server");
        const server = await inspect("server");
        assert.equal(server.exitCode, 0, "server exits 0 on SIGTERM");
        console.log(`   docker stop -t 10 server: ${serverMs.toFixed(0)} ms`);
        const serverActions = (await actions("server")).map((line) =>
          `${line.action}:${line.result}`
        );
        for (const closed of ["close_listener", "close_connection", "close_storage"]) {
          assert.ok(serverActions.includes(`${closed}:success`), `server logs ${closed}`);
        }
        assert.equal(serverActions.at(-1), "shutdown:success");
        console.log(
          `   docker stop -t 10: client1 ${clientMs.toFixed(0)} ms, server ${
            serverMs.toFixed(0)
          } ms`,
        );
      },
    });

    await t.step({
      name: "4b. docker stop -t 10 of agencies reconnecting to a stopped server: prompt exit 0",
      // Without the course's dataset beside the repository, as the other tests that read it.
      ignore: !HAS_COURSE_ZIP,
      fn: async () => {
        // Step 4 left the other agencies retrying their connection to the stopped server:
        // `deno task down` at that moment must still see clean, prompt exits.
        const running: string[] = [];
        for (const name of clientNames(5).slice(1)) {
          if ((await run(["docker", "container", "inspect", name])).code !== 0) continue;
          if ((await inspect(name)).status === "running") running.push(name);
        }
        assert.ok(running.length > 0, "some agencies were still reconnecting");
        const started = performance.now();
        await runOrThrow(["docker", "stop", "-t", "10", ...running], "Cannot stop the agencies", {
          timeoutMs: 60_000,
        });
        const elapsed = performance.now() - started;
        const codes = new Map<string, number>();
        for (const name of running) codes.set(name, (await inspect(name)).exitCode);
        console.log(`   docker stop -t 10 ${running.join(" ")}: ${elapsed.toFixed(0)} ms`);
        assert.deepEqual(
          Object.fromEntries(codes),
          Object.fromEntries(running.map((name) => [name, 0])),
          "SIGTERM while reconnecting exits 0 (137 means SIGKILL after 10 s)",
        );
      },
    });

    await t.step("5a. gen-compose 0: the server alone, healthy", async () => {
      await ws.down();
      await ws.resetConfigs();
      // up --clients 0 over the file of another step: regenerated, and said.
      const said = await ws.up({ clients: 0 });
      assert.deepEqual(said.slice(0, 2), [
        `up: regenerated ${ws.file}`,
        "up: starting server + 0 agencies, mode none, bets live in the server container " +
        "(down ends the draw)",
      ]);
      await waitFor(
        "a healthy server",
        async () => (await inspect("server")).health === "healthy" ? true : undefined,
        60_000,
      );
      assert.deepEqual(await projectContainers(), ["server"]);
      const echo = await runTool("validate_echo.ts");
      assert.equal(echo.stdout, `${SUCCESS_LINE}\n`, echo.stderr);
      await assertNoFailLines(["server"]);
    });

    await t.step("5b. gen-compose 20: twenty agencies all finish", async () => {
      await ws.down();
      await ws.resetConfigs();
      const counts = await ws.generateData(20, { betsPerAgency: 500, seed: 20, winnerShare: 0.01 });
      await ws.generate({ clients: 20 });
      const started = performance.now();
      await ws.up();
      const codes = await waitExited(clientNames(20), 300_000);
      console.log(
        `   20 agencies, 10000 bets: up to all exited in ${
          ((performance.now() - started) / 1000).toFixed(1)
        } s`,
      );
      assert.deepEqual([...codes.values()], Array(20).fill(0), "the 20 clients exit 0");
      await assertLotteryRun(counts);
    });

    await t.step(
      "8. gen-compose --secrets 3: agencies prove who they are; a wrong or missing secret is refused",
      async () => {
        await ws.down();
        await ws.resetConfigs();
        const counts = await ws.generateData(3, { betsPerAgency: 300, seed: 8, winnerShare: 0.02 });
        await ws.generate({ clients: 3, secrets: true });
        const secretsDir = `${ws.dir}/${SECRETS_DIR}`;
        const secrets = await loadSecrets(`${secretsDir}/${SECRETS_FILE}`, 3);
        const composeText = await Deno.readTextFile(ws.file);
        for (const secret of secrets.values()) {
          assert.ok(!composeText.includes(secret), "no secret in the compose file");
        }
        const started = performance.now();
        await ws.up();
        const codes = await waitExited(clientNames(3), 120_000);
        console.log(
          `   3 agencies with secrets: up to all exited in ${
            ((performance.now() - started) / 1000).toFixed(1)
          } s`,
        );
        assert.deepEqual([...codes.values()], [0, 0, 0], "the 3 authenticated clients exit 0");
        const config = (await actions("server", "config"))[0];
        assert.equal(config?.fields.get("secrets"), "3", "the server loaded the mounted secrets");
        await assertLotteryRun(counts);

        const refusals = async () =>
          (await actions("server", "receive_message"))
            .filter((line) => line.result === "fail" && line.fields.get("error") === "UNAUTHORIZED")
            .map((line) => line.fields.get("detail") ?? "");

        // A wrong secret through the agency's own env file: Compose sees the changed
        // environment and recreates the container (no --force-recreate needed).
        await Deno.writeTextFile(
          `${secretsDir}/${clientEnvFile(2)}`,
          `CLI_SECRET=${newSecret()}\n`,
        );
        await ws.compose(["up", "-d", "--no-deps", "client2"]);
        const wrong = await waitExited(["client2"], 60_000);
        assert.equal(wrong.get("client2"), 1, "a refused agency exits 1");
        const client2Fail = (await actions("client2")).filter((line) => line.result === "fail");
        assert.equal(client2Fail.length, 1, "client2 logs its refusal once");
        assert.match(client2Fail[0]!.fields.get("error") ?? "", /UNAUTHORIZED/);
        assert.deepEqual(await refusals(), ["Cannot serve agency 2꞉ wrong secret"]);

        // Peers on the network: one with no secret, one with another agency's secret.
        const peers: [string, Record<string, string>][] = [
          ["tp0-e2e-no-secret", { CLI_ID: "3" }],
          ["tp0-e2e-borrowed-secret", { CLI_ID: "3", CLI_SECRET: secrets.get(1) ?? "" }],
        ];
        for (const [name, env] of peers) {
          standIns.push(name);
          const result = await run([
            "docker",
            "run",
            "--name",
            name,
            "--network",
            NETWORK_NAME,
            ...Object.entries({ ...env, CLI_MODE: "agency" }).flatMap((
              [k, v],
            ) => ["-e", `${k}=${v}`]),
            "-v",
            `${ws.dir}/client/config.yaml:/app/client/config.yaml:ro`,
            "-v",
            `${ws.dir}/.data/agency-3.csv:/app/.data/agency-3.csv:ro`,
            IMAGES.client,
          ], { timeoutMs: 60_000 });
          assert.equal(result.code, 1, `${name} is refused: ${result.stdout}${result.stderr}`);
          assert.match(result.stdout, /action: agencia \| result: fail .*UNAUTHORIZED/);
          await run(["docker", "rm", "-f", name]);
        }
        assert.deepEqual(await refusals(), [
          "Cannot serve agency 2꞉ wrong secret",
          "Cannot serve agency 3꞉ wrong secret",
          "Cannot serve agency 3꞉ wrong secret",
        ]);
        assert.equal((await inspect("server")).status, "running", "the server serves on");
      },
    );
    await t.step(
      "9. an agency's file missing: up refuses; started by hand, that agency fails alone, the " +
        "others and the server name it, and a Docker restart of the server keeps its bets",
      async () => {
        await ws.down();
        await ws.resetConfigs();
        await ws.editConfig("server/config.ini", [[/$/, "SERVER_PROGRESS_INTERVAL = 1s\n"]]);
        const data = { betsPerAgency: 1000, seed: 9, winnerShare: 0.01 };
        const counts = await ws.generateData(3, data);
        await Deno.remove(`${ws.dir}/.data/agency-3.csv`);
        await ws.generate({ clients: 3 });
        await assert.rejects(ws.up(), /agency-3\.csv is missing/);
        assert.deepEqual(await projectContainers(), [], "up started nothing");

        // As the compose file's header says it can be: Compose by hand.
        await ws.compose(["up", "-d"]);
        assert.equal((await waitExited(["client3"], 60_000)).get("client3"), 2, "bad input: 2");
        const failed = (await actions("client3")).filter((line) => line.result === "fail");
        assert.deepEqual(failed.map((line) => line.action), ["agencia"], "one clear line");
        assert.match(
          failed[0]!.fields.get("error")!,
          /^Cannot read bets from \.data\/agency-3\.csv꞉ no such file/,
        );
        await assert.rejects(
          Deno.stat(`${ws.dir}/.data/agency-3.csv`),
          Deno.errors.NotFound,
          "Docker made no folder in its place",
        );
        await waitFor("agencies 1 and 2 to be done loading", async () => {
          const progress = (await actions("server", "progreso")).at(-1);
          return progress?.fields.get("agencias_listas") === "2" ? true : undefined;
        }, 60_000);
        // While they wait for the draw, the others and the server say at INFO whom it waits for.
        await waitFor("agency 3 named at INFO by the others and the server", async () => {
          const named = (name: string, action: LogAction) =>
            actions(name, action).then((lines) =>
              lines.some((line) =>
                line.level === "INFO" && line.result === "in_progress" &&
                line.fields.get("agencias_pendientes") === "3"
              )
            );
          const all = await Promise.all([
            named("server", "progreso"),
            named("client1", "consulta_ganadores"),
            named("client2", "consulta_ganadores"),
          ]);
          return all.every(Boolean) ? true : undefined;
        }, 30_000);

        // A crash, then Docker starts the same container again: the bets are in it.
        await runOrThrow(["docker", "kill", "server"], "Cannot kill server");
        await runOrThrow(["docker", "start", "server"], "Cannot start server");
        const reopened = await waitFor(
          "the restarted server to open its storage",
          async () => (await actions("server", "open_storage")).at(1),
          60_000,
        );
        const loaded = counts.get(1)!.rows + counts.get(2)!.rows;
        assert.equal(reopened.fields.get("apuestas"), String(loaded), "no acked bet lost");
        assert.equal(reopened.fields.get("estado"), "existente", "the server says it reuses state");

        // Agency 3's file arrives (agencies 1 and 2 get the same ones again); it starts again.
        await ws.generateData(3, data);
        await runOrThrow(["docker", "start", "client3"], "Cannot start client3");
        assert.deepEqual([...(await waitExited(clientNames(3), 120_000)).values()], [0, 0, 0]);
        // Every bet stored once (none sent twice), one draw, each agency its own winners.
        await assertDraw(counts);
      },
    );

    await t.step(
      "10. --keep-bets: down keeps the draw on tp0_bets, up says it reuses it, down --volumes ends it",
      async () => {
        await ws.down();
        await ws.resetConfigs();
        const counts = await ws.generateData(2, {
          betsPerAgency: 500,
          seed: 10,
          winnerShare: 0.01,
        });
        await ws.generate({ clients: 2 });
        const first = await ws.up({ keepBets: true });
        assert.deepEqual(first, [
          `up: regenerated ${ws.file}`,
          "up: starting server + 2 agencies, mode agency, bets kept across down in volume tp0_bets",
          "up: a fresh draw (bets kept in volume tp0_bets)",
          "up: project tp0 running on tp0_testing_net; deno task logs to follow, deno task down to stop",
        ]);
        assert.deepEqual([...(await waitExited(clientNames(2), 120_000)).values()], [0, 0]);
        await assertLotteryRun(counts);
        await down({ file: ws.file, quiet: true });
        assert.deepEqual(await projectContainers(), []);
        const volume = ["docker", "volume", "inspect", BETS_VOLUME];
        assert.equal((await run(volume)).code, 0, "down kept the volume");

        const second = await ws.up();
        const total = [...counts.values()].reduce((n, c) => n + c.rows, 0);
        assert.ok(
          second.includes(
            `up: the server reuses the stored draw: ${total} bets stored, agencies done: 1 2, ` +
              "draw done; for a fresh draw: deno task down --volumes, then up",
          ),
          second.join("\n"),
        );
        // The agencies run again: nothing is sent twice, each gets its winners from the stored draw.
        assert.deepEqual([...(await waitExited(clientNames(2), 120_000)).values()], [0, 0]);
        const resent = (await actions("server", "apuesta_recibida")).filter((l) =>
          l.result === "success"
        );
        assert.equal(sum(resent, "cantidad"), 0, "no bet sent again");
        for (const [id, count] of counts) {
          const winners = (await actions(`client${id}`, "consulta_ganadores")).at(-1);
          assert.equal(winners?.fields.get("cant_ganadores"), String(count.winners));
        }
        await ws.down();
        assert.notEqual((await run(volume)).code, 0, "down --volumes deleted it");
      },
    );
  } finally {
    // 7. Always clean up, whatever failed above.
    for (const name of standIns) await run(["docker", "rm", "-f", name]);
    await ws.down().catch((error) => console.error(`down failed: ${error}`));
    await ws.remove();
  }
  assert.deepEqual(await projectContainers(), [], "down left nothing behind");
});
