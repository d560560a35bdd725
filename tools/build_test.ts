import assert from "node:assert/strict";
import { join } from "node:path";
import {
  buildBinaries,
  BuildError,
  CLIENT_V8_FLAGS,
  type CompileCommand,
  type CompileResult,
  describeBuild,
  launcherScript,
  runCompile,
  runtimeFetchFailure,
  SERVER_V8_FLAGS,
  TARGETS,
} from "./build.ts";

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
    for (const target of TARGETS) {
      await Deno.mkdir(join(root, target.entry, ".."), { recursive: true });
      await Deno.writeTextFile(join(root, target.entry), PROGRAM);
    }
    await fn(root);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

function fakeCompile(
  result: Partial<CompileResult>,
  calls: CompileCommand[] = [],
): (command: CompileCommand) => Promise<CompileResult> {
  return (command) => {
    calls.push(command);
    return Promise.resolve({ success: false, code: 1, output: "", timedOut: false, ...result });
  };
}

Deno.test("runtimeFetchFailure() recognises a failed runtime download", () => {
  const reason = runtimeFetchFailure(FETCH_FAILURE);
  assert.equal(
    reason,
    "cannot download https://dl.deno.land/release/v2.9.6/denort-x86_64-unknown-linux-gnu.zip (failed to lookup address information: Name or service not known)",
  );
  assert.equal(
    runtimeFetchFailure("error: x\n\nCaused by:\n    0: Could not find denort at '/nope'\n"),
    'DENORT_BIN "/nope" not found',
  );
  assert.equal(
    runtimeFetchFailure(`\x1b[31merror\x1b[0m: ${FETCH_FAILURE}`)?.length,
    reason.length,
  );
  assert.equal(runtimeFetchFailure(TYPE_FAILURE), undefined);
});

