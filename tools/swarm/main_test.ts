import assert from "node:assert/strict";
import { UsageError } from "../_cli.ts";
import { main } from "./main.ts";

Deno.test("main() refuses bad commands and flags with one line, before any Docker call", async (t) => {
  const cases: [string[], RegExp][] = [
    [[], /^expected up, down, logs or status, not ""$/],
    [["deploy"], /not "deploy"/],
    [["up", "extra"], /not "up extra"/],
    [["up", "--bogus"], /unknown option "--bogus"/],
    [["up", "--node", "worker-1"], /--node "worker-1": expected a Docker host URL/],
    [["down", "--node", "http://x"], /--node "http:\/\/x": expected a Docker host URL/],
    [["up", "--timeout", "soon"], /--timeout must be a whole number from 1 to 86400, not "soon"/],
    [["up", "--path", "cloud"], /--path must be one of auto, offline, online, not "cloud"/],
    [["up", "--clients", "many"], /agency count must be a whole number from 0 to 252, not "many"/],
    [["up", "--mode", "lotto"], /--mode must be one of agency, bet, echo, not "lotto"/],
    [["up", "--data-dir", "data"], /--data-dir must be an absolute path/],
    [["up", "--agency-constraint", "workers"], /placement constraint "workers"/],
    [["down", "--clients", "3"], /^option "--clients" does not apply to down$/],
    [["status", "--node", "unix:///x.sock"], /^option "--node" does not apply to status$/],
    [
      ["up", "--file", "s.yaml", "--clients", "3"],
      /^option "--clients" does not apply to up --file$/,
    ],
    [["up", "--file", "s.yaml", "--data-dir", "/d"], /"--data-dir" does not apply to up --file$/],
  ];
  for (const [args, message] of cases) {
    await t.step(args.join(" ") || "(none)", async () => {
      await assert.rejects(() => main(args), (error: Error) => {
        assert.ok(error instanceof UsageError, `${error.name}: ${error.message}`);
        assert.match(error.message, message);
        assert.ok(!error.message.includes("\n"), "one line");
        return true;
      });
    });
  }
});
