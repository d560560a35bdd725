/**
 * The course's grading as its black-box tests do it, for `course_test.ts`: its log-line
 * parser, a follower of `docker compose … logs -f` that reads line by line with it, and the
 * config files written wholesale with only the course's keys.
 *
 * @module
 */
import { stripAnsi } from "../../tools/_cli.ts";

/** One line of `docker compose logs` as the course's parser reads it. */
export interface CourseLine {
  /** The text before the first `|`: the container (compose's `client1  | ` prefix). */
  readonly source: string;
  readonly action: string;
  readonly result: string;
  /** Every other part, split at its last `:`. */
  readonly fields: ReadonlyMap<string, string>;
}

const RESULTS = new Set(["success", "fail", "in_progress"]);

/**
 * Parses a line of `docker compose logs` by the course's rule: `\x1b[2K` stripped; the
 * source before the first `|`; then the action part and the result part (each read after
 * its last `:`), then every other part split at its last `:`. `<name> exited with code N`
 * is action `exit`, success iff N is 0. Compose's own lines without `|` give `undefined`.
 *
 * @throws {Error} For a part without `:` or a result other than success/fail/in_progress,
 *   as the course's parser raises.
 */
export function parseCourseLine(raw: string): CourseLine | undefined {
  const line = stripAnsi(raw).trim();
  const exit = /^(\S+?)(?:\s+\|)?\s+exited with code (\d+)$/.exec(line);
  if (exit) {
    const result = exit[2] === "0" ? "success" : "fail";
    return { source: exit[1]!, action: "exit", result, fields: new Map([["code", exit[2]!]]) };
  }
  const bar = line.indexOf("|");
  if (bar === -1) return undefined;
  const [actionPart = "", resultPart = "", ...rest] = line.slice(bar + 1).split("|");
  const split = (part: string): [string, string] => {
    const cut = part.lastIndexOf(":");
    if (cut === -1) {
      throw new Error(`Cannot parse the course's way: part "${part}" of "${line}" has no ":"`);
    }
    return [part.slice(0, cut).trim(), part.slice(cut + 1).trim()];
  };
  const result = split(resultPart)[1];
  if (!RESULTS.has(result)) {
    throw new Error(`Cannot parse the course's way: result "${result}" of "${line}"`);
  }
  return {
    source: line.slice(0, bar).trim(),
    action: split(actionPart)[1],
    result,
    fields: new Map(rest.map(split)),
  };
}

/**
 * Follows `docker compose -f FILE logs -f` from `cwd` (Compose v2, no `-p`, as the course
 * runs it), parsing each line as it comes; what the parser raises is kept in `problems`.
 */
export class LogFollower {
  /** Every parsed line, in order of arrival. */
  readonly lines: CourseLine[] = [];
  /** Lines the course's parser raises on. */
  readonly problems: string[] = [];
  readonly #child: Deno.ChildProcess;
  readonly #reading: Promise<void>;

  /** Starts following. */
  constructor(cwd: string, file: string) {
    this.#child = new Deno.Command("docker", {
      args: ["compose", "-f", file, "logs", "-f"],
      cwd,
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    this.#reading = this.#read();
  }

  async #read(): Promise<void> {
    let pending = "";
    for await (const chunk of this.#child.stdout.pipeThrough(new TextDecoderStream())) {
      const parts = (pending + chunk).split("\n");
      pending = parts.pop()!;
      for (const raw of parts) {
        try {
          const line = parseCourseLine(raw);
          if (line) this.lines.push(line);
        } catch (error) {
          this.problems.push((error as Error).message);
        }
      }
    }
  }

  /** The lines of one source (container). */
  of(source: string): CourseLine[] {
    return this.lines.filter((line) => line.source === source);
  }

  /**
   * Waits until `done()` holds over the lines so far, polling, at most `timeoutMs`.
   *
   * @throws {Error} Naming `what` and the last lines when time runs out.
   */
  async until(what: string, done: () => boolean, timeoutMs: number): Promise<void> {
    for (const deadline = Date.now() + timeoutMs; !done();) {
      if (Date.now() > deadline) {
        const last = this.lines.slice(-8).map((l) => `${l.source}: ${l.action} ${l.result}`);
        throw new Error(
          `Timed out after ${timeoutMs} ms waiting for ${what}; last: ${last.join("; ")}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** Stops following. */
  async stop(): Promise<void> {
    try {
      this.#child.kill("SIGTERM");
    } catch {
      // Already gone.
    }
    await this.#child.status;
    await this.#reading.catch(() => {});
  }
}

/** The course's client config: only its keys, strings quoted. */
export function courseClientConfig(options: {
  readonly address?: string;
  readonly amount: number;
  readonly period: string;
  readonly level?: string;
  readonly maxAmount?: number;
}): string {
  return `server:\n  address: "${options.address ?? "server:12345"}"\n` +
    `loop:\n  amount: ${options.amount}\n  period: "${options.period}"\n` +
    `log:\n  level: "${options.level ?? "INFO"}"\n` +
    `batch:\n  maxAmount: ${options.maxAmount ?? 100}\n`;
}

/** The course's server config: `[DEFAULT]` with its four keys, no final newline. */
export function courseServerConfig(options: {
  readonly port?: number;
  readonly backlog?: number;
  readonly level?: string;
} = {}): string {
  return `[DEFAULT]\nSERVER_PORT = ${options.port ?? 12345}\nSERVER_IP = server\n` +
    `SERVER_LISTEN_BACKLOG = ${options.backlog ?? 5}\nLOGGING_LEVEL = ${options.level ?? "INFO"}`;
}
