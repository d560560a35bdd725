/**
 * The course's own grading, step by step as its black-box tests drive a repository: in a
 * temporary clone, `deno task exercise-branches` and `make docker-image` once; then for each
 * of `ej1` … `ej8`: `git checkout .`, `git switch ejN`, both config files rewritten with only
 * the course's keys, `bash generar-compose.sh docker-compose-dev.yaml N`, the course's
 * `docker build` of `server:latest` and `client:latest` (its exit code ignored: no registry
 * here, the images are make's), Compose v2's `up -d` with no `-p`, and `logs -f` read line by
 * line with the course's parser. Each exercise is bounded in time and ends with `down`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { dirname } from "node:path";
import { run, runOrThrow } from "../../tools/_cli.ts";
import { NETWORK_NAME, sampleBet, SUBNET } from "../../tools/gen_compose.ts";
import { IMAGES } from "../../tools/images.ts";
import {
  courseClientConfig,
  type CourseLine,
  courseServerConfig,
  LogFollower,
  parseCourseLine,
} from "./_course.ts";
import { imageId, ROOT } from "./_helpers.ts";

const FILE = "docker-compose-dev.yaml";
/** Each exercise's bound, from the switch to the end of its checks. */
const EXERCISE_MS = 180_000;
const ENV = {
  PATH: `${dirname(Deno.execPath())}:${Deno.env.get("PATH") ?? ""}`,
  // The clone's commits (exercise-branches) need an identity on a machine with none.
  GIT_AUTHOR_NAME: "course test",
  GIT_AUTHOR_EMAIL: "course-test@localhost",
  GIT_COMMITTER_NAME: "course test",
  GIT_COMMITTER_EMAIL: "course-test@localhost",
};

/** Runs a command in the clone; throws with its last line when it fails. */
function sh(clone: string, argv: readonly string[], what = argv.join(" ")): Promise<string> {
  return runOrThrow(argv, `Cannot run ${what}`, { cwd: clone, env: ENV, timeoutMs: 600_000 });
}

/**
 * `git checkout .`, `git switch ejN`, the configs rewritten, the compose file for `clients`,
 * the course's two builds; returns whether both builds worked (they need a registry).
 */
async function prepare(
  clone: string,
  exercise: number,
  clients: number,
  client: Parameters<typeof courseClientConfig>[0],
  server: Parameters<typeof courseServerConfig>[0] = {},
): Promise<boolean> {
  await sh(clone, ["git", "checkout", "."]);
  await sh(clone, ["git", "switch", "-q", `ej${exercise}`]);
  await Deno.writeTextFile(`${clone}/client/config.yaml`, courseClientConfig(client));
  await Deno.writeTextFile(`${clone}/server/config.ini`, courseServerConfig(server));
  await sh(clone, ["bash", "generar-compose.sh", FILE, String(clients)]);
  let built = true;
  for (const app of ["server", "client"]) {
    // The course ignores the exit code; without a registry this fails at once.
    const build = ["docker", "build", "-f", `./${app}/Dockerfile`, "-t", `${app}:latest`, "."];
    built &&= (await run(build, { cwd: clone, timeoutMs: 600_000 })).code === 0;
  }
  return built;
}

/** `up -d`, then the checks with the logs followed, then `down`, all bounded. */
async function deployed(clone: string, check: (logs: LogFollower) => Promise<void>) {
  await sh(clone, ["docker", "compose", "-f", FILE, "up", "-d"]);
  const logs = new LogFollower(clone, FILE);
  try {
    await check(logs);
    assert.deepEqual(logs.problems, [], "every line parses by the course's rule");
  } finally {
    await logs.stop();
    await run(["docker", "compose", "-f", FILE, "down", "-t", "10"], {
      cwd: clone,
      timeoutMs: 120_000,
    });
  }
}

/** The lines with `result: fail`, as `source: action` for a message. */
function fails(lines: readonly CourseLine[]): string[] {
  return lines.filter((l) => l.result === "fail").map((l) => `${l.source}: ${l.action}`);
}

const clientsOf = (n: number) => Array.from({ length: n }, (_, i) => `client${i + 1}`);

