/**
 * Go-style durations (`50ms`, `5s`, `1m30s`), kept with the text they were written as so
 * logs print them back exactly.
 *
 * @module
 */

/** A duration in milliseconds together with how it was written. */
export interface Duration {
  /** The length in milliseconds (may be fractional for ns/µs units). */
  readonly ms: number;
  /** The text it was parsed from, or Go's canonical form when built from a number. */
  readonly text: string;
}

const UNIT_MS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  "µs": 1e-3,
  "μs": 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

const WHOLE =
  /^(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h)(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))*$/;
const PART = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g;

/**
 * Parses a Go duration string. `0` alone is accepted, as in Go; negative durations are not.
 *
 * @param text E.g. `100ms` or `1m30s`.
 * @returns The duration, keeping `text`.
 * @throws {SyntaxError} If the text is not a Go duration.
 *
 * @example Usage
 * ```ts
 * parseDuration("1m30s").ms; // 90000
 * ```
 */
export function parseDuration(text: string): Duration {
  const trimmed = text.trim();
  if (trimmed === "0") return { ms: 0, text: trimmed };
  if (!WHOLE.test(trimmed)) {
    throw new SyntaxError(`Cannot parse duration "${text}": expected e.g. "50ms", "5s", "1m30s"`);
  }
  let ms = 0;
  for (const [, amount, unit] of trimmed.matchAll(PART)) {
    ms += Number(amount) * (UNIT_MS[unit!] ?? 0);
  }
  return { ms, text: trimmed };
}

/**
 * Formats milliseconds the way Go's `time.Duration.String()` does for whole
 * milliseconds: `50ms`, `5s`, `1m30s`, `1h0m0s`, `0s`.
 *
 * @param ms A non-negative number of milliseconds.
 * @returns The Go-style text.
 */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0s";
  if (ms < 1000) return `${trimNumber(ms)}ms`;
  const hours = Math.floor(ms / 3_600_000);
  const minutes = Math.floor((ms % 3_600_000) / 60_000);
  const seconds = (ms % 60_000) / 1000;
  if (hours > 0) return `${hours}h${minutes}m${trimNumber(seconds)}s`;
  if (minutes > 0) return `${minutes}m${trimNumber(seconds)}s`;
  return `${trimNumber(seconds)}s`;
}

function trimNumber(n: number): string {
  return String(Number(n.toFixed(9)));
}

/**
 * Builds a {@linkcode Duration} from milliseconds, with Go's canonical text.
 *
 * @param ms The length in milliseconds.
 * @returns The duration.
 */
export function durationOf(ms: number): Duration {
  return { ms, text: formatDuration(ms) };
}
