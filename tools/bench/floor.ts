/**
 * The floor: the least time the same work could take on this machine. The same number
 * of processes push the same CSV bytes over loopback TCP into one file with one fsync
 * at the end, with no protocol, parsing or per-batch durability. The report divides the
 * system's wall time by it.
 *
 * @module
 */
import { join } from "node:path";
import type { PreparedData } from "./data.ts";
import { baseEnv, kill, lastLine, spawn, type Tracked, within } from "./processes.ts";
import { type FloorRun, formatSeconds } from "./report.ts";

/** How long the receiver may take to print its port. */
const RECEIVER_READY_MS = 30_000;

/**
 * The floor's receiver: accepts N connections, appends everything to one file (writes
 * serialized), fsyncs once when all have closed, prints the byte count and exits.
 */
const FLOOR_RECEIVER = `const [n, path] = Deno.args;
const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
const file = await Deno.open(path, { create: true, write: true, append: true });
let total = 0;
let chain = Promise.resolve();
console.log("ready " + listener.addr.port);
async function writeAll(bytes) {
  for (let off = 0; off < bytes.length;) off += await file.write(bytes.subarray(off));
}
async function serve(conn) {
  const buf = new Uint8Array(1 << 18);
  for (;;) {
    const got = await conn.read(buf);
    if (got === null) break;
    total += got;
    chain = chain.then(() => writeAll(buf.subarray(0, got)));
    await chain;
  }
  conn.close();
}
const tasks = [];
for (let i = 0; i < Number(n); i++) tasks.push(serve(await listener.accept()));
listener.close();
await Promise.all(tasks);
await file.sync();
file.close();
console.log("bytes " + total);
`;

/** The floor's sender: streams one file into one connection and exits. */
const FLOOR_SENDER = `const [port, path] = Deno.args;
const conn = await Deno.connect({ hostname: "127.0.0.1", port: Number(port) });
const file = await Deno.open(path);
const buf = new Uint8Array(1 << 18);
for (;;) {
  const n = await file.read(buf);
  if (n === null) break;
  for (let off = 0; off < n;) off += await conn.write(buf.subarray(off, n));
}
file.close();
conn.close();
`;

/** Options of {@linkcode runFloor}. */
export interface FloorOptions {
  /** A scratch directory; the run makes and removes its own folder inside. */
  readonly scratch: string;
  /** The limit of the run. */
  readonly timeoutMs: number;
}

/** The receiver once it printed its port; `received()` is its byte count once it exits. */
interface Receiver {
  readonly proc: Tracked;
  readonly port: number | undefined;
  readonly received: () => number | undefined;
}

/**
 * Runs the floor once: a receiver process and one sender process per agency file, all
 * senders at once, over loopback TCP into one file with one fsync.
 *
 * @param data The agency files.
 * @param options Scratch directory and time limit.
 * @returns The wall time, and whether every process exited 0 and every byte arrived.
 *
 * @example Usage
 * ```ts
 * const floor = await runFloor(data, { scratch: ".bench/run-x", timeoutMs: 60_000 });
 * ```
 */
export async function runFloor(data: PreparedData, options: FloorOptions): Promise<FloorRun> {
  const dir = await Deno.makeTempDir({ dir: options.scratch, prefix: "floor-" });
  const failures: string[] = [];
  const procs: Tracked[] = [];
  try {
    const receiver = await startReceiver(dir, data.files.length);
    procs.push(receiver.proc);
    if (receiver.port === undefined) {
      failures.push(`floor receiver did not start: ${lastLine(receiver.proc.tail)}`);
      return { ok: false, failures, wallMs: NaN };
    }
    const senderJs = join(dir, "sender.js");
    await Deno.writeTextFile(senderJs, FLOOR_SENDER);
    const started = performance.now();
    for (const file of data.files) procs.push(startSender(senderJs, receiver.port, file.path));
    const all = Promise.all(procs.map((proc) => proc.exited));
    if (!(await within(all, options.timeoutMs))) {
      failures.push(`timed out after ${formatSeconds(options.timeoutMs)}`);
      for (const proc of procs) kill(proc, "SIGKILL");
    }
    const exits = await all;
    const wallMs = Math.max(...exits.map((exit) => exit.at)) - started;
    await Promise.all(procs.map((proc) => proc.drained));
    exits.forEach((exit, i) => {
      if (exit.code !== 0) {
        failures.push(
          `floor ${i === 0 ? "receiver" : `sender ${i}`} exited with code ${exit.code}: ${
            lastLine(procs[i]!.tail)
          }`,
        );
      }
    });
    const expected = data.files.reduce((sum, file) => sum + file.bytes, 0);
    const received = receiver.received();
    if (received !== expected) {
      failures.push(`floor receiver got ${received ?? "no"} bytes, expected ${expected}`);
    }
    return { ok: failures.length === 0, failures, wallMs };
  } finally {
    for (const proc of procs) kill(proc, "SIGKILL");
    await Promise.all(procs.map((proc) => proc.exited));
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** Starts the receiver for `senders` connections and waits for its port. */
async function startReceiver(dir: string, senders: number): Promise<Receiver> {
  const receiverJs = join(dir, "receiver.js");
  const out = join(dir, "floor.csv");
  await Deno.writeTextFile(receiverJs, FLOOR_RECEIVER);
  let port: number | undefined;
  let received: number | undefined;
  let ready: () => void = () => {};
  const readyPromise = new Promise<void>((done) => (ready = done));
  const proc = spawn(Deno.execPath(), {
    args: [
      "run",
      "--no-config",
      "--allow-net=127.0.0.1",
      `--allow-write=${out}`,
      `--allow-read=${out}`,
      receiverJs,
      String(senders),
      out,
    ],
    env: baseEnv(),
    onLine: (line) => {
      const match = /^(ready|bytes) (\d+)$/.exec(line);
      if (match?.[1] === "ready") {
        port = Number(match[2]);
        ready();
      } else if (match?.[1] === "bytes") received = Number(match[2]);
    },
  });
  const started = await within(readyPromise, RECEIVER_READY_MS);
  return { proc, port: started ? port : undefined, received: () => received };
}

function startSender(senderJs: string, port: number, path: string): Tracked {
  return spawn(Deno.execPath(), {
    args: [
      "run",
      "--no-config",
      "--allow-net=127.0.0.1",
      `--allow-read=${path}`,
      senderJs,
      String(port),
      path,
    ],
    env: baseEnv(),
  });
}