/** Ex.1 and 2: each client echoed N°1 … N°amount, then loop_finished; the server never exited. */
async function echoLoops(logs: LogFollower, clients: number, amount: number): Promise<void> {
  const finished = (name: string) => logs.of(name).some((l) => l.action === "loop_finished");
  await logs.until("every loop_finished", () => clientsOf(clients).every(finished), EXERCISE_MS);
  for (const name of clientsOf(clients)) {
    const echoed = logs.of(name).filter((l) => l.action === "receive_message")
      .map((l) => l.fields.get("msg") ?? "");
    assert.equal(echoed.length, amount, `${name} received ${echoed.join(", ")}`);
    echoed.forEach((msg, i) => assert.ok(msg.endsWith(`N°${i + 1}`), `${name}: ${msg}`));
  }
  assert.ok(!logs.of("server").some((l) => l.action === "exit"), "the server never exits");
  assert.deepEqual(fails(logs.lines), []);
}

/** Rows and winners of each `.data/agency-N.csv` in the clone. */
async function agencyFiles(clone: string, agencies: number) {
  const files = [];
  for (let id = 1; id <= agencies; id++) {
    const rows = (await Deno.readTextFile(`${clone}/.data/agency-${id}.csv`))
      .split(/\r?\n/).filter((row) => row !== "");
    files.push({ rows: rows.length, winners: rows.filter((r) => r.endsWith(",7574")).length });
  }
  return files;
}

/** A mock `server` on the network: `reply` (sh) runs on each connection's socket. */
async function mockServer(context: string, tag: string, reply: string): Promise<void> {
  await Deno.writeTextFile(`${context}/reply`, `#!/bin/sh\n${reply}\n`);
  await Deno.chmod(`${context}/reply`, 0o755);
  await Deno.writeTextFile(
    `${context}/Dockerfile`,
    `FROM ${IMAGES.busybox}\nCOPY reply /reply\nCMD ["nc", "-ll", "-p", "12345", "-e", "/reply"]\n`,
  );
  const build = ["docker", "build", "--network", "none", "-q", "-t", tag, context];
  await runOrThrow(build, `Cannot build the mock ${tag}`, { timeoutMs: 120_000 });
  const start = ["docker", "run", "-d", "--name", "server", "--network", NETWORK_NAME, tag];
  await runOrThrow(start, `Cannot start the mock ${tag}`, { timeoutMs: 60_000 });
}

