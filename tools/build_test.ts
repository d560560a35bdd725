import assert from "node:assert/strict";
import { join } from "node:path";
import { run, type RunResult, ToolError } from "./_cli.ts";
import { buildBinaries, launcherScript, runtimeFetchFailure, TARGETS } from "./build.ts";

/** What deno compile 2.9.6 prints when it cannot download denort (colors stripped). */
const FETCH_FAILURE = `Check server/main.ts
Compile server/main.ts to bin/server
Download https://dl.deno.land/release/v2.9.6/denort-x86_64-unknown-linux-gnu.zip
error: Writing deno compile executable to temporary file 'bin/server.tmp-1becdd96f0d18bc3'

Caused by:
    0: Setting up base binary.
    1: error sending request for url (https://dl.deno.land/release/v2.9.6/denort-x86_64-unknown-linux-gnu.zip): client error (Connect): dns error: failed to lookup address information: Name or service not known
    2: client error (Connect)
    3: dns error
    4: failed to lookup address information: Name or service not known
`;

const TYPE_FAILURE = `Check server/main.ts
TS2322 [ERROR]: Type 'string' is not assignable to type 'number'.
error: Type checking failed.
`;

/** A program that prints its pid and cwd, exits with its first argument, and on SIGTERM exits 0. */
const PROGRAM = `
const code = Number(Deno.args[0] ?? "0");
if (Deno.args[1] === "wait") {
  Deno.addSignalListener("SIGTERM", () => {
    console.log("got SIGTERM");
    Deno.exit(0);
  });
  console.log("ready");
  setInterval(() => {}, 1000);
} else {
  console.log(JSON.stringify({ pid: Deno.pid, cwd: Deno.cwd(), main: import.meta.url }));
  Deno.exit(code);
}
`;

