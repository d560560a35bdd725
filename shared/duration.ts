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
  /** The text it was parsed from. */
  readonly text: string;
}

/**
 * The longest delay a timer keeps (2³¹−1 ms, about 24.8 days): `setTimeout` and
 * `AbortSignal.timeout` fire a longer one after about 1 ms.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The longest duration a setting accepts: 24 days, a round figure under
 * {@linkcode MAX_TIMER_MS}.
 */
export const MAX_SETTING_DURATION = "576h";

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

const PART = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g;
const WHOLE = new RegExp(`^(?:${PART.source})+$`);

/**
 * Parses a Go duration such as `100ms` or `1m30s` (or `0`; nothing negative), keeping its text.
 *
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
