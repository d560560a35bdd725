/**
 * The check every test suite runs on the programs' stdout: each line must parse, by the
 * course's rule (`courseParts`), into the fields that were logged. Our keys are plain
 * words, so a value holding `:` or `|` would show as a part whose key is not one.
 *
 * @module
 */
import { LogAction } from "../../shared/log.ts";
import { courseParts } from "../../shared/log_line.ts";

const KEY = /^[a-z][a-z0-9_]*$/;
const RESULTS = new Set(["success", "fail", "in_progress"]);

/**
 * What is wrong with one line of a program's stdout under the course's rule, if
 * anything. The course's client `config` line keeps its `server_address: server:12345`.
 *
 * @param line One line of stdout, without its line break.
 * @returns The problem, or `undefined` when the line parses as logged.
 */
export function logLineProblem(line: string): string | undefined {
  const { level, parts } = courseParts(line);
  if (level === "") return "no timestamp and level";
  const [action, result] = parts;
  if (action?.[0] !== "action" || result?.[0] !== "result") return "not action, then result";
  if (!RESULTS.has(result[1] ?? "")) {
    return `result "${result[1]}" is not success, fail or in_progress`;
  }
  const seen = new Set<string>();
  for (const [key, value] of parts) {
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

/**
 * The lines of a program's output (stdout or stderr) that show an uncaught error: `Uncaught`,
 * or a stack frame (a line starting with blanks then `at `). A program reports every failure
 * in one line of its own, so none may appear, in any scenario.
 *
 * @param output What the program printed.
 * @returns One `line N: line` entry per such line; empty when there is none.
 */
export function uncaughtLines(output: string): string[] {
  const found: string[] = [];
  output.split("\n").forEach((line, i) => {
    if (line.includes("Uncaught") || /^\s+at /.test(line)) found.push(`line ${i + 1}: ${line}`);
  });
  return found;
}
