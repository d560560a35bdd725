/**
 * The kinds of value a setting holds, each a {@linkcode ValueParser} that reads a raw file
 * scalar or env string and says what it expected when it cannot.
 *
 * @module
 */
import { type Duration, MAX_TIMER_MS, parseDuration } from "./duration.ts";
import { LOG_LEVELS, type LogLevelName } from "./log.ts";

/** Turns a raw value (file scalar or env string) into a typed one. */
export interface ValueParser<T> {
  /** What a valid value looks like, for error messages. */
  readonly expected: string;
  /** Returns the typed value, or `undefined` when the raw value is invalid. */
  readonly parse: (raw: unknown) => T | undefined;
  /** The value must never be printed (a secret): errors give its length instead. */
  readonly hidden?: boolean;
}

/** The most bytes of a secret: HELLO carries it after a one-byte length. */
export const MAX_SECRET_BYTES = 255;

/** The length of `text` in UTF-8 bytes. */
export function utf8Length(text: string): number {
  return new TextEncoder().encode(text).length;
}

/** A secret: text of at most {@linkcode MAX_SECRET_BYTES} UTF-8 bytes, never printed. */
export const secret: ValueParser<string> = {
  expected: `text of at most ${MAX_SECRET_BYTES} bytes (UTF-8)`,
  hidden: true,
  parse(raw) {
    const value = asText(raw);
    return value !== undefined && utf8Length(value) <= MAX_SECRET_BYTES ? value : undefined;
  },
};

function asText(raw: unknown): string | undefined {
  if (typeof raw === "string") return raw.trim();
  if (typeof raw === "number" || typeof raw === "bigint" || typeof raw === "boolean") {
    return String(raw);
  }
  return undefined;
}

/** A whole number within `[min, max]`. */
export function integer(min: number, max: number): ValueParser<number> {
  return {
    expected: `a whole number from ${min} to ${max}`,
    parse(raw) {
      const text = asText(raw);
      if (text === undefined || !/^-?\d+$/.test(text)) return undefined;
      const n = Number(text);
      return n >= min && n <= max ? n : undefined;
    },
  };
}

/** A Go-style duration such as `100ms`, `5s` or `1m30s`, of any length. */
export const duration: ValueParser<Duration> = {
  expected: 'a duration such as "100ms", "5s" or "1m30s"',
  parse(raw) {
    const text = asText(raw);
    if (text === undefined) return undefined;
    try {
      return parseDuration(text);
    } catch {
      return undefined;
    }
  },
};

/**
 * A Go-style duration from `min` to `max` (written as durations, e.g. `"10ms"`, `"576h"`),
 * or `0` when `zero` says what 0 means (e.g. `"no timeout"`); otherwise 0 is refused.
 * `max` may not exceed {@linkcode MAX_TIMER_MS}: a longer timer fires at once.
 */
export function durationIn(min: string, max: string, zero?: string): ValueParser<Duration> {
  const low = parseDuration(min).ms;
  const high = parseDuration(max).ms;
  if (high > MAX_TIMER_MS || low <= 0 || low > high) {
    throw new RangeError(`Cannot bound durations: ${min} to ${max} is not within 0 and 2^31-1 ms`);
  }
  return {
    expected: `a duration such as "100ms", "5s" or "1m30s" from ${min} to ${max}` +
      (zero === undefined ? "" : `, or 0 for ${zero}`),
    parse(raw) {
      const value = duration.parse(raw);
      if (value === undefined) return undefined;
      if (value.ms === 0) return zero === undefined ? undefined : value;
      return value.ms >= low && value.ms <= high ? value : undefined;
    },
  };
}

/** A log level name, case-insensitive; `WARN` is read as `WARNING`. */
export const logLevel: ValueParser<LogLevelName> = {
  expected: `one of ${LOG_LEVELS.join(", ")}`,
  parse(raw) {
    const text = asText(raw)?.toUpperCase();
    const name = text === "WARN" ? "WARNING" : text;
    return LOG_LEVELS.find((level) => level === name);
  },
};

/** One of a fixed set of words, case-insensitive. */
export function oneOf<const T extends string>(choices: readonly T[]): ValueParser<T> {
  return {
    expected: `one of ${choices.join(", ")}`,
    parse(raw) {
      const text = asText(raw)?.toLowerCase();
      return choices.find((choice) => choice === text);
    },
  };
}

/** Non-empty text of at most `maxLength` characters, trimmed. */
export function text(maxLength = 4096): ValueParser<string> {
  return {
    expected: `non-empty text of at most ${maxLength} characters`,
    parse(raw) {
      const value = asText(raw);
      return value && value.length <= maxLength ? value : undefined;
    },
  };
}

/** A network address and port, with the text it was written as (for logs). */
export interface HostPort {
  readonly hostname: string;
  readonly port: number;
  readonly text: string;
}

/** `host:port`, e.g. `server:12345`. */
export const hostPort: ValueParser<HostPort> = {
  expected: 'an address "host:port" with a port from 1 to 65535',
  parse(raw) {
    const value = asText(raw);
    const match = value?.match(/^\[?([^\s\]]+?)\]?:(\d{1,5})$/);
    if (!match) return undefined;
    const port = Number(match[2]);
    if (port < 1 || port > 65535) return undefined;
    return { hostname: match[1]!, port, text: value! };
  },
};
