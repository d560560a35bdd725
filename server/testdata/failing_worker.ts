// A session worker that starts listening, then fails: what `WorkerPool` must survive.
import { reportFailures } from "../worker.ts";

const scope = globalThis as unknown as {
  onmessage: ((event: MessageEvent<{ kind: string }>) => void) | null;
  postMessage(message: unknown): void;
};
reportFailures((message) => scope.postMessage(message));
scope.onmessage = ({ data }) => {
  if (data.kind !== "init") return;
  scope.postMessage({ kind: "listening" });
  setTimeout(() => {
    throw new Error("Cannot go on: this worker fails on purpose");
  }, 10);
};
