/**
 * The server's hot path: a BATCH body (the agency's CSV lines) straight to validated
 * `bets.csv` rows, reading fields as bytes instead of building a bet object and five
 * strings per bet. A valid unquoted line is already its row but for the agency in front,
 * the number's leading zeros and the CRLF ending.
 *
 * The fast path only ever says "all valid"; at the first doubt (a quote, a byte outside printable
 * ASCII that fails the full name check, a bad field, a short body) it hands the whole body to the
 * reference path — `decodeMessage`, `betProblem`, `formatBetRows` — which produces the exact error.
 * Tests check both paths give the same rows and the same errors.
 *
 * @module
 */
import { CR, LF } from "../shared/bytes.ts";
import {
  betProblem,
  dayNumber,
  isValidBirthday,
  nameProblem,
  WINNING_NUMBER,
} from "../shared/bet.ts";
import { InvalidBetError } from "../shared/errors.ts";
import {
  BATCH_BODY,
  type BatchHeader,
  decodeMessage,
  MessageType,
  readBatchHeader,
} from "../shared/protocol/mod.ts";
import { type BetRows, betRows } from "./bets_csv.ts";

const COMMA = 0x2c;
const QUOTE = 0x22;
const SPACE = 0x20;
const DASH = 0x2d;
const ZERO = 0x30;
const utf8 = new TextEncoder();

/** Keeps a leading BOM, as the reference path does for a name that is not the batch's first. */
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * The careful check of a name that is not plain (a quote aside): decoded and judged by
 * the domain's own rule, so it agrees with the reference path by construction.
 */
function nameOk(body: Uint8Array, start: number, end: number): boolean {
  // A BOM opening the batch's text is dropped by the decoder: the reference path decides.
  if (body[start] === 0xef && body[start + 1] === 0xbb && body[start + 2] === 0xbf) return false;
  try {
    return nameProblem("name", strictUtf8.decode(body.subarray(start, end))) === undefined;
  } catch {
    return false;
  }
}

/**
 * Where a name field starting at `start` ends (at its comma) when it is as nearly every
 * name is: printable ASCII and two-byte UTF-8 characters (á, ñ, ü…), no quote, at least
 * one visible character, at most 64 UTF-16 units; -1 to check it the careful way.
 */
function plainNameEnd(buf: Uint8Array, start: number, end: number): number {
  let twoByte = 0;
  for (let i = start; i < end; i++) {
    const byte = buf[i]!;
    // Printable ASCII from "-" on (letters, digits, most punctuation) in one test; then
    // space and the rest below the comma but the quote; then á, ñ, ü and the like.
    if (byte >= 0x2d && byte < 0x7f) continue;
    if (byte === COMMA) {
      return i - start - twoByte <= 64 && hasVisible(buf, start, i) ? i : -1;
    }
    if (byte >= SPACE && byte < COMMA && byte !== QUOTE) continue;
    if (byte < 0xc2 || byte > 0xdf || i + 1 >= end) return -1;
    // A two-byte character is one UTF-16 unit.
    const tail = buf[++i]!;
    if (tail < 0x80 || tail > 0xbf) return -1;
    twoByte++;
  }
  return -1;
}

/** Whether `buf[start, end)` has a visible ASCII character (so it is not blank). */
function hasVisible(buf: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    if (buf[i]! > SPACE && buf[i]! < 0x7f) return true;
  }
  return false;
}

/**
 * Where a valid name field ends (at its comma); -1 when the name is invalid or quoted,
 * or the line ends first (the reference path then has the last word).
 */
function nameEnd(buf: Uint8Array, start: number, end: number): number {
  const plain = plainNameEnd(buf, start, end);
  if (plain >= 0) return plain;
  let i = start;
  for (; i < end && buf[i] !== COMMA; i++) {
    if (buf[i] === QUOTE || buf[i] === LF) return -1;
  }
  return i < end && nameOk(buf, start, i) ? i : -1;
}

/** Where the 1 to `max` ASCII digits from `start` end, or -1 when there are none or more. */
function digitsEnd(buf: Uint8Array, start: number, end: number, max: number): number {
  let i = start;
  while (i < end && buf[i]! >= ZERO && buf[i]! <= ZERO + 9) i++;
  return i > start && i - start <= max ? i : -1;
}

function digitsValue(body: Uint8Array, start: number, end: number): number {
  let value = 0;
  for (let i = start; i < end; i++) {
    const digit = body[i]! - ZERO;
    if (digit < 0 || digit > 9) return -1;
    value = value * 10 + digit;
  }
  return value;
}

/** Two ASCII digits at `at` as a number, or -1. */
function twoDigits(buf: Uint8Array, at: number): number {
  const tens = buf[at]! - ZERO;
  const ones = buf[at + 1]! - ZERO;
  return tens >= 0 && tens <= 9 && ones >= 0 && ones <= 9 ? tens * 10 + ones : -1;
}

function dateOk(buf: Uint8Array, start: number, today: number): boolean {
  if (buf[start + 4] !== DASH || buf[start + 7] !== DASH) return false;
  const century = twoDigits(buf, start);
  const years = twoDigits(buf, start + 2);
  const month = twoDigits(buf, start + 5);
  const day = twoDigits(buf, start + 8);
  if (century < 0 || years < 0 || month < 0 || day < 0) return false;
  const year = century * 100 + years;
  // Days 1-28 exist in every month; only later days need the calendar.
  if (day >= 1 && day <= 28 && month >= 1 && month <= 12 && year >= 1900) {
    return year * 10000 + month * 100 + day <= today;
  }
  return isValidBirthday(year, month, day, today);
}

