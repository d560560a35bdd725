import assert from "node:assert/strict";
import { bindSources, composeArgv, envFileSources, pickCompose } from "./compose.ts";
import { composeDocument } from "./gen_compose.ts";
import { ToolError } from "./_docker.ts";

Deno.test("pickCompose() prefers v2, falls back to v1, and fails with one clear line", () => {
  assert.deepEqual(pickCompose({ v2: true, v1: true }), ["docker", "compose"]);
  assert.deepEqual(pickCompose({ v2: false, v1: true }), ["docker-compose"]);
  assert.throws(
    () => pickCompose({ v2: false, v1: false }),
    (error: unknown) =>
      error instanceof ToolError && error.message.startsWith("Cannot find Docker Compose") &&
      !error.message.includes("\n"),
  );
});

Deno.test("composeArgv() always names project tp0 and the file", () => {
  assert.deepEqual(
    composeArgv(["docker", "compose"], { file: "x.yaml", command: ["logs", "-f"] }),
    [
      "docker",
      "compose",
      "-p",
      "tp0",
      "-f",
      "x.yaml",
      "logs",
      "-f",
    ],
  );
});

Deno.test("bindSources() lists the host files a generated file mounts", () => {
  const doc = composeDocument({ clients: 2 });
  assert.deepEqual(bindSources(doc, "/repo"), [
    "/repo/server/config.ini",
    "/repo/client/config.yaml",
    "/repo/.data/agency-1.csv",
    "/repo/.data/agency-2.csv",
  ]);
});

Deno.test("bindSources() skips named volumes and reads the long syntax", () => {
  const doc = {
    services: {
      a: {
        volumes: [
          "bets:/data",
          "/abs/file:/x:ro",
          { type: "bind", source: "./rel", target: "/y" },
          { type: "volume", source: "named", target: "/z" },
        ],
      },
      b: {},
    },
  };
  assert.deepEqual(bindSources(doc, "/base"), ["/abs/file", "/base/rel"]);
  assert.deepEqual(bindSources({}, "/base"), []);
});

async function runCompose(args: string[]) {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("./compose.ts", import.meta.url).pathname, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: output.code, stderr: new TextDecoder().decode(output.stderr) };
}

Deno.test("compose CLI prints one error line and exits 1 on bad input", async (t) => {
  const cases = [
    [],
    ["frobnicate"],
    ["up", "extra"],
    ["up", "--mode", "loop"],
    ["up", "--path", "cloud"],
    ["up", "--clients", "999"],
    ["down", "--timeout", "forever"],
    ["logs", "--bogus"],
  ];
  for (const args of cases) {
    await t.step(args.join(" ") || "(none)", async () => {
      const { code, stderr } = await runCompose(args);
      assert.equal(code, 1);
      assert.equal(stderr.trim().split("\n").length, 1, stderr);
      assert.match(stderr, /^compose: /);
    });
  }
});

Deno.test("envFileSources() lists the env files of a generated file with secrets", () => {
  assert.deepEqual(envFileSources(composeDocument({ clients: 2 }), "/repo"), []);
  assert.deepEqual(envFileSources(composeDocument({ clients: 2, secrets: true }), "/repo"), [
    "/repo/.secrets/client1.env",
    "/repo/.secrets/client2.env",
  ]);
  assert.ok(
    bindSources(composeDocument({ clients: 1, secrets: true }), "/repo")
      .includes("/repo/.secrets/agencies.ini"),
  );
});

Deno.test("envFileSources() reads a list, the long syntax and absolute paths", () => {
  const doc = {
    services: {
      a: { env_file: ["./a.env", "/abs/b.env"] },
      b: { env_file: [{ path: "./c.env", required: false }] },
      c: {},
    },
  };
  assert.deepEqual(envFileSources(doc, "/base"), ["/base/a.env", "/abs/b.env", "/base/c.env"]);
});
