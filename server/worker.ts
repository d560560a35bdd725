/**
 * A session worker: one of the `SERVER_WORKERS` session threads besides the main one. It
 * listens on the server's port beside the others (SO_REUSEPORT: the kernel spreads connections among them), and runs each
 * connection it accepts from first byte to close: framing, decoding, validating bets and
 * building rows, acks, the echo. Storage and draw it reaches through `RemoteStore` and
 * `RemoteLottery`, answered by the owner on the main thread.
 *
 * @module
 */
import { errorText } from "../shared/errors.ts";
import { actionLogger as log, LogAction, type LogLevelName, setupLogging } from "../shared/log.ts";
import { RemoteLottery } from "./remote_draw.ts";
import { RemoteStore } from "./remote_store.ts";
import { sessionContext } from "./session.ts";
import { SharedState } from "./shared_state.ts";
import { sessionAcceptLoop } from "./sniff.ts";
import { fromThreadError, type ToOwner, type ToWorker } from "./thread_messages.ts";

/** The worker's global scope, as far as this module uses it. */
interface WorkerScope {
  onmessage: ((event: MessageEvent<ToWorker>) => void) | null;
  postMessage(message: ToOwner, transfer?: Transferable[]): void;
  close(): void;
}

/** Whether this code runs in a Worker (the server's entry point then serves as one). */
export function inWorker(): boolean {
  return typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope === "function";
}

/**
 * Turns an error nothing in this worker handled into a `worker_failed` message to the owner,
 * instead of Deno's "Uncaught (in worker)" and a stack trace.
 */
export function reportFailures(post: (message: ToOwner) => void): void {
  const failed = (error: unknown) => post({ kind: "worker_failed", error: errorText(error) });
  globalThis.addEventListener("error", (event) => {
    event.preventDefault();
    failed(event.error);
  });
  globalThis.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    failed(event.reason);
  });
}

/** Serves as a session worker: waits for the owner's `init`, then accepts until `stop`. */
export function runWorker(): void {
  const scope = globalThis as unknown as WorkerScope;
  const post = (message: ToOwner, transfer: Transferable[] = []) =>
    scope.postMessage(message, transfer);
  reportFailures(post);
  let session: SessionWorker | undefined;
  scope.onmessage = ({ data }) => {
    if (data.kind === "init") {
      session = startWorker(data, post);
    } else if (session !== undefined) {
      session.receive(data);
    }
  };
}

/** A started worker: it takes the owner's messages. */
interface SessionWorker {
  receive(message: ToWorker): void;
}

function startWorker(
  init: ToWorker & { kind: "init" },
  post: (m: ToOwner, t?: Transferable[]) => void,
): SessionWorker | undefined {
  const { config, index } = init;
  setupLogging(init.logLevel as LogLevelName);
  const state = new SharedState(config.agencies, init.shared);
  const store = new RemoteStore(post, state);
  const lottery = new RemoteLottery(state);
  let listener: Deno.TcpListener;
  try {
    listener = Deno.listen({ hostname: config.listenAddress, port: config.port, reusePort: true });
  } catch (error) {
    post({ kind: "start_failed", error: errorText(error) });
    return undefined;
  }
  let closing = false;
  const { troubled } = state;
  const session = sessionContext(config, {
    secrets: init.secrets,
    store,
    lottery,
    log,
    troubled,
    closing: () => closing,
  });
  const loop = sessionAcceptLoop(listener, {
    session,
    config,
    slots: state.slots(config.maxConnections),
  });
  loop.run();
  post({ kind: "listening" });
  const stop = async () => {
    closing = true;
    lottery.close();
    await loop.stop();
    log.info(LogAction.CLOSE_LISTENER, "success", { port: config.port, worker: index });
    await loop.closeConnections();
    post({ kind: "stopped" });
  };
  return {
    receive(message) {
      if (message.kind === "stop") {
        if (!closing) stop();
      } else if (message.kind === "drawn") {
        lottery.receiveWinners(new Map(message.winners), message.total);
      } else if (message.kind === "drawFailed") {
        lottery.receiveFailure(fromThreadError(message.error));
      } else {
        store.receive(message);
      }
    },
  };
}
