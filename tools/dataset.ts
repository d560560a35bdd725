/**
 * The dataset tool moved to `tools/dataset/` (library: `tools/dataset/mod.ts`, CLI:
 * `tools/dataset/main.ts`). This re-export keeps `e2e/docker/deployment_test.ts`
 * working until its import points at `tools/dataset/mod.ts`; then delete this file.
 *
 * @deprecated Import from `./dataset/mod.ts`.
 * @module
 */
export * from "./dataset/mod.ts";
