/**
 * Process helpers shared by the Docker tools (`images.ts`, `compose.ts`,
 * `validate_echo.ts`) and the Docker end-to-end test: run a command with a bound on
 * its time, capture its output, and report failures as one readable line.
 *
 * @module
 */

/** A tool could not do its job; `message` is the one line shown to the user. */
export class ToolError extends Error {
  /**
   * @param message One line saying what failed and, if known, how to fix it.
   * @param options Standard error options.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ToolError";
  }
}

/** Options of {@linkcode run}. */
export interface RunOptions {
  /**
   * Bytes or text written to the command's stdin, which is then closed.
   * @default stdin is not connected
   */
  readonly stdin?: string | Uint8Array;
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
   * Let stdout and stderr go straight to this process's (progress the user should see).
   * @default false (captured)
   */
  readonly inherit?: boolean;
}

/** What a finished command left. */
export interface RunResult {
  /** Exit code; 124 when the time limit ended it, 127 when it was not found. */
  readonly code: number;
  /** Captured stdout (empty with `inherit`). */
  readonly stdout: string;
  /** Captured stderr (empty with `inherit`). */
  readonly stderr: string;
  /** Whether the time limit ended it. */
  readonly timedOut: boolean;
}

const decoder = new TextDecoder();

/**
 * Runs a command to its end (or its time limit) and returns its exit code and output.
 * A missing program gives code 127 instead of throwing.
 *
 * @param argv The program and its arguments.
 * @param options Input, time limit, working directory, environment, output mode.
 * @returns The exit code and captured output.
 *
 * @example Usage
 * ```ts ignore
 * const { code, stdout } = await run(["docker", "info"], { timeoutMs: 10_000 });
 * ```
 */
export async function run(argv: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const [program, ...args] = argv;
  if (program === undefined) throw new TypeError("Cannot run a command: argv is empty");
  const inherit = options.inherit ?? false;
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(program, {
      args,
      cwd: options.cwd,
      env: options.env ? { ...options.env } : undefined,
      stdin: options.stdin === undefined ? "null" : "piped",
      stdout: inherit ? "inherit" : "piped",
      stderr: inherit ? "inherit" : "piped",
    }).spawn();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      return { code: 127, stdout: "", stderr: `${program}: command not found`, timedOut: false };
    }
    throw error;
  }
  let timedOut = false;
  let killTimer: ReturnType<typeof setTimeout> | undefined;
  const limitTimer = options.timeoutMs === undefined ? undefined : setTimeout(() => {
    timedOut = true;
    kill(child, "SIGTERM");
    killTimer = setTimeout(() => kill(child, "SIGKILL"), 2_000);
  }, options.timeoutMs);
  try {
    if (options.stdin !== undefined) {
      const writer = child.stdin.getWriter();
      const bytes = typeof options.stdin === "string"
        ? new TextEncoder().encode(options.stdin)
        : options.stdin;
      // A program that exits without reading its input must not fail the run.
      await writer.write(bytes).catch(() => {});
      await writer.close().catch(() => {});
    }
    if (inherit) {
      const status = await child.status;
      return { code: timedOut ? 124 : status.code, stdout: "", stderr: "", timedOut };
    }
    const output = await child.output();
    return {
      code: timedOut ? 124 : output.code,
      stdout: decoder.decode(output.stdout),
      stderr: decoder.decode(output.stderr),
      timedOut,
    };
  } finally {
    clearTimeout(limitTimer);
    clearTimeout(killTimer);
  }
}

function kill(child: Deno.ChildProcess, signal: Deno.Signal): void {
  try {
    child.kill(signal);
  } catch {
    // Already gone.
  }
}

/**
 * Runs a command and returns its trimmed stdout, or throws a {@linkcode ToolError}
 * whose message is `what` plus the command's last stderr line.
 *
 * @param argv The program and its arguments.
 * @param what What the command does, for the error: "Cannot build image tp0-server".
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

/**
 * Returns the last non-empty line of a text, trimmed.
 *
 * @param text Any text.
 * @returns The line, or `""`.
 */
export function lastLine(text: string): string {
  const lines = text.split(/\r?\n/).map((line) => line.trim()).filter((line) => line !== "");
  return lines.at(-1) ?? "";
}

/**
 * Makes sure the `docker` command exists and its engine answers.
 *
 * @throws {ToolError} With the fix when either is missing.
 */
export async function assertDockerEngine(): Promise<void> {
  const result = await run(["docker", "info", "--format", "{{.ServerVersion}}"], {
    timeoutMs: 20_000,
  });
  if (result.code === 127) {
    throw new ToolError(
      "Cannot find the docker command: install Docker (tools/provision_docker.sh)",
    );
  }
  if (result.code !== 0 || result.stdout.trim() === "") {
    const detail = result.timedOut ? "no answer within 20 s" : lastLine(result.stderr);
    throw new ToolError(
      `Cannot reach the Docker engine: start dockerd or run tools/provision_docker.sh (${detail})`,
    );
  }
}

/**
 * Runs `main` of a tool script and exits: its code on return, 1 with a single
 * `<tool>: <message>` line on stderr when it throws (no stack trace).
 *
 * @param tool The script's name for the error line.
 * @param main The script's body; returns its exit code.
 */
export async function runMain(tool: string, main: () => Promise<number>): Promise<never> {
  try {
    Deno.exit(await main());
  } catch (error) {
    console.error(`${tool}: ${error instanceof Error ? error.message : String(error)}`);
    Deno.exit(1);
  }
}
