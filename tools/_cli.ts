/**
 * What every tool script shares, so each entry point reads alike: its arguments parsed
 * by {@linkcode parseCli}, a bad one reported as one line with exit code 2 and a failure
 * as one line with exit code 1 by {@linkcode runMain}, child processes run by
 * {@linkcode run}; and the few file and network helpers more than one tool needs.
 *
 * ```ts ignore
 * export async function main(args: readonly string[]): Promise<number> {
 *   const { values } = parseCli(args, { out: { type: "string" } });
 *   …
 * }
 * if (import.meta.main) await runMain("dataset", () => main(Deno.args));
 * ```
 *
 * @module
 */
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";

/** A bad command line; {@linkcode runMain} prints its message and exits with 2. */
export class UsageError extends Error {
  /** Its name in messages; its message is one line: what was wrong, what was expected. */
  override readonly name = "UsageError";
}

/** A tool could not do its job; {@linkcode runMain} prints its message and exits with 1. */
export class ToolError extends Error {
  /** Its name in messages; its message is one line: what failed, and how to fix it. */
  override readonly name = "ToolError";
}

/**
 * Parses a command line with `node:util`'s `parseArgs` (strict), skipping the `--` that
 * `deno task x -- …` passes on.
 *
 * @param args The arguments.
 * @param options The flags, as `parseArgs` takes them.
 * @param allowPositionals Whether arguments other than flags are allowed.
 * @returns The flags' values and the positional arguments.
 * @throws {UsageError} For an unknown flag, a flag without its value or an unexpected
 *   argument, named in one line.
 */
export function parseCli<T extends ParseArgsOptionsConfig>(
  args: readonly string[],
  options: T,
  allowPositionals = false,
): ReturnType<typeof parseArgs<{ options: T; allowPositionals: boolean; strict: true }>> {
  try {
    return parseArgs({
      args: args[0] === "--" ? args.slice(1) : [...args],
      options,
      allowPositionals,
      strict: true,
    });
  } catch (error) {
    const text = (error as Error).message.split("\n")[0] ?? "";
    const flag = /'(--?[\w-]+)/.exec(text)?.[1];
    const code = (error as { code?: string }).code;
    throw new UsageError(
      code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" && flag
        ? `unknown option "${flag}"`
        : code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE" && flag
        ? `option "${flag}" needs a value`
        : text,
      { cause: error },
    );
  }
}

/**
 * Runs a tool's `main` and exits: with its code when it returns, and after one line
 * `<tool>: <message>` on stderr (no stack trace) when it throws: code 2 for a
 * {@linkcode UsageError}, 1 for anything else.
 *
 * @param tool The script's name, e.g. `gen-compose`.
 * @param main The script's body; returns its exit code.
 */
export async function runMain(tool: string, main: () => Promise<number>): Promise<never> {
  try {
    Deno.exit(await main());
  } catch (error) {
    console.error(`${tool}: ${error instanceof Error ? error.message : String(error)}`);
    Deno.exit(error instanceof UsageError ? 2 : 1);
  }
}

/**
 * Reads a whole number from a flag's value.
 *
 * @param flag The flag, for the message (`--agencies`).
 * @param raw Its value.
 * @param min The smallest allowed.
 * @param max The largest allowed.
 * @returns The number.
 * @throws {UsageError} When it is not a whole number from `min` to `max`.
 */
export function integerArg(flag: string, raw: string, min: number, max: number): number {
  const value = /^-?\d+$/.test(raw.trim()) ? Number(raw) : NaN;
  if (!(value >= min && value <= max)) {
    throw new UsageError(`${flag} must be a whole number from ${min} to ${max}, not "${raw}"`);
  }
  return value;
}

/**
 * Checks that a flag's value is one of a list.
 *
 * @param flag The flag, for the message (`--mode`).
 * @param raw Its value.
 * @param choices The accepted values.
 * @returns The value, typed.
 * @throws {UsageError} When it is not one of them.
 */
export function choiceArg<T extends string>(flag: string, raw: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(raw)) {
    throw new UsageError(`${flag} must be one of ${choices.join(", ")}, not "${raw}"`);
  }
  return raw as T;
}

/** Options of {@linkcode run}. */
export interface RunOptions {
  /**
   * Text written to the command's stdin, which is then closed.
   * @default stdin is not connected
   */
  readonly stdin?: string;
  /**
   * After this many milliseconds the command gets SIGTERM, then SIGKILL 2 s later.
   * @default no limit
   */
  readonly timeoutMs?: number;
  /**
   * Working directory.
   * @default the current one
   */
  readonly cwd?: string;
  /**
   * Extra environment variables, added to the inherited ones.
   * @default none
   */
  readonly env?: Readonly<Record<string, string>>;
  /**
   * `capture` keeps stdout and stderr; `inherit` lets them go straight to this process's
   * (progress the user should see); `tee` does both.
   * @default "capture"
   */
  readonly output?: "capture" | "inherit" | "tee";
}

/** What a finished command left. */
export interface RunResult {
  /** Exit code; 124 when the time limit ended it, 127 when it was not found. */
  readonly code: number;
  /** Its stdout (empty with `inherit`). */
  readonly stdout: string;
  /** Its stderr (empty with `inherit`). */
  readonly stderr: string;
  /** Whether the time limit ended it. */
  readonly timedOut: boolean;
}

