/**
 * Where tests find the course's dataset: `../shared/data/dataset.zip` beside the
 * repository, read at run time and never copied into it. Tests that need it are skipped
 * without it. Test support only: nothing in the programs imports it.
 *
 * @module
 */
import { fileURLToPath } from "node:url";

/** The course's dataset zip (agency-1.csv … agency-5.csv). */
export const COURSE_ZIP: string = fileURLToPath(
  new URL("../../shared/data/dataset.zip", import.meta.url),
);

/** Whether the course's dataset is present beside the repository. */
export const HAS_COURSE_ZIP: boolean = (() => {
  try {
    return Deno.statSync(COURSE_ZIP).isFile;
  } catch {
    return false;
  }
})();
