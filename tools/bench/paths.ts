/**
 * Where the bench works: the repository root (programs run from there) and `.bench/`,
 * the git-ignored folder for its data and scratch directories.
 *
 * @module
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root. */
export const ROOT: string = fileURLToPath(new URL("../..", import.meta.url));

/** The bench's own folder, `.bench/` (git ignores it). */
export const BENCH_DIR: string = join(ROOT, ".bench");
