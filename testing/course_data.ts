/**
 * What tests take from the course: where its dataset is (`../shared/data/dataset.zip`
 * beside the repository, read at run time and never copied into it; tests that need it
 * are skipped without it) and its example bet. Test support only: nothing in the programs
 * imports it.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import type { BetFields } from "../shared/bet.ts";

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

/** The course's example bet (exercise 5): `dni: 30904465 | numero: 7574`, a winner. */
export const COURSE_BET: BetFields = {
  firstName: "Santiago Lionel",
  lastName: "Lorca",
  document: "30904465",
  birthdate: "1999-03-17",
  number: 7574,
};
