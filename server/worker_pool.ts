/**
 * The session workers, from the owner's side: starts `SERVER_WORKERS` − 1 of them on the
 * server's port (the owner's thread is the first session thread), routes each one's requests to its `StoreHost`, and at shutdown stops them all, waits
 * for each to say its sessions have ended, and joins it (each logged). A worker that fails is
 * logged in one line and the server stops cleanly: its sessions cannot be taken over, and a
 * server with fewer threads than it says is not one to keep running.
 *
 * @module
 */
import { type ActionLogger, LogAction } from "../shared/log.ts";
import type { StoreHost, StoreOwner } from "./store_host.ts";
import type { ServerOptions } from "./server.ts";
import type { SharedState } from "./shared_state.ts";
import type { ToOwner, ToWorker } from "./thread_messages.ts";

/** Options of {@linkcode WorkerPool.start}. */
export interface WorkerPoolOptions {
  /** The module each worker runs (the server's entry point, which serves as a worker). */
  readonly url: string | URL;
  readonly count: number;
  /** The settings, with the port resolved (never 0: every worker must bind the same one). */
  readonly config: ServerOptions;
  readonly logLevel: string;
  readonly secrets: ReadonlyMap<number, string>;
  readonly owner: StoreOwner;
  readonly state: SharedState;
  readonly log: ActionLogger;
  /** Called once if a worker fails while serving. */
  readonly onFailure: (reason: string) => void;
}

/** How long a stopping worker may take to end its sessions before it is terminated. */
const STOP_GRACE_MS = 5000;

/** One worker, as the owner holds it. */
interface Member {
  readonly index: number;
  readonly worker: Worker;
  readonly host: StoreHost;
  readonly stopped: PromiseWithResolvers<void>;
}

/** The running session workers. */
export class WorkerPool {
  readonly #members: Member[];
  readonly #log: ActionLogger;

  private constructor(members: Member[], log: ActionLogger) {
    this.#members = members;
    this.#log = log;
  }

  /**
   * Starts the workers and resolves once every one listens.
   *
   * @throws {Error} If a worker cannot listen or start (the others are joined first).
   */
  static async start(options: WorkerPoolOptions): Promise<WorkerPool> {
    const { log, owner, count } = options;
    let failed = false;
    const members: Member[] = [];
    const ready: Promise<void>[] = [];
    for (let index = 1; index <= count; index++) {
      const worker = new Worker(options.url, { type: "module", name: `worker-${index}` });
      const post = (message: ToWorker) => worker.postMessage(message);
      const host = owner.host(post);
      const stopped = Promise.withResolvers<void>();
      const listening = Promise.withResolvers<void>();
      const fail = (error: string) => {
        listening.reject(new Error(`Cannot start session worker ${index}: ${error}`));
        stopped.resolve();
        if (failed) return;
        failed = true;
        log.error(LogAction.WORKER, "fail", {
          worker: index,
          error,
          detail: "a session worker failed; the server stops (restart it)",
        });
        options.onFailure(`worker ${index} failed`);
      };
      worker.onmessage = ({ data }: MessageEvent<ToOwner>) => {
        if (data.kind === "listening") listening.resolve();
        else if (data.kind === "start_failed") {
          listening.reject(new Error(data.error));
          stopped.resolve();
        } else if (data.kind === "stopped") stopped.resolve();
        else if (data.kind === "worker_failed") fail(data.error);
        else host.handle(data);
      };
      // Handled here: a worker's error never becomes the process's uncaught error.
      worker.onerror = (event) => {
        event.preventDefault();
        fail(event.message);
      };
      worker.onmessageerror = (event) => {
        event.preventDefault();
        fail("a message could not be read");
      };
      post({
        kind: "init",
        index,
        config: options.config,
        logLevel: options.logLevel,
        secrets: options.secrets,
        shared: options.state.buffer,
      });
      owner.catchUp(post);
      members.push({ index, worker, host, stopped });
      ready.push(listening.promise);
    }
    const pool = new WorkerPool(members, log);
    const started = await Promise.allSettled(ready);
    const refused = started.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (refused !== undefined) {
      await pool.stop();
      throw refused.reason;
    }
    return pool;
  }

  /** Stops every worker: each stops accepting, ends its sessions, and is joined; logged. */
  async stop(): Promise<void> {
    for (const { worker } of this.#members) worker.postMessage({ kind: "stop" } satisfies ToWorker);
    await Promise.all(this.#members.map(async ({ index, worker, host, stopped }) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), STOP_GRACE_MS);
      });
      const forced = await Promise.race([stopped.promise.then(() => false), late]);
      clearTimeout(timer);
      worker.terminate();
      host.close();
      this.#log.info(LogAction.CLOSE_WORKER, forced ? "fail" : "success", {
        worker: index,
        ...(forced ? { detail: `its sessions did not end within ${STOP_GRACE_MS} ms` } : {}),
      });
    }));
  }
}
