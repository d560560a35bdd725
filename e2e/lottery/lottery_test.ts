import assert from "node:assert/strict";
import {
  extractCourseDataset,
  HAS_COURSE_ZIP,
  runLotteryAndCheck,
  withDataset,
} from "./_harness.ts";

Deno.test({
  name: "lottery - the course's dataset through 5 agencies: every bet once, own winners",
  ignore: !HAS_COURSE_ZIP,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "tp0-course-" });
    try {
      const paths = await extractCourseDataset(dir);
      assert(paths.length === 5, `expected 5 agency files, found ${paths.length}`);
      await runLotteryAndCheck(paths, assert);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("lottery - 20 agencies at once on generated data: every bet once, own winners", async () => {
  const options = { agencies: 20, betsPerAgency: 1500, seed: 7, winnerShare: 0.01 };
  await withDataset(options, async (paths) => {
    assert(paths.length === 20);
    await runLotteryAndCheck(paths, assert);
  });
});
