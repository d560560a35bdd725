/**
 * Reads the course's log lines back (the inverse of `log.ts`) with the course's own rule:
 * split a line on `|`, then each part on its last `:`, key left and value right, both
 * stripped. Tools and every test suite read the programs' output with it, so they parse
 * exactly what the course's graders parse, and {@linkcode logProblems} checks that every
 * line a program printed parses into the fields that were logged.
 *
 * @module
 */
import { LOG_LEVELS, LogAction } from "./log.ts";

/** A parsed action line. */
export interface LogLine {
  /** The level (`INFO`, …), or `""` for a line without the timestamp and level. */
  readonly level: string;
  /** The `action` field. */
  readonly action: string;
  /** The `result` field (`""` when the line has none). */
  readonly result: string;
  /** Every `key: value` pair, `action` and `result` included, in order. */
  readonly fields: ReadonlyMap<string, string>;
}

/** `YYYY-MM-DD HH:MM:SS LEVEL    ` before the message. */
const PREFIX = new RegExp(`^\\d{4}-\\d{2}-\\d{2} \\d{2}:\\d{2}:\\d{2} (${LOG_LEVELS.join("|")}) +`);

/** Splits a message into its `[key, value]` parts by the course's rule (no value: no `:`). */
function parts(message: string): [string, string | undefined][] {
  return message.split("|").map((part) => {
    const cut = part.lastIndexOf(":");
    return cut === -1
      ? [part.trim(), undefined]
      : [part.slice(0, cut).trim(), part.slice(cut + 1).trim()];
  });
}

/**
 * Parses one line of output by the course's rule.
 *
 * @param line One line, e.g. `2026-11-22 12:02:02 INFO     action: sorteo | result: success`.
 * @returns The parsed line, or `undefined` when its message does not start with `action:`.
 *
 * @example Usage
 * ```ts
 * const line = parseLogLine("2026-11-22 12:02:02 INFO     action: sorteo | result: success | ms: 12");
 * // line.action === "sorteo", line.fields.get("ms") === "12"
 * ```
 */
export function parseLogLine(line: string): LogLine | undefined {
  const level = PREFIX.exec(line);
  const message = level === null ? line.trim() : line.slice(level[0].length);
  if (!message.startsWith("action:")) return undefined;
  const fields = new Map(parts(message.trimEnd()).map(([key, value]) => [key, value ?? ""]));
  return {
    level: level?.[1] ?? "",
    action: fields.get("action") ?? "",
    result: fields.get("result") ?? "",
    fields,
  };
}

/**
 * Parses a process's output.
 *
 * @param text Any number of lines.
 * @returns The action lines, in order; other lines are skipped.
 *
 * @example Usage
 * ```ts
 * const draws = parseLog(stdout).filter((line) => line.action === "sorteo");
 * ```
 */
export function parseLog(text: string): LogLine[] {
  const lines: LogLine[] = [];
  for (const raw of text.split("\n")) {
    const line = parseLogLine(raw);
    if (line) lines.push(line);
  }
  return lines;
}

const KEY = /^[a-z][a-z0-9_]*$/;
const RESULTS = new Set(["success", "fail", "in_progress"]);

/**
 * What is wrong with one line of a program's stdout under the course's rule, if
 * anything: it must be a whole course line, and every part must split into one of our
 * keys (a value holding `:` or `|` would leave a key that is not one) and its value.
 * The course's client `config` line keeps its `server_address: server:12345`.
 *
 * @param line One line of stdout, without its line break.
 * @returns The problem, or `undefined` when the line parses as logged.
 *
 * @example Usage
 * ```ts
 * logLineProblem("2026-11-22 12:02:00 INFO     action: x | result: success | address: 0.0.0.0:1");
 * // 'part "address: 0.0.0.0:1" splits into key "address: 0.0.0.0" …'
 * ```
 */
export function logLineProblem(line: string): string | undefined {
  const level = PREFIX.exec(line);
  if (level === null) return "no timestamp and level";
  const split = parts(line.slice(level[0].length));
  const [action, result] = split;
  if (action?.[0] !== "action" || result?.[0] !== "result") return "not action, then result";
  if (!RESULTS.has(result[1] ?? "")) {
    return `result "${result[1]}" is not success, fail or in_progress`;
  }
  const seen = new Set<string>();
  for (const [key, value] of split) {
    if (value === undefined) return `part "${key}" has no ":"`;
    const courseAddress = action[1] === LogAction.CONFIG && key.startsWith("server_address:");
    if ((!KEY.test(key) || seen.has(key)) && !courseAddress) {
      return `part "${key}: ${value}" splits into key "${key}", not one key of its own`;
    }
    seen.add(key);
  }
  return undefined;
}

/**
 * Checks every whole line of a program's stdout with {@linkcode logLineProblem}; a last
 * line without its line break (a process killed mid-write) is not judged.
 *
 * @param stdout What the program printed.
 * @returns One `line N: problem: line` entry per bad line; empty when all parse.
 */
export function logProblems(stdout: string): string[] {
  const lines = stdout.split("\n");
  lines.pop();
  const problems: string[] = [];
  lines.forEach((line, i) => {
    const problem = line === "" ? "empty line" : logLineProblem(line);
    if (problem !== undefined) problems.push(`line ${i + 1}: ${problem}: ${line}`);
  });
  return problems;
}
