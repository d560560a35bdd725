import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { appBuildArgv, DENO_VERSION, IMAGES, ONLINE_IMAGES } from "./images.ts";

Deno.test("appBuildArgv() builds offline from the local base with no network", () => {
  const argv = appBuildArgv("server", "offline");
  assert.deepEqual(argv.slice(0, 6), [
    "docker",
    "build",
    "-f",
    "server/Dockerfile",
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
  assert.ok(argv.includes("client/Dockerfile"));
  assert.ok(!argv.includes("--network"));
  assert.ok(argv.includes(`BUILD_IMAGE=${ONLINE_IMAGES.build}`));
  assert.ok(argv.includes(`RUN_IMAGE=${ONLINE_IMAGES.run}`));
  assert.ok(argv.includes("APP_BUILD=compile"));
  assert.ok(argv.includes("APP_UID=65532"));
  assert.ok(ONLINE_IMAGES.build.endsWith(`:${DENO_VERSION}`), "the pinned Deno version");
});

const ROOT = fileURLToPath(new URL("..", import.meta.url));

Deno.test("IMAGES names the app images as the course builds them", () => {
  assert.equal(IMAGES.server, "server:latest");
  assert.equal(IMAGES.client, "client:latest");
});

Deno.test("server/Dockerfile and client/Dockerfile default to the online path, the design card's", () => {
  for (const app of ["server", "client"]) {
    const dockerfile = Deno.readTextFileSync(`${ROOT}${app}/Dockerfile`);
    assert.match(dockerfile, new RegExp(`^ARG BUILD_IMAGE=${ONLINE_IMAGES.build}$`, "m"));
    assert.match(dockerfile, new RegExp(`^ARG RUN_IMAGE=${ONLINE_IMAGES.run}$`, "m"));
    assert.match(dockerfile, /^ARG APP_BUILD=compile$/m);
    // The root Dockerfile.<app> of the design card is the same file, not a copy.
    assert.equal(Deno.readLinkSync(`${ROOT}Dockerfile.${app}`), `${app}/Dockerfile`);
  }
});
