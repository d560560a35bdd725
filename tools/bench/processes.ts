/**
 * The processes the bench starts: spawned with a clean environment, their output read
 * line by line with the time each line arrived, and every live one known, so a signal
 * can stop them all.
 *
 * @module
 */
import { ROOT } from "./paths.ts";

/** Every child the bench started and has not seen exit. */
const live = new Set<Deno.ChildProcess>();

/** How many of a process's last output lines are kept for failure messages. */
const TAIL_LINES = 12;

/** A started process. */
export interface Tracked {
  /** The process. */
  readonly child: Deno.ChildProcess;
  /** Its pid. */
  readonly pid: number;
  /** Resolves with the exit code and the moment the exit was seen. */
  readonly exited: Promise<{ code: number; signal: string | null; at: number }>;
  /** Resolves when stdout and stderr are drained. */
  readonly drained: Promise<void>;
  /** The last lines of stdout and stderr, for failure messages. */
  readonly tail: string[];
}

/** Options of {@linkcode spawn}. */
export interface SpawnOptions {
  /**
   * The program's arguments.
   *
   * @default {[]}
   */
  readonly args?: readonly string[];
  /** The whole environment (nothing is inherited). */
  readonly env: Record<string, string>;
  /**
   * The working directory.
   *
   * @default {the repository root}
   */
  readonly cwd?: string;
  /** Called for each stdout line with the `performance.now()` it was read at. */
  readonly onLine?: (line: string, at: number) => void;
}

async function readLines(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string, at: number) => void,
): Promise<void> {
  let carry = "";
  for await (const text of stream.pipeThrough(new TextDecoderStream())) {
    const at = performance.now();
    const parts = (carry + text).split("\n");
    carry = parts.pop() ?? "";
    for (const part of parts) onLine(part.endsWith("\r") ? part.slice(0, -1) : part, at);
  }
  if (carry !== "") onLine(carry, performance.now());
}

/**
 * Starts a program with stdin closed and stdout and stderr read line by line.
 *
 * @param program The executable.
 * @param options Arguments, environment, directory and a stdout line handler.
 * @returns The tracked process.
 *
 * @example Usage
 * ```ts
 * const server = spawn("bin/server", { env: baseEnv(), onLine: (line) => console.log(line) });
 * const { code } = await server.exited;
 * ```
 */
export function spawn(program: string, options: SpawnOptions): Tracked {
  const child = new Deno.Command(program, {
    args: [...(options.args ?? [])],
    env: options.env,
    clearEnv: true,
    cwd: options.cwd ?? ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  live.add(child);
  const tail: string[] = [];
  const keep = (line: string, at: number, fromStdout: boolean): void => {
    tail.push(line);
    if (tail.length > TAIL_LINES) tail.shift();
    if (fromStdout) options.onLine?.(line, at);
  };
  const drained = Promise.all([
    readLines(child.stdout, (line, at) => keep(line, at, true)),
    readLines(child.stderr, (line, at) => keep(line, at, false)),
  ]).then(() => {});
  const exited = child.status.then((status) => {
    live.delete(child);
    return { code: status.code, signal: status.signal, at: performance.now() };
  });
  return { child, pid: child.pid, exited, drained, tail };
}

/**
 * Whether the bench has not seen a process exit yet.
 *
 * @param tracked The process.
 * @returns True while it runs.
 *
 * @example Usage
 * ```ts
 * const done = clients.filter((client) => !isLive(client)).length;
 * ```
 */
export function isLive(tracked: Tracked): boolean {
  return live.has(tracked.child);
}

/**
 * Sends a signal unless the process has exited.
 *
 * @param tracked The process.
 * @param signal The signal.
 *
 * @example Usage
 * ```ts
 * kill(server, "SIGTERM");
 * ```
 */
export function kill(tracked: Tracked, signal: Deno.Signal): void {
  if (!live.has(tracked.child)) return;
  try {
    tracked.child.kill(signal);
  } catch {
    // It exited between the check and the kill.
  }
}

/**
 * Sends SIGKILL to every process the bench started that still runs (on SIGINT/SIGTERM).
 *
 * @example Usage
 * ```ts
 * Deno.addSignalListener("SIGINT", () => killAll());
 * ```
 */
export function killAll(): void {
  for (const child of live) {
    try {
      child.kill("SIGKILL");
    } catch {
      // Gone already.
    }
  }
}

/**
 * The last non-empty line a process printed, cut short, for a failure message.
 *
 * @param tail {@linkcode Tracked.tail}.
 * @returns The line, at most 200 characters and an ellipsis.
 *
 * @example Usage
 * ```ts
 * lastLine(["config ok", "Cannot connect", ""]); // "Cannot connect"
 * ```
 */
export function lastLine(tail: readonly string[]): string {
  const line = tail.findLast((text) => text.trim() !== "") ?? "(no output)";
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}

/**
 * The environment every child gets: only what Deno needs to find its cache.
 *
 * @returns Variable name → value.
 *
 * @example Usage
 * ```ts
 * const env = { ...baseEnv(), SERVER_PORT: "12345" };
 * ```
 */
export function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of ["PATH", "HOME", "DENO_DIR", "XDG_CACHE_HOME", "TMPDIR", "LANG", "TZ"]) {
    const value = Deno.env.get(name);
    if (value !== undefined) env[name] = value;
  }
  return env;
}

/**
 * A TCP port on 127.0.0.1 that was free a moment ago.
 *
 * @returns The port.
 *
 * @example Usage
 * ```ts
 * const port = freePort();
 * ```
 */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/**
 * Waits for a promise, or gives up after `ms`.
 *
 * @param promise What to wait for.
 * @param ms The limit.
 * @returns Whether it settled in time.
 *
 * @example Usage
 * ```ts
 * if (!(await within(server.exited, 15_000))) kill(server, "SIGKILL");
 * ```
 */
export async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((done) => {
    timer = setTimeout(() => done(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
