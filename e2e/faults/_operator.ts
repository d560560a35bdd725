/**
 * Helpers for the operator-mistake fault tests: a server expected to refuse its storage,
 * the storage's files compared before and after, why an agency failed.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type ClientProcess, parseLog, ROOT } from "../lottery/_harness.ts";

/** The course's minimal server config file. */
const COURSE_INI = "[DEFAULT]\nSERVER_PORT = 12345\nSERVER_IP = server\n" +
  "SERVER_LISTEN_BACKLOG = 5\nLOGGING_LEVEL = INFO\n";

/** How a server that was expected to stop at start-up ended. */
export interface Refusal {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  /** The one `result: fail` line's fields. */
  readonly fields: ReadonlyMap<string, string>;
}

/**
 * Runs `bin/server` on the storage in `dir` and waits (at most 15 s) for it to stop on
 * its own; checks it refused in one line, with no stack trace, and exited 2.
 *
 * @param dir The folder holding `bets.csv`.
 * @param env Extra environment (e.g. `SERVER_AGENCIES`).
 * @returns The refusal.
 */
export async function refusedStart(
  dir: string,
  env: Readonly<Record<string, string>>,
): Promise<Refusal> {
  const config = await Deno.makeTempFile({ prefix: "tp0-refusal-", suffix: ".ini" });
  try {
    await Deno.writeTextFile(config, COURSE_INI);
    const child = new Deno.Command(`${ROOT}bin/server`, {
      cwd: dir,
      env: {
        SERVER_CONFIG: config,
        SERVER_PORT: "0",
        SERVER_LISTEN_ADDRESS: "127.0.0.1",
        SERVER_STORAGE_PATH: `${dir}/bets.csv`,
        ...env,
      },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
    const { code, stdout, stderr } = await child.output();
    clearTimeout(timer);
    const out = new TextDecoder().decode(stdout);
    const err = new TextDecoder().decode(stderr);
    const fails = parseLog(out).filter((l) => l.result === "fail");
    assert.equal(fails.length, 1, `one fail line: ${out}`);
    assert.equal(err, "", "nothing on stderr (no stack trace)");
    assert.doesNotMatch(out, /accept_connections \| result: in_progress/, "it never listened");
    assert.equal(code, 2, `exit code 2: ${out}`);
    return { code, stdout: out, stderr: err, fields: fails[0]!.fields };
  } finally {
    await Deno.remove(config);
  }
}

/**
 * The storage's files (`bets.csv`, its journal and lock) as bytes, to show a refusal
 * changed none of them.
 *
 * @param dir The folder holding `bets.csv`.
 * @returns Each file's bytes, or `undefined` when it does not exist.
 */
export function storageFiles(dir: string): Promise<(Uint8Array | undefined)[]> {
  return Promise.all(
    ["bets.csv", "bets.csv.journal", "bets.csv.lock"].map((name) =>
      Deno.readFile(`${dir}/${name}`).catch(() => undefined)
    ),
  );
}

/**
 * The `error` of an agency's last line when it failed (`agencia | result: fail`). A `:`
 * inside it may be written `꞉` by the log sink: match either.
 *
 * @param client The agency's process.
 * @returns The text after `error: `, whole (the course's rule would cut it at a `:`).
 */
export function failureOf(client: ClientProcess): string {
  const line = client.stdout().split("\n").findLast((l) => l.includes("result: fail"));
  return line?.slice(line.indexOf("| error: ") + 9) ?? "";
}
