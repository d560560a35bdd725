/**
 * What every tool script shares: {@linkcode parseCli}, {@linkcode runMain} (a bad command line
 * exits 2, a failure 1, each with one line), {@linkcode run}, and small file and network helpers.
 *
 * @module
 */
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import { writeAll } from "../shared/bytes.ts";
import { errorText } from "../shared/errors.ts";

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
 * Parses a command line with `node:util`'s strict `parseArgs`, skipping the `--` that
 * `deno task x -- …` passes on.
 *
 * @throws {UsageError} For an unknown flag, a flag without its value or an unexpected argument.
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

/** Refuses an option that does not apply to `command`; `given` must hold only what was typed. */
export function refuseStray(command: string, given: object, applies: readonly string[]): void {
  const stray = Object.keys(given).find((flag) => !applies.includes(flag));
  if (stray !== undefined) throw new UsageError(`option "--${stray}" does not apply to ${command}`);
}

/**
 * A tool with commands for {@linkcode parseCommand}: the flags (no defaults), the flags of each
 * command, the usage, and the commands that take one operand, with what it is.
 */
export interface CommandSpec<T extends ParseArgsOptionsConfig> {
  readonly options: T;
  readonly commands: ReadonlyMap<string, readonly string[]>;
  readonly usage: string;
  readonly operands?: ReadonlyMap<string, string>;
}

/** A command line {@linkcode parseCommand} accepted: only the flags it gave are in `given`. */
export interface ParsedCommand<V> {
  readonly command: string;
  readonly operand: string | undefined;
  readonly given: V;
}

/**
 * Parses `<command> [operand] [flags]`: the command one of `spec.commands`, each flag one
 * that applies to it. For `--help` it prints the usage and returns `undefined`.
 *
 * @throws {UsageError} For an unknown command, a stray operand or flag, a missing operand.
 */
export function parseCommand<T extends ParseArgsOptionsConfig>(
  args: readonly string[],
  spec: CommandSpec<T>,
): ParsedCommand<ReturnType<typeof parseCli<T>>["values"]> | undefined {
  const options = { ...spec.options, help: { type: "boolean", short: "h" } } as const;
  const { values, positionals } = parseCli(args, options, true);
  const { help, ...given } = values as Record<string, unknown>;
  if (help === true) {
    console.log(spec.usage);
    return undefined;
  }
  const [command = "", ...rest] = positionals;
  const flags = spec.commands.get(command);
  const operand = spec.operands?.get(command);
  if (flags === undefined || (operand === undefined && rest.length > 0)) {
    const names = [...spec.commands.keys()];
    const expected = `${names.slice(0, -1).join(", ")} or ${names.at(-1)}`;
    throw new UsageError(`expected ${expected}, not "${positionals.join(" ")}"`);
  }
  refuseStray(command, given, flags);
  if (operand !== undefined && rest.length !== 1) {
    throw new UsageError(`${command} takes ${operand}`);
  }
  return { command, operand: rest[0], given: given as ReturnType<typeof parseCli<T>>["values"] };
}

/**
 * Runs a tool's `main` and exits with its code, or after one line `<tool>: <message>` when it
 * throws: 2 for a {@linkcode UsageError}, 1 for anything else.
 */
export async function runMain(tool: string, main: () => Promise<number>): Promise<never> {
  try {
    Deno.exit(await main());
  } catch (error) {
    console.error(`${tool}: ${errorText(error)}`);
    Deno.exit(error instanceof UsageError ? 2 : 1);
  }
}

/**
 * Reads a whole number from the value of `flag`.
 *
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
 * Checks that the value of `flag` is one of `choices`, and returns it typed.
 *
 * @throws {UsageError} When it is not one of them.
 */
export function choiceArg<T extends string>(flag: string, raw: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(raw)) {
    throw new UsageError(`${flag} must be one of ${choices.join(", ")}, not "${raw}"`);
  }
  return raw as T;
}

/** Options of {@linkcode run}; stdin is never connected. */
export interface RunOptions {
  /** After this many milliseconds, SIGTERM, then SIGKILL 2 s later. @default no limit */
  readonly timeoutMs?: number;
  /** Working directory. @default the current one */
  readonly cwd?: string;
  /** Extra environment variables, added to the inherited ones. @default none */
  readonly env?: Readonly<Record<string, string>>;
  /** `capture` keeps stdout and stderr; `inherit` passes them through; `tee` does both. */
  readonly output?: "capture" | "inherit" | "tee";
}

/** What a finished command left: its exit code (124 timed out, 127 not found) and output. */
export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
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

/** Runs a command to its end or its time limit; a missing program gives code 127. */
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
      stdin: "null",
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
 * Runs a command as {@linkcode run} does and returns its trimmed stdout.
 *
 * @throws {ToolError} When it fails or times out: `what`, then its last line of stderr.
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

// Colours, and the erase-line (`\x1b[2K`) Compose v2 writes before every line of `logs`.
// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g;

/** The last non-empty line of a command's output, trimmed, uncoloured, cut at 200 characters. */
export function lastLine(text: string): string {
  const line = stripAnsi(text).split(/\r?\n/).map((l) => l.trim()).findLast((l) => l) ?? "";
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}

/** Removes terminal colours and cursor controls (Compose v2's `\x1b[2K`) from a command's output. */
export function stripAnsi(text: string): string {
  return text.replace(ANSI, "");
}

/** Whether a file or folder exists: `false` only when it is not there. */
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
 * Writes a file atomically (a flushed file beside it, renamed over it), never readable under
 * a wider `mode`, even briefly.
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
    await writeAll(file, bytes);
    await file.syncData();
    await Deno.rename(temp, path);
  } catch (error) {
    await Deno.remove(temp).catch(() => {});
    throw error;
  }
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): number {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  return listener.addr.port;
}
