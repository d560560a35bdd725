import assert from "node:assert/strict";
import { judge, newEvents, parseTasks } from "./tasks.ts";

// As `docker stack ps tp0 --no-trunc --format TASK_FORMAT` printed it during a server kill.
const AFTER_KILL = `
k2t|tp0_server.1|vm|Running|Running 2 seconds ago|
k1t|tp0_server.1|vm|Shutdown|Failed 5 seconds ago|"task: non-zero exit (137)"
c1t|tp0_client1.1|worker|Running|Running 9 seconds ago|
c2t|tp0_client2.1|worker|Shutdown|Complete 1 second ago|
`;

const AGENCIES = ["client1", "client2"];

Deno.test("parseTasks() reads service, node, states and Swarm's error", () => {
  assert.deepEqual(parseTasks(AFTER_KILL, "tp0"), [
    { id: "k2t", service: "server", node: "vm", desired: "Running", state: "Running", error: "" },
    {
      id: "k1t",
      service: "server",
      node: "vm",
      desired: "Shutdown",
      state: "Failed",
      error: "task: non-zero exit (137)",
    },
    {
      id: "c1t",
      service: "client1",
      node: "worker",
      desired: "Running",
      state: "Running",
      error: "",
    },
    {
      id: "c2t",
      service: "client2",
      node: "worker",
      desired: "Shutdown",
      state: "Complete",
      error: "",
    },
  ]);
  assert.equal(
    parseTasks("x|\\_ tp0_client12.1|n|Running|Starting now|", "tp0")[0]?.service,
    "client12",
  );
  assert.deepEqual(parseTasks("\n  \n", "tp0"), []);
});

Deno.test("judge() counts finished agencies and waits while Swarm restarts one", () => {
  const tasks = parseTasks(
    AFTER_KILL +
      // client1's first task failed; its replacement waits out the restart delay.
      "c1old|tp0_client1.1|worker|Shutdown|Failed 20 seconds ago|task: non-zero exit (1)\n",
    "tp0",
  );
  assert.deepEqual(judge(tasks, AGENCIES), { finished: ["client2"], givenUp: [] });
  const ready = parseTasks(
    "r|tp0_client1.1|worker|Ready|Ready 1 second ago|\n" +
      "f|tp0_client1.1|worker|Shutdown|Failed 2 seconds ago|task: non-zero exit (1)",
    "tp0",
  );
  assert.deepEqual(judge(ready, ["client1"]).givenUp, []);
});

Deno.test("judge() waits for a replacement even when an old task of the agency completed", () => {
  const tasks = parseTasks(
    "new|tp0_client1.1|worker|Running|Running 1 second ago|\n" +
      "old|tp0_client1.1|worker|Shutdown|Complete 2 seconds ago|",
    "tp0",
  );
  assert.deepEqual(judge(tasks, ["client1"]).finished, []);
});

Deno.test("judge() names an agency Swarm stopped restarting", () => {
  const tasks = parseTasks(
    "a|tp0_client1.1|worker|Shutdown|Failed 2 seconds ago|task: non-zero exit (1)\n" +
      "b|tp0_client1.1|worker|Shutdown|Failed 9 seconds ago|task: non-zero exit (1)\n" +
      "c|tp0_client2.1|worker|Shutdown|Complete 3 seconds ago|",
    "tp0",
  );
  assert.deepEqual(judge(tasks, AGENCIES), { finished: ["client2"], givenUp: ["client1"] });
});

Deno.test("judge() reports a node without the data folder", () => {
  const error =
    'invalid mount config for type "bind": bind source path does not exist: /srv/tp0/.data';
  const tasks = parseTasks(
    `r|tp0_client2.1|worker|Shutdown|Rejected 1 second ago|"${error}"`,
    "tp0",
  );
  const progress = judge(tasks, AGENCIES);
  assert.equal(progress.missingFolder?.path, "/srv/tp0/.data");
  assert.equal(progress.missingFolder?.task.node, "worker");
  assert.equal(progress.missingFolder?.task.service, "client2");
});

Deno.test("newEvents() tells each start, finish and failure once", () => {
  const said = new Set<string>();
  assert.deepEqual(newEvents(parseTasks(AFTER_KILL, "tp0"), said), [
    "server running on node vm",
    "server failed (task: non-zero exit (137)) on node vm",
    "client1 running on node worker",
    "client2 finished on node worker",
  ]);
  assert.deepEqual(newEvents(parseTasks(AFTER_KILL, "tp0"), said), []);
  const later = AFTER_KILL.replace(
    "c1t|tp0_client1.1|worker|Running|Running 9 seconds ago|",
    "c1t|tp0_client1.1|worker|Shutdown|Complete now|",
  );
  assert.deepEqual(newEvents(parseTasks(later, "tp0"), said), ["client1 finished on node worker"]);
});
