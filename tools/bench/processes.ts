/**
 * The processes the bench starts: spawned with a clean environment, their output read
 * line by line with the time each line arrived, and every live one known, so a signal
 * can stop them all.
 *
 * @module
 */

/** Every child the bench started and has not seen exit. */
const live = new Set<Deno.ChildProcess>();

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
  /** The last dozen lines of stdout and stderr, for failure messages. */
  readonly tail: string[];
}

async function readLines(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string, at: number) => void,
): Promise<void> {
  let carry = "";
  for await (const text of stream.pipeThrough(new TextDecoderStream())) {
    const at = performance.now();
    const parts = (carry + text).split("\n");
    carry = parts.pop()!;
    for (const part of parts) onLine(part, at);
  }
  if (carry !== "") onLine(carry, performance.now());
}

/**
 * Starts a program with stdin closed, only the environment given, and stdout and stderr
 * read line by line.
 *
 * @param program The executable.
 * @param options Arguments, the whole environment, and a handler of stdout lines with
 *   the `performance.now()` each was read at.
 * @returns The tracked process.
 */
export function spawn(
  program: string,
  options: {
    readonly args?: readonly string[];
    readonly env: Record<string, string>;
    readonly onLine?: (line: string, at: number) => void;
  },
): Tracked {
  const child = new Deno.Command(program, {
    args: [...(options.args ?? [])],
    env: options.env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  live.add(child);
  const tail: string[] = [];
  const keep = (line: string): void => {
    tail.push(line);
    if (tail.length > 12) tail.shift();
  };
  const drained = Promise.all([
    readLines(child.stdout, (line, at) => {
      keep(line);
      options.onLine?.(line, at);
    }),
    readLines(child.stderr, keep),
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
 */
export function isLive(tracked: Tracked): boolean {
  return live.has(tracked.child);
}

/**
 * Sends a signal unless the process has exited.
 *
 * @param tracked The process.
 * @param signal The signal.
 */
export function kill(tracked: Tracked, signal: Deno.Signal): void {
  if (!live.has(tracked.child)) return;
  try {
    tracked.child.kill(signal);
  } catch {
    // It exited between the check and the kill.
  }
}

/** Sends SIGKILL to every process the bench started that still runs (on SIGINT/SIGTERM). */
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
 * The environment every child gets: only what Deno needs to find its cache.
 *
 * @returns Variable name → value.
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
 * Waits for a promise, or gives up after `ms`.
 *
 * @param promise What to wait for.
 * @param ms The limit.
 * @returns Whether it settled in time.
 */
export async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((done) => (timer = setTimeout(() => done(false), ms)));
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
