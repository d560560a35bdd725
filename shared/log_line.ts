/**
 * Reads the course's log lines back (the inverse of `log.ts`) with the course's own rule: split a
 * line on `|`, then each part on its last `:`, key left and value right, both stripped. Tools and
 * every test suite read the programs' output with it, so they parse exactly what the course's
 * graders parse (and the suites check every line parses into the fields that were logged).
 *
 * @module
 */
import { LOG_LEVELS } from "./log.ts";

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

/**
 * Splits a line by the course's rule: the timestamp and level off (the level `""` without
 * one), the rest on `|`, then each part on its last `:` into a key and a value, both
 * stripped (a part without `:` has no value).
 */
export function courseParts(line: string): { level: string; parts: [string, string?][] } {
  const level = PREFIX.exec(line);
  const message = level === null ? line.trim() : line.slice(level[0].length).trimEnd();
  const parts = message.split("|").map((part): [string, string?] => {
    const cut = part.lastIndexOf(":");
    return cut === -1 ? [part.trim()] : [part.slice(0, cut).trim(), part.slice(cut + 1).trim()];
  });
  return { level: level?.[1] ?? "", parts };
}

/**
 * Parses one line of output by the course's rule; `undefined` when its message does not
 * start with `action:`.
 *
 * @example Usage
 * ```ts
 * const line = parseLogLine("2026-11-22 12:02:02 INFO     action: sorteo | result: success");
 * // line.action === "sorteo", line.fields.get("result") === "success"
 * ```
 */
export function parseLogLine(line: string): LogLine | undefined {
  const { level, parts } = courseParts(line);
  if (parts[0]?.[0] !== "action") return undefined;
  const fields = new Map(parts.map(([key, value]) => [key, value ?? ""]));
  return { level, action: fields.get("action")!, result: fields.get("result") ?? "", fields };
}

/** The action lines of a process's output, in order; other lines are skipped. */
export function parseLog(text: string): LogLine[] {
  return text.split("\n").map(parseLogLine).filter((line) => line !== undefined);
}
