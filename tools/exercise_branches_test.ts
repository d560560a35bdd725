import assert from "node:assert/strict";
import { makeExerciseBranches, readmeLine } from "./exercise_branches.ts";
import { defaultMode } from "./gen_compose.ts";
import { ToolError } from "./_cli.ts";

async function git(repo: string, ...args: string[]): Promise<string> {
  const { code, stdout, stderr } = await new Deno.Command("git", { args: ["-C", repo, ...args] })
    .output();
  const text = new TextDecoder();
  assert.equal(code, 0, `git ${args.join(" ")}: ${text.decode(stderr)}`);
  return text.decode(stdout).trim();
}

/** Matches a {@linkcode ToolError} whose message matches `pattern`. */
function toolError(pattern: RegExp): (error: unknown) => boolean {
  return (error) => error instanceof ToolError && pattern.test(error.message);
}

/** A temporary repository on `main` with a README and one commit. */
async function tempRepo(): Promise<string> {
  const repo = await Deno.makeTempDir({ prefix: "tp0-branches-test-" });
  await git(repo, "init", "-q", "-b", "main");
  await git(repo, "config", "user.email", "test@example.com");
  await git(repo, "config", "user.name", "Test");
  await Deno.writeTextFile(`${repo}/README.md`, "# Lotería\n");
  await git(repo, "add", "README.md");
  await git(repo, "commit", "-q", "-m", "first");
  return repo;
}

Deno.test("makeExerciseBranches() makes ej1 … ej8, each one commit on HEAD selecting its exercise", async () => {
  const repo = await tempRepo();
  try {
    const head = await git(repo, "rev-parse", "HEAD");
    const lines = await makeExerciseBranches(repo);
    assert.equal(lines.length, 9);
    assert.match(lines.at(-1)!, /git push -f origin ej1 ej2 ej3 ej4 ej5 ej6 ej7 ej8$/);
    for (let n = 1; n <= 8; n++) {
      assert.equal(await git(repo, "rev-parse", `ej${n}^`), head);
      assert.equal(await git(repo, "show", `ej${n}:exercise`), String(n));
      const readme = await git(repo, "show", `ej${n}:README.md`);
      assert.equal(readme, `${readmeLine(n)}\n\n# Lotería`);
      assert.deepEqual(
        (await git(repo, "diff", "--name-only", head, `ej${n}`)).split("\n"),
        ["README.md", "exercise"],
      );
    }
    // The working tree, the index and the current branch are untouched.
    assert.equal(await git(repo, "symbolic-ref", "--short", "HEAD"), "main");
    assert.equal(await git(repo, "status", "--porcelain"), "");
  } finally {
    await Deno.remove(repo, { recursive: true });
  }
});

Deno.test("makeExerciseBranches() run again moves the branches to the new HEAD", async () => {
  const repo = await tempRepo();
  try {
    await makeExerciseBranches(repo);
    await Deno.writeTextFile(`${repo}/more.txt`, "more\n");
    await git(repo, "add", "more.txt");
    await git(repo, "commit", "-q", "-m", "second");
    await makeExerciseBranches(repo);
    const head = await git(repo, "rev-parse", "HEAD");
    for (let n = 1; n <= 8; n++) assert.equal(await git(repo, "rev-parse", `ej${n}^`), head);
  } finally {
    await Deno.remove(repo, { recursive: true });
  }
});

Deno.test("makeExerciseBranches() refuses a dirty tree and an ejN branch, making nothing", async () => {
  const repo = await tempRepo();
  try {
    await Deno.writeTextFile(`${repo}/README.md`, "changed\n");
    await assert.rejects(makeExerciseBranches(repo), toolError(/uncommitted changes/));
    assert.equal(await git(repo, "branch", "--list", "ej*"), "");
    await git(repo, "checkout", "-q", "README.md");
    await makeExerciseBranches(repo);
    await git(repo, "switch", "-q", "ej3");
    await assert.rejects(makeExerciseBranches(repo), toolError(/from ej3: switch/));
  } finally {
    await Deno.remove(repo, { recursive: true });
  }
});

Deno.test("defaultMode() reads the exercise file: echo for 1-4, bet for 5, agency for 6-8 or none", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tp0-exercise-file-" });
  try {
    const file = `${dir}/exercise`;
    assert.equal(await defaultMode(file), "agency");
    const expected = ["echo", "echo", "echo", "echo", "bet", "agency", "agency", "agency"];
    for (const [i, mode] of expected.entries()) {
      await Deno.writeTextFile(file, `${i + 1}\n`);
      assert.equal(await defaultMode(file), mode);
    }
    for (const bad of ["0", "9", "ej3", ""]) {
      await Deno.writeTextFile(file, bad);
      await assert.rejects(defaultMode(file), toolError(/expected a number from 1 to 8/));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