/** Reads a stream to its end as text, copying it to `sink` as it comes when given. */
async function drain(
  stream: ReadableStream<Uint8Array>,
  sink?: { writeSync(p: Uint8Array): number },
): Promise<string> {
  const decoder = new TextDecoder();
  let text = "";
  for await (const chunk of stream) {
    if (sink) { for (let at = 0; at < chunk.length;) at += sink.writeSync(chunk.subarray(at)); }
    text += decoder.decode(chunk, { stream: true });
  }
  return text + decoder.decode();
}

/**
 * Runs a command to its end (or its time limit) and returns its exit code and output.
 * A missing program gives code 127 instead of throwing.
 *
 * @param argv The program and its arguments.
 * @param options Input, time limit, working directory, environment, output mode.
 * @returns The exit code and the output.
 *
 * @example Usage
 * ```ts ignore
 * const { code, stdout } = await run(["docker", "info"], { timeoutMs: 10_000 });
 * ```
 */
export async function run(argv: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const [program, ...args] = argv;
  const output = options.output ?? "capture";
  const mode = output === "inherit" ? "inherit" : "piped";
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(program ?? "", {
      args,
      cwd: options.cwd,
      env: options.env,
      stdin: options.stdin === undefined ? "null" : "piped",
      stdout: mode,
      stderr: mode,
    }).spawn();
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    return { code: 127, stdout: "", stderr: `${program}: command not found`, timedOut: false };
  }
  let timedOut = false;
  const stop = (signal: Deno.Signal) => {
    try {
      child.kill(signal);
    } catch {
      // Already gone.
    }
  };
  let killTimer: ReturnType<typeof setTimeout> | undefined;
  const limitTimer = options.timeoutMs === undefined ? undefined : setTimeout(() => {
    timedOut = true;
    stop("SIGTERM");
    killTimer = setTimeout(() => stop("SIGKILL"), 2_000);
  }, options.timeoutMs);
  try {
    if (options.stdin !== undefined) {
      const writer = child.stdin.getWriter();
      // A program that exits without reading its input must not fail the run.
      await writer.write(new TextEncoder().encode(options.stdin)).catch(() => {});
      await writer.close().catch(() => {});
    }
    const tee = output === "tee";
    const [stdout, stderr, status] = await Promise.all([
      mode === "piped" ? drain(child.stdout, tee ? Deno.stdout : undefined) : "",
      mode === "piped" ? drain(child.stderr, tee ? Deno.stderr : undefined) : "",
      child.status,
    ]);
    return { code: timedOut ? 124 : status.code, stdout, stderr, timedOut };
  } finally {
    clearTimeout(limitTimer);
    clearTimeout(killTimer);
  }
}

/**
 * Runs a command and returns its trimmed stdout, or throws a {@linkcode ToolError}
 * whose message is `what` plus the command's last line of stderr.
 *
 * @param argv The program and its arguments.
 * @param what What the command does, for the error: "Cannot build image tp0-server".
 * @param options As for {@linkcode run}.
 * @returns The trimmed stdout.
 * @throws {ToolError} When the command fails or times out.
 */
export async function runOrThrow(
  argv: readonly string[],
  what: string,
  options: RunOptions = {},
): Promise<string> {
  const result = await run(argv, options);
  if (result.code !== 0) {
    const detail = result.timedOut
      ? `no answer within ${options.timeoutMs} ms`
      : lastLine(result.stderr) || lastLine(result.stdout) || `exit code ${result.code}`;
    throw new ToolError(`${what}: ${detail}`);
  }
  return result.stdout.trim();
}

// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g;

/**
 * Returns the last non-empty line of a command's output, trimmed, without terminal
 * colours, cut at 200 characters.
 *
 * @param text Any text.
 * @returns The line, or `""`.
 *
 * @example Usage
 * ```ts
 * lastLine("config ok\nCannot connect\n"); // "Cannot connect"
 * ```
 */
export function lastLine(text: string): string {
  const line = text.replace(ANSI, "").split(/\r?\n/).map((l) => l.trim()).findLast((l) => l) ??
    "";
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}

/**
 * Removes terminal colours from a command's output.
 *
 * @param text The output.
 * @returns The text alone.
 */
export function stripAnsi(text: string): string {
  return text.replace(ANSI, "");
}

/**
 * Whether a path exists.
 *
 * @param path A file or folder.
 * @returns `false` only when it is not there.
 */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/**
 * Writes a file atomically: a new file beside it with the final mode, flushed to disk,
 * then renamed over the old one. A reader (or a crash) sees the old file or the new one,
 * never half of one, and the data is never readable under a wider mode, even briefly.
 *
 * @param path The file.
 * @param data The content.
 * @param mode The file's mode, e.g. `0o600`.
 */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  mode = 0o644,
): Promise<void> {
  const temp = `${path}.tmp-${crypto.randomUUID().slice(0, 8)}`;
  try {
    using file = await Deno.open(temp, { write: true, createNew: true, mode });
    // The umask may have narrowed the mode given at creation; set it exactly.
    await Deno.chmod(temp, mode);
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
    for (let at = 0; at < bytes.length;) at += await file.write(bytes.subarray(at));
    await file.syncData();
    await Deno.rename(temp, path);
  } catch (error) {
    await Deno.remove(temp).catch(() => {});
    throw error;
  }
}

/**
 * A TCP port on 127.0.0.1 that was free a moment ago.
 *
 * @returns The port.
 */
export function freePort(): number {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  return listener.addr.port;
}
