import assert from "node:assert/strict";
import { composeArgv, hostSources } from "./compose.ts";
import { composeDocument } from "./gen_compose.ts";

Deno.test("composeArgv() always names project tp0 and the file", () => {
  assert.deepEqual(
    composeArgv(["docker", "compose"], { file: "x.yaml", command: ["logs", "-f"] }),
    ["docker", "compose", "-p", "tp0", "-f", "x.yaml", "logs", "-f"],
  );
});

Deno.test("hostSources() lists the host files a generated file mounts or reads", () => {
  assert.deepEqual(hostSources(composeDocument({ clients: 2 }), "/repo"), [
    "/repo/server/config.ini",
    "/repo/client/config.yaml",
    "/repo/.data/agency-1.csv",
    "/repo/.data/agency-2.csv",
  ]);
  assert.deepEqual(hostSources(composeDocument({ clients: 1, secrets: true }), "/repo"), [
    "/repo/server/config.ini",
    "/repo/.secrets/agencies.ini",
    "/repo/client/config.yaml",
    "/repo/.data/agency-1.csv",
    "/repo/.secrets/client1.env",
  ]);
});

Deno.test("hostSources() skips named volumes and reads the long syntaxes and absolute paths", () => {
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
      b: { env_file: ["./a.env", "/abs/b.env"] },
      c: { env_file: [{ path: "./c.env", required: false }] },
      d: {},
    },
  };
  assert.deepEqual(hostSources(doc, "/base"), [
    "/abs/file",
    "/base/rel",
    "/base/a.env",
    "/abs/b.env",
    "/base/c.env",
  ]);
  assert.deepEqual(hostSources({}, "/base"), []);
});
