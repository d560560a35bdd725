/**
 * Logging in the course's format, on top of LogTape:
 *
 * `YYYY-MM-DD HH:MM:SS LEVEL    action: <action> | result: <result> | key: value | …`
 *
 * Lines go to stdout whole, those of one turn of the event loop in one `write`, so `docker
 * logs` never shows half a line and a burst of per-batch lines costs one system call.
 * The course's tests split a line on `|`, then each part on its last `:`; values are
 * sanitized so they never contain `|` or a line break.
 *
 * @module
 */
import { configureSync, getLogger, type Logger, type LogRecord } from "@logtape/logtape";

/** The level names accepted in configuration, as the course writes them. */
export const LOG_LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] as const;

/** One of {@linkcode LOG_LEVELS}. */
export type LogLevelName = typeof LOG_LEVELS[number];

/** The result field of an action line. */
export type ActionResult = "success" | "fail" | "in_progress";

/** Extra `key: value` pairs of an action line, printed in insertion order. */
export type LogFields = Readonly<Record<string, string | number | bigint | boolean>>;

const TAPE_LEVEL = {
  DEBUG: "debug",
  INFO: "info",
  WARNING: "warning",
  ERROR: "error",
  CRITICAL: "fatal",
} as const;

const COURSE_LEVEL: Readonly<Record<string, LogLevelName>> = {
  trace: "DEBUG",
  debug: "DEBUG",
  info: "INFO",
  warning: "WARNING",
  error: "ERROR",
  fatal: "CRITICAL",
};

const UNSAFE = /[|\r\n]/;

/** Makes a value safe for the course's parser: no `|`, no line breaks. */
function sanitize(value: string): string {
  // Nearly every value is already safe: one test instead of two new strings.
  return UNSAFE.test(value) ? value.replaceAll("|", "¦").replace(/[\r\n]+/g, " ") : value;
}

/**
 * Builds the message part of an action line.
 *
 * @param action The action name, e.g. `apuesta_recibida`.
 * @param result `success`, `fail` or `in_progress`.
 * @param fields Extra pairs, in order.
 * @returns `action: a | result: r | k: v …`
 *
 * @example Usage
 * ```ts
 * formatAction("apuesta_recibida", "success", { cantidad: 80 });
 * // "action: apuesta_recibida | result: success | cantidad: 80"
 * ```
 */
