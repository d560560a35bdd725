/**
 * Builds `bin/server` and `bin/client`.
 *
 * It first tries `deno compile` with each program's least permissions. `deno compile`
 * downloads its runtime (denort) from Deno's release host unless `DENORT_BIN` names a
 * local one; where that download fails, it writes launcher scripts instead: bash scripts
 * that `exec` the pinned Deno on the entry point with the same permissions, so signals
 * reach the program and its exit code is the script's.
 *
 * ```sh
 * deno task build
 * DENORT_BIN=/path/to/denort deno task build
 * ```
 *
 * @module
 */
import { dirname, join, relative, resolve } from "node:path";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** One program to build. */
export interface BuildTarget {
  /** The output name inside the output directory, e.g. `server`. */
  readonly name: string;
  /** The entry point, relative to the project root. */
  readonly entry: string;
  /** The permission flags it runs with. */
  readonly permissions: readonly string[];
  /**
   * Other `deno run`/`deno compile` flags (e.g. V8 tuning).
   * @default []
   */
  readonly runtimeFlags?: readonly string[];
}

/**
 * The server's V8 tuning: a 1 MiB young generation and size-optimized GC keep its memory
 * flat (about 62-69 MB at 1x-100x the course's data, against 65-94 MB by default) at no
 * measurable CPU cost, since almost everything it allocates dies young.
 */
export const SERVER_V8_FLAGS = "--v8-flags=--max-semi-space-size=1,--optimize-for-size";

/**
 * The agency's V8 tuning: compilation and GC on its own thread. Five agencies and the
 * server share the cores, and handing work to helper threads cost each agency ~7% more
 * CPU (10x the course's data: agencies' CPU 0.76 -> 0.71 s, same memory).
 */
export const CLIENT_V8_FLAGS = "--v8-flags=--single-threaded";

/** The project's programs and their least permissions. */
export const TARGETS: readonly BuildTarget[] = [
  {
    name: "server",
    entry: "server/main.ts",
    permissions: ["--allow-net", "--allow-read", "--allow-write", "--allow-env"],
    runtimeFlags: [SERVER_V8_FLAGS],
  },
  {
    name: "client",
    entry: "client/main.ts",
    permissions: ["--allow-net", "--allow-read", "--allow-env"],
    runtimeFlags: [CLIENT_V8_FLAGS],
  },
];

/** A `deno compile` invocation. */
export interface CompileCommand {
  /** The Deno binary. */
  readonly denoPath: string;
  /** Its arguments, starting with `compile`. */
  readonly args: readonly string[];
  /** The working directory (the project root). */
  readonly cwd: string;
  /** Kill it after this many milliseconds. */
  readonly timeoutMs: number;
}

/** The outcome of a {@linkcode CompileCommand}. */
export interface CompileResult {
  /** Whether it exited with 0. */
  readonly success: boolean;
  /** Its exit code. */
  readonly code: number;
  /** What it printed (stderr, then stdout). */
  readonly output: string;
  /** Whether it was killed for taking too long. */
  readonly timedOut: boolean;
}

/** Runs a {@linkcode CompileCommand}; injectable so tests need no real compile. */
export type CompileRunner = (command: CompileCommand) => Promise<CompileResult>;

/** The build failed for a reason other than the runtime download. */
export class BuildError extends Error {
  /**
   * @param message What failed, std style: "Cannot build …".
   * @param options Standard error options.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "BuildError";
  }
}

const decoder = new TextDecoder();

/**
 * Runs `deno compile` as a child process with its environment (so `DENORT_BIN` is
 * honoured), capturing its output and killing it after the timeout.
 *
 * @param command The invocation.
 * @returns Its exit status and output.
 *
 * @example Usage
 * ```ts
 * const result = await runCompile({
 *   denoPath: Deno.execPath(),
 *   args: ["compile", "--output", "bin/server", "server/main.ts"],
 *   cwd: Deno.cwd(),
 *   timeoutMs: 60_000,
 * });
 * ```
 */
export async function runCompile(command: CompileCommand): Promise<CompileResult> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), command.timeoutMs);
  try {
    const { code, success, stdout, stderr } = await new Deno.Command(command.denoPath, {
      args: [...command.args],
      cwd: command.cwd,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: controller.signal,
    }).output();
    const output = decoder.decode(stderr) + decoder.decode(stdout);
    return { success, code, output, timedOut: controller.signal.aborted };
  } finally {
    clearTimeout(timer);
  }
}

// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g;

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
  const text = output.replace(ANSI, "");
  const download = /error sending request for url \((\S+)\)/.exec(text);
  const missing = /Could not find denort at '([^']*)'/.exec(text);
  if (!download && !missing && !/Setting up base binary/.test(text)) return undefined;
  // The innermost cause of the error chain, e.g. "failed to lookup address information: …".
  const causes = [...text.matchAll(/^\s*\d+: (.+)$/gm)].map((match) => match[1]!.trim());
  const cause = causes.at(-1);
  if (missing) return `DENORT_BIN "${missing[1]}" not found`;
  if (download) return `cannot download ${download[1]}${cause ? ` (${cause})` : ""}`;
  return cause ?? "setting up the runtime failed";
}

/** Options of {@linkcode launcherScript}. */
export interface LauncherOptions {
  /** The absolute path of the Deno binary to run; `deno` on PATH is used if it is gone. */
  readonly denoPath: string;
  /** The absolute path of the entry point. */
  readonly entry: string;
  /** Permission flags, then any runtime flags (`--v8-flags=…`). */
  readonly permissions: readonly string[];
  /** The absolute path of the project's `deno.json`, if it has one. */
  readonly config?: string;
  /** The program's name, for the comment. */
  readonly name: string;
  /**
   * A bundle of the entry point (`deno bundle`), run instead of the sources while none
   * of `sources` is newer than it.
   */
  readonly bundle?: string;
  /** Folders and files whose change makes the bundle stale (absolute). */
  readonly sources?: readonly string[];
}

function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/**
 * Writes the text of a launcher script. It does not change directory (config paths are
 * relative to the caller's cwd) and `exec`s Deno, so signals such as SIGTERM reach the
 * program and the exit code is the program's.
 *
 * @param options Deno, entry point, permissions and config.
 * @returns The bash script.
 *
 * @example Usage
 * ```ts
 * launcherScript({
 *   name: "server",
 *   denoPath: Deno.execPath(),
 *   entry: "/repo/server/main.ts",
 *   permissions: ["--allow-net"],
 * });
 * ```
 */
export function launcherScript(options: LauncherOptions): string {
  const args = [
    "run",
    "--cached-only",
    ...(options.config ? ["--config", options.config] : []),
    ...options.permissions,
  ].map((arg) => (/^[\w.\/=-]+$/.test(arg) ? arg : shellQuote(arg)));
  const pickBundle = options.bundle === undefined ? [] : [
    "# The bundle starts faster and uses less memory; the sources win once one of them is",
    "# newer, so an edit never runs a stale program. Folders are listed too: adding or",
    "# removing a file touches its folder. Shell tests only, since a fork costs start-up.",
    `if [ -f ${shellQuote(options.bundle)} ]; then`,
    `  entry=${shellQuote(options.bundle)}`,
    `  for source in ${(options.sources ?? []).map(shellQuote).join(" ")}; do`,
    `    if [ "$source" -nt "$entry" ]; then entry=${shellQuote(options.entry)}; break; fi`,
    "  done",
    "fi",
  ];
  return [
    "#!/usr/bin/env bash",
    `# ${options.name}: written by tools/build.ts because deno compile could not build a`,
    "# standalone binary. It runs the program with the pinned Deno; exec hands signals and",
    "# the exit code to the program. Rebuild with: deno task build",
    `deno=${shellQuote(options.denoPath)}`,
    `[ -x "$deno" ] || deno=deno`,
    `entry=${shellQuote(options.entry)}`,
    ...pickBundle,
    `exec "$deno" ${args.join(" ")} "$entry" "$@"`,
    "",
  ].join("\n");
}

/** Removes `path` if it is a launcher script (it starts with `#!`); leaves anything else. */
async function removeLauncher(path: string): Promise<void> {
  const head = new Uint8Array(2);
  try {
    using file = await Deno.open(path);
    await file.read(head);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw error;
  }
  if (head[0] === 0x23 && head[1] === 0x21) await Deno.remove(path);
}

