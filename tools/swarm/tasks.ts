/**
 * Reads the stack's tasks (`docker stack ps`) and judges a run's progress from them; pure, so
 * it is tested without an engine.
 *
 * @module
 */

/** The `--format` of `docker stack ps` that {@linkcode parseTasks} reads. */
export const TASK_FORMAT =
  "{{.ID}}|{{.Name}}|{{.Node}}|{{.DesiredState}}|{{.CurrentState}}|{{.Error}}";

/**
 * One task of the stack: its id, its service without the stack's prefix (`server`,
 * `client3`), its node's hostname, what Swarm wants of it (`Running`, `Ready`, `Shutdown`,
 * …), its state (`Running`, `Complete`, `Failed`, `Rejected`, `Preparing`, …), and Swarm's
 * error text (`task: non-zero exit (1)`) or `""`.
 */
export interface Task {
  readonly id: string;
  readonly service: string;
  readonly node: string;
  readonly desired: string;
  readonly state: string;
  readonly error: string;
}

/**
 * Parses `docker stack ps --no-trunc --format TASK_FORMAT` output into its tasks, in the
 * order listed, `stack`'s name stripped from service names.
 */
export function parseTasks(text: string, stack: string): Task[] {
  const tasks: Task[] = [];
  for (const line of text.split("\n")) {
    const [id, name, node, desired, current, ...rest] = line.trim().split("|");
    if (id === undefined || id === "" || name === undefined || current === undefined) continue;
    // Replacement tasks are listed as `\_ tp0_server.1`; names are `<stack>_<service>.<slot>`.
    const service = name.replace(/^\\_\s*/, "").replace(`${stack}_`, "").replace(/\.\d+$/, "");
    tasks.push({
      id,
      service,
      node: node ?? "",
      desired: desired ?? "",
      state: current.split(" ")[0] ?? "",
      error: rest.join("|").trim().replace(/^"(.*)"$/, "$1"),
    });
  }
  return tasks;
}

/** Whether Swarm still means to run a task (or start it after its restart delay). */
function isLive(task: Task): boolean {
  return task.desired !== "Shutdown" && task.desired !== "Remove" && task.desired !== "Orphaned";
}

function isFailure(task: Task): boolean {
  return task.state === "Failed" || task.state === "Rejected";
}

const MISSING_BIND = /bind source path does not exist: (\S+)/;

/**
 * Where a run stands: the agencies `finished` (a completed task, and none that Swarm still
 * runs or is to start), those `givenUp` (failed, and no longer restarted), and a task that
 * cannot start because its node lacks a bind-mounted folder (the data folder), with that
 * folder.
 */
export interface Progress {
  readonly finished: readonly string[];
  readonly givenUp: readonly string[];
  readonly missingFolder?: { readonly task: Task; readonly path: string };
}

/** Judges a run from the stack's tasks and its agency services, `client1` … `clientN`. */
export function judge(tasks: readonly Task[], agencies: readonly string[]): Progress {
  const finished: string[] = [];
  const givenUp: string[] = [];
  for (const agency of agencies) {
    const own = tasks.filter((task) => task.service === agency);
    // Done only once no task of it is live: an old task stopped with SIGTERM (its node
    // came back after Swarm had replaced it) also exits 0, while its replacement runs.
    if (own.some(isLive)) continue;
    if (own.some((task) => task.state === "Complete")) finished.push(agency);
    else if (own.some(isFailure)) givenUp.push(agency);
  }
  for (const task of tasks) {
    const match = task.state === "Rejected" ? MISSING_BIND.exec(task.error) : null;
    if (match !== null) return { finished, givenUp, missingFolder: { task, path: match[1]! } };
  }
  return { finished, givenUp };
}

/**
 * Lines for what changed in the stack's tasks since the last call (e.g. `client3 finished
 * on node vm`): each service's task that started running, each agency that finished, each
 * task that failed (with Swarm's reason). Keys of what was told go into `said`, so each
 * event is told once.
 */
export function newEvents(tasks: readonly Task[], said: Set<string>): string[] {
  const lines: string[] = [];
  for (const task of tasks) {
    const event = task.state === "Running"
      ? "running"
      : task.state === "Complete"
      ? "finished"
      : isFailure(task)
      ? `${task.state.toLowerCase()} (${task.error || "no reason given"})`
      : undefined;
    const key = `${task.id} ${task.state}`;
    if (event === undefined || said.has(key)) continue;
    said.add(key);
    lines.push(`${task.service} ${event} on node ${task.node}`);
  }
  return lines;
}