async function withProject(fn: (root: string) => Promise<void>): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "build_test_" });
  try {
    await Deno.writeTextFile(join(root, "deno.json"), "{}");
    for (const target of TARGETS) {
      await Deno.mkdir(join(root, target.entry, ".."), { recursive: true });
      await Deno.writeTextFile(join(root, target.entry), PROGRAM);
    }
    await fn(root);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

/** deno compile fails as `compile` says; deno bundle is real. */
function fakeCompile(compile: Partial<RunResult>, calls: (readonly string[])[] = []) {
  return (argv: readonly string[], options: { cwd: string; timeoutMs: number }) => {
    calls.push(argv);
    return argv[1] === "bundle"
      ? run(argv, options)
      : Promise.resolve({ code: 1, stdout: "", stderr: "", timedOut: false, ...compile });
  };
}

Deno.test("runtimeFetchFailure() recognises a failed runtime download", () => {
  assert.equal(
    runtimeFetchFailure(FETCH_FAILURE),
    "cannot download https://dl.deno.land/release/v2.9.6/denort-x86_64-unknown-linux-gnu.zip (failed to lookup address information: Name or service not known)",
  );
  assert.equal(
    runtimeFetchFailure("error: Could not find denort at '/opt/denort'"),
    'DENORT_BIN "/opt/denort" not found',
  );
  assert.equal(runtimeFetchFailure(TYPE_FAILURE), undefined);
});

Deno.test("launcherScript() quotes paths and execs deno on the bundle with the flags", () => {
  const script = launcherScript({
    deno: "/opt/it's/deno",
    bundle: "/repo dir/bin/server.js",
    flags: ["--allow-net", "--v8-flags=--a,--b"],
    config: "/repo dir/deno.json",
  });
  assert.ok(script.startsWith("#!/usr/bin/env bash\n"));
  assert.match(script, /^deno='\/opt\/it'\\''s\/deno'$/m);
  assert.match(
    script,
    /^exec "\$deno" run --cached-only --config '\/repo dir\/deno\.json' --allow-net '--v8-flags=--a,--b' '\/repo dir\/bin\/server\.js' "\$@"$/m,
  );
  assert.doesNotMatch(script, /^cd /m);
});

Deno.test("buildBinaries() writes bundles and working launchers when deno compile cannot fetch its runtime", async () => {
  await withProject(async (root) => {
    const calls: (readonly string[])[] = [];
    const lines: string[] = [];
    const described = await buildBinaries({
      root,
      run: fakeCompile({ stderr: FETCH_FAILURE }, calls),
      say: (line) => lines.push(line),
    });
    assert.match(
      described,
      /^bin\/server, bin\/client: launchers of bundles \(deno compile could not fetch its runtime: cannot download https:\/\/dl\.deno\.land/,
    );
    assert.equal(
      calls.filter((argv) => argv[1] === "compile").length,
      1,
      "compile is not tried twice",
    );
    assert.equal(lines.filter((line) => line.includes("writing bundles and launchers")).length, 1);
    for (const target of TARGETS) {
      const path = join(root, "bin", target.name);
      assert.equal((await Deno.stat(path)).mode! & 0o777, 0o755);
      const script = await Deno.readTextFile(path);
      for (const flag of target.flags) assert.ok(script.includes(flag), flag);
      // Run it from another folder: the exit code passes through, the program keeps the
      // caller's cwd, it is the launcher's own process (exec), and it runs the bundle.
      const cwd = await Deno.makeTempDir({ dir: root });
      const child = new Deno.Command(path, { args: ["3"], cwd, stdout: "piped" }).spawn();
      const { code, stdout } = await child.output();
      assert.equal(code, 3);
      const seen = JSON.parse(new TextDecoder().decode(stdout));
      assert.equal(seen.cwd, await Deno.realPath(cwd));
      assert.equal(seen.pid, child.pid);
      assert.match(seen.main, new RegExp(`/bin/${target.name}\\.js$`));
    }
    assert.deepEqual(
      (await Array.fromAsync(Deno.readDir(join(root, "bin")), (entry) => entry.name)).sort(),
      ["client", "client.js", "server", "server.js"],
      "no temporary file is left",
    );
  });
});

Deno.test("buildBinaries() launchers let SIGTERM reach the program", async () => {
  await withProject(async (root) => {
    await buildBinaries({ root, run: fakeCompile({ timedOut: true }) });
    const child = new Deno.Command(join(root, "bin", "server"), {
      args: ["0", "wait"],
      stdout: "piped",
    }).spawn();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    while (!text.includes("ready")) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    child.kill("SIGTERM");
    for (let read = await reader.read(); !read.done; read = await reader.read()) text += read.value;
    assert.equal((await child.status).code, 0);
    assert.match(text, /got SIGTERM/);
  });
});

Deno.test("buildBinaries() compiles each target with its least permissions", async () => {
  await withProject(async (root) => {
    const calls: (readonly string[])[] = [];
    const described = await buildBinaries({
      root,
      deno: "/usr/bin/deno-pinned",
      async run(argv) {
        calls.push(argv);
        await Deno.writeTextFile(argv[argv.indexOf("--output") + 1]!, `binary ${argv.at(-1)}`);
        return { code: 0, stdout: "", stderr: "", timedOut: false };
      },
    });
    assert.equal(described, "bin/server, bin/client: standalone binaries (deno compile)");
    const config = ["--config", join(root, "deno.json")];
    const temp = (name: string) => new RegExp(`^${join(root, "bin", name)}\\.tmp-\\w{8}$`);
    assert.match(calls[0]![3]!, temp("server"));
    assert.match(calls[1]![3]!, temp("client"));
    assert.deepEqual(calls.map((argv) => argv.toSpliced(3, 1)), [
      [
        ...["/usr/bin/deno-pinned", "compile", "--output", ...config],
        ...["--allow-net", "--allow-read", "--allow-write", "--allow-env"],
        ...["--v8-flags=--max-semi-space-size=1,--optimize-for-size", join(root, "server/main.ts")],
      ],
      [
        ...["/usr/bin/deno-pinned", "compile", "--output", ...config],
        ...["--allow-net", "--allow-read", "--allow-env", "--v8-flags=--single-threaded"],
        join(root, "client/main.ts"),
      ],
    ]);
    for (const target of TARGETS) {
      const built = await Deno.readTextFile(join(root, "bin", target.name));
      assert.equal(built, `binary ${join(root, target.entry)}`, "renamed into place");
    }
  });
});

Deno.test("buildBinaries() leaves the programs runnable while it rebuilds them", async () => {
  await withProject(async (root) => {
    // A program built earlier, in use (say by a demo) while another build runs.
    await Deno.mkdir(join(root, "bin"));
    for (const target of TARGETS) {
      await Deno.writeTextFile(join(root, "bin", target.name), "earlier build");
    }
    const seen: string[] = [];
    const fake = fakeCompile({ stderr: FETCH_FAILURE });
    await buildBinaries({
      root,
      run: async (argv, options) => {
        for (const target of TARGETS) {
          seen.push(await Deno.readTextFile(join(root, "bin", target.name)).catch(() => "gone"));
        }
        return await fake(argv, options);
      },
    });
    assert.ok(!seen.includes("gone"), `a program was missing during the build: ${seen}`);
    assert.deepEqual(
      (await Array.fromAsync(Deno.readDir(join(root, "bin")), (entry) => entry.name)).sort(),
      ["client", "client.js", "server", "server.js"],
      "no temporary file is left",
    );
  });
});

Deno.test("buildBinaries() fails on other compile errors and missing entry points", async () => {
  await withProject(async (root) => {
    await assert.rejects(
      buildBinaries({ root, run: fakeCompile({ stderr: TYPE_FAILURE }) }),
      ToolError,
      "Cannot build server: deno compile exited 1: Check server/main.ts",
    );
    await Deno.remove(join(root, "client/main.ts"));
    await assert.rejects(
      buildBinaries({ root, run: fakeCompile({ code: 0 }) }),
      ToolError,
      'Cannot build client: entry point "client/main.ts" not found',
    );
  });
});
