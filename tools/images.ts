#!/usr/bin/env -S deno run -A
/**
 * Builds the Docker images of the deployment: `deno task images [--path auto|offline|online]`.
 *
 * Two build paths (the README's "Docker deployment" section explains both):
 *
 * - **online** (the design card's): `deno compile` standalone binaries, built in the
 *   official `denoland/deno` image and run on distroless `cc` (glibc, no Deno). Needs an
 *   image registry and Deno's release host.
 * - **offline** (works with no registry at all): local base images made with
 *   `docker import` from local files: the pinned Deno binary plus the glibc libraries it
 *   links to plus busybox (`sh`, `nc`), and a busybox-only image for netcat. The app
 *   images copy the sources and the `node_modules/` of a host `deno install`, are built
 *   with `docker build --network none`, and run `deno run --cached-only`.
 *
 * `auto` (the default) tries online when the registry answers and falls back to offline.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { assertDockerEngine, run, runMain, runOrThrow, ToolError } from "./_docker.ts";

/** The repository root (the Docker build context). */
export const ROOT: string = fileURLToPath(new URL("..", import.meta.url));

/** The pinned Deno version, from `.deno-version`. */
export const DENO_VERSION: string = Deno.readTextFileSync(`${ROOT}.deno-version`).trim();

/** Names of the images the deployment uses. */
export const IMAGES = {
  /** Local Deno base (offline path): deno + glibc + busybox. */
  denoBase: `tp0-deno-base:${DENO_VERSION}`,
  /** Local busybox image, for `nc` (offline path of validate-echo). */
  busybox: "tp0-busybox:local",
  /** The lottery server. */
  server: "tp0-server:latest",
  /** The agencies (clients). */
  client: "tp0-client:latest",
} as const;

/** The local Deno base's second tag, the Dockerfiles' default `BUILD_IMAGE`/`RUN_IMAGE`. */
export const DENO_BASE_LATEST = "tp0-deno-base:latest";

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

/** The unprivileged user of the local Deno base (same uid as the official Deno image). */
export const APP_UID = 1993;

/** Uid of the `nonroot` user of distroless images. */
export const DISTROLESS_NONROOT_UID = 65532;

/** One thing to put in a root filesystem. */
export type RootfsEntry =
  | { readonly kind: "dir"; readonly path: string; readonly mode: number }
  | { readonly kind: "file"; readonly path: string; readonly source: string; readonly mode: number }
  | { readonly kind: "text"; readonly path: string; readonly text: string; readonly mode: number }
  | { readonly kind: "symlink"; readonly path: string; readonly target: string };

/**
 * Reads the libraries a binary links to from the output of `ldd`.
 *
 * @param output What `ldd <binary>` printed.
 * @returns Absolute paths of the libraries and the loader, without `linux-vdso`;
 * empty for a static binary.
 *
 * @example Usage
 * ```ts
 * import { parseLdd } from "./images.ts";
 * parseLdd("\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x7f)\n\t/lib64/ld-linux-x86-64.so.2 (0x7f)");
 * // ["/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"]
 * ```
 */
export function parseLdd(output: string): string[] {
  const paths: string[] = [];
  for (const raw of output.split("\n")) {
    const line = raw.trim();
    const arrow = /=>\s*(\/\S+)/.exec(line);
    const bare = /^(\/\S+)\s+\(0x[0-9a-f]+\)$/i.exec(line);
    const path = arrow?.[1] ?? bare?.[1];
    if (path !== undefined && !paths.includes(path)) paths.push(path);
  }
  return paths;
}

/** Inputs of {@linkcode denoBaseRootfs} and {@linkcode busyboxRootfs}. */
export interface RootfsInputs {
  /** Host path of a busybox binary. */
  readonly busybox: string;
  /** Busybox applet names (`busybox --list`); each becomes `/bin/<applet>`. */
  readonly applets: readonly string[];
  /** Host paths of the shared libraries the binaries need (from {@linkcode parseLdd}). */
  readonly libraries: readonly string[];
  /**
   * Host path of the Deno binary; only the Deno base uses it.
   * @default none
   */
  readonly deno?: string;
}

