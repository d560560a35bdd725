/**
 * Helpers for the operator-mistake fault tests: a server expected to refuse its storage,
 * the storage's files compared before and after, why an agency failed.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { ClientProcess } from "../lottery/_harness.ts";
import { refusalOf, runServerToExit } from "../lottery/_harness.ts";

/** How a server that was expected to stop at start-up ended. */
export interface Refusal {
  readonly stdout: string;
  /** The one `result: fail` line's fields. */
  readonly fields: ReadonlyMap<string, string>;
}

/**
 * Runs `bin/server` on the storage in `dir` until it stops on its own; checks it refused in
 * one line, exit 2 (see `refusalOf`), and never listened.
 *
 * @param dir The folder holding `bets.csv`.
 * @param env Extra environment (e.g. `SERVER_AGENCIES`).
 * @returns The refusal.
 */
export async function refusedStart(
  dir: string,
  env: Readonly<Record<string, string>>,
): Promise<Refusal> {
  const run = await runServerToExit(dir, env);
  const fields = refusalOf(run);
  assert.doesNotMatch(run.stdout, /accept_connections \| result: in_progress/, "it never listened");
  return { stdout: run.stdout, fields };
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