export function formatAction(action: string, result: ActionResult, fields: LogFields = {}): string {
  let line = `action: ${sanitize(action)} | result: ${result}`;
  for (const key in fields) line += ` | ${sanitize(key)}: ${sanitize(String(fields[key]))}`;
  return line;
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/**
 * Formats a whole log line the way Python's `%(asctime)s %(levelname)-8s %(message)s`
 * does, in local time.
 *
 * @param date When it happened.
 * @param level The course's level name.
 * @param message The message, usually from {@linkcode formatAction}.
 * @returns The line, without a trailing newline.
 */
export function formatLogLine(date: Date, level: LogLevelName, message: string): string {
  return lineAt(date.getTime(), level, message);
}

/** {@linkcode formatLogLine} for a time in ms, as LogTape records carry it. */
function lineAt(ms: number, level: LogLevelName, message: string): string {
  return `${stampOf(ms)} ${level.padEnd(8)} ${message}`;
}

/**
 * `YYYY-MM-DD HH:MM:SS` in local time of a time in ms; the last one is kept, since lines
 * come by the thousand per second and time zones move by whole minutes.
 */
const stampOf = (() => {
  let second = NaN;
  let stamp = "";
  return (ms: number): string => {
    const now = Math.floor(ms / 1000);
    if (now === second) return stamp;
    const date = new Date(ms);
    second = now;
    stamp = `${date.getFullYear()}-${pad2(date.getMonth() + 1)}-${pad2(date.getDate())} ` +
      `${pad2(date.getHours())}:${pad2(date.getMinutes())}:${pad2(date.getSeconds())}`;
    return stamp;
  };
})();

/** Where formatted lines go; by default stdout, the lines of one event-loop turn per write. */
export type LineWriter = (line: string) => void;

const encoder = new TextEncoder();

/**
 * Stdout, written a turn of the event loop at a time: lines logged in one turn (the acks
 * of one group commit, say) go out in one `write` instead of one each. A write still
 * holds whole lines only, and `flush` also runs when the process exits (`unload`).
 */
function batchedStdout(): { readonly write: LineWriter; readonly flush: () => void } {
  let pending = "";
  const flush = (): void => {
    if (pending === "") return;
    const bytes = encoder.encode(pending);
    pending = "";
    let written = 0;
    while (written < bytes.length) written += Deno.stdout.writeSync(bytes.subarray(written));
  };
  const write = (line: string): void => {
    if (pending === "") queueMicrotask(flush);
    pending += line + "\n";
  };
  globalThis.addEventListener("unload", flush);
  return { write, flush };
}

/** LogTape's mark for a sink that uses each record synchronously and retains nothing. */
const IMMEDIATE_SINK = Symbol.for("LogTape.sinkSnapshotPolicy.immediate");

/** The process's stdout writer, made by the first `setupLogging` that needs it. */
let stdout: ReturnType<typeof batchedStdout> | undefined;

function recordText(record: LogRecord): string {
  return record.message.map((part) => typeof part === "string" ? part : String(part)).join("");
}

/** Options of {@linkcode setupLogging}. */
export interface LoggingOptions {
  /**
   * Receives each formatted line.
   * @default stdout, the lines of one event-loop turn in one write
   */
  readonly writer?: LineWriter;
}

/**
 * Configures LogTape for the whole process: every `tp0` logger writes course-format lines
 * at or above `level`. Safe to call again (tests, config reload): it replaces the setup.
 *
 * @param level The lowest level printed.
 * @param options Where lines go.
 */
export function setupLogging(level: LogLevelName, options: LoggingOptions = {}): void {
  const writer = options.writer ?? (stdout ??= batchedStdout()).write;
  const course = (record: LogRecord): void => {
    const level = COURSE_LEVEL[record.level] ?? "INFO";
    writer(lineAt(record.timestamp, level, recordText(record)));
    // A warning or an error may precede a crash: it goes out at once.
    if (level !== "INFO" && level !== "DEBUG") stdout?.flush();
  };
  // The sink turns each record into text at once and keeps nothing, so LogTape may skip
  // copying the record for it (its own stream sinks say so with this registered symbol):
  // the copy was most of a line's cost, ~4 µs a batch on the server.
  Object.defineProperty(course, IMMEDIATE_SINK, { value: true });
  configureSync({
    reset: true,
    sinks: { course },
    loggers: [
      { category: ["tp0"], lowestLevel: TAPE_LEVEL[level], sinks: ["course"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["course"] },
    ],
  });
}

/** Logs course-format action lines; one per component (`server`, `client`, …). */
export interface ActionLogger {
  /** Logs at DEBUG. */
  debug(action: string, result: ActionResult, fields?: LogFields): void;
  /** Logs at INFO. */
  info(action: string, result: ActionResult, fields?: LogFields): void;
  /** Logs at WARNING. */
  warning(action: string, result: ActionResult, fields?: LogFields): void;
  /** Logs at ERROR. */
  error(action: string, result: ActionResult, fields?: LogFields): void;
  /** Logs at CRITICAL. */
  critical(action: string, result: ActionResult, fields?: LogFields): void;
  /** Whether DEBUG lines are printed, to skip building costly fields. */
  readonly isDebugEnabled: () => boolean;
}

/**
 * Returns the action logger of a component.
 *
 * @param component A category under `tp0`, e.g. `server`.
 * @returns The logger.
 */
export function getActionLogger(component: string): ActionLogger {
  const logger: Logger = getLogger(["tp0", component]);
  return {
    // A tagged template takes the line as a value, verbatim: a message template string
    // would read `{…}` in it, and parsing one per call was most of a line's cost.
    debug: (a, r, f) => logger.debug`${formatAction(a, r, f)}`,
    info: (a, r, f) => logger.info`${formatAction(a, r, f)}`,
    warning: (a, r, f) => logger.warn`${formatAction(a, r, f)}`,
    error: (a, r, f) => logger.error`${formatAction(a, r, f)}`,
    critical: (a, r, f) => logger.fatal`${formatAction(a, r, f)}`,
    isDebugEnabled: () => logger.isEnabledFor("debug"),
  };
}
