import assert from "node:assert/strict";
import type { ServerProcess } from "../lottery/_harness.ts";
import {
  account,
  agencyFiles,
  allExit,
  delay,
  expectedRows,
  killAll,
  memoryOf,
  parseLog,
  received,
  reportAccounted,
  reportNoBets,
  runServerToExit,
  startClient,
  startServer,
  waitFor,
} from "./_faults.ts";

/** Runs one agency per file against `server`, each to exit 0, then stops the server cleanly. */
async function runAgenciesThenStop(server: ServerProcess, paths: readonly string[]): Promise<void> {
  const clients = await Promise.all(
    paths.map((path, i) => startClient(i + 1, server.port, { CLI_DATA_PATH: path })),
  );
  const codes = await allExit(clients).finally(() => killAll(clients));
  assert.deepEqual(codes, [0, 0, 0, 0, 0], clients.map((c) => c.stdout()).join("\n"));
  const { code } = await server.stop();
  assert.equal(code, 0);
}

/** Clients that ride out a server restart: many quick attempts. */
/**
 * The server's session threads: each accepts on the port and logs its own accept failures
 * (one line, then one count per window), so a burst is at most that many lines per thread.
 */
const SESSION_THREADS = Number(
  Deno.env.get("TP0_SERVER_WORKERS") ?? navigator.hardwareConcurrency,
);

const RESTART_ENV = { CLI_CONNECT_ATTEMPTS: "100", CLI_CONNECT_BACKOFF: "50ms" };

/** A peer that completes the handshake, then resets (SO_LINGER 0): what a port scanner does. */
const RESET_PEER = `
import socket, struct, sys
for _ in range(int(sys.argv[2])):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.connect(("127.0.0.1", int(sys.argv[1])))
    s.close()
`;

