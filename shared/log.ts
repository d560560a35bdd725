/**
 * Logging in the course's format, with a small logger of our own:
 *
 * `YYYY-MM-DD HH:MM:SS LEVEL    action: <action> | result: <result> | key: value | …`
 *
 * The course's tests split a line on `|`, then each part on its last `:` (key left,
 * value right). So every value is written safe for that rule: `|` becomes `¦`, `:`
 * becomes `꞉` (U+A789) and line breaks become spaces; the one exception is the course's
 * own client `config` line, whose `server_address: server:12345` the course fixes.
 *
 * Lines go to stdout whole, those of one turn of the event loop in one `write`, so
 * `docker logs` never shows half a line and a burst of per-batch lines costs one system
 * call; a warning or an error goes out at once.
 *
 * @module
 */

/** The level names accepted in configuration, as the course writes them. */
export const LOG_LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] as const;

/** One of {@linkcode LOG_LEVELS}. */
export type LogLevelName = typeof LOG_LEVELS[number];

/** The result field of an action line. */
export type ActionResult = "success" | "fail" | "in_progress";

/** Extra `key: value` pairs of an action line, printed in insertion order. */
export type LogFields = Readonly<Record<string, string | number | bigint | boolean>>;

/**
 * The actions the programs log: the course's (its tests look for them) and ours. Tools
 * and tests name them from here instead of spelling them out.
 */
export const LogAction = {
  // The course's.
  CONFIG: "config",
  ACCEPT_CONNECTIONS: "accept_connections",
  RECEIVE_MESSAGE: "receive_message",
  LOOP_FINISHED: "loop_finished",
  APUESTA_ENVIADA: "apuesta_enviada",
  APUESTA_ALMACENADA: "apuesta_almacenada",
  APUESTA_RECIBIDA: "apuesta_recibida",
  SORTEO: "sorteo",
  CONSULTA_GANADORES: "consulta_ganadores",
  TEST_ECHO_SERVER: "test_echo_server",
  // The server's.
  OPEN_STORAGE: "open_storage",
  PROGRESO: "progreso",
  AGENCIA_LISTA: "agencia_lista",
  CONNECTION: "connection",
  CONNECTION_LOST: "connection_lost",
  IDLE_TIMEOUT: "idle_timeout",
  CLOSE_LISTENER: "close_listener",
  CLOSE_PROGRESS_TIMER: "close_progress_timer",
  CLOSE_CONNECTION: "close_connection",
  CLOSE_STORAGE: "close_storage",
  // The agencies'.
  CONNECT: "connect",
  HELLO: "hello",
  RECONEXION: "reconexion",
  APUESTAS_ENVIADAS: "apuestas_enviadas",
  GANADORES: "ganadores",
  CONSULTA_TOTAL_GANADORES: "consulta_total_ganadores",
  AGENCIA: "agencia",
  EXIT: "exit",
  // Both.
  SHUTDOWN: "shutdown",
} as const;

/** One of the {@linkcode LogAction} values. */
export type LogAction = typeof LogAction[keyof typeof LogAction];

const UNSAFE = /[|:\r\n]/;

/** Makes a value safe for the course's parser: no `|`, no `:` (unless kept), no line break. */
function sanitize(value: string, keepColons = false): string {
  // Nearly every value is already safe: one test instead of new strings.
  if (!UNSAFE.test(value)) return value;
  const safe = value.replaceAll("|", "¦").replace(/[\r\n]+/g, " ");
  return keepColons ? safe : safe.replaceAll(":", "꞉");
}

/**
 * Builds the message part of an action line, every key and value made safe for the
 * course's parser (see the module's documentation).
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
  for (const key in fields) {
    // The course's client config line writes `server_address: server:12345` as is.
    const keep = key === "server_address" && action === LogAction.CONFIG;
    line += ` | ${sanitize(key)}: ${sanitize(String(fields[key]), keep)}`;
  }
  return line;
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/**
 * `YYYY-MM-DD HH:MM:SS` in local time, as Python's `%(asctime)s` without milliseconds;
 * the last one is kept, since lines come by the thousand per second.
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
let pending = "";

/** Writes the lines queued this turn, whole, with a loop over short writes. */
function flush(): void {
  if (pending === "") return;
  const bytes = encoder.encode(pending);
  pending = "";
  let written = 0;
  while (written < bytes.length) written += Deno.stdout.writeSync(bytes.subarray(written));
}

/** Queues a line for stdout; the queue is written at the end of this turn or at exit. */
function toStdout(line: string): void {
  if (pending === "") queueMicrotask(flush);
  pending += line + "\n";
}
globalThis.addEventListener("unload", flush);

/** Options of {@linkcode setupLogging}. */
export interface LoggingOptions {
  /**
   * Receives each formatted line.
   * @default stdout, the lines of one event-loop turn in one write
   */
  readonly writer?: LineWriter;
}

/** The lowest level printed (an index into {@linkcode LOG_LEVELS}); nothing before setup. */
let lowest: number = LOG_LEVELS.length;
let writer: LineWriter = toStdout;

/**
 * Configures logging for the whole process: every action logger writes course-format
 * lines at or above `level`. Until it is called nothing is printed; calling it again
 * (tests, config reload) replaces the setup.
 *
 * @param level The lowest level printed.
 * @param options Where lines go.
 */
export function setupLogging(level: LogLevelName, options: LoggingOptions = {}): void {
  lowest = LOG_LEVELS.indexOf(level);
  writer = options.writer ?? toStdout;
}

/** Logs course-format action lines. */
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
}

function logAt(level: number): ActionLogger["info"] {
  const name = LOG_LEVELS[level]!.padEnd(8);
  return (action, result, fields) => {
    if (level < lowest) return;
    writer(`${stampOf(Date.now())} ${name} ${formatAction(action, result, fields)}`);
    // A warning or an error may precede a crash: it goes out at once.
    if (level >= 2) flush();
  };
}

const logger: ActionLogger = {
  debug: logAt(0),
  info: logAt(1),
  warning: logAt(2),
  error: logAt(3),
  critical: logAt(4),
};

/**
 * Returns the action logger of a component. Every component shares the process's
 * setup; the course's format has no field for the component, which only names, in the
 * caller, whose lines these are.
 *
 * @param _component A name, e.g. `server`.
 * @returns The logger.
 */
export function getActionLogger(_component: string): ActionLogger {
  return logger;
}
