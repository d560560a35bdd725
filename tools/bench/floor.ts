/**
 * The floor: the least time the same work could take on this machine. The same number
 * of processes push the same CSV bytes over loopback TCP into one file with one fsync
 * at the end (`floor_sender.ts` → `floor_receiver.ts`), with no protocol, parsing or
 * per-batch durability. The report divides the system's wall time by it.
 *
 * @module
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { lastLine } from "../_cli.ts";
import type { PreparedData } from "./data.ts";
import { spawn, type Tracked, within } from "./processes.ts";
import type { FloorRun } from "./report.ts";

const RECEIVER = fileURLToPath(new URL("./floor_receiver.ts", import.meta.url));
const SENDER = fileURLToPath(new URL("./floor_sender.ts", import.meta.url));

/**
 * Runs the floor once, in a folder of its own inside `scratch`: a receiver process and one
 * sender process per agency file, all senders at once. It is ok when every process exited
 * 0 and every byte arrived.
 */
export async function runFloor(
  data: PreparedData,
  options: { readonly scratch: string; readonly timeoutMs: number },
): Promise<FloorRun> {
  const dir = await Deno.makeTempDir({ dir: options.scratch, prefix: "floor-" });
  const failures: string[] = [];
  const procs: Tracked[] = [];
  // The receiver prints `ready <port>` once listening and `bytes <n>` at the end.
  const ready = Promise.withResolvers<number>();
  let received: number | undefined;
  const deno = (script: string, permissions: string[], args: string[]) =>
    spawn(Deno.execPath(), {
      args: ["run", "--no-config", "--allow-net=127.0.0.1", ...permissions, script, ...args],
      onLine: (line) => {
        const [word, n] = line.split(" ");
        if (word === "ready") ready.resolve(Number(n));
        if (word === "bytes") received = Number(n);
      },
    });
  try {
    const out = join(dir, "floor.csv");
    procs.push(deno(RECEIVER, [`--allow-write=${out}`, `--allow-read=${out}`], [
      String(data.files.length),
      out,
    ]));
    if (!(await within(ready.promise, 30_000))) {
      failures.push(`floor receiver did not start: ${lastLine(procs[0]!.tail.join("\n"))}`);
      return { ok: false, failures, wallMs: NaN };
    }
    const port = String(await ready.promise);
    const started = performance.now();
    for (const file of data.files) {
      procs.push(deno(SENDER, [`--allow-read=${file.path}`], [port, file.path]));
    }
    const all = Promise.all(procs.map((proc) => proc.exited));
    if (!(await within(all, options.timeoutMs))) {
      failures.push(`timed out after ${Math.round(options.timeoutMs / 1000)} s`);
      for (const proc of procs) proc.kill("SIGKILL");
    }
    const exits = await all;
    const wallMs = Math.max(...exits.map((exit) => exit.at)) - started;
    await Promise.all(procs.map((proc) => proc.drained));
    exits.forEach((exit, i) => {
      if (exit.code === 0) return;
      const who = i === 0 ? "receiver" : `sender ${i}`;
      failures.push(`floor ${who} exited ${exit.code}: ${lastLine(procs[i]!.tail.join("\n"))}`);
    });
    const expected = data.files.reduce((sum, file) => sum + file.bytes, 0);
    if (received !== expected) {
      failures.push(`floor receiver got ${received ?? "no"} bytes, expected ${expected}`);
    }
    return { ok: failures.length === 0, failures, wallMs };
  } finally {
    for (const proc of procs) proc.kill("SIGKILL");
    await Promise.all(procs.map((proc) => proc.exited));
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
