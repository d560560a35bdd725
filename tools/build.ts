/**
 * Builds `bin/server` and `bin/client` (`deno task build`) with `deno compile`, or, where its
 * runtime cannot be downloaded (no `DENORT_BIN`), as bundles run by a launcher that `exec`s
 * the pinned Deno with the same permissions.
 *
 * @module
 */
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import {
  exists,
  parseCli,
  run,
  runMain,
  type RunResult,
  stripAnsi,
  ToolError,
  writeFileAtomic,
} from "./_cli.ts";

/**
 * One program to build: its name inside `bin/`, its entry point relative to the project
 * root, and the permission flags, then the V8 flags, it runs with.
 */
export interface BuildTarget {
  readonly name: string;
  readonly entry: string;
  readonly flags: readonly string[];
}

/** The project's programs and their least permissions (V8 tuning: docs/performance.md). */
export const TARGETS: readonly BuildTarget[] = [
  {
    name: "server",
    entry: "server/main.ts",
    // A 1 MiB young generation and size-optimized GC keep its memory flat.
    flags: [
      ...["--allow-net", "--allow-read", "--allow-write", "--allow-env"],
      "--v8-flags=--max-semi-space-size=1,--optimize-for-size",
    ],
  },
  {
    name: "client",
    entry: "client/main.ts",
    // Compilation and GC on its own thread: five agencies and the server share the cores.
    flags: ["--allow-net", "--allow-read", "--allow-env", "--v8-flags=--single-threaded"],
  },
];

/**
 * Why, in a few words, a failed `deno compile` could not get its runtime, from what it
 * printed; `undefined` when the failure is something else (e.g. a type error).
 */
export function runtimeFetchFailure(output: string): string | undefined {
  const text = stripAnsi(output);
  const download = /error sending request for url \((\S+)\)/.exec(text);
  const missing = /Could not find denort at '([^']*)'/.exec(text);
  if (!download && !missing && !/Setting up base binary/.test(text)) return undefined;
  // The innermost cause of the error chain, e.g. "failed to lookup address information: …".
  const cause = [...text.matchAll(/^\s*\d+: (.+)$/gm)].at(-1)?.[1]?.trim();
  if (missing) return `DENORT_BIN "${missing[1]}" not found`;
  if (download) return `cannot download ${download[1]}${cause ? ` (${cause})` : ""}`;
  return cause ?? "setting up the runtime failed";
}

function shellQuote(text: string): string {
  return /^[\w.\/=-]+$/.test(text) ? text : `'${text.replaceAll("'", `'\\''`)}'`;
}

/**
 * The bash script of a launcher: it runs the program's bundle with the pinned Deno (or
 * `deno` on PATH once that is gone), the flags and the project's `deno.json`, keeps the
 * caller's cwd (config paths are relative to it) and `exec`s, so signals such as SIGTERM
 * reach the program and the exit code is its.
 */
export function launcherScript(
  options: Pick<BuildTarget, "flags"> & Readonly<{ deno: string; bundle: string; config: string }>,
): string {
  const { deno, bundle, flags, config } = options;
  const args = ["run", "--cached-only", "--config", config, ...flags, bundle].map(shellQuote);
  return [
    "#!/usr/bin/env bash",
    "# Written by tools/build.ts where deno compile could not build a standalone binary:",
    "# it runs the bundle built with it. Rebuild after an edit: deno task build",
    `deno=${shellQuote(deno)}`,
    `[ -x "$deno" ] || deno=deno`,
    `exec "$deno" ${args.join(" ")} "$@"`,
    "",
  ].join("\n");
}

/** Options of {@linkcode buildBinaries}. */
export interface BuildOptions {
  /** The project root. @default the parent of this file's folder */
  readonly root?: string;
  /** The Deno binary used to compile and pinned in launchers. @default Deno.execPath() */
  readonly deno?: string;
  /** Runs `deno compile` and `deno bundle` (tests pass a fake). @default run */
  readonly run?: (
    argv: readonly string[],
    options: { cwd: string; timeoutMs: number },
  ) => Promise<RunResult>;
  /** Where progress lines go. @default nowhere */
  readonly say?: (line: string) => void;
}

/**
 * Builds every target with `deno compile`, or bundles and launchers when it cannot get its
 * runtime; returns the line describing what was built.
 *
 * @throws {ToolError} If an entry point is missing or compiling or bundling fails.
 */
export async function buildBinaries(options: BuildOptions = {}): Promise<string> {
  const root = resolve(options.root ?? fileURLToPath(new URL("..", import.meta.url)));
  const { deno = Deno.execPath(), run: runner = run, say = () => {} } = options;
  const config = join(root, "deno.json");
  for (const target of TARGETS) {
    if (!(await exists(join(root, target.entry)))) {
      throw new ToolError(`Cannot build ${target.name}: entry point "${target.entry}" not found`);
    }
  }
  await Deno.mkdir(join(root, "bin"), { recursive: true });
  // Into a new file, then renamed: the program stays runnable throughout (another build or
  // a demo may be using it), and deno compile overwrites no launcher it did not write.
  // `deno compile|bundle --output <temp> --config <deno.json> <args>`.
  const denoInto = async (command: string, output: string, args: readonly string[]) => {
    const temp = `${output}.tmp-${crypto.randomUUID().slice(0, 8)}`;
    const argv = [deno, command, "--output", temp, "--config", config, ...args];
    const result = await runner(argv, { cwd: root, timeoutMs: 120_000 });
    if (result.code === 0) await Deno.rename(temp, output);
    else await Deno.remove(temp).catch(() => {});
    return result;
  };
  let reason: string | undefined;
  for (const { name, entry, flags } of TARGETS) {
    say(`build: deno compile ${entry} -> bin/${name}`);
    const result = await denoInto("compile", join(root, "bin", name), [
      ...flags,
      join(root, entry),
    ]);
    if (result.code === 0) continue;
    reason = result.timedOut
      ? "deno compile timed out"
      : runtimeFetchFailure(result.stderr + result.stdout);
    if (reason !== undefined) break;
    const why = stripAnsi(result.stderr).trim();
    throw new ToolError(`Cannot build ${name}: deno compile exited ${result.code}: ${why}`);
  }
  const names = TARGETS.map((target) => `bin/${target.name}`).join(", ");
  if (reason === undefined) return `${names}: standalone binaries (deno compile)`;
  say(`build: no standalone binaries (${reason}); writing bundles and launchers instead`);
  for (const { name, entry, flags } of TARGETS) {
    const bundle = join(root, "bin", `${name}.js`);
    say(`build: deno bundle ${entry} -> bin/${name}.js`);
    // --platform=browser: npm packages resolve their platform-neutral builds, which do
    // not load Deno's Node layer at start-up.
    const result = await denoInto("bundle", bundle, ["--platform=browser", join(root, entry)]);
    if (result.code !== 0) {
      throw new ToolError(`Cannot bundle ${name}: ${stripAnsi(result.stderr).trim()}`);
    }
    const script = launcherScript({ deno, bundle, flags, config });
    await writeFileAtomic(join(root, "bin", name), script, 0o755);
  }
  return `${names}: launchers of bundles (deno compile could not fetch its runtime: ${reason})`;
}

if (import.meta.main) {
  await runMain("build", async () => {
    parseCli(Deno.args, {});
    console.log(await buildBinaries({ say: (line) => console.error(line) }));
    return 0;
  });
}
