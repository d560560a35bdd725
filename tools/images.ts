#!/usr/bin/env -S deno run -A
/**
 * Builds the Docker images of the deployment (`deno task images [--path auto|offline|online]`;
 * docs/deployment.md, "Images: two build paths").
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { choiceArg, lastLine, parseCli, run, runMain, runOrThrow, ToolError } from "./_cli.ts";

/** The repository root (the Docker build context). */
const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** The pinned Deno version, from `.deno-version`. */
export const DENO_VERSION: string = Deno.readTextFileSync(`${ROOT}.deno-version`).trim();

/** Names of the images the deployment uses. */
export const IMAGES = {
  /** Local Deno base (offline path): deno + glibc + busybox. */
  denoBase: `tp0-deno-base:${DENO_VERSION}`,
  /** Local busybox image, for `nc` (offline path of validate-echo). */
  busybox: "tp0-busybox:local",
  /** The lottery server. */
  server: "server:latest",
  /** The agencies (clients). */
  client: "client:latest",
} as const;

/** Images of the online path, pulled from public registries. */
export const ONLINE_IMAGES = {
  /** Where `deno compile` runs. */
  build: `denoland/deno:${DENO_VERSION}`,
  /** Where the standalone binaries run: glibc, a busybox shell for the healthcheck, uid 65532. */
  run: "gcr.io/distroless/cc-debian12:debug-nonroot",
  /** The netcat image validate-echo pulls when it can. */
  netcat: "busybox:1.36",
} as const;

/** How the app images are built. */
export type BuildPath = "offline" | "online";

/** The `--path` choices: a build path, or `auto` (online when it can be had, else offline). */
export const BUILD_PATHS = ["auto", "offline", "online"] as const;

/**
 * Makes sure the `docker` command exists and its engine answers.
 *
 * @throws {ToolError} With the fix when either is missing.
 */
export async function assertDockerEngine(): Promise<void> {
  const info = ["docker", "info", "--format", "{{.ServerVersion}}"];
  const result = await run(info, { timeoutMs: 20_000 });
  if (result.code === 127) {
    throw new ToolError(
      "Cannot find the docker command: install Docker (tools/provision_docker.sh)",
    );
  }
  if (result.code !== 0 || result.stdout.trim() === "") {
    const detail = result.timedOut ? "no answer within 20 s" : lastLine(result.stderr);
    throw new ToolError(
      `Cannot reach the Docker engine: start dockerd or run tools/provision_docker.sh (${detail})`,
    );
  }
}

/** The argv of `docker build` for an app image on a build path, run from the repository root. */
export function appBuildArgv(app: "server" | "client", path: BuildPath): string[] {
  const [base, runImage, build, uid] = path === "offline"
    ? [IMAGES.denoBase, IMAGES.denoBase, "source", 1993]
    : [ONLINE_IMAGES.build, ONLINE_IMAGES.run, "compile", 65532];
  const args = { BUILD_IMAGE: base, RUN_IMAGE: runImage, APP_BUILD: build, APP_UID: uid };
  return [
    ...["docker", "build", "-f", `${app}/Dockerfile`, "-t", IMAGES[app]],
    ...["--label", `org.tp0.build-path=${path}`],
    ...(path === "offline" ? ["--network", "none"] : []),
    ...Object.entries(args).flatMap(([name, value]) => ["--build-arg", `${name}=${value}`]),
    ".",
  ];
}

async function imageExists(tag: string): Promise<boolean> {
  return (await run(["docker", "image", "inspect", tag], { timeoutMs: 20_000 })).code === 0;
}

/** Whether an image is here or can be pulled (bounded in time). */
async function available(tag: string, timeoutMs = 120_000): Promise<boolean> {
  if (await imageExists(tag)) return true;
  return (await run(["docker", "pull", "--quiet", tag], { timeoutMs })).code === 0;
}

/** Imports a local base image with `tools/import_base.sh` (with Deno for the Deno base). */
async function importBase(tag: string, deno?: string): Promise<void> {
  const argv = ["bash", `${ROOT}tools/import_base.sh`, tag, ...(deno ? [deno] : [])];
  await runOrThrow(argv, `Cannot build the local base image ${tag}`, { timeoutMs: 300_000 });
}