Deno.test({
  name: "the course's grading passes on ej1 … ej8 with Compose v2",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    await t.step("the course's parser reads lines as the course does", () => {
      const line = parseCourseLine(
        "\x1b[2Kclient1  | 2026-12-08 01:00:00 INFO     action: " +
          "receive_message | result: success | client_id: 1 | msg: [CLIENT 1] Message N°1",
      )!;
      assert.equal(line.source, "client1");
      assert.equal(line.action, "receive_message");
      assert.equal(line.fields.get("msg"), "[CLIENT 1] Message N°1");
      assert.equal(parseCourseLine("server exited with code 0")?.result, "success");
      assert.equal(parseCourseLine("client2 exited with code 137")?.result, "fail");
      assert.throws(() => parseCourseLine("server  | action: x | result: done"), /result "done"/);
      assert.throws(() => parseCourseLine("server  | action: x | result: fail | oops"), /no ":"/);
    });
    const version = await run(["docker", "compose", "version"], { timeoutMs: 20_000 });
    assert.equal(version.code, 0, "Compose v2 (docker compose) is installed");
    const clone = await Deno.makeTempDir({ prefix: "tp0-course-" });
    try {
      await sh(clone, ["git", "clone", "-q", ROOT, clone]);
      const said = await sh(clone, [Deno.execPath(), "task", "-q", "exercise-branches"]);
      assert.match(said, /git push -f origin ej1 ej2 ej3 ej4 ej5 ej6 ej7 ej8/);
      await sh(clone, ["make", "docker-image"]);
      const made = { server: await imageId(IMAGES.server), client: await imageId(IMAGES.client) };
      let clientImage = made.client;

      await t.step("ej1: the echo clients each get every message back", async () => {
        if (!await prepare(clone, 1, 3, { amount: 3, period: "100ms" })) {
          assert.equal(await imageId(IMAGES.server), made.server, "a failed build keeps the tag");
          assert.equal(await imageId(IMAGES.client), made.client, "a failed build keeps the tag");
        }
        clientImage = await imageId(IMAGES.client);
        await deployed(clone, (logs) => echoLoops(logs, 3, 3));
      });

      await t.step("ej2: the rewritten configs show in the config lines, no rebuild", async () => {
        await prepare(clone, 2, 2, { amount: 4, period: "120ms", level: "DEBUG" }, {
          backlog: 7,
          level: "DEBUG",
        });
        await deployed(clone, async (logs) => {
          await echoLoops(logs, 2, 4);
          const server = logs.of("server").find((l) => l.action === "config")!;
          assert.equal(server.fields.get("listen_backlog"), "7");
          assert.equal(server.fields.get("logging_level"), "DEBUG");
          for (const name of clientsOf(2)) {
            const config = logs.of(name).find((l) => l.action === "config")!;
            assert.equal(config.fields.get("loop_amount"), "4");
            assert.equal(config.fields.get("loop_period"), "120ms");
            assert.equal(config.fields.get("log_level"), "DEBUG");
          }
          const image = await sh(clone, [
            "docker",
            "container",
            "inspect",
            "--format",
            "{{.Image}}",
            "client1",
          ]);
          assert.equal(image, clientImage, "ej1's image: the configs are not in it");
        });
      });

      await t.step("ej3: validar-echo-server.sh under sh, on ours and on two mocks", async () => {
        await prepare(clone, 3, 0, { amount: 1, period: "100ms" });
        await deployed(clone, async (logs) => {
          await logs.until(
            "the server accepting",
            () => logs.of("server").some((l) => l.action === "accept_connections"),
            EXERCISE_MS,
          );
          const ours = await run(["sh", "validar-echo-server.sh"], {
            cwd: clone,
            env: ENV,
            timeoutMs: 60_000,
          });
          assert.equal(ours.stdout.trim(), "action: test_echo_server | result: success");
          assert.deepEqual(fails(logs.lines), []);
        });
        const context = await Deno.makeTempDir({ prefix: "tp0-course-mock-" });
        const cleanup = async () => {
          await run(["docker", "rm", "-f", "server"], { timeoutMs: 60_000 });
        };
        try {
          const network = ["docker", "network", "create", "--subnet", SUBNET, NETWORK_NAME];
          await runOrThrow(network, "Cannot create the mocks' network", { timeoutMs: 60_000 });
          // One read of up to 1024 bytes answered as received, then close: recv, sendall.
          const mocks = [
            ["tp0-mock-echo:test", "exec dd bs=1024 count=1 2>/dev/null", "success"],
            [
              "tp0-mock-error:test",
              "printf 'error: '; exec dd bs=1024 count=1 2>/dev/null",
              "fail",
            ],
          ] as const;
          for (const [tag, reply, expected] of mocks) {
            await mockServer(context, tag, reply);
            try {
              const result = await run(["sh", "validar-echo-server.sh"], {
                cwd: clone,
                env: ENV,
                timeoutMs: 60_000,
              });
              assert.equal(
                result.stdout.trim(),
                `action: test_echo_server | result: ${expected}`,
                `against ${tag}`,
              );
              assert.equal(result.code === 0, expected === "success", `exit code against ${tag}`);
            } finally {
              await cleanup();
            }
          }
        } finally {
          await cleanup();
          await run(["docker", "network", "rm", NETWORK_NAME], { timeoutMs: 60_000 });
          const tags = ["tp0-mock-echo:test", "tp0-mock-error:test"];
          await run(["docker", "rmi", ...tags], { timeoutMs: 60_000 });
          await Deno.remove(context, { recursive: true });
        }
      });

      await t.step("ej4: each stop the course makes exits with code 0", async () => {
        const stops = [
          [["docker", "stop", "client1", "-t", "20"], ["client1"]],
          [["docker", "stop", "server", "-t", "20"], ["server"]],
          [["docker", "compose", "-f", FILE, "stop", "-t", "10"], ["server", ...clientsOf(2)]],
        ] as const;
        for (const [stop, exited] of stops) {
          await prepare(clone, 4, 2, { amount: 500, period: "150ms" });
          await deployed(clone, async (logs) => {
            await logs.until(
              "the clients echoing",
              () =>
                clientsOf(2).every((c) => logs.of(c).some((l) => l.action === "receive_message")),
              EXERCISE_MS,
            );
            assert.deepEqual(fails(logs.lines), [], "no fail before the stop");
            await sh(clone, [...stop]);
            const exit = (name: string) => logs.of(name).find((l) => l.action === "exit");
            await logs.until(`${exited.join(", ")} exiting`, () => exited.every(exit), 60_000);
            for (const name of exited) {
              assert.equal(exit(name)!.fields.get("code"), "0", `${stop.join(" ")}: ${name}`);
            }
          });
        }
      });

      await t.step("ej5: each agency's bet sent and stored", async () => {
        await prepare(clone, 5, 5, { amount: 1, period: "100ms" });
        await deployed(clone, async (logs) => {
          const bets = clientsOf(5).map((_, i) => sampleBet(i + 1));
          const stored = (dni: string) =>
            logs.of("server").some((l) =>
              l.action === "apuesta_almacenada" && l.fields.get("dni") === dni
            );
          const sent = (id: number) =>
            logs.of(`client${id}`).some((l) => l.action === "apuesta_enviada");
          await logs.until(
            "every bet sent and stored",
            () => bets.every((b, i) => stored(b.DOCUMENTO) && sent(i + 1)),
            EXERCISE_MS,
          );
          for (const [i, bet] of bets.entries()) {
            const sent = logs.of(`client${i + 1}`).find((l) => l.action === "apuesta_enviada");
            assert.equal(sent?.fields.get("dni"), bet.DOCUMENTO);
            assert.equal(sent?.fields.get("numero"), bet.NUMERO);
            const kept = logs.of("server").find((l) =>
              l.action === "apuesta_almacenada" && l.fields.get("dni") === bet.DOCUMENTO
            );
            assert.equal(kept?.fields.get("numero"), bet.NUMERO);
          }
          assert.deepEqual(fails(logs.lines), []);
        });
      });

      await sh(clone, [
        ...[Deno.execPath(), "task", "-q", "dataset", "generate", "--agencies", "5"],
        ...["--bets-per-agency", "400", "--seed", "17", "--winner-share", "0.02"],
      ]);
      const files = await agencyFiles(clone, 5);
      for (const exercise of [6, 7, 8]) {
        await t.step(
          `ej${exercise}: batches add up to the files, one draw, each agency's winners`,
          async () => {
            await prepare(clone, exercise, 5, { amount: 1, period: "100ms", maxAmount: 37 });
            await deployed(clone, async (logs) => {
              const winners = (name: string) =>
                logs.of(name).find((l) => l.action === "consulta_ganadores");
              const received = () =>
                logs.of("server").filter((l) => l.action === "apuesta_recibida")
                  .reduce((sum, l) => sum + Number(l.fields.get("cantidad")), 0);
              const draws = () => logs.of("server").filter((l) => l.action === "sorteo").length;
              const bets = files.reduce((sum, f) => sum + f.rows, 0);
              // Compose merges the containers' logs in no set order: wait for all of them.
              await logs.until(
                `every agency's winners, ${bets} bets received and the draw`,
                () => clientsOf(5).every(winners) && received() >= bets && draws() > 0,
                EXERCISE_MS,
              );
              assert.equal(received(), bets);
              assert.equal(draws(), 1);
              for (const [i, file] of files.entries()) {
                assert.equal(
                  winners(`client${i + 1}`)!.fields.get("cant_ganadores"),
                  String(file.winners),
                );
              }
              assert.deepEqual(fails(logs.lines), []);
            });
          },
        );
      }
    } finally {
      await run(["docker", "compose", "-f", FILE, "down", "-t", "5"], {
        cwd: clone,
        timeoutMs: 120_000,
      });
      await Deno.remove(clone, { recursive: true }).catch(() => {});
    }
  },
});
