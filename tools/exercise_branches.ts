#!/usr/bin/env -S deno run --allow-run=git --allow-read --allow-write
/**
 * Makes or moves the local branches `ej1` … `ej8` to the current commit plus one commit that
 * writes `exercise` (the clients' mode) and names it in the README; never pushes or touches
 * the working tree, and refuses on a dirty tree or an `ejN` branch.
 *
 * @module
 */
import { basename } from "node:path";
import { run, runMain, runOrThrow, ToolError, UsageError } from "./_cli.ts";
import { EXERCISE_FILE, exerciseMode, EXERCISES } from "./gen_compose.ts";

/** What each exercise asks for, as the branch's README names it. */
const TITLES = [
  "Compose generation: the server and N echo clients",
  "configuration outside the image (mounted config files, no rebuild)",
  "echo-server validation with netcat (validar-echo-server.sh)",
  "graceful shutdown on SIGTERM",
  "one bet per agency from its environment",
  "batches of bets from .data/agency-{id}.csv",
  "draw and each agency's winners",
  "a concurrent server",
] as const;

/** The line the branch `ejN` puts first in its README. */
export function readmeLine(exercise: number): string {
  return `> **Branch \`ej${exercise}\`: exercise ${exercise}**, ${TITLES[exercise - 1]}. ` +
    `\`./generar-compose.sh docker-compose-dev.yaml N\` deploys it (clients in mode ` +
    `${exerciseMode(exercise)}, selected by the file \`exercise\`).`;
}

/** Runs git in `repo` and returns its trimmed stdout. */
function git(repo: string, args: readonly string[], env?: Record<string, string>) {
  return runOrThrow(["git", "-C", repo, ...args], `Cannot run git ${args[0]}`, {
    timeoutMs: 60_000,
    ...(env ? { env } : {}),
  });
}

/** Stores `text` as a blob in `repo`'s object database (through `file`); returns its id. */
async function blob(repo: string, file: string, text: string): Promise<string> {
  await Deno.writeTextFile(file, text);
  return await git(repo, ["hash-object", "-w", file]);
}

/**
 * Creates or moves `ej1` … `ej8` in the repository `repo` (see the module doc); returns the
 * lines it has to say: one per branch, then how to push them.
 *
 * @throws {ToolError} On a dirty tree, on an `ejN` branch, or when git fails.
 */
export async function makeExerciseBranches(repo: string): Promise<string[]> {
  if ((await git(repo, ["status", "--porcelain"])) !== "") {
    throw new ToolError(
      "Cannot make the exercise branches: the working tree has uncommitted changes " +
        "(commit or stash them first)",
    );
  }
  const current = (await run(["git", "-C", repo, "symbolic-ref", "--short", "-q", "HEAD"]))
    .stdout.trim();
  if (/^ej\d+$/.test(current)) {
    throw new ToolError(
      `Cannot make the exercise branches from ${current}: switch to the branch they start ` +
        "from (main) first",
    );
  }
  const base = await git(repo, ["rev-parse", "HEAD"]);
  const short = await git(repo, ["rev-parse", "--short", "HEAD"]);
  const readme = await run(["git", "-C", repo, "show", `${base}:README.md`]);
  const scratch = await Deno.makeTempDir({ prefix: "tp0-exercise-" });
  const lines: string[] = [];
  try {
    const env = { GIT_INDEX_FILE: `${scratch}/index` };
    for (let exercise = 1; exercise <= EXERCISES; exercise++) {
      await git(repo, ["read-tree", base], env);
      const entries = [[basename(EXERCISE_FILE), `${exercise}\n`]];
      if (readme.code === 0) {
        entries.push(["README.md", `${readmeLine(exercise)}\n\n${readme.stdout}`]);
      }
      for (const [path, text] of entries) {
        const cacheinfo = `100644,${await blob(repo, `${scratch}/blob`, text!)},${path}`;
        await git(repo, ["update-index", "--add", "--cacheinfo", cacheinfo], env);
      }
      const tree = await git(repo, ["write-tree"], env);
      const message = `ej${exercise}: select exercise ${exercise} (mode ${exerciseMode(exercise)})`;
      const commit = await git(repo, ["commit-tree", tree, "-p", base, "-m", message]);
      await git(repo, ["branch", "-f", `ej${exercise}`, commit]);
      lines.push(`exercise-branches: ej${exercise} = ${short} + ${message}`);
    }
  } finally {
    await Deno.remove(scratch, { recursive: true }).catch(() => {});
  }
  const all = Array.from({ length: EXERCISES }, (_, i) => `ej${i + 1}`).join(" ");
  lines.push(`exercise-branches: local only; publish them with git push -f origin ${all}`);
  return lines;
}

if (import.meta.main) {
  await runMain("exercise-branches", async () => {
    if (Deno.args.length > 0) {
      throw new UsageError(`expected no arguments, not "${Deno.args.join(" ")}"`);
    }
    for (const line of await makeExerciseBranches(Deno.cwd())) console.log(line);
    return 0;
  });
}
