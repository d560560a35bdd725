import assert from "node:assert/strict";
import YAML from "yaml";
import { loadSecrets } from "../../server/secrets.ts";
import { main as genCompose } from "../gen_compose.ts";
import { fileURLToPath } from "node:url";
import { run, UsageError } from "../_cli.ts";
import { main, writeStack } from "./main.ts";
import { stackDocument } from "./stack.ts";

Deno.test("main() refuses bad commands and flags with one line, before any Docker call", async (t) => {
  const cases: [string[], RegExp][] = [
    [[], /Cannot run "": usage: deno task swarm up\|down\|logs\|status$/],
    [["deploy"], /Cannot run "deploy"/],
    [["up", "extra"], /Cannot run "up extra"/],
    [["up", "--bogus"], /unknown option "--bogus"/],
    [["up", "--node", "worker-1"], /--node "worker-1": expected a Docker host URL/],
    [["down", "--node", "http://x"], /--node "http:\/\/x": expected a Docker host URL/],
    [["up", "--timeout", "soon"], /--timeout must be whole seconds, not "soon"/],
    [["up", "--path", "cloud"], /--path must be auto, offline or online, not "cloud"/],
    [["up", "--clients", "many"], /agency count must be a whole number from 0 to 252, not "many"/],
    [["up", "--data-dir", "data"], /--data-dir must be an absolute path/],
    [["up", "--agency-constraint", "workers"], /placement constraint "workers"/],
  ];
  for (const [args, message] of cases) {
    await t.step(args.join(" ") || "(none)", async () => {
      await assert.rejects(() => main(args), (error: Error) => {
        assert.ok(error instanceof UsageError, `${error.name}: ${error.message}`);
        assert.match(error.message, message);
        assert.ok(!error.message.includes("\n"), "one line");
        return true;
      });
    });
  }
});

Deno.test("writeStack() writes the stack file, and the secrets first with --secrets", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tp0-swarm-stack-" });
  try {
    const output = `${dir}/docker-stack.yaml`;
    const options = { clients: 2, dataDir: "/srv/data", secrets: true, command: "test" };
    const secrets = await writeStack(output, options);
    const text = await Deno.readTextFile(output);
    assert.deepEqual(YAML.parse(text, { version: "1.1" }), stackDocument(options));
    assert.equal(secrets?.secrets.size, 2);
    const stored = await loadSecrets(`${dir}/.secrets/agencies.ini`, 2);
    for (const [id, secret] of stored) {
      assert.equal(secrets?.secrets.get(id), secret);
      assert.ok(!text.includes(secret), "no secret in the stack file");
      assert.match(await Deno.readTextFile(`${dir}/.secrets/client${id}.env`), new RegExp(secret));
    }
    // Regenerating keeps the secrets agencies already hold.
    assert.equal((await writeStack(output, options))?.reused, 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("gen-compose --swarm writes the stack file through the same builder", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tp0-swarm-gen-" });
  try {
    const output = `${dir}/stack.yaml`;
    const code = await genCompose([
      "--swarm",
      output,
      "4",
      "--data-dir",
      "/srv/data",
      "--agency-constraint",
      "node.role==worker",
    ]);
    assert.equal(code, 0);
    const parsed = YAML.parse(await Deno.readTextFile(output), { version: "1.1" });
    assert.deepEqual(
      parsed,
      stackDocument({
        clients: 4,
        dataDir: "/srv/data",
        agencyConstraints: ["node.role==worker"],
      }),
    );
    await assert.rejects(
      () => genCompose(["--swarm", "4", "--data-dir", "relative"]),
      /--data-dir must be an absolute path/,
    );
    // Through the task (its permissions; gen_compose.ts as the main module, which
    // tools/swarm/ imports in turn).
    const task = await run(
      [
        Deno.execPath(),
        "task",
        "gen-compose",
        "--swarm",
        `${dir}/task.yaml`,
        "2",
        "--data-dir",
        "/srv/data",
      ],
      { cwd: fileURLToPath(new URL("../..", import.meta.url)), timeoutMs: 60_000 },
    );
    assert.equal(task.code, 0, task.stderr);
    assert.match(task.stdout, /^gen-compose: wrote .*task\.yaml: stack tp0, server \+ 2 agencies/);
    assert.deepEqual(
      YAML.parse(await Deno.readTextFile(`${dir}/task.yaml`), { version: "1.1" }),
      stackDocument({ clients: 2, dataDir: "/srv/data" }),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
