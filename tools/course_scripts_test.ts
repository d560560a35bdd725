/**
 * The course's two scripts at the repository's root, run as the course and students run them:
 * `sh script` (dash on Debian and Ubuntu), `bash script` and `./script`.
 */
import assert from "node:assert/strict";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import YAML from "yaml";
import { withTempDir } from "../testing/dataset_files.ts";
import { FAIL_LINE } from "./validate_echo.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** The ways a script is started: through each shell, and by its own first line. */
const LAUNCHERS: readonly (readonly string[])[] = [["dash"], ["sh"], ["bash"], []];

/** As make does: the pinned Deno from PATH (else tools/bootstrap_deno.sh installs it). */
const ENV = { PATH: `${dirname(Deno.execPath())}:${Deno.env.get("PATH") ?? ""}` };

/**
 * Runs `script` (a path from `cwd`, or absolute) through `launcher`, or as `./script` when
 * the launcher is empty, with only {@linkcode ENV}.
 */
async function runScript(
  launcher: readonly string[],
  script: string,
  args: readonly string[],
  cwd: string = ROOT,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const path = launcher.length === 0 && !script.startsWith("/") ? `./${script}` : script;
  const [program, ...rest] = [...launcher, path];
  const { code, stdout, stderr } = await new Deno.Command(program!, {
    args: [...rest, ...args],
    cwd,
    env: ENV,
    stdin: "null",
  }).output();
  const decoder = new TextDecoder();
  return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
}

function named(launcher: readonly string[], script: string): string {
  return launcher.length === 0 ? `./${script}` : `${launcher.join(" ")} ${script}`;
}

Deno.test("the course's scripts start with #!/bin/sh and parse under dash -n", async () => {
  for (
    const script of ["validar-echo-server.sh", "generar-compose.sh", "tools/bootstrap_deno.sh"]
  ) {
    const text = await Deno.readTextFile(`${ROOT}${script}`);
    assert.equal(text.split("\n")[0], "#!/bin/sh", script);
    const { code, stderr } = await new Deno.Command("dash", { args: ["-n", `${ROOT}${script}`] })
      .output();
    assert.equal(code, 0, `${script}: ${new TextDecoder().decode(stderr)}`);
  }
});

Deno.test("validar-echo-server.sh prints exactly the fail line and exits 1 with no such network", async (t) => {
  // A network no deployment has: fails the same whether a Docker engine answers or not.
  const network = `tp0-no-such-network-${crypto.randomUUID().slice(0, 8)}`;
  for (const launcher of LAUNCHERS) {
    await t.step(named(launcher, "validar-echo-server.sh"), async () => {
      const result = await runScript(launcher, "validar-echo-server.sh", ["--network", network]);
      assert.equal(result.stdout, `${FAIL_LINE}\n`, result.stderr);
      assert.equal(result.code, 1);
      assert.match(result.stderr, /^validate-echo: /m);
    });
  }
});

Deno.test("validar-echo-server.sh prints the fail line for a bad argument too, exit 2", async () => {
  const result = await runScript(["dash"], "validar-echo-server.sh", ["--port", "none"]);
  assert.equal(result.stdout, `${FAIL_LINE}\n`);
  assert.equal(result.code, 2);
  assert.match(result.stderr, /--port must be a whole number from 1 to 65535, not "none"/);
});

Deno.test("generar-compose.sh <output> <clients> writes the file where it is run from, under every shell", async (t) => {
  for (const launcher of LAUNCHERS) {
    await t.step(named(launcher, "generar-compose.sh"), async () => {
      await withTempDir(async (dir) => {
        // Started from elsewhere, the script is named by its path.
        const script = `${ROOT}generar-compose.sh`;
        const made = await runScript(launcher, script, ["docker-compose-dev.yaml", "2"], dir);
        assert.equal(made.code, 0, made.stderr);
        const doc = YAML.parse(await Deno.readTextFile(`${dir}/docker-compose-dev.yaml`));
        assert.deepEqual(Object.keys(doc.services), ["server", "client1", "client2"]);
        const usage = await runScript(launcher, script, ["only-one-argument.yaml"], dir);
        assert.equal(usage.code, 2);
        assert.match(usage.stderr, /^usage: \.\/generar-compose\.sh <output> <clients>/);
      });
    });
  }
});