Deno.test("launcherScript() quotes paths and execs deno with the permissions", () => {
  const script = launcherScript({
    name: "bin/server",
    denoPath: "/opt/it's/deno",
    entry: "/repo dir/server/main.ts",
    permissions: ["--allow-net", "--allow-read"],
    config: "/repo dir/deno.json",
  });
  assert.ok(script.startsWith("#!/usr/bin/env bash\n"));
  assert.match(script, /^deno='\/opt\/it'\\''s\/deno'$/m);
  assert.match(script, /^entry='\/repo dir\/server\/main\.ts'$/m);
  assert.match(
    script,
    /^exec "\$deno" run --cached-only --config '\/repo dir\/deno\.json' --allow-net --allow-read "\$entry" "\$@"$/m,
  );
  assert.doesNotMatch(script, /^cd /m);
});

Deno.test("buildBinaries() writes working launchers when deno compile cannot fetch its runtime", async () => {
  await withProject(async (root) => {
    const calls: CompileCommand[] = [];
    const lines: string[] = [];
    const result = await buildBinaries({
      root,
      denortBin: undefined,
      compile: fakeCompile({ output: FETCH_FAILURE }, calls),
      onProgress: (line) => lines.push(line),
    });
    assert.equal(result.kind, "launchers");
    assert.match(result.reason ?? "", /^cannot download https:\/\/dl\.deno\.land/);
    assert.equal(
      calls.filter((call) => call.args[0] === "compile").length,
      1,
      "the client is not compiled once the runtime is known missing",
    );
    assert.equal(lines.filter((line) => line.includes("writing launcher scripts")).length, 1);
    assert.equal(
      describeBuild(result, root),
      `bin/server, bin/client: launcher scripts (deno compile could not fetch its runtime: ${result.reason})`,
    );

    for (const target of TARGETS) {
      const path = join(root, "bin", target.name);
      assert.equal((await Deno.stat(path)).mode! & 0o777, 0o755);
      const script = await Deno.readTextFile(path);
      assert.match(script, /^exec /m);
      assert.ok(script.includes(` ${target.permissions.join(" ")} `), script);
      assert.ok(script.includes(Deno.execPath()));

      // Run it from another directory: the exit code passes through, the program keeps
      // the caller's cwd, and it is the launcher's own process (exec).
      const cwd = await Deno.makeTempDir({ dir: root });
      const child = new Deno.Command(path, { args: ["3"], cwd, stdout: "piped" }).spawn();
      const { code, stdout } = await child.output();
      assert.equal(code, 3);
      const seen = JSON.parse(new TextDecoder().decode(stdout));
      assert.equal(seen.cwd, await Deno.realPath(cwd));
      assert.equal(seen.pid, child.pid);
    }
  });
});

Deno.test("buildBinaries() launchers run the bundle, and the sources once they are newer", async () => {
  await withProject(async (root) => {
    // Compile fails for want of its runtime; bundling is real.
    const compile = (command: CompileCommand): Promise<CompileResult> =>
      command.args[0] === "bundle"
        ? runCompile(command)
        : Promise.resolve({ success: false, code: 1, output: FETCH_FAILURE, timedOut: false });
    await buildBinaries({ root, denortBin: undefined, compile });
    const server = join(root, "bin", "server");
    const main = async (): Promise<string> => {
      const { stdout } = await new Deno.Command(server, { args: ["0"], stdout: "piped" }).output();
      return JSON.parse(new TextDecoder().decode(stdout)).main;
    };
    assert.match(await main(), /\/bin\/server\.js$/);
    // An edit after the build: the launcher must not run the stale bundle.
    const later = new Date(Date.now() + 5000);
    await Deno.utime(join(root, "server", "main.ts"), later, later);
    assert.match(await main(), /\/server\/main\.ts$/);

    // A file added to a subfolder after a rebuild makes the bundle stale too.
    const subfolder = join(root, "server", "net");
    await Deno.mkdir(subfolder);
    const earlier = new Date(Date.now() - 60_000);
    await Deno.utime(join(root, "server", "main.ts"), earlier, earlier);
    await buildBinaries({ root, denortBin: undefined, compile });
    assert.match(await main(), /\/bin\/server\.js$/);
    await Deno.writeTextFile(join(subfolder, "new.ts"), "export {};\n");
    const latest = new Date(Date.now() + 10_000);
    await Deno.utime(subfolder, latest, latest);
    assert.match(await main(), /\/server\/main\.ts$/);
  });
});

Deno.test("buildBinaries() launchers let SIGTERM reach the program", async () => {
  await withProject(async (root) => {
    await buildBinaries({ root, denortBin: undefined, compile: fakeCompile({ timedOut: true }) });
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
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    const status = await child.status;
    assert.equal(status.code, 0);
    assert.match(text, /got SIGTERM/);
  });
});

Deno.test("buildBinaries() compiles each target with its least permissions", async () => {
  await withProject(async (root) => {
    await Deno.writeTextFile(join(root, "deno.json"), "{}");
    const calls: CompileCommand[] = [];
    const result = await buildBinaries({
      root,
      denoPath: "/usr/bin/deno-pinned",
      denortBin: undefined,
      async compile(command) {
        calls.push(command);
        const output = command.args[command.args.indexOf("--output") + 1]!;
        await Deno.writeTextFile(output, "binary");
        return { success: true, code: 0, output: "", timedOut: false };
      },
    });
    assert.equal(result.kind, "binaries");
    assert.equal(
      describeBuild(result, root),
      "bin/server, bin/client: standalone binaries (deno compile)",
    );
    assert.deepEqual(calls.map((call) => call.args), [
      [
        "compile",
        "--output",
        join(root, "bin", "server"),
        "--config",
        join(root, "deno.json"),
        "--allow-net",
        "--allow-read",
        "--allow-write",
        "--allow-env",
        SERVER_V8_FLAGS,
        join(root, "server/main.ts"),
      ],
      [
        "compile",
        "--output",
        join(root, "bin", "client"),
        "--config",
        join(root, "deno.json"),
        "--allow-net",
        "--allow-read",
        "--allow-env",
        CLIENT_V8_FLAGS,
        join(root, "client/main.ts"),
      ],
    ]);
    assert.ok(calls.every((call) => call.denoPath === "/usr/bin/deno-pinned" && call.cwd === root));
  });
});

Deno.test("buildBinaries() fails on other compile errors and missing entry points", async () => {
  await withProject(async (root) => {
    await assert.rejects(
      buildBinaries({ root, denortBin: undefined, compile: fakeCompile({ output: TYPE_FAILURE }) }),
      (error: unknown) => {
        assert.ok(error instanceof BuildError);
        assert.match(error.message, /^Cannot build server: deno compile exited with code 1\n/);
        return true;
      },
    );
    await Deno.remove(join(root, "client/main.ts"));
    await assert.rejects(
      buildBinaries({ root, denortBin: undefined, compile: fakeCompile({ success: true }) }),
      BuildError,
      'Cannot build client: entry point "client/main.ts" not found',
    );
  });
});

Deno.test("buildBinaries() refuses a full deno as DENORT_BIN", async () => {
  await withProject(async (root) => {
    const calls: CompileCommand[] = [];
    const result = await buildBinaries({
      root,
      denortBin: Deno.execPath(),
      compile: fakeCompile({ success: true }, calls),
    });
    assert.equal(result.kind, "launchers");
    assert.match(result.reason ?? "", /is the full deno/);
    assert.equal(calls.filter((call) => call.args[0] === "compile").length, 0);
  });
});

Deno.test("runCompile() runs the real deno compile, which builds or reports a runtime failure", async () => {
  await withProject(async (root) => {
    const result = await runCompile({
      denoPath: Deno.execPath(),
      args: ["compile", "--output", join(root, "out"), join(root, "server/main.ts")],
      cwd: root,
      timeoutMs: 60_000,
    });
    assert.ok(
      result.success || runtimeFetchFailure(result.output) !== undefined || result.timedOut,
      result.output,
    );
  });
});
