/**
 * The domain model: a bet, its validation, and the course's `hasWon`. Knows nothing of
 * bytes or sockets.
 *
 * @module
 */

/** The number that wins the draw (the course's `LOTTERY_WINNER_NUMBER`). */
export const WINNING_NUMBER = 7574;

/** The longest first or last name accepted, in characters. */
export const MAX_NAME_LENGTH = 64;

/** A bet as the agency reads it from its CSV (no agency yet). */
export interface BetFields {
  /** First name(s), e.g. `Santiago Lionel`. */
  readonly firstName: string;
  /** Last name(s). */
  readonly lastName: string;
  /** The DNI as written: 1 to 8 digits. */
  readonly document: string;
  /** `YYYY-MM-DD`. */
  readonly birthdate: string;
  /** The number played, 0 to 9999. */
  readonly number: number;
}

/** A bet placed at an agency. */
export interface Bet extends BetFields {
  /** The agency id, 1..N. */
  readonly agency: number;
}

/** The course's `has_won`: whether a bet plays the winning number. */
export function hasWon(bet: Pick<BetFields, "number">): boolean {
  return bet.number === WINNING_NUMBER;
}

const DOCUMENT = /^[0-9]{1,8}$/;
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
// Control characters would corrupt logs and CSV rows; commas and quotes are quoted instead.
// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;
const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * A first or last name's problem (`field` names it), or `undefined` when it is valid:
 * non-blank, at most {@linkcode MAX_NAME_LENGTH} characters, no control characters.
 */
export function nameProblem(field: string, value: string): string | undefined {
  if (value.trim().length === 0) return `${field} is empty`;
  if (value.length > MAX_NAME_LENGTH) {
    return `${field} has ${value.length} characters, the maximum is ${MAX_NAME_LENGTH}`;
  }
  if (CONTROL.test(value)) return `${field} contains a control character`;
  return undefined;
}

/** Whether `text` is a real calendar date `YYYY-MM-DD` between 1900-01-01 and `today`. */
export function isValidBirthdate(text: string, today: Date = new Date()): boolean {
  const match = DATE.exec(text);
  if (!match) return false;
  return isValidBirthday(Number(match[1]), Number(match[2]), Number(match[3]), dayNumber(today));
}

/** A date as one comparable number, `year * 10000 + month * 100 + day` (UTC), e.g. `20261122`. */
export function dayNumber(date: Date): number {
  return date.getUTCFullYear() * 10000 + (date.getUTCMonth() + 1) * 100 + date.getUTCDate();
}

/** Whether year/month/day is a real date from 1900-01-01 to `today` (a {@linkcode dayNumber}). */
export function isValidBirthday(year: number, month: number, day: number, today: number): boolean {
  if (year < 1900 || month < 1 || month > 12 || day < 1) return false;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const daysInMonth = month === 2 ? (leap ? 29 : 28) : DAYS_IN_MONTH[month - 1]!;
  return day <= daysInMonth && year * 10000 + month * 100 + day <= today;
}

/** Whose clock says what day it is, for {@linkcode betProblem}. */
export interface BetCheckOptions {
  /** Today (the latest valid birthdate): now unless given. */
  readonly today?: Date;
  /** Whose clock `today` comes from, as a possessive, e.g. `"the server's"`: `"this machine's"`. */
  readonly clock?: string;
}

/**
 * A bet's first problem, naming the field and what was expected; `undefined` when valid. A
 * birthdate after today says today's date and whose clock it is, as a wrong clock is the usual
 * cause.
 */
export function betProblem(bet: BetFields, options: BetCheckOptions = {}): string | undefined {
  const today = options.today ?? new Date();
  return nameProblem("first name", bet.firstName) ??
    nameProblem("last name", bet.lastName) ??
    (DOCUMENT.test(bet.document) && Number(bet.document) > 0
      ? undefined
      : `document "${bet.document}" is not a DNI of 1 to 8 digits`) ??
    (isValidBirthdate(bet.birthdate, today)
      ? undefined
      : isValidBirthdate(bet.birthdate, new Date(Date.UTC(9999, 11, 31)))
      ? `birthdate "${bet.birthdate}" is after ${options.clock ?? "this machine's"} date ${
        today.toISOString().slice(0, 10)
      }`
      : `birthdate "${bet.birthdate}" is not a valid date YYYY-MM-DD from 1900 to today`) ??
    (Number.isInteger(bet.number) && bet.number >= 0 && bet.number <= 9999
      ? undefined
      : `number ${bet.number} is outside 0-9999`);
}
