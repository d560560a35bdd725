/**
 * Reads the course's log lines back (the inverse of `log.ts`), with the course's own
 * rule: split a line on `|`, then each part on its last `:`. Tools and tests read the
 * programs' output with it, so they parse exactly what the course's graders parse.
 *
 * @module
 */

/** A parsed action line. */
export interface LogLine {
  /** The `action` field. */
  readonly action: string;
  /** The `result` field (empty when the line has none). */
  readonly result: string;
  /**
   * Every `key: value` pair, `action` and `result` included. The key is the last word
   * before the part's last `:`, so a value holding a `:` (an address, an error message)
   * is cut there, exactly as the course's parser cuts it.
   */
  readonly fields: ReadonlyMap<string, string>;
}

/**
 * Parses one line of output.
 *
 * @param line One line, e.g. `2026-11-22 12:02:02 INFO     action: sorteo | result: success`.
 * @returns The parsed line, or `undefined` when it has no `action:`.
 *
 * @example Usage
 * ```ts
 * const line = parseLogLine("2026-11-22 12:02:02 INFO     action: sorteo | result: success | ms: 12");
 * // line.action === "sorteo", line.fields.get("ms") === "12"
 * ```
 */
export function parseLogLine(line: string): LogLine | undefined {
  if (!line.includes("action:")) return undefined;
  const fields = new Map<string, string>();
  for (const part of line.split("|")) {
    const cut = part.lastIndexOf(":");
    if (cut === -1) continue;
    const key = part.slice(0, cut).trim().split(" ").at(-1)!;
    fields.set(key, part.slice(cut + 1).trim());
  }
  return { action: fields.get("action") ?? "", result: fields.get("result") ?? "", fields };
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
