import assert from "node:assert/strict";
import { StorageError } from "../shared/errors.ts";
import { RemoteLottery } from "./remote_draw.ts";
import { SharedState } from "./shared_state.ts";

Deno.test("RemoteLottery() answers a held query and later ones with the owner's draw failure", async () => {
  const lottery = new RemoteLottery(new SharedState(2));
  const held = lottery.waitForDraw(60_000);
  const failure = new StorageError("bets.csv", "Cannot read bets.csv: batch 3 is damaged", {
    kind: "damaged",
  });
  lottery.receiveFailure(failure);
  await assert.rejects(held, (error) => error === failure);
  await assert.rejects(lottery.waitForDraw(0), (error) => error === failure);
  assert.equal(lottery.status.drawn, false, "never a partial winners list");
  lottery.close();
});
