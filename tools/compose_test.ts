import assert from "node:assert/strict";
import { composeArgv, mountProblems, readDeployment, storageLine } from "./compose.ts";
import { composeDocument } from "./gen_compose.ts";
import { withTempDir } from "../testing/dataset_files.ts";

Deno.test("composeArgv() always names project tp0 and the file", () => {
  assert.deepEqual(
    composeArgv(["docker", "compose"], { file: "x.yaml", command: ["logs", "-f"] }),
    ["docker", "compose", "-p", "tp0", "-f", "x.yaml", "logs", "-f"],
  );
});

Deno.test("readDeployment() reads back agencies, mode, storage and secrets of a generated file", () => {
  assert.deepEqual(readDeployment(composeDocument({ clients: 5, mode: "echo" })), {
    clients: 5,
    mode: "echo",
    keepBets: false,
    secrets: false,
  });
  assert.deepEqual(
    readDeployment(composeDocument({ clients: 2, secrets: true, keepBets: true })),
    { clients: 2, mode: "agency", keepBets: true, secrets: true },
  );
  assert.deepEqual(readDeployment(composeDocument({ clients: 0 })), {
    clients: 0,
    mode: "none",
    keepBets: false,
    secrets: false,
  });
  const mixed = composeDocument({ clients: 2, mode: "bet" }) as {
    services: Record<string, { environment: Record<string, string> }>;
  };
  mixed.services["client2"]!.environment["CLI_MODE"] = "echo";
  assert.equal(readDeployment(mixed).mode, "mixed");
  // A bind mount on /data is the user's folder, not the named volume.
  assert.equal(
    readDeployment({ services: { server: { volumes: ["./bets:/data"] } } }).keepBets,
    false,
  );
});

async function touch(dir: string, ...paths: string[]): Promise<void> {
  for (const path of paths) {
    await Deno.mkdir(`${dir}/${path}`.replace(/\/[^/]+$/, ""), { recursive: true });
    await Deno.writeTextFile(`${dir}/${path}`, "x\n");
  }
}

Deno.test("mountProblems() is empty when every mounted file and agency CSV is there", async () => {
  await withTempDir(async (dir) => {
    await touch(dir, "server/config.ini", "client/config.yaml", ".data/agency-1.csv");
    await touch(dir, ".data/agency-2.csv", ".secrets/agencies.ini");
    await touch(dir, ".secrets/client1.env", ".secrets/client2.env");
    assert.deepEqual(await mountProblems(composeDocument({ clients: 2, secrets: true }), dir), []);
    // Echo and bet agencies read no data: an empty folder is enough.
    await Deno.remove(`${dir}/.data`, { recursive: true });
    await Deno.mkdir(`${dir}/.data`);
    assert.deepEqual(await mountProblems(composeDocument({ clients: 2, mode: "echo" }), dir), []);
  });
});

Deno.test("mountProblems() names a missing agency CSV and the folder an earlier run left for one", async () => {
  await withTempDir(async (dir) => {
    await touch(dir, "server/config.ini", "client/config.yaml", ".data/agency-1.csv");
    // What Docker leaves when a compose file mounted the missing .data/agency-3.csv.
    await Deno.mkdir(`${dir}/.data/agency-3.csv`);
    assert.deepEqual(await mountProblems(composeDocument({ clients: 3 }), dir), [
      `${dir}/.data/agency-2.csv is missing`,
      `${dir}/.data/agency-3.csv is a folder, not a file (Docker makes one where a mounted ` +
      "file is missing; remove it with rmdir)",
    ]);
    // The same trap in a file mounted on its own (an older compose file, or one by hand).
    const old = {
      services: { client3: { volumes: ["./.data/agency-3.csv:/app/.data/agency-3.csv:ro"] } },
    };
    assert.match((await mountProblems(old, dir))[0]!, /agency-3\.csv is a folder, not a file/);
  });
});

Deno.test("mountProblems() names missing configs, data folder and env files", async () => {
  await withTempDir(async (dir) => {
    assert.deepEqual(await mountProblems(composeDocument({ clients: 1, secrets: true }), dir), [
      `${dir}/server/config.ini is missing`,
      `${dir}/.secrets/agencies.ini is missing`,
      `${dir}/client/config.yaml is missing`,
      `${dir}/.data is missing`,
      `${dir}/.data/agency-1.csv is missing`,
      `${dir}/.secrets/client1.env is missing`,
    ]);
  });
});

Deno.test("storageLine() says a fresh draw, or the stored one reused and how to start afresh", async (t) => {
  await t.step("fresh", () => {
    const fresh = new Map([["apuestas", "0"], ["estado", "nuevo"]]);
    assert.equal(
      storageLine(fresh, { keepBets: false }),
      "up: a fresh draw (bets live in the server container)",
    );
    assert.equal(
      storageLine(fresh, { keepBets: true }),
      "up: a fresh draw (bets kept in volume tp0_bets)",
    );
  });
  await t.step("a stored draw reused", () => {
    const stored = new Map([
      ["apuestas", "78697"],
      ["estado", "existente"],
      ["agencias_listas", "1 2 3 4 5"],
      ["sorteo", "realizado"],
    ]);
    assert.equal(
      storageLine(stored, { keepBets: true }),
      "up: the server reuses the stored draw: 78697 bets stored, agencies done: 1 2 3 4 5, " +
        "draw done; for a fresh draw: deno task down --volumes, then up",
    );
    const started = new Map([
      ["apuestas", "0"],
      ["estado", "existente"],
      ["agencias_listas", "-"],
      ["sorteo", "pendiente"],
    ]);
    assert.equal(
      storageLine(started, { keepBets: false }),
      "up: the server reuses the stored draw: 0 bets stored, agencies done: none, " +
        "draw not done yet; for a fresh draw: deno task down, then up",
    );
  });
  await t.step("a server that logs no state counts its bets", () => {
    assert.match(
      storageLine(new Map([["apuestas", "12"]]), { keepBets: false }),
      /reuses .*12 bets/,
    );
  });
  await t.step("a running server left alone", () => {
    const line = storageLine(new Map([["apuestas", "0"], ["estado", "nuevo"]]), {
      keepBets: false,
      runningSince: "2026-12-01T10:00:00Z",
    });
    assert.equal(
      line,
      "up: the server was already running (since 2026-12-01T10:00:00Z): its draw goes on; " +
        "for a fresh draw: deno task down, then up",
    );
  });
});
