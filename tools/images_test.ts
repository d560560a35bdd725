import assert from "node:assert/strict";
import { appBuildArgv, DENO_VERSION, IMAGES, ONLINE_IMAGES } from "./images.ts";

Deno.test("appBuildArgv() builds offline from the local base with no network", () => {
  const argv = appBuildArgv("server", "offline");
  assert.deepEqual(argv.slice(0, 6), [
    "docker",
    "build",
    "-f",
    "Dockerfile.server",
    "-t",
    IMAGES.server,
  ]);
  assert.ok(argv.join(" ").includes("--network none"));
  assert.ok(argv.includes(`BUILD_IMAGE=${IMAGES.denoBase}`));
  assert.ok(argv.includes(`RUN_IMAGE=${IMAGES.denoBase}`));
  assert.ok(argv.includes("APP_BUILD=source"));
  assert.ok(argv.includes("APP_UID=1993"));
  assert.equal(argv.at(-1), ".");
});

Deno.test("appBuildArgv() compiles online on the official images", () => {
  const argv = appBuildArgv("client", "online");
  assert.ok(argv.includes("Dockerfile.client"));
  assert.ok(!argv.includes("--network"));
  assert.ok(argv.includes(`BUILD_IMAGE=${ONLINE_IMAGES.build}`));
  assert.ok(argv.includes(`RUN_IMAGE=${ONLINE_IMAGES.run}`));
  assert.ok(argv.includes("APP_BUILD=compile"));
  assert.ok(argv.includes("APP_UID=65532"));
  assert.ok(ONLINE_IMAGES.build.endsWith(`:${DENO_VERSION}`), "the pinned Deno version");
});
