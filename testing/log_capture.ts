/**
 * For tests: an {@linkcode ActionLogger} that keeps every line it is given, with its level,
 * instead of printing it.
 *
 * @module
 */
import type { ActionLogger, ActionResult, LogFields } from "../shared/log.ts";

/** One captured line. */
export interface CapturedLine {
  readonly level: "DEBUG" | "INFO" | "WARNING" | "ERROR" | "CRITICAL";
  readonly action: string;
  readonly result: ActionResult;
  readonly fields: LogFields;
}

/**
 * A logger that records lines instead of printing them; DEBUG is enabled.
 *
 * @returns The logger and the lines it has received, in order.
 */
export function captureLogger(): { log: ActionLogger; lines: CapturedLine[] } {
  const lines: CapturedLine[] = [];
  const at =
    (level: CapturedLine["level"]) =>
    (action: string, result: ActionResult, fields: LogFields = {}): void => {
      lines.push({ level, action, result, fields });
    };
  return {
    lines,
    log: {
      debug: at("DEBUG"),
      info: at("INFO"),
      warning: at("WARNING"),
      error: at("ERROR"),
      critical: at("CRITICAL"),
    },
  };
}