function dirsOf(paths: readonly string[]): string[] {
  const dirs = new Set<string>();
  for (const path of paths) {
    const parts = path.split("/").filter((part) => part !== "");
    for (let i = 1; i < parts.length; i++) dirs.add("/" + parts.slice(0, i).join("/"));
  }
  return [...dirs].sort();
}

function busyboxEntries(inputs: RootfsInputs): RootfsEntry[] {
  const entries: RootfsEntry[] = [
    { kind: "file", path: "/bin/busybox", source: inputs.busybox, mode: 0o755 },
  ];
  for (const applet of inputs.applets) {
    if (/^[\w.[\]-]+$/.test(applet) && applet !== "busybox") {
      entries.push({ kind: "symlink", path: `/bin/${applet}`, target: "busybox" });
    }
  }
  for (const library of inputs.libraries) {
    entries.push({ kind: "file", path: library, source: library, mode: 0o755 });
  }
  return entries;
}

function withDirs(entries: RootfsEntry[], extraDirs: RootfsEntry[]): RootfsEntry[] {
  const explicit = new Set(extraDirs.map((entry) => entry.path));
  const implied = dirsOf(entries.map((entry) => entry.path))
    .filter((path) => !explicit.has(path))
    .map((path): RootfsEntry => ({ kind: "dir", path, mode: 0o755 }));
  return [...implied, ...extraDirs, ...entries];
}

/**
 * Lists the root filesystem of the local Deno base image: `/usr/local/bin/deno`, the
 * glibc libraries at the paths `ldd` gave, busybox with its applets in `/bin`, a
 * `deno` user (uid {@linkcode APP_UID}), `/tmp` and the name-service config.
 *
 * @param inputs Host paths of deno, busybox and the libraries; busybox's applets.
 * @returns The entries, directories first.
 * @throws {TypeError} When `inputs.deno` is missing.
 */
export function denoBaseRootfs(inputs: RootfsInputs): RootfsEntry[] {
  if (inputs.deno === undefined) {
    throw new TypeError("Cannot plan the Deno base image: the deno binary is required");
  }
  const entries: RootfsEntry[] = [
    { kind: "file", path: "/usr/local/bin/deno", source: inputs.deno, mode: 0o755 },
    ...busyboxEntries(inputs),
    {
      kind: "text",
      path: "/etc/passwd",
      text: `root:x:0:0:root:/root:/bin/sh\ndeno:x:${APP_UID}:${APP_UID}:deno:/tmp:/bin/sh\n` +
        "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
      mode: 0o644,
    },
    {
      kind: "text",
      path: "/etc/group",
      text: `root:x:0:\ndeno:x:${APP_UID}:\nnogroup:x:65534:\n`,
      mode: 0o644,
    },
    // glibc's getaddrinfo reads this to resolve compose service names via /etc/hosts + DNS.
    { kind: "text", path: "/etc/nsswitch.conf", text: "hosts: files dns\n", mode: 0o644 },
  ];
  return withDirs(entries, [
    { kind: "dir", path: "/tmp", mode: 0o1777 },
    { kind: "dir", path: "/root", mode: 0o700 },
  ]);
}

/**
 * Lists the root filesystem of the local busybox image (netcat for validate-echo).
 *
 * @param inputs Host paths of busybox and (if it is dynamic) its libraries; its applets.
 * @returns The entries, directories first.
 */
export function busyboxRootfs(inputs: RootfsInputs): RootfsEntry[] {
  return withDirs(busyboxEntries(inputs), [{ kind: "dir", path: "/tmp", mode: 0o1777 }]);
}

/** `docker import --change` instructions of the local Deno base. */
export const DENO_BASE_CHANGES: readonly string[] = [
  "ENV PATH=/usr/local/bin:/usr/bin:/bin",
  "ENV DENO_DIR=/deno-dir",
  "ENV DENO_NO_UPDATE_CHECK=1",
  "ENV DENO_NO_PROMPT=1",
  `LABEL org.tp0.deno-version=${DENO_VERSION}`,
  'CMD ["deno", "--version"]',
];

/** `docker import --change` instructions of the local busybox image. */
export const BUSYBOX_CHANGES: readonly string[] = [
  "ENV PATH=/bin",
  'CMD ["sh"]',
];