function writeNumber(out: Uint8Array, pos: number, value: number): number {
  if (value >= 1000) out[pos++] = ZERO + Math.floor(value / 1000);
  if (value >= 100) out[pos++] = ZERO + Math.floor(value / 100) % 10;
  if (value >= 10) out[pos++] = ZERO + Math.floor(value / 10) % 10;
  out[pos++] = ZERO + value % 10;
  return pos;
}

/** Whether the digits `buf[start, end)` are not all zeros. */
function nonZero(buf: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (buf[i] !== ZERO) return true;
  return false;
}

const WINNING_DIGITS = utf8.encode(String(WINNING_NUMBER));

/** Whether the digits `buf[start, end)`, without leading zeros, are the winning number. */
function isWinning(buf: Uint8Array, start: number, end: number): boolean {
  if (end - start !== WINNING_DIGITS.length) return false;
  for (let i = 0; i < WINNING_DIGITS.length; i++) {
    if (buf[start + i] !== WINNING_DIGITS[i]) return false;
  }
  return true;
}

let scratchBuffer = new Uint8Array(64 * 1024);

/** A reused output buffer: rows are copied out by the store before the next batch. */
function scratch(size: number): Uint8Array {
  if (scratchBuffer.length < size) scratchBuffer = new Uint8Array(size);
  return scratchBuffer;
}

/** `"{agency},"` as bytes, per agency. */
const prefixes = new Map<number, Uint8Array>();

function agencyPrefix(agency: number): Uint8Array {
  let prefix = prefixes.get(agency);
  if (prefix === undefined) {
    prefix = utf8.encode(`${agency},`);
    prefixes.set(agency, prefix);
  }
  return prefix;
}

/**
 * The fast path; `undefined` means "let the reference path decide". The lines are
 * copied once into the tail of the output buffer, checked there, and each row is built
 * in front of them: the agency, the line moved up with `copyWithin` (a native move, no
 * allocation), the number without leading zeros, CRLF. Rows never overtake the lines
 * not yet read, as each row outgrows its line by at most the prefix and one byte.
 */
function fastRows(body: Uint8Array, header: BatchHeader, today: number): BetRows | undefined {
  const prefix = agencyPrefix(header.agency);
  const stage = header.count * (prefix.length + 1);
  const end = stage + body.length - BATCH_BODY.lines;
  const out = scratch(end);
  out.set(body.subarray(BATCH_BODY.lines), stage);
  let pos = 0;
  let at = stage;
  let winners = 0;
  for (let n = 0; n < header.count; n++) {
    const lineStart = at;
    const first = nameEnd(out, at, end);
    if (first < 0) return undefined;
    const last = nameEnd(out, first + 1, end);
    if (last < 0) return undefined;
    const documentEnd = digitsEnd(out, last + 1, end, 8);
    if (documentEnd < 0 || out[documentEnd] !== COMMA || !nonZero(out, last + 1, documentEnd)) {
      return undefined;
    }
    const dateAt = documentEnd + 1;
    if (dateAt + 10 >= end || out[dateAt + 10] !== COMMA || !dateOk(out, dateAt, today)) {
      return undefined;
    }
    const numberAt = dateAt + 11;
    const numberEnd = digitsEnd(out, numberAt, end, 4);
    if (numberEnd < 0) return undefined;
    at = numberEnd;
    if (at < end && out[at] === CR) at++;
    if (at >= end || out[at] !== LF) return undefined;
    at++;
    for (let k = 0; k < prefix.length; k++) out[pos++] = prefix[k]!;
    if (out[numberAt] !== ZERO || numberEnd - numberAt === 1) {
      // The usual number, written without leading zeros: it moves with its line.
      if (isWinning(out, numberAt, numberEnd)) winners++;
      out.copyWithin(pos, lineStart, numberEnd);
      pos += numberEnd - lineStart;
    } else {
      const number = digitsValue(out, numberAt, numberEnd);
      if (number === WINNING_NUMBER) winners++;
      out.copyWithin(pos, lineStart, numberAt);
      pos = writeNumber(out, pos + numberAt - lineStart, number);
    }
    out[pos++] = CR;
    out[pos++] = LF;
  }
  if (at !== end) return undefined;
  return { count: header.count, winners, rows: out.subarray(0, pos) };
}

/** Whose clock a refused birthdate names: the agency reads the reason in its own log. */
export const SERVER_CLOCK = "the server's";

/**
 * The reference path from a BATCH body to rows: decode, validate, format with csv-stringify.
 *
 * @throws {ProtocolError} `MALFORMED` for a bad body; `INVALID_BET` for the first bad bet.
 */
export function referenceRows(body: Uint8Array, today: Date = new Date()): BetRows {
  const message = decodeMessage(MessageType.BATCH, body);
  if (message.type !== MessageType.BATCH) throw new TypeError("Expected a batch");
  const { bets } = message;
  for (let i = 0; i < bets.length; i++) {
    const problem = betProblem(bets[i]!, { today, clock: SERVER_CLOCK });
    if (problem !== undefined) {
      throw new InvalidBetError(`Invalid bet ${i + 1} of ${bets.length}: ${problem}`);
    }
  }
  return betRows(message.agency, bets);
}

/**
 * Validates a BATCH body (whose `header` the caller may have read) and turns it into
 * `bets.csv` rows, birthdates valid up to `today`; `rows` may be a view of a reused
 * buffer, valid until the next call.
 *
 * @throws {ProtocolError} `MALFORMED` for a bad body; `INVALID_BET` for the first bad bet.
 */
export function batchRows(
  body: Uint8Array,
  header: BatchHeader = readBatchHeader(body),
  today: Date = new Date(),
): BetRows {
  return fastRows(body, header, dayNumber(today)) ?? referenceRows(body, today);
}
