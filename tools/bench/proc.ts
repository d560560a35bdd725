/**
 * What the bench reads from Linux's `/proc`: the memory and CPU time of processes, and
 * facts about the machine for the report. The parsers are pure; the readers give
 * `undefined` (or leave a fact out) where `/proc` is missing.
 *
 * @module
 */
import type { Tracked } from "./processes.ts";

/** `VmRSS` and `VmHWM` (the peak) in kB from the text of `/proc/<pid>/status` (0 when absent). */
export function parseProcStatus(text: string): { rssKb: number; hwmKb: number } {
  const field = (name: string) =>
    Number(new RegExp(`^${name}:\\s+(\\d+)\\s*kB`, "m").exec(text)?.[1] ?? 0);
  return { rssKb: field("VmRSS"), hwmKb: field("VmHWM") };
}

/**
 * The CPU times in the text of `/proc/<pid>/stat`, in clock ticks: the process's own
 * `utime` + `stime` (fields 14 and 15) and those of its reaped children, `cutime` +
 * `cstime` (16 and 17); undefined when the text is not a stat line. The command name
 * (field 2) may hold spaces and parentheses, so fields are counted from its last `)`.
 */
export function parseProcStat(
  text: string,
): { selfTicks: number; childrenTicks: number } | undefined {
  const close = text.lastIndexOf(")");
  const fields = text.slice(close + 1).trim().split(/\s+/);
  // fields[0] is field 3 (state), so field n is at n - 3.
  const [utime, stime, cutime, cstime] = [14, 15, 16, 17].map((n) => Number(fields[n - 3]));
  if (close < 0 || ![utime, stime, cutime, cstime].every(Number.isFinite)) return undefined;
  return { selfTicks: utime! + stime!, childrenTicks: cutime! + cstime! };
}

/**
 * CPU time in ms of the children this process has reaped so far, from `/proc/self/stat`
 * (undefined when it cannot be read). The difference over a span is the CPU of the
 * children that exited in it: exact, with no sampling, because the kernel adds a child's
 * times to its parent on reaping.
 */
export function reapedChildrenCpuMs(): number | undefined {
  try {
    // A clock tick is 10 ms: USER_HZ is 100 on every Linux architecture Deno runs on.
    const ticks = parseProcStat(Deno.readTextFileSync("/proc/self/stat"))?.childrenTicks;
    return ticks === undefined ? undefined : ticks * 10;
  } catch {
    return undefined;
  }
}

/**
 * Samples `/proc/<pid>/status` of tracked processes every 10 ms and keeps, per pid, the
 * largest of `VmRSS` and `VmHWM`. `VmHWM` is the process's own peak, so the last sample
 * before it exits is the answer, whenever the peak happened.
 */
export class RssSampler {
  readonly #peakKb = new Map<number, number>();
  readonly #active = new Set<number>();
  readonly #timer = setInterval(() => this.#active.forEach((pid) => this.#sample(pid)), 10);

  /** Samples a process from now until its exit is seen, before its pid can be reused. */
  track(process: Pick<Tracked, "pid" | "exited">): void {
    this.#active.add(process.pid);
    this.#sample(process.pid);
    process.exited.then(() => this.#active.delete(process.pid));
  }

  /** The largest figure seen for a pid, in kB; undefined when no sample was taken. */
  peakKb(pid: number): number | undefined {
    return this.#peakKb.get(pid);
  }

  /** Stops the timer and every sampling. */
  stop(): void {
    clearInterval(this.#timer);
    this.#active.clear();
  }

  #sample(pid: number): void {
    try {
      const memory = parseProcStatus(Deno.readTextFileSync(`/proc/${pid}/status`));
      const peak = Math.max(memory.rssKb, memory.hwmKb, this.#peakKb.get(pid) ?? 0);
      if (peak > 0) this.#peakKb.set(pid, peak);
    } catch {
      // Gone already; the last sample stands.
    }
  }
}

/** The 1, 5 and 15 minute loads in `/proc/loadavg` (`"0.52 0.40 0.33"`); undefined off Linux. */
export async function loadAverage(): Promise<string | undefined> {
  try {
    return (await Deno.readTextFile("/proc/loadavg")).split(" ").slice(0, 3).join(" ");
  } catch {
    return undefined;
  }
}

/**
 * Facts about the machine for the report, e.g. `{ cores: "2", deno: "2.9.6", … }`: CPU
 * model, cores, Deno and kernel versions, and the load before the runs (`loadAtStart`)
 * and after them (other work on the machine skews every figure).
 */
export async function machineFacts(
  loadAtStart: string | undefined,
): Promise<Record<string, string>> {
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo").catch(() => "");
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim();
  const loadAtEnd = await loadAverage();
  return {
    ...(model ? { cpu: model } : {}),
    cores: String(navigator.hardwareConcurrency),
    deno: Deno.version.deno,
    kernel: Deno.osRelease(),
    ...(loadAtStart ? { "load before": loadAtStart } : {}),
    ...(loadAtEnd ? { "load after": loadAtEnd } : {}),
  };
}

/**
 * CPU time in ms of each thread of a process, from `/proc/<pid>/task/*\/stat`: the main
 * thread as `main`, Deno's Worker threads by their names (`worker-1`…), every other thread
 * (runtime I/O, V8's compiler and GC helpers) summed as `other`; undefined when unreadable.
 */
export function threadCpuMs(pid: number): Record<string, number> | undefined {
  const out: Record<string, number> = {};
  try {
    for (const { name: tid } of Deno.readDirSync(`/proc/${pid}/task`)) {
      const text = Deno.readTextFileSync(`/proc/${pid}/task/${tid}/stat`);
      const comm = text.slice(text.indexOf("(") + 1, text.lastIndexOf(")"));
      const label = tid === String(pid) ? "main" : /^worker-\d+$/.test(comm) ? comm : "other";
      out[label] = (out[label] ?? 0) + (parseProcStat(text)?.selfTicks ?? 0) * 10;
    }
  } catch {
    return undefined;
  }
  return out;
}

/** Per-thread CPU used between two {@linkcode threadCpuMs} readings (threads since gone: 0). */
export function threadCpuSince(
  before: Readonly<Record<string, number>>,
  after: Readonly<Record<string, number>>,
): Record<string, number> {
  return Object.fromEntries(
    Object.entries(after).map(([label, ms]) => [label, Math.max(0, ms - (before[label] ?? 0))]),
  );
}

/**
 * Each JavaScript thread's share of the JavaScript threads' CPU (`main` and `worker-N`,
 * `other` left out), in percent, e.g. `main 40%, worker-1 31%, worker-2 29%`.
 */
export function formatThreadShares(cpu: Readonly<Record<string, number>>): string {
  const js = Object.entries(cpu).filter(([label]) => label !== "other");
  const total = js.reduce((sum, [, ms]) => sum + ms, 0);
  if (total === 0) return "–";
  return js.sort(([a], [b]) => a.localeCompare(b, "en", { numeric: true }))
    .map(([label, ms]) => `${label} ${Math.round((100 * ms) / total)}%`).join(", ");
}