/** CPU time (user + system) a process has used so far, in seconds, from `/proc/PID/stat`. */
function cpuSeconds(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  // Fields after the command name (which may hold spaces): utime and stime are 14th and 15th.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

Deno.test("server - peers that reset right after the handshake, then 5 agencies: all served", async () => {
  const data = await Deno.makeTempDir({ prefix: "tp0-reset-data-" });
  try {
    const paths = await agencyFiles(data, { agencies: 5, bets: 500, seed: 18, winners: 0.01 });
    await using server = await startServer({ agencies: 5 });
    const resets = 200;
    const python = await new Deno.Command("python3", {
      args: ["-c", RESET_PEER, String(server.port), String(resets)],
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.equal(python.code, 0, new TextDecoder().decode(python.stderr));
    await delay(500);
    await runAgenciesThenStop(server, paths);
    const failedAccepts = parseLog(server.stdout()).filter((l) =>
      l.action === "accept_connections" && l.result === "fail"
    );
    // The kernel may hand a reset connection over (the accept then fails) or drop it first.
    assert.ok(
      failedAccepts.length <= 2 * SESSION_THREADS,
      "at most one line and one summary for a burst, per session thread",
    );
    assert.equal(parseLog(server.stdout()).filter((l) => l.action === "sorteo").length, 1);
    const result = await account(`${server.dir}/bets.csv`, await expectedRows(paths));
    await reportAccounted(
      `${resets} peers reset right after the handshake (SO_LINGER 0), then 5 agencies`,
      resets,
      result,
      `accepting goes on (${failedAccepts.length} accept_connections fail line(s)); 5 of 5 agencies exit 0, one sorteo`,
    );
  } finally {
    await Deno.remove(data, { recursive: true });
  }
});

/** Connections the soak makes, and how many are open at once. */
const SOAK_CONNECTIONS = 100_000;
const SOAK_CONCURRENCY = 200;
/** RSS may end at most this much above where it was before the soak. */
const SOAK_MAX_GROWTH_MIB = 32;

/** A short connection: one first chunk, the write side closed, read until the server closes. */
async function shortConnection(port: number, first: Uint8Array): Promise<void> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const limit = setTimeout(() => conn.close(), 10_000);
  try {
    await conn.write(first);
    await conn.closeWrite();
    const buf = new Uint8Array(256);
    while ((await conn.read(buf)) !== null);
  } catch {
    // Reset or closed by the limit: the server still saw the connection come and go.
  } finally {
    clearTimeout(limit);
    try {
      conn.close();
    } catch {
      // Closed by the limit.
    }
  }
}

/** Makes `count` short connections, `concurrency` at a time, cycling through `firsts`. */
async function soak(
  port: number,
  count: number,
  concurrency: number,
  firsts: readonly Uint8Array[],
  deadline: number,
): Promise<number> {
  let next = 0;
  const worker = async () => {
    while (next < count && Date.now() < deadline) {
      const i = next++;
      await shortConnection(port, firsts[i % firsts.length]!).catch(() => {});
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return next;
}

Deno.test("server - 100,000 short connections (0xFB, text, garbage): RSS ends where it started", async () => {
  await using server = await startServer({
    agencies: 1,
    env: { SERVER_PROGRESS_INTERVAL: "200ms" },
  });
  const firsts = [
    new Uint8Array([0xfb]),
    new TextEncoder().encode("hola\n"),
    new Uint8Array([0xff, 0xfe, 0x00, 0x01]),
  ];
  const deadline = Date.now() + 300_000;
  // A warm-up, so the baseline includes what any server holds once it has served at all.
  await soak(server.port, 3_000, SOAK_CONCURRENCY, firsts, deadline);
  await delay(2_000);
  const before = memoryOf(server.pid)!;
  const made = await soak(server.port, SOAK_CONNECTIONS, SOAK_CONCURRENCY, firsts, deadline);
  assert.equal(made, SOAK_CONNECTIONS, "every connection made within 5 minutes");
  const peak = memoryOf(server.pid)!;
  await delay(5_000);
  const after = memoryOf(server.pid)!;
  const { code } = await server.stop();
  assert.equal(code, 0);
  const growth = after.rssMiB - before.rssMiB;
  const figures = `RSS ${before.rssMiB.toFixed(1)} MiB before, ${
    peak.rssMiB.toFixed(1)
  } at the end, ${after.rssMiB.toFixed(1)} 5 s later (peak ${after.peakMiB.toFixed(1)})`;
  console.log(figures);
  assert.ok(growth <= SOAK_MAX_GROWTH_MIB, `${figures}: grew over ${SOAK_MAX_GROWTH_MIB} MiB`);
  await reportOutcome(
    `${SOAK_CONNECTIONS} short connections, ${SOAK_CONCURRENCY} at a time (0xFB, text, garbage)`,
    `${figures}; bound +${SOAK_MAX_GROWTH_MIB} MiB`,
    SOAK_CONNECTIONS,
  );
});

/** A passing row of a scenario that sends no bets, with the outcome it expects and saw. */
function reportOutcome(scenario: string, outcome: string, faults = 1): Promise<void> {
  return reportNoBets(scenario, faults, outcome);
}

Deno.test("server and agency - a duration out of range is refused at start, naming the key and the range", async (t) => {
  const cases: [Record<string, string>, RegExp][] = [
    [
      { SERVER_IDLE_TIMEOUT: "600h" },
      /SERVER_IDLE_TIMEOUT: .*from 10ms to 576h, or 0 for no timeout/,
    ],
    [{ SERVER_DRAW_WAIT: "0" }, /SERVER_DRAW_WAIT: .*from 10ms to 10m$/],
    [{ SERVER_DRAW_WAIT: "600h" }, /SERVER_DRAW_WAIT: .*from 10ms to 10m$/],
    [{ SERVER_PROGRESS_INTERVAL: "0" }, /SERVER_PROGRESS_INTERVAL: .*from 10ms to 576h$/],
  ];
  for (const [env, pattern] of cases) {
    await t.step(`server ${JSON.stringify(env)}`, async () => {
      const dir = await Deno.makeTempDir({ prefix: "tp0-range-" });
      try {
        const run = await runServerToExit(dir, env);
        assert.equal(run.code, 2, run.stdout + run.stderr);
        const lines = run.stderr.trim().split("\n");
        assert.equal(lines.length, 1, run.stderr);
        assert.match(lines[0]!, pattern);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });
  }
  const clientCases: [Record<string, string>, RegExp][] = [
    [{ CLI_CONNECT_TIMEOUT: "600h" }, /CLI_CONNECT_TIMEOUT[:꞉] .*from 10ms to 576h, or 0/],
    [{ CLI_CONNECT_BACKOFF: "0" }, /CLI_CONNECT_BACKOFF[:꞉] .*from 1ms to 5s/],
    [{ CLI_LOOP_PERIOD: "600h" }, /CLI_LOOP_PERIOD[:꞉] .*from 1ms to 576h, or 0/],
    [{ CLI_TIMEOUT: "600h" }, /CLI_TIMEOUT[:꞉] .*from 10ms to 576h, or 0/],
  ];
  for (const [env, pattern] of clientCases) {
    await t.step(`agency ${JSON.stringify(env)}`, async () => {
      const client = await startClient(1, 1, env);
      assert.equal(await allExit([client], 30_000).then((c) => c[0]), 2, client.stderr());
      const fails = parseLog(client.stdout()).filter((l) => l.result === "fail");
      assert.equal(fails.length, 1, client.stdout());
      assert.match(fails[0]!.fields.get("error") ?? "", pattern);
    });
  }
  await reportOutcome(
    "each duration out of range (600h, 0 where 0 means nothing)",
    `${cases.length + clientCases.length} of ${
      cases.length + clientCases.length
    } refused: exit 2, one line naming the key and its range`,
  );
});

Deno.test("server and agency - the longest durations and a 0 that means none make no busy loop", async () => {
  const measureMs = 5_000;
  await using server = await startServer({
    agencies: 2,
    env: { SERVER_IDLE_TIMEOUT: "0", SERVER_DRAW_WAIT: "10m", SERVER_PROGRESS_INTERVAL: "576h" },
  });
  const idle = await Promise.all(
    Array.from({ length: 200 }, () => Deno.connect({ hostname: "127.0.0.1", port: server.port })),
  );
  const data = await Deno.makeTempDir({ prefix: "tp0-loop-data-" });
  const paths = await agencyFiles(data, { agencies: 2, bets: 50, seed: 3, winners: 0.1 });
  // Agency 1 finishes, then waits for agency 2 (never started): its query is held.
  const agency = await startClient(1, server.port, {
    CLI_DATA_PATH: paths[0]!,
    CLI_TIMEOUT: "576h",
    CLI_CONNECT_TIMEOUT: "576h",
  });
  try {
    await waitFor(() => received(server) === 50, 30_000, "agency 1's bets");
    await delay(500);
    const start = [cpuSeconds(server.pid), cpuSeconds(agency.pid)];
    await delay(measureMs);
    const used = [cpuSeconds(server.pid) - start[0]!, cpuSeconds(agency.pid) - start[1]!];
    // Idle, each takes a few hundredths; a busy loop takes whole seconds over this time.
    const boundSeconds = 1;
    assert.ok(used[0]! < boundSeconds, `server used ${used[0]} s of CPU in ${measureMs} ms`);
    assert.ok(used[1]! < boundSeconds, `agency used ${used[1]} s of CPU in ${measureMs} ms`);
    await reportOutcome(
      "SERVER_IDLE_TIMEOUT 0 with 200 idle sockets, SERVER_DRAW_WAIT 10m, timeouts 576h",
      `CPU over ${measureMs / 1000} s: server ${used[0]!.toFixed(2)} s, waiting agency ${
        used[1]!.toFixed(2)
      } s (bound ${boundSeconds} s)`,
    );
  } finally {
    for (const conn of idle) conn.close();
    await killAll([agency]);
    await Deno.remove(data, { recursive: true });
  }
});

Deno.test("server - a clock set to 2000-01-01: a later birthdate is refused naming the server's date", async () => {
  // The library itself, not the faketime wrapper: the wrapper forks, and a signal to it would
  // not reach the server.
  const library = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
  if (!(await Deno.stat(library).then(() => true, () => false))) {
    console.log(
      "libfaketime is not installed (apt faketime): shared/bet_test.ts tests the message",
    );
    return;
  }
  await using server = await startServer({
    agencies: 1,
    env: { LD_PRELOAD: library, FAKETIME: "@2000-01-01 12:00:00" },
  });
  const agency = await startClient(1, server.port, {
    CLI_MODE: "bet",
    NOMBRE: "Ana",
    APELLIDO: "Lorca",
    DOCUMENTO: "30904465",
    NACIMIENTO: "2000-05-10",
    NUMERO: "7574",
  });
  const [code] = await allExit([agency], 30_000);
  assert.notEqual(code, 0);
  assert.match(agency.stdout(), /birthdate "2000-05-10" is after the server's date 2000-01-01/);
  await reportOutcome(
    "server clock at 2000-01-01 (faketime), a bet born 2000-05-10",
    `refused: birthdate "2000-05-10" is after the server's date 2000-01-01 (agency exit ${code})`,
  );
});

Deno.test("agency - a 200-character ñ secret is refused by its length, never printed", async () => {
  const secret = "ñ".repeat(200);
  const agency = await startClient(1, 1, { CLI_SECRET: secret });
  const [code] = await allExit([agency], 30_000);
  assert.equal(code, 2);
  assert.ok(!agency.stdout().includes("ñ") && !agency.stderr().includes("ñ"), "no part of it");
  const fails = parseLog(agency.stdout()).filter((l) => l.result === "fail");
  assert.equal(fails.length, 1, agency.stdout());
  assert.match(fails[0]!.fields.get("error")!, /\(not shown, 400 bytes\).*at most 255 bytes/);
  await reportOutcome(
    "a 200-character ñ secret (400 bytes)",
    "exit 2, one config fail line with its length and the limit, no byte of the secret",
  );
});

Deno.test("agency - a fifo as data path is refused as not a regular file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tp0-fifo-" });
  try {
    const fifo = `${dir}/agency-1.csv`;
    assert.equal((await new Deno.Command("mkfifo", { args: [fifo] }).output()).code, 0);
    await using server = await startServer({ agencies: 1 });
    const agency = await startClient(1, server.port, { CLI_DATA_PATH: fifo });
    const [code] = await allExit([agency], 30_000).finally(() => killAll([agency]));
    assert.equal(code, 2);
    assert.match(agency.stdout(), /not a regular file \(a fifo or socket\)/);
    await reportOutcome(
      "CLI_DATA_PATH a fifo",
      "exit 2: not a regular file (a fifo or socket), nothing opened",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("server - SIGHUP mid-load is a graceful stop: exit 0, logged, nothing lost after a restart", async () => {
  const data = await Deno.makeTempDir({ prefix: "tp0-hup-data-" });
  const dir = await Deno.makeTempDir({ prefix: "tp0-hup-" });
  const agencies = 3;
  try {
    const paths = await agencyFiles(data, { agencies, bets: 20_000, seed: 29, winners: 0.002 });
    const first = await startServer({ agencies, dir });
    const port = first.port;
    const clients = await Promise.all(
      paths.map((path, i) =>
        startClient(i + 1, port, {
          ...RESTART_ENV,
          CLI_DATA_PATH: path,
          CLI_BATCH_MAXAMOUNT: "20",
        })
      ),
    );
    try {
      await waitFor(() => received(first) > 0, 30_000, "the first acked batch");
      const { code } = await first.stop("SIGHUP");
      assert.equal(code, 0, first.stderr());
      const beforeStop = received(first);
      assert.ok(beforeStop < agencies * 20_000, `stopped mid-load (${beforeStop} bets acked)`);
      const log = parseLog(first.stdout());
      assert.ok(
        log.some((l) => l.action === "shutdown" && l.fields.get("signal") === "SIGHUP"),
        "the stop is logged with its signal",
      );
      assert.ok(log.some((l) => l.action === "shutdown" && l.result === "success"));
      await using second = await startServer({ agencies, dir, port });
      const codes = await allExit(clients, 120_000);
      assert.deepEqual(codes, Array(agencies).fill(0), clients.map((c) => c.stdout()).join("\n"));
      const result = await account(`${dir}/bets.csv`, await expectedRows(paths));
      await second.stop();
      assert.equal(result.lost, 0);
      assert.equal(result.duplicated, 0);
      await reportAccounted(
        "SIGHUP to the server mid-load, then a restart",
        1,
        result,
        `exit 0 with shutdown | signal: SIGHUP logged after ${beforeStop} bets; agencies finish against the restarted server`,
      );
    } finally {
      await killAll(clients);
      await first.stop("SIGKILL").catch(() => {});
    }
  } finally {
    await Deno.remove(data, { recursive: true });
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("agency - SIGHUP is a graceful stop: exit 0, logged with its signal", async () => {
  await using server = await startServer({ agencies: 1 });
  const agency = await startClient(1, server.port, {
    CLI_MODE: "echo",
    CLI_LOOP_AMOUNT: "1000",
    CLI_LOOP_PERIOD: "1s",
  });
  try {
    await waitFor(() => agency.stdout().includes("receive_message"), 30_000, "a first echo");
    agency.kill("SIGHUP");
    const [code] = await allExit([agency], 30_000);
    assert.equal(code, 0, agency.stdout() + agency.stderr());
    const log = parseLog(agency.stdout());
    assert.ok(
      log.some((l) => l.action === "shutdown" && l.fields.get("signal") === "SIGHUP"),
      agency.stdout(),
    );
    await reportOutcome(
      "SIGHUP to an agency mid-loop",
      "exit 0 with shutdown | signal: SIGHUP logged",
    );
  } finally {
    await killAll([agency]);
  }
});

Deno.test("server - out of file descriptors (EMFILE): accepting backs off, then serves 5 agencies", async () => {
  const data = await Deno.makeTempDir({ prefix: "tp0-emfile-data-" });
  try {
    const paths = await agencyFiles(data, { agencies: 5, bets: 500, seed: 24, winners: 0.01 });
    // prlimit sets the limit on itself, then runs the server in its place.
    await using server = await startServer({
      agencies: 5,
      launcher: ["prlimit", "--nofile=64:64"],
    });
    const held: Deno.Conn[] = [];
    try {
      for (let i = 0; i < 100; i++) {
        held.push(await Deno.connect({ hostname: "127.0.0.1", port: server.port }));
      }
      await delay(500);
      const start = cpuSeconds(server.pid);
      await delay(3_000);
      const used = cpuSeconds(server.pid) - start;
      // Spinning on EMFILE would take most of a core over 3 s; backing off takes hundredths.
      assert.ok(used < 1, `server used ${used} s of CPU over 3 s while out of descriptors`);
      const emfile = parseLog(server.stdout()).filter((l) =>
        l.action === "accept_connections" && l.result === "fail" &&
        /os error 24/.test(l.fields.get("error") ?? "")
      );
      assert.ok(
        emfile.length >= 1 && emfile.length <= SESSION_THREADS,
        `one line per session thread while it lasts (then one count per 10 s): ${emfile.length}`,
      );
      for (const conn of held.splice(0)) conn.close();
      await delay(500);
      await runAgenciesThenStop(server, paths);
      const result = await account(`${server.dir}/bets.csv`, await expectedRows(paths));
      await reportAccounted(
        "server out of file descriptors (prlimit 64, 100 connections held), then 5 agencies",
        100,
        result,
        `one EMFILE line, CPU ${used.toFixed(2)} s over 3 s (backs off); 5 of 5 agencies exit 0`,
      );
    } finally {
      for (const conn of held) conn.close();
    }
  } finally {
    await Deno.remove(data, { recursive: true });
  }
});