/**
 * The tag of an image to run `nc` in: the local busybox image if present, else the
 * official busybox image if it can be pulled, else the local one imported now.
 */
export async function ensureNetcatImage(): Promise<string> {
  if (await imageExists(IMAGES.busybox)) return IMAGES.busybox;
  if (await available(ONLINE_IMAGES.netcat, 60_000)) return ONLINE_IMAGES.netcat;
  await importBase(IMAGES.busybox);
  return IMAGES.busybox;
}

async function buildApps(path: BuildPath, quiet: boolean): Promise<void> {
  for (const app of ["server", "client"] as const) {
    const argv = appBuildArgv(app, path);
    if (quiet) argv.splice(2, 0, "--quiet");
    const output = quiet ? "capture" : "inherit";
    const result = await run(argv, { cwd: ROOT, timeoutMs: 900_000, output });
    if (result.code !== 0) {
      const detail = quiet ? `: ${lastLine(result.stderr)}` : "";
      throw new ToolError(`Cannot build image ${IMAGES[app]} (${path} path)${detail}`);
    }
  }
}

/** Options of {@linkcode buildImages}. */
export interface BuildImagesOptions {
  /** `auto` tries online when both its images can be had, then offline. @default "auto" */
  readonly path?: (typeof BUILD_PATHS)[number];
  /** Hide `docker build` progress. @default false */
  readonly quiet?: boolean;
  /** Where progress lines go. @default console.log */
  readonly say?: (line: string) => void;
}

/**
 * Builds `server:latest` and `client:latest` (and, for the offline path, the local base
 * image), saying which path it took; returns that path.
 *
 * @throws {ToolError} When no path works.
 */
export async function buildImages(options: BuildImagesOptions = {}): Promise<BuildPath> {
  const { path = "auto", quiet = false, say = console.log } = options;
  await assertDockerEngine();
  if (
    path === "online" ||
    (path === "auto" && await available(ONLINE_IMAGES.build) && await available(ONLINE_IMAGES.run))
  ) {
    say(`images: online path: deno compile in ${ONLINE_IMAGES.build}, run on ${ONLINE_IMAGES.run}`);
    try {
      await buildApps("online", quiet);
      return "online";
    } catch (error) {
      if (path === "online") throw error;
      say(`images: online path failed (${(error as Error).message}); trying the offline path`);
    }
  }
  say(
    `images: offline path: local base ${IMAGES.denoBase} (docker import), ` +
      "sources + node_modules, docker build --network none, deno run --cached-only",
  );
  const importing = !(await imageExists(IMAGES.denoBase));
  if (importing) {
    const deno = Deno.version.deno === DENO_VERSION ? Deno.execPath() : await runOrThrow(
      ["bash", `${ROOT}tools/bootstrap_deno.sh`],
      `Cannot find Deno ${DENO_VERSION} for the base image`,
    );
    await importBase(IMAGES.denoBase, deno);
  }
  if (importing) say(`images: built ${IMAGES.denoBase}`);
  // Offline builds copy node_modules/ from the host: make sure it matches deno.lock.
  await runOrThrow(
    [Deno.execPath(), "install", "--frozen"],
    "Cannot install the npm dependencies into node_modules (deno install)",
    { cwd: ROOT, timeoutMs: 300_000 },
  );
  await buildApps("offline", quiet);
  return "offline";
}

if (import.meta.main) {
  await runMain("images", async () => {
    const { values } = parseCli(Deno.args, {
      path: { type: "string", default: "auto" },
      quiet: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    });
    if (values.help) {
      console.log("usage: deno task images [--path auto|offline|online] [--quiet]");
      return 0;
    }
    const path = choiceArg("--path", values.path, BUILD_PATHS);
    const used = await buildImages({ path, quiet: values.quiet });
    await ensureNetcatImage();
    for (const tag of [IMAGES.server, IMAGES.client]) {
      const inspect = ["docker", "image", "inspect", "--format", "{{.Size}}", tag];
      const size = Number(await runOrThrow(inspect, tag)) / 1e6;
      console.log(`images: ${tag} ready (${used} path, ${size.toFixed(1)} MB)`);
    }
    return 0;
  });
}
