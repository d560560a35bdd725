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
 * The actions the programs log: the course's (its tests look for them) and ours. The
 * programs, tools and tests name them from here instead of spelling them out.
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
  EXCLUIR_AGENCIA: "excluir_agencia",
  PROGRESO: "progreso",
  AGENCIA_LISTA: "agencia_lista",
  LOTE_REENVIADO: "lote_reenviado",
  STORE_BETS: "store_bets",
  CONNECTION: "connection",
  CONNECTION_LOST: "connection_lost",
  IDLE_TIMEOUT: "idle_timeout",
  CLOSE_LISTENER: "close_listener",
  CLOSE_PROGRESS_TIMER: "close_progress_timer",
  CLOSE_CONNECTION: "close_connection",
  CLOSE_STORAGE: "close_storage",
  WORKER: "worker",
  CLOSE_WORKER: "close_worker",
  // The agencies': `agencia`, `bet` and `echo` name a mode's failure.
  CONNECT: "connect",
  HELLO: "hello",
  RECONEXION: "reconexion",
  APUESTAS_ENVIADAS: "apuestas_enviadas",
  GANADORES: "ganadores",
  CONSULTA_TOTAL_GANADORES: "consulta_total_ganadores",
  AGENCIA: "agencia",
  BET: "bet",
  ECHO: "echo",
  EXIT: "exit",
  // Both.
  CONFIG_WARNING: "config_warning",
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

const pad2 = (n: number): string => n < 10 ? `0${n}` : String(n);

// `YYYY-MM-DD HH:MM:SS` in local time, as Python's `%(asctime)s` without milliseconds; the
// last one is kept, since lines come by the thousand per second.
let stampSecond = NaN;
let stamp = "";

function stampOf(ms: number): string {
  const second = Math.floor(ms / 1000);
  if (second === stampSecond) return stamp;
  const date = new Date(ms);
  stampSecond = second;
  stamp = `${date.getFullYear()}-${pad2(date.getMonth() + 1)}-${pad2(date.getDate())} ` +
    `${pad2(date.getHours())}:${pad2(date.getMinutes())}:${pad2(date.getSeconds())}`;
  return stamp;
}

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

/** The lowest level printed (an index into {@linkcode LOG_LEVELS}); nothing before setup. */
let lowest: number = LOG_LEVELS.length;
let writer: (line: string) => void = toStdout;

/**
 * Configures logging for the whole process (nothing is printed before): lines at or above
 * `level` go to `write`, by default stdout, the lines of one event-loop turn in one write.
 */
export function setupLogging(level: LogLevelName, write: (line: string) => void = toStdout): void {
  lowest = LOG_LEVELS.indexOf(level);
  writer = write;
}

/** Logs one course-format action line. */
export type LogMethod = (action: LogAction, result: ActionResult, fields?: LogFields) => void;

/** Logs course-format action lines, one method per level. */
export type ActionLogger = Readonly<
  Record<"debug" | "info" | "warning" | "error" | "critical", LogMethod>
>;

function logAt(level: number): LogMethod {
  const name = LOG_LEVELS[level]!.padEnd(8);
  return (action, result, fields) => {
    if (level < lowest) return;
    writer(`${stampOf(Date.now())} ${name} ${formatAction(action, result, fields)}`);
    // A warning or an error may precede a crash: it goes out at once.
    if (level >= 2) flush();
  };
}

/** The process's logger, as {@linkcode setupLogging} configured it. */
export const actionLogger: ActionLogger = {
  debug: logAt(0),
  info: logAt(1),
  warning: logAt(2),
  error: logAt(3),
  critical: logAt(4),
};