/**
 * Writes rootfs entries under a host directory.
 *
 * @param dir An empty host directory.
 * @param entries What to write, directories first.
 */
export async function writeRootfs(dir: string, entries: readonly RootfsEntry[]): Promise<void> {
  for (const entry of entries) {
    const target = dir + entry.path;
    switch (entry.kind) {
      case "dir":
        await Deno.mkdir(target, { recursive: true });
        await Deno.chmod(target, entry.mode);
        break;
      case "file":
        // copyFile follows symlinks: the library lands under the name ldd gave.
        await Deno.copyFile(entry.source, target);
        await Deno.chmod(target, entry.mode);
        break;
      case "text":
        await Deno.writeTextFile(target, entry.text);
        await Deno.chmod(target, entry.mode);
        break;
      case "symlink":
        await Deno.symlink(entry.target, target);
        break;
    }
  }
}

/**
 * Packs a host directory as a root filesystem (every file owned by root) and imports it
 * as an image.
 *
 * @param dir The root filesystem on the host.
 * @param options The image tag and the `--change` instructions.
 */
export async function importRootfs(
  dir: string,
  options: { readonly tag: string; readonly changes: readonly string[] },
): Promise<void> {
  const tarball = `${dir}.tar`;
  await runOrThrow(
    ["tar", "--numeric-owner", "--owner=0", "--group=0", "-C", dir, "-cf", tarball, "."],
    `Cannot pack the root filesystem of ${options.tag}`,
  );
  try {
    const changes = options.changes.flatMap((change) => ["--change", change]);
    await runOrThrow(
      ["docker", "import", ...changes, tarball, options.tag],
      `Cannot import image ${options.tag}`,
      { timeoutMs: 300_000 },
    );
  } finally {
    await Deno.remove(tarball).catch(() => {});
  }
}

/**
 * Returns the arguments of `docker build` for an app image.
 *
 * @param app `server` or `client`.
 * @param path Which build path.
 * @returns The argv, run from the repository root.
 *
 * @example Usage
 * ```ts
 * import { appBuildArgv } from "./images.ts";
 * appBuildArgv("server", "offline").includes("--network"); // true: no network at build time
 * ```
 */
export function appBuildArgv(app: "server" | "client", path: BuildPath): string[] {
  const argv = ["docker", "build", "-f", `Dockerfile.${app}`, "-t", IMAGES[app]];
  argv.push("--label", `org.tp0.build-path=${path}`);
  if (path === "offline") {
    argv.push(
      "--network",
      "none",
      "--build-arg",
      `BUILD_IMAGE=${IMAGES.denoBase}`,
      "--build-arg",
      `RUN_IMAGE=${IMAGES.denoBase}`,
      "--build-arg",
      "APP_BUILD=source",
      "--build-arg",
      `APP_UID=${APP_UID}`,
    );
  } else {
    argv.push(
      "--build-arg",
      `BUILD_IMAGE=${ONLINE_IMAGES.build}`,
      "--build-arg",
      `RUN_IMAGE=${ONLINE_IMAGES.run}`,
      "--build-arg",
      "APP_BUILD=compile",
      "--build-arg",
      `APP_UID=${DISTROLESS_NONROOT_UID}`,
    );
  }
  argv.push(".");
  return argv;
}

async function imageExists(tag: string): Promise<boolean> {
  return (await run(["docker", "image", "inspect", tag], { timeoutMs: 20_000 })).code === 0;
}

/**
 * Pulls an image, bounded in time.
 *
 * @param tag The image.
 * @param timeoutMs Give up after this long.
 * @returns Whether the image is now available.
 */
export async function tryPull(tag: string, timeoutMs = 120_000): Promise<boolean> {
  return (await run(["docker", "pull", "--quiet", tag], { timeoutMs })).code === 0;
}

async function denoBinary(): Promise<string> {
  if (Deno.version.deno === DENO_VERSION) return Deno.execPath();
  return await runOrThrow(
    ["bash", `${ROOT}tools/bootstrap_deno.sh`],
    `Cannot find Deno ${DENO_VERSION} for the base image`,
  );
}

