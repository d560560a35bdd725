/**
 * The domain errors of the lottery system, each with a stable code that travels in protocol error
 * frames and in log lines. Built-in errors (`TypeError`, `RangeError`, `SyntaxError`) are used
 * where they carry the meaning; these classes are for the conditions callers branch on.
 *
 * @module
 */

/** Stable error codes: the numeric value goes on the wire, the name into logs. */
export const ErrorCode = {
  /** A frame or message could not be decoded. */
  MALFORMED: 1,
  /** A message type the receiver does not know or does not expect now. */
  UNEXPECTED_MESSAGE: 2,
  /** A bet failed validation; the whole batch was refused. */
  INVALID_BET: 3,
  /** The agency id is outside 1..N or does not match the session. */
  INVALID_AGENCY: 4,
  /** The draw already happened: no more bets are accepted. */
  DRAW_CLOSED: 5,
  /** A batch arrived out of order (sequence gap). */
  OUT_OF_ORDER: 6,
  /** The bets could not be stored. */
  STORAGE_FAILED: 7,
  /** The agency's secret is wrong or missing. */
  UNAUTHORIZED: 8,
  /** The server is shutting down. */
  SHUTTING_DOWN: 9,
  /** A configured limit (connections, frame size, idle time) was exceeded. */
  LIMIT_EXCEEDED: 10,
  /** Other bets under a sequence already stored: the agency's came from other data. */
  CONFLICT: 11,
} as const;

/** One of the numeric {@linkcode ErrorCode} values. */
export type ErrorCode = typeof ErrorCode[keyof typeof ErrorCode];

const CODE_NAMES: ReadonlyMap<number, string> = new Map(
  Object.entries(ErrorCode).map(([name, code]) => [code, name]),
);

/** The name of an error code, e.g. `INVALID_BET`; `UNKNOWN_<n>` for one this version lacks. */
export function errorCodeName(code: number): string {
  return CODE_NAMES.get(code) ?? `UNKNOWN_${code}`;
}

/** An error's message, or anything else thrown as text. */
export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The words for an OS error: the first of `reasons` whose class `error` is an instance of. */
export function osErrorReason(
  error: unknown,
  reasons: readonly (readonly [new (...args: never[]) => Error, string])[],
): string | undefined {
  return reasons.find(([kind]) => error instanceof kind)?.[1];
}

/** A `MALFORMED` {@linkcode ProtocolError}: `Cannot decode <what>: <detail>`. */
export function malformed(what: string, detail: string, options?: ErrorOptions): ProtocolError {
  return new ProtocolError(ErrorCode.MALFORMED, `Cannot decode ${what}: ${detail}`, options);
}

/** Configuration values are missing or invalid: one line per bad key, its source, what is due. */
export class ConfigError extends Error {
  /** One line per bad key. */
  readonly problems: readonly string[];

  /** The message joins the `problems` with `; `. */
  constructor(problems: readonly string[], options?: ErrorOptions) {
    super(problems.join("; "), options);
    this.name = "ConfigError";
    this.problems = problems;
  }
}

/** Options of {@linkcode ProtocolError}. */
export interface ProtocolErrorOptions extends ErrorOptions {
  /** When the peer said the request may succeed if tried again; 0 or absent = no hint. */
  readonly retryAfterMs?: number;
}

/**
 * What went wrong with the server's storage, in its own words (the session maps each to a
 * wire code): `unusable` (refused at start-up: locked, another draw's, not writable),
 * `damaged` (what is read is not what the journal says), `failed` (writing failed for good,
 * or the path no longer names the files opened: a restart is needed), `busy` (a failed write
 * is being undone), `notStored` (a batch was refused by a failed write), `conflict` (other
 * rows under a sequence stored), `closed`, and the agency rules the storage keeps:
 * `unknownAgency`, `excluded`, `outOfOrder`, `afterDone`.
 */
export type StorageErrorKind =
  | "unusable"
  | "damaged"
  | "failed"
  | "busy"
  | "notStored"
  | "conflict"
  | "closed"
  | "unknownAgency"
  | "excluded"
  | "outOfOrder"
  | "afterDone";

/** Options of {@linkcode StorageError}. */
export interface StorageErrorOptions extends ErrorOptions {
  /** What went wrong. @default "unusable" */
  readonly kind?: StorageErrorKind;
}

/**
 * The server's storage refused or failed something. Its message is one line without a `:`,
 * a log value: what was found, what was expected, how to proceed.
 */
export class StorageError extends Error {
  /** What went wrong. */
  readonly kind: StorageErrorKind;

  /** `path` is the storage's `bets.csv`. */
  constructor(readonly path: string, message: string, options?: StorageErrorOptions) {
    super(message, options);
    this.name = "StorageError";
    this.kind = options?.kind ?? "unusable";
  }
}

/** The peer broke the protocol, or answered with an error frame. */
export class ProtocolError extends Error {
  /** The peer's hint of when to try again (from its ERROR frame); 0 = none. */
  readonly retryAfterMs: number;

  /** `code` is the stable error code, on the wire and in the log. */
  constructor(readonly code: ErrorCode, message: string, options?: ProtocolErrorOptions) {
    super(message, options);
    this.name = "ProtocolError";
    this.retryAfterMs = options?.retryAfterMs ?? 0;
  }
}

/** The connection failed: refused, reset, closed mid-frame or timed out. */
export class ConnectionError extends Error {
  /** `options.cause` holds the underlying error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ConnectionError";
  }
}

/** A bet failed validation; the message says which field and what was expected. */
export class InvalidBetError extends ProtocolError {
  /** A `ProtocolError` with code `INVALID_BET`. */
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.INVALID_BET, message, options);
    this.name = "InvalidBetError";
  }
}
