/**
 * The processes the bench starts: a clean environment, output read line by line with the
 * time each line arrived, and every live one known, so a signal can stop them all.
 *
 * @module
 */

/** Every child the bench started and has not seen exit. */
const live = new Set<Deno.ChildProcess>();

/** The variables a child inherits: only what Deno needs to find its cache. */
const KEPT_ENV = ["PATH", "HOME", "DENO_DIR", "XDG_CACHE_HOME", "TMPDIR", "LANG", "TZ"];

/**
 * A started process: `exited` resolves with its exit and the moment it was seen,
 * `drained` once stdout and stderr are read, `tail` holds their last dozen lines (for
 * failure messages), `live` says whether the bench has not seen it exit yet.
 */
export interface Tracked {
  readonly pid: number;
  readonly exited: Promise<{ code: number; signal: string | null; at: number }>;
  readonly drained: Promise<void>;
  readonly tail: string[];
  readonly live: boolean;
  /** Sends a signal unless it has exited. */
  kill(signal: Deno.Signal): void;
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
 * Starts a program with stdin closed, an environment of `env` and the few variables Deno
 * needs, and stdout and stderr read line by line; `onLine` gets each stdout line with the
 * `performance.now()` it was read at.
 */
export function spawn(
  program: string,
  options: {
    readonly args?: readonly string[];
    readonly env?: Readonly<Record<string, string>>;
    readonly onLine?: (line: string, at: number) => void;
  } = {},
): Tracked {
  const inherited = Object.entries(Deno.env.toObject()).filter(([name]) => KEPT_ENV.includes(name));
  const child = new Deno.Command(program, {
    args: [...(options.args ?? [])],
    env: { ...Object.fromEntries(inherited), ...options.env },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  live.add(child);
  const tail: string[] = [];
  const keep = (line: string): void => {
    if (tail.push(line) > 12) tail.shift();
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
  return {
    pid: child.pid,
    exited,
    drained,
    tail,
    get live() {
      return live.has(child);
    },
    kill: (signal) => signalIfLive(child, signal),
  };
}

function signalIfLive(child: Deno.ChildProcess, signal: Deno.Signal): void {
  if (!live.has(child)) return;
  try {
    child.kill(signal);
  } catch {
    // It exited between the check and the kill.
  }
}

/** Sends SIGKILL to every process the bench started that still runs (on SIGINT/SIGTERM). */
export function killAll(): void {
  for (const child of live) signalIfLive(child, "SIGKILL");
}

/** Waits for a promise, or gives up after `ms`; tells whether it settled in time. */
export async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((done) => (timer = setTimeout(() => done(false), ms)));
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