/** Options of {@linkcode buildBinaries}. */
export interface BuildOptions {
  /**
   * The project root.
   *
   * @default {the parent of this file's folder}
   */
  readonly root?: string;
  /**
   * The output directory, relative to the root.
   *
   * @default {"bin"}
   */
  readonly outDir?: string;
  /**
   * The Deno binary used to compile and pinned in launchers.
   *
   * @default {Deno.execPath()}
   */
  readonly denoPath?: string;
  /**
   * The programs to build.
   *
   * @default {TARGETS}
   */
  readonly targets?: readonly BuildTarget[];
  /**
   * Runs `deno compile`.
   *
   * @default {runCompile}
   */
  readonly compile?: CompileRunner;
  /**
   * Per-compile timeout in milliseconds.
   *
   * @default {60000}
   */
  readonly timeoutMs?: number;
  /**
   * The `DENORT_BIN` value; a full `deno` there is refused, since it cannot serve as the
   * runtime (the binary would start Deno's REPL instead of the program).
   *
   * @default {Deno.env.get("DENORT_BIN")}
   */
  readonly denortBin?: string;
  /** Called with progress lines. */
  readonly onProgress?: (line: string) => void;
}

/** What {@linkcode buildBinaries} produced. */
export interface BuildResult {
  /** `binaries` from `deno compile`, or `launchers` when it could not get its runtime. */
  readonly kind: "binaries" | "launchers";
  /** The written files, absolute. */
  readonly outputs: readonly string[];
  /** Why launchers were written. */
  readonly reason?: string;
}

/** Whether a binary is the full Deno CLI (which prints `deno X.Y.Z` for `--version`). */
async function isFullDeno(path: string): Promise<boolean> {
  try {
    const { stdout } = await new Deno.Command(path, {
      args: ["--version"],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
      signal: AbortSignal.timeout(5000),
    }).output();
    return /^deno \d+\.\d+\.\d+/.test(decoder.decode(stdout));
  } catch {
    return false;
  }
}

async function writeExecutable(path: string, text: string): Promise<void> {
  const temp = `${path}.tmp-${crypto.randomUUID().slice(0, 8)}`;
  try {
    await Deno.writeTextFile(temp, text, { mode: 0o755 });
    await Deno.chmod(temp, 0o755);
    await Deno.rename(temp, path);
  } catch (error) {
    await Deno.remove(temp).catch(() => {});
    throw error;
  }
}

/**
 * Builds every target: standalone binaries with `deno compile`, or launcher scripts for
 * all of them when `deno compile` cannot get its runtime. Any other compile failure
 * (e.g. a type error) is an error.
 *
 * @param options Root, output directory, Deno binary and compile runner.
 * @returns What was produced.
 * @throws {BuildError} If an entry point is missing or `deno compile` fails otherwise.
 *
 * @example Usage
 * ```ts
 * const result = await buildBinaries();
 * // result.kind === "launchers" where denort cannot be downloaded
 * ```
 */
