/**
 * What the bench reads from Linux's `/proc`: the memory and CPU time of processes, and
 * facts about the machine for the report. The parsers are pure; the readers give
 * `undefined` (or leave a fact out) where `/proc` is missing.
 *
 * @module
 */

/** Memory figures of `/proc/<pid>/status`, in kB. */
export interface ProcMemory {
  /** Resident set size now (`VmRSS`). */
  readonly rssKb: number;
  /** Peak resident set size (`VmHWM`). */
  readonly hwmKb: number;
}

/**
 * Reads `VmRSS` and `VmHWM` from the text of `/proc/<pid>/status`.
 *
 * @param text The file's text.
 * @returns Both in kB (0 when absent, e.g. for a zombie).
 *
 * @example Usage
 * ```ts
 * parseProcStatus("VmHWM:\t  51200 kB\nVmRSS:\t  40960 kB\n"); // { rssKb: 40960, hwmKb: 51200 }
 * ```
 */
export function parseProcStatus(text: string): ProcMemory {
  const field = (name: string): number => {
    const match = new RegExp(`^${name}:\\s+(\\d+)\\s*kB`, "m").exec(text);
    return match ? Number(match[1]) : 0;
  };
  return { rssKb: field("VmRSS"), hwmKb: field("VmHWM") };
}

/** CPU times of `/proc/<pid>/stat`, in clock ticks. */
export interface ProcCpu {
  /** The process's own `utime` + `stime` (fields 14 and 15). */
  readonly selfTicks: number;
  /** `cutime` + `cstime` (fields 16 and 17): its children that it has reaped. */
  readonly childrenTicks: number;
}

/**
 * Reads the CPU times of `/proc/<pid>/stat`. The command name (field 2) may hold
 * spaces and parentheses, so fields are counted from its last `)`.
 *
 * @param text The file's text.
 * @returns The ticks, or undefined when the text is not a stat line.
 *
 * @example Usage
 * ```ts
 * parseProcStat("42 (deno) S 1 42 42 0 -1 0 0 0 0 0 150 25 300 40 20");
 * // { selfTicks: 175, childrenTicks: 340 }
 * ```
 */
export function parseProcStat(text: string): ProcCpu | undefined {
  const close = text.lastIndexOf(")");
  if (close < 0) return undefined;
  const fields = text.slice(close + 1).trim().split(/\s+/);
  // fields[0] is field 3 (state), so field n is at n - 3.
  const [utime, stime, cutime, cstime] = [14, 15, 16, 17].map((n) => Number(fields[n - 3]));
  const all = [utime, stime, cutime, cstime];
  if (!all.every((v) => v !== undefined && Number.isFinite(v))) return undefined;
  return { selfTicks: utime! + stime!, childrenTicks: cutime! + cstime! };
}

/** Milliseconds of one clock tick: USER_HZ is 100 on every Linux architecture Deno runs on. */
const MS_PER_TICK = 10;

/**
 * CPU time of the children this process has reaped so far, from `/proc/self/stat`.
 * The difference over a span is the CPU of the children that exited in it: exact,
 * with no sampling, because the kernel adds a child's times to its parent on reaping.
 *
 * @returns Milliseconds, or undefined when `/proc/self/stat` cannot be read.
 *
 * @example Usage
 * ```ts
 * const before = reapedChildrenCpuMs();
 * // … start children and wait for them to exit …
 * const childrenCpuMs = (reapedChildrenCpuMs() ?? 0) - (before ?? 0);
 * ```
 */
export function reapedChildrenCpuMs(): number | undefined {
  try {
    const cpu = parseProcStat(Deno.readTextFileSync("/proc/self/stat"));
    return cpu === undefined ? undefined : cpu.childrenTicks * MS_PER_TICK;
  } catch {
    return undefined;
  }
}

/**
 * Samples `/proc/<pid>/status` of tracked processes every 10 ms and keeps, per pid, the
 * largest of `VmRSS` and `VmHWM`. `VmHWM` is the process's own peak, so the last sample
 * before it exits is the answer, whenever the peak happened.
 *
 * @example Usage
 * ```ts
 * const sampler = new RssSampler();
 * sampler.track(child.pid);
 * await child.status;
 * sampler.untrack(child.pid);
 * sampler.stop();
 * const peakKb = sampler.peakKb(child.pid);
 * ```
 */
export class RssSampler {
  readonly #peakKb = new Map<number, number>();
  readonly #active = new Set<number>();
  readonly #timer: ReturnType<typeof setInterval>;

  /** @param intervalMs Milliseconds between samples. */
  constructor(intervalMs = 10) {
    this.#timer = setInterval(() => this.#sampleAll(), intervalMs);
  }

  /**
   * Starts sampling a pid, with a first sample at once.
   *
   * @param pid The process.
   */
  track(pid: number): void {
    this.#active.add(pid);
    this.#sample(pid);
  }

  /**
   * Stops sampling a pid (call once its exit is seen, before the pid can be reused).
   *
   * @param pid The process.
   */
  untrack(pid: number): void {
    this.#active.delete(pid);
  }

  /**
   * The largest figure seen for a pid.
   *
   * @param pid The process.
   * @returns kB, or undefined when no sample was taken.
   */
  peakKb(pid: number): number | undefined {
    return this.#peakKb.get(pid);
  }

  /** Stops the timer and every sampling. */
  stop(): void {
    clearInterval(this.#timer);
    this.#active.clear();
  }

  #sampleAll(): void {
    for (const pid of this.#active) this.#sample(pid);
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

/**
 * The load averages of `/proc/loadavg`.
 *
 * @returns The 1, 5 and 15 minute loads, e.g. `"0.52 0.40 0.33"`; undefined off Linux.
 *
 * @example Usage
 * ```ts
 * const loadAtStart = await loadAverage();
 * ```
 */
export async function loadAverage(): Promise<string | undefined> {
  try {
    return (await Deno.readTextFile("/proc/loadavg")).split(" ").slice(0, 3).join(" ");
  } catch {
    return undefined;
  }
}

/**
 * Facts about the machine for the report: CPU model, cores, Deno and kernel versions,
 * and the load before and after the runs.
 *
 * @param loadAtStart {@linkcode loadAverage} taken before the runs.
 * @returns Fact name → value, e.g. `{ cores: "2", deno: "2.9.6", … }`.
 *
 * @example Usage
 * ```ts
 * const facts = await machineFacts(await loadAverage());
 * ```
 */
export async function machineFacts(
  loadAtStart: string | undefined,
): Promise<Record<string, string>> {
  const facts: Record<string, string> = {};
  try {
    const cpuinfo = await Deno.readTextFile("/proc/cpuinfo");
    const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1];
    if (model) facts["cpu"] = model.trim();
  } catch {
    // Not Linux; leave it out.
  }
  facts["cores"] = String(navigator.hardwareConcurrency);
  facts["deno"] = Deno.version.deno;
  facts["kernel"] = Deno.osRelease();
  // Other work on the machine skews every figure; the load says how busy it was.
  const loadAtEnd = await loadAverage();
  if (loadAtStart !== undefined) facts["load before"] = loadAtStart;
  if (loadAtEnd !== undefined) facts["load after"] = loadAtEnd;
  return facts;
}
