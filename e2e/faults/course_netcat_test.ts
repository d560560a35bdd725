/**
 * The course's echo, checked as students' `validar-echo-server.sh` scripts reach it: the
 * netcats they use (netcat-openbsd, Debian's and Ubuntu's default `nc` and Alpine's
 * `apk add netcat-openbsd`; netcat-traditional; busybox), with and without a line break,
 * with and without the flags that close the sending side, against `bin/server` on 127.0.0.1.
 * Each must return at once with the course's answer, and the server log no failure.
 *
 * Needs `nc.openbsd`, `nc.traditional` and `busybox` (tools/provision_docker.sh installs them):
 * a missing one fails the test.
 */
import assert from "node:assert/strict";
import { parseLog, startServer } from "../lottery/_harness.ts";
import { reportNoBets } from "./_faults.ts";

/**
 * How long each netcat may take (`timeout`): far under the server's 30 s idle timeout, which
 * an answer given only at the server's close would wait for, and over the one second a
 * `-w 1` or `-q 1` netcat waits by itself.
 */
const CLIENT_LIMIT_S = 5;

/** One row of the table: the input, the netcat command line (port appended), the answer. */
interface Row {
  readonly input: string;
  readonly netcat: string;
  readonly reply: string;
}

/** The netcats the rows use, with the package that has each. */
const NETCATS = [
  ["nc.openbsd", "netcat-openbsd"],
  ["nc.traditional", "netcat-traditional"],
  ["busybox", "busybox-static"],
] as const;

/** The rows of one input through each of `netcats`, all with the same reply. */
function through(input: string, reply: string, netcats: readonly string[]): Row[] {
  return netcats.map((netcat) => ({ input, netcat, reply }));
}

/**
 * The issue's table (echo hola through nc.openbsd and nc.traditional; printf '%s' msg, printf
 * test with -w 1 and a CRLF line with -N through nc.openbsd), then the same inputs through the
 * other netcats and flags students' scripts use.
 */
const ROWS: readonly Row[] = [
  ...through("echo hola", "hola\n", [
    "nc.openbsd",
    "nc.traditional",
    "busybox nc",
    "nc.openbsd -N",
  ]),
  ...through("printf '%s' msg", "msg\n", ["nc.openbsd"]),
  ...through("printf test", "test\n", ["nc.openbsd -w 1"]),
  ...through("printf 'hola\\r\\n'", "hola\n", ["nc.openbsd -N", "nc.traditional"]),
  ...through("printf msg", "msg\n", ["busybox nc", "nc.traditional", "nc.traditional -q 1"]),
  ...through("printf 'hola  \\n'", "hola\n", ["busybox nc -w 1"]),
];

/** Whether `program` is on PATH. */
async function installed(program: string): Promise<boolean> {
  const { code } = await new Deno.Command("sh", {
    args: ["-c", 'command -v "$1" >/dev/null', "sh", program],
  }).output();
  return code === 0;
}

Deno.test("course - students' netcat echo checks return at once with the course's answer", async (t) => {
  for (const [program, pkg] of NETCATS) {
    assert.ok(
      await installed(program),
      `${program} is not installed: apt-get install ${pkg} (tools/provision_docker.sh does)`,
    );
  }
  // The default idle timeout (30 s): an answer that waited for it would fail the limit.
  await using server = await startServer({ agencies: 1 });
  const messages: string[] = [];
  for (const row of ROWS) {
    const command =
      `${row.input} | timeout ${CLIENT_LIMIT_S} ${row.netcat} 127.0.0.1 ${server.port}`;
    await t.step(`${row.input} | ${row.netcat}`, async () => {
      const { code, stdout, stderr } = await new Deno.Command("sh", {
        args: ["-c", command],
        stdin: "null",
      }).output();
      const decoder = new TextDecoder();
      assert.equal(
        code,
        0,
        code === 124
          ? `no answer within ${CLIENT_LIMIT_S} s`
          : `exit ${code}: ${decoder.decode(stderr)}`,
      );
      assert.equal(decoder.decode(stdout), row.reply);
      messages.push(row.reply.trimEnd());
      // No "|" in a report row: the report is a Markdown table.
      await reportNoBets(`netcat: ${row.input} → ${row.netcat} (${JSON.stringify(row.reply)})`, 1);
    });
  }
  const { code } = await server.stop();
  assert.equal(code, 0);
  const fails = server.stdout().split("\n").filter((line) => line.includes("result: fail"));
  assert.deepEqual(fails, [], "no result: fail in the server's log");
  const received = parseLog(server.stdout()).filter((l) => l.action === "receive_message");
  assert.deepEqual(
    received.map((l) => [l.result, l.fields.get("msg")]),
    messages.map((m) => ["success", m]),
  );
});