export async function buildBinaries(options: BuildOptions = {}): Promise<BuildResult> {
  const root = resolve(options.root ?? join(dirname(fileURLToPath(import.meta.url)), ".."));
  const outDir = resolve(root, options.outDir ?? "bin");
  const denoPath = options.denoPath ?? Deno.execPath();
  const targets = options.targets ?? TARGETS;
  const compile = options.compile ?? runCompile;
  const timeoutMs = options.timeoutMs ?? 60_000;
  const denortBin = "denortBin" in options ? options.denortBin : Deno.env.get("DENORT_BIN");
  const progress = options.onProgress ?? (() => {});
  const configPath = join(root, "deno.json");
  const config = existsSync(configPath) ? configPath : undefined;

  for (const target of targets) {
    if (!existsSync(join(root, target.entry))) {
      throw new BuildError(`Cannot build ${target.name}: entry point "${target.entry}" not found`);
    }
  }
  await Deno.mkdir(outDir, { recursive: true });

  let reason: string | undefined;
  if (denortBin && await isFullDeno(denortBin)) {
    reason = `DENORT_BIN "${denortBin}" is the full deno, which cannot serve as the runtime`;
  }
  const outputs: string[] = [];
  for (const target of reason === undefined ? targets : []) {
    const output = join(outDir, target.name);
    progress(`build: deno compile ${target.entry} -> ${relative(root, output)}`);
    // deno compile will not overwrite a file it did not write, such as an earlier launcher.
    await removeLauncher(output);
    const result = await compile({
      denoPath,
      args: [
        "compile",
        "--output",
        output,
        ...(config ? ["--config", config] : []),
        ...target.permissions,
        ...(target.runtimeFlags ?? []),
        join(root, target.entry),
      ],
      cwd: root,
      timeoutMs,
    });
    if (result.success) {
      outputs.push(output);
      continue;
    }
    if (result.timedOut) {
      reason = `deno compile took longer than ${Math.round(timeoutMs / 1000)} s`;
      break;
    }
    reason = runtimeFetchFailure(result.output);
    if (reason === undefined) {
      throw new BuildError(
        `Cannot build ${target.name}: deno compile exited with code ${result.code}\n${result.output.trimEnd()}`,
      );
    }
    break;
  }
  if (reason === undefined) return { kind: "binaries", outputs };

  progress(`build: no standalone binaries (${reason}); writing launcher scripts instead`);
  const launchers: string[] = [];
  for (const target of targets) {
    const path = join(outDir, target.name);
    const bundle = `${path}.js`;
    progress(`build: deno bundle ${target.entry} -> ${relative(root, bundle)}`);
    const bundled = await compile({
      denoPath,
      args: [
        "bundle",
        // npm packages then resolve their platform-neutral builds: LogTape's Node build
        // imports node:util (for an inspect it never reaches under Deno), and loading
        // Deno's Node layer for it costs each process ~20 ms of start-up CPU.
        "--platform=browser",
        ...(config ? ["--config", config] : []),
        "--output",
        bundle,
        join(root, target.entry),
      ],
      cwd: root,
      timeoutMs,
    });
    if (!bundled.success) {
      progress(`build: no bundle for ${target.name} (the launcher runs the sources)`);
      await Deno.remove(bundle).catch(() => {});
    }
    await writeExecutable(
      path,
      launcherScript({
        name: relative(root, path),
        denoPath,
        entry: join(root, target.entry),
        permissions: [...target.permissions, ...(target.runtimeFlags ?? [])],
        ...(config ? { config } : {}),
        ...(bundled.success ? { bundle, sources: sourcesOf(root, target, config) } : {}),
      }),
    );
    launchers.push(path);
  }
  return { kind: "launchers", outputs: launchers, reason };
}

/**
 * What a target's bundle is built from: its folder and `shared/` (every folder and
 * non-test module in them), and the dependency files.
 */
function sourcesOf(root: string, target: BuildTarget, config: string | undefined): string[] {
  const sources: string[] = [];
  const walk = (dir: string): void => {
    sources.push(dir);
    for (const entry of Deno.readDirSync(dir)) {
      const path = join(dir, entry.name);
      if (entry.isDirectory) walk(path);
      else if (entry.name.endsWith(".ts") && !entry.name.endsWith("_test.ts")) sources.push(path);
    }
  };
  for (const dir of [dirname(target.entry), "shared"]) {
    if (existsSync(join(root, dir))) walk(join(root, dir));
  }
  if (config) sources.push(config, join(root, "deno.lock"));
  return sources.filter((path) => existsSync(path));
}

/**
 * Describes a build result in one line.
 *
 * @param result What {@linkcode buildBinaries} returned.
 * @param root The project root, to print relative paths.
 * @returns E.g. `bin/server, bin/client: standalone binaries (deno compile)`.
 */
export function describeBuild(result: BuildResult, root: string): string {
  const names = result.outputs.map((path) => relative(root, path)).join(", ");
  return result.kind === "binaries"
    ? `${names}: standalone binaries (deno compile)`
    : `${names}: launcher scripts (deno compile could not fetch its runtime: ${result.reason})`;
}

if (import.meta.main) {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
  try {
    const result = await buildBinaries({ root, onProgress: (line) => console.error(line) });
    console.log(describeBuild(result, root));
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    Deno.exit(1);
  }
}
