import assert from "node:assert/strict";
import { captureLogger } from "../testing/log_capture.ts";
import type { ServerOptions } from "./server.ts";
import { SharedState } from "./shared_state.ts";
import type { StoreOwner } from "./store_host.ts";
import { WorkerPool } from "./worker_pool.ts";

Deno.test("WorkerPool() logs a worker that fails, tells the server, and still joins it", async () => {
  const { log, lines } = captureLogger();
  const failed = Promise.withResolvers<string>();
  const owner = {
    host: () => ({ handle() {}, close() {} }),
    catchUp() {},
  } as unknown as StoreOwner;
  const pool = await WorkerPool.start({
    url: new URL("./testdata/failing_worker.ts", import.meta.url),
    count: 1,
    config: {} as ServerOptions,
    logLevel: "INFO",
    secrets: new Map(),
    owner,
    state: new SharedState(1),
    log,
    onFailure: failed.resolve,
  });
  assert.equal(await failed.promise, "worker 1 failed");
  await pool.stop();
  const failure = lines.find((l) => l.action === "worker");
  assert.equal(failure?.result, "fail");
  assert.match(String(failure?.fields["error"]), /fails on purpose/);
  assert.ok(lines.some((l) => l.action === "close_worker" && l.fields["worker"] === 1));
});
