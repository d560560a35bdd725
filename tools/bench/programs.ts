/**
 * The programs the bench runs, `bin/server` and `bin/client`: rebuilt with
 * `tools/build.ts` (what `deno task build` runs) when missing or older than the sources.
 *
 * @module
 */
import { join } from "node:path";
import { ROOT } from "./paths.ts";

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/** The newest mtime of the `.ts` files under some directories, ms since the epoch. */
async function newestMtime(dirs: readonly string[]): Promise<number> {
  let newest = 0;
  for (const dir of dirs) {
    for await (const entry of Deno.readDir(dir)) {
      const path = join(dir, entry.name);
      if (entry.isDirectory) newest = Math.max(newest, await newestMtime([path]));
      else if (entry.name.endsWith(".ts")) {
        newest = Math.max(newest, (await Deno.stat(path)).mtime?.getTime() ?? 0);
      }
    }
  }
  return newest;
}

/**
 * Whether `bin/<name>` is missing, or what it runs is older than the sources: a compiled
 * binary, or a launcher's bundle (`bin/<name>.js`; a stale one would make the launcher
 * fall back to the sources, which start slower and use more memory than what users run).
 */
async function needsBuild(bin: string): Promise<boolean> {
  if (!(await exists(bin))) return true;
  using file = await Deno.open(bin);
  const head = new Uint8Array(2);
  await file.read(head);
  const launcher = head[0] === 0x23 && head[1] === 0x21; // "#!"
  const built = launcher ? `${bin}.js` : bin;
  if (!(await exists(built))) return !launcher;
  const builtAt = (await Deno.stat(built)).mtime?.getTime() ?? 0;
  const dirs = ["server", "client", "shared"].map((dir) => join(ROOT, dir));
  return (await newestMtime(dirs)) > builtAt;
}

/**
 * Makes sure `bin/server` and `bin/client` exist and are current, running
 * `tools/build.ts` (what `deno task build` runs) when they are not.
 *
 * @param log Progress sink.
 * @returns The two programs' paths.
 * @throws {Error} If the build fails.
 *
 * @example Usage
 * ```ts
 * const { server, client } = await ensurePrograms(console.error);
 * ```
 */
export async function ensurePrograms(
  log: (message: string) => void,
): Promise<{ server: string; client: string }> {
  const server = join(ROOT, "bin", "server");
  const client = join(ROOT, "bin", "client");
  if ((await needsBuild(server)) || (await needsBuild(client))) {
    log("building bin/server and bin/client (deno task build)");
    const { code, stderr, stdout } = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-read",
        "--allow-write",
        "--allow-run",
        "--allow-env",
        "tools/build.ts",
      ],
      cwd: ROOT,
      stdin: "null",
    }).output();
    if (code !== 0) {
      const text = new TextDecoder().decode(stderr) + new TextDecoder().decode(stdout);
      throw new Error(`Cannot build programs: tools/build.ts exited with ${code}: ${text.trim()}`);
    }
  }
  return { server, client };
}