async function findBusybox(): Promise<string> {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":").concat(["/bin", "/usr/bin"])) {
    const candidate = `${dir}/busybox`;
    try {
      if ((await Deno.stat(candidate)).isFile) return candidate;
    } catch {
      // Not here.
    }
  }
  throw new ToolError(
    "Cannot build the local base images: busybox is missing (apt-get install busybox-static)",
  );
}

async function librariesOf(binaries: readonly string[]): Promise<string[]> {
  const libraries: string[] = [];
  for (const binary of binaries) {
    // ldd exits 1 for a static binary: that means no libraries.
    const { stdout } = await run(["ldd", binary], { timeoutMs: 20_000 });
    for (const library of parseLdd(stdout)) {
      if (!libraries.includes(library)) libraries.push(library);
    }
  }
  return libraries;
}

async function buildLocalImage(
  tag: string,
  plan: (inputs: RootfsInputs) => RootfsEntry[],
  options: { readonly changes: readonly string[]; readonly withDeno: boolean },
): Promise<void> {
  const busybox = await findBusybox();
  const deno = options.withDeno ? await denoBinary() : undefined;
  const applets = (await runOrThrow([busybox, "--list"], "Cannot list busybox applets"))
    .split("\n").map((line) => line.trim()).filter((line) => line !== "");
  const libraries = await librariesOf(deno === undefined ? [busybox] : [deno, busybox]);
  const work = await Deno.makeTempDir({ prefix: "tp0-rootfs-" });
  try {
    const dir = `${work}/rootfs`;
    await Deno.mkdir(dir);
    const inputs: RootfsInputs = deno === undefined
      ? { busybox, applets, libraries }
      : { busybox, applets, libraries, deno };
    await writeRootfs(dir, plan(inputs));
    await importRootfs(dir, { tag, changes: options.changes });
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}

/**
 * Makes sure the local Deno base image exists, building it from local files if needed.
 *
 * @param rebuild Build it even when it exists.
 * @returns Whether it was built now.
 */
export async function ensureDenoBase(rebuild = false): Promise<boolean> {
  const build = rebuild || !(await imageExists(IMAGES.denoBase));
  if (build) {
    await buildLocalImage(IMAGES.denoBase, denoBaseRootfs, {
      changes: DENO_BASE_CHANGES,
      withDeno: true,
    });
  }
  // The Dockerfiles' default BUILD_IMAGE, so a bare `docker build` finds it too.
  await runOrThrow(
    ["docker", "tag", IMAGES.denoBase, DENO_BASE_LATEST],
    `Cannot tag ${IMAGES.denoBase}`,
  );
  return build;
}

/**
 * Returns a netcat-capable image: the local busybox image if present, else the official
 * busybox image if it can be pulled, else the local one built now from the host's busybox.
 *
 * @returns The image tag to run `nc` in.
 */
export async function ensureNetcatImage(): Promise<string> {
  if (await imageExists(IMAGES.busybox)) return IMAGES.busybox;
  if (await imageExists(ONLINE_IMAGES.netcat)) return ONLINE_IMAGES.netcat;
  if (await tryPull(ONLINE_IMAGES.netcat, 60_000)) return ONLINE_IMAGES.netcat;
  await buildLocalImage(IMAGES.busybox, busyboxRootfs, {
    changes: BUSYBOX_CHANGES,
    withDeno: false,
  });
  return IMAGES.busybox;
}

/**
 * Picks the build path: the requested one, or for `auto` online when both online base
 * images can be pulled, otherwise offline.
 *
 * @param requested `auto`, `online` or `offline`.
 * @param canPull Checks whether an image is available (pulls it if needed).
 * @returns The path to use first.
 */
export async function chooseBuildPath(
  requested: "auto" | BuildPath,
  canPull: (tag: string) => Promise<boolean>,
): Promise<BuildPath> {
  if (requested !== "auto") return requested;
  for (const tag of [ONLINE_IMAGES.build, ONLINE_IMAGES.run]) {
    if (!(await canPull(tag))) return "offline";
  }
  return "online";
}

async function installDependencies(): Promise<void> {
  // Offline builds copy node_modules/ from the host: make sure it matches deno.lock.
  await runOrThrow(
    [Deno.execPath(), "install", "--frozen"],
    "Cannot install the npm dependencies into node_modules (deno install)",
    { cwd: ROOT, timeoutMs: 300_000 },
  );
}

async function buildApps(path: BuildPath, quiet: boolean): Promise<void> {
  for (const app of ["server", "client"] as const) {
    const argv = appBuildArgv(app, path);
    if (quiet) argv.splice(2, 0, "--quiet");
    const result = await run(argv, {
      cwd: ROOT,
      timeoutMs: 900_000,
      inherit: !quiet,
    });
    if (result.code !== 0) {
      const detail = quiet ? `: ${result.stderr.trim().split("\n").at(-1)}` : "";
      throw new ToolError(`Cannot build image ${IMAGES[app]} (${path} path)${detail}`);
    }
  }
}

/** Options of {@linkcode buildImages}. */
export interface BuildImagesOptions {
  /**
   * Which path to build; `auto` tries online, then offline.
   * @default "auto"
   */
  readonly path?: "auto" | BuildPath;
  /**
   * Rebuild the local base image even if it exists.
   * @default false
   */
  readonly rebuildBase?: boolean;
  /**
   * Hide `docker build` progress.
   * @default false
   */
  readonly quiet?: boolean;
  /**
   * Where progress lines go.
   * @default console.log
   */
  readonly say?: (line: string) => void;
}

/**
 * Builds `tp0-server` and `tp0-client` (and, for the offline path, the local base
 * images), saying which path it took.
 *
 * @param options Path, rebuild, output.
 * @returns The path that produced the images.
 * @throws {ToolError} When no path works.
 */
export async function buildImages(options: BuildImagesOptions = {}): Promise<BuildPath> {
  const say = options.say ?? console.log;
  const quiet = options.quiet ?? false;
  await assertDockerEngine();
  const path = await chooseBuildPath(
    options.path ?? "auto",
    async (tag) => await imageExists(tag) || await tryPull(tag),
  );
  if (path === "online") {
    say(`images: online path: deno compile in ${ONLINE_IMAGES.build}, run on ${ONLINE_IMAGES.run}`);
    try {
      await buildApps("online", quiet);
      return "online";
    } catch (error) {
      if (options.path === "online") throw error;
      say(`images: online path failed (${(error as Error).message}); trying the offline path`);
    }
  }
  say(
    `images: offline path: local base ${IMAGES.denoBase} (docker import), ` +
      "sources + node_modules, docker build --network none, deno run --cached-only",
  );
  if (await ensureDenoBase(options.rebuildBase ?? false)) say(`images: built ${IMAGES.denoBase}`);
  await installDependencies();
  await buildApps("offline", quiet);
  return "offline";
}

/**
 * Size of an image in bytes, as Docker reports it.
 *
 * @param tag The image.
 * @returns The size, or `undefined` when the image is missing.
 */
export async function imageSize(tag: string): Promise<number | undefined> {
  const result = await run(["docker", "image", "inspect", "--format", "{{.Size}}", tag]);
  return result.code === 0 ? Number(result.stdout.trim()) : undefined;
}

/**
 * The CLI: `images.ts [--path auto|offline|online] [--rebuild-base] [--quiet]`.
 *
 * @param args Command-line arguments.
 * @returns The exit code.
 */
export async function main(args: readonly string[]): Promise<number> {
  const { values } = parseArgs({
    args: [...args],
    options: {
      path: { type: "string", default: "auto" },
      "rebuild-base": { type: "boolean", default: false },
      quiet: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    console.log("usage: deno task images [--path auto|offline|online] [--rebuild-base] [--quiet]");
    return 0;
  }
  const path = values.path;
  if (path !== "auto" && path !== "offline" && path !== "online") {
    throw new ToolError(
      `Cannot build images: --path must be auto, offline or online, not "${path}"`,
    );
  }
  const used = await buildImages({
    path,
    rebuildBase: values["rebuild-base"],
    quiet: values.quiet,
  });
  await ensureNetcatImage();
  for (const tag of [IMAGES.server, IMAGES.client]) {
    const size = await imageSize(tag);
    console.log(`images: ${tag} ready (${used} path, ${((size ?? 0) / 1e6).toFixed(1)} MB)`);
  }
  return 0;
}

if (import.meta.main) {
  await runMain("images", () => main(Deno.args));
}
