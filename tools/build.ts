/**
 * Builds `bin/server` and `bin/client`: `deno task build`.
 *
 * It first tries `deno compile` with each program's least permissions. `deno compile`
 * downloads its runtime (denort) from Deno's release host unless `DENORT_BIN` names a
 * local one; where that download fails, it writes instead a bundle of each program
 * (`bin/server.js`, from `deno bundle`) and a launcher with the program's name that
 * `exec`s the pinned Deno on that bundle with the same permissions, so signals reach the
 * program and its exit code is the script's. Either way the programs are what the
 * sources were at build time: rebuild after an edit (`deno task test`, `test:faults`,
 * `demo` and `bench` build first).
 *
 * ```sh
 * deno task build
 * DENORT_BIN=/path/to/denort deno task build
 * ```
 *
 * @module
 */
import { dirname, join, relative, resolve } from "node:path";
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

/** One program to build. */
export interface BuildTarget {
  /** The output name inside `bin/`, e.g. `server`. */
  readonly name: string;
  /** The entry point, relative to the project root. */
  readonly entry: string;
  /** The permission flags, then the V8 flags, it runs with. */
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
 * Tells whether a failed `deno compile` failed because it could not get its runtime,
 * and why, in a few words.
 *
 * @param output What `deno compile` printed.
 * @returns The reason, or `undefined` when the failure is something else (e.g. a type error).
 *
 * @example Usage
 * ```ts
 * runtimeFetchFailure("error sending request for url (https://dl.deno.land/…/denort-….zip): …");
 * // "cannot download https://dl.deno.land/…/denort-….zip (…)"
 * ```
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
 * The text of a launcher: it runs the program's bundle with the pinned Deno (or `deno`
 * on PATH once that is gone), keeps the caller's cwd (config paths are relative to it)
 * and `exec`s, so signals such as SIGTERM reach the program and the exit code is its.
 *
 * @param options Deno, the bundle, the flags, the project's `deno.json`.
 * @returns The bash script.
 */
export function launcherScript(
  options: {
    readonly deno: string;
    readonly bundle: string;
    readonly flags: readonly string[];
    readonly config: string;
  },
): string {
  const args = [
    "run",
    "--cached-only",
    "--config",
    options.config,
    ...options.flags,
    options.bundle,
  ];
  return [
    "#!/usr/bin/env bash",
    "# Written by tools/build.ts where deno compile could not build a standalone binary:",
    "# it runs the bundle built with it. Rebuild after an edit: deno task build",
    `deno=${shellQuote(options.deno)}`,
    `[ -x "$deno" ] || deno=deno`,
    `exec "$deno" ${args.map(shellQuote).join(" ")} "$@"`,
    "",
  ].join("\n");
}

/** Options of {@linkcode buildBinaries}. */
export interface BuildOptions {
  /**
   * The project root.
   * @default the parent of this file's folder
   */
  readonly root?: string;
  /**
   * The Deno binary used to compile and pinned in launchers.
   * @default Deno.execPath()
   */
  readonly deno?: string;
  /**
   * Runs `deno compile` and `deno bundle` (tests pass a fake).
   * @default run
   */
  readonly run?: (
    argv: readonly string[],
    options: { cwd: string; timeoutMs: number },
  ) => Promise<RunResult>;
  /**
   * Where progress lines go.
   * @default nowhere
   */
  readonly say?: (line: string) => void;
}

/**
 * Builds every target: standalone binaries with `deno compile`, or bundles and launchers
 * for all of them when `deno compile` cannot get its runtime. Any other failure (e.g. a
 * type error) is an error. Every file is written whole (a new file, then a rename).
 *
 * @param options Root, Deno binary, runner, progress.
 * @returns The one line describing what was built.
 * @throws {ToolError} If an entry point is missing or compiling or bundling fails.
 */
export async function buildBinaries(options: BuildOptions = {}): Promise<string> {
  const root = resolve(options.root ?? join(dirname(fileURLToPath(import.meta.url)), ".."));
  const deno = options.deno ?? Deno.execPath();
  const runDeno = (args: readonly string[]) =>
    (options.run ?? run)([deno, ...args], { cwd: root, timeoutMs: 120_000 });
  const say = options.say ?? (() => {});
  const config = join(root, "deno.json");
  for (const target of TARGETS) {
    if (!(await exists(join(root, target.entry)))) {
      throw new ToolError(`Cannot build ${target.name}: entry point "${target.entry}" not found`);
    }
  }
  await Deno.mkdir(join(root, "bin"), { recursive: true });
  let reason: string | undefined;
  for (const target of TARGETS) {
    const output = join(root, "bin", target.name);
    say(`build: deno compile ${target.entry} -> bin/${target.name}`);
    // Into a new file, then renamed: the program stays runnable throughout (another build
    // or a demo may be using it), and deno compile overwrites no launcher it did not write.
    const temp = `${output}.tmp-${crypto.randomUUID().slice(0, 8)}`;
    const result = await runDeno(
      ["compile", "--output", temp, "--config", config, ...target.flags, join(root, target.entry)],
    );
    if (result.code === 0) {
      await Deno.rename(temp, output);
      continue;
    }
    await Deno.remove(temp).catch(() => {});
    reason = result.timedOut
      ? "deno compile timed out"
      : runtimeFetchFailure(result.stderr + result.stdout);
    if (reason === undefined) {
      throw new ToolError(
        `Cannot build ${target.name}: deno compile exited ${result.code}: ${
          stripAnsi(result.stderr).trim()
        }`,
      );
    }
    break;
  }
  const names = TARGETS.map((target) => `bin/${target.name}`).join(", ");
  if (reason === undefined) return `${names}: standalone binaries (deno compile)`;
  say(`build: no standalone binaries (${reason}); writing bundles and launchers instead`);
  for (const target of TARGETS) {
    const bundle = join(root, "bin", `${target.name}.js`);
    const temp = `${bundle}.tmp-${crypto.randomUUID().slice(0, 8)}`;
    say(`build: deno bundle ${target.entry} -> ${relative(root, bundle)}`);
    // --platform=browser: npm packages resolve their platform-neutral builds, which do
    // not load Deno's Node layer at start-up.
    const result = await runDeno(
      [
        "bundle",
        "--platform=browser",
        "--config",
        config,
        "--output",
        temp,
        join(root, target.entry),
      ],
    );
    if (result.code !== 0) {
      await Deno.remove(temp).catch(() => {});
      throw new ToolError(`Cannot bundle ${target.name}: ${stripAnsi(result.stderr).trim()}`);
    }
    await Deno.rename(temp, bundle);
    const script = launcherScript({ deno, bundle, flags: target.flags, config });
    await writeFileAtomic(join(root, "bin", target.name), script, 0o755);
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
