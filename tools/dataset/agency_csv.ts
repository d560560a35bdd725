/**
 * One agency file, generated in memory: `first_name,last_name,document,birthdate,number`
 * rows, no header, CRLF line endings, UTF-8, with an exact number of winning rows. Pure:
 * the bytes depend only on the options, never on the machine or the clock.
 *
 * @module
 */
import { WINNING_NUMBER } from "../../shared/bet.ts";
import { CR, LF } from "../../shared/bytes.ts";
import { mulberry32 } from "../../testing/random.ts";
import { UsageError } from "../_cli.ts";
import { COMPOUND_NAMES, FEMALE_NAMES, LAST_NAMES, MALE_NAMES } from "./names.ts";
import { below, createDniPermutation, DNI_COUNT, mix32 } from "./random.ts";

/**
 * Defaults of the generator, of `generate` and of the demo's data: the folder, the number
 * of agency files, rows in each, the PRNG seed, and the share of rows that play 7574.
 */
export const DATASET_DEFAULTS = {
  dir: ".data",
  agencies: 5,
  betsPerAgency: 20_000,
  seed: 42,
  winnerShare: 0.001,
} as const;

/**
 * Checks that an option, named as the message names it (`bets per agency`), is a number
 * in a range (a whole one unless `whole` is false).
 *
 * @throws {UsageError} If the value is out of range.
 */
export function checkOption(
  name: string,
  value: number,
  [min, max]: [number, number],
  whole = true,
): void {
  if (!(value >= min && value <= max) || (whole && !Number.isSafeInteger(value))) {
    const what = `${whole ? "whole " : ""}number from ${min} to ${max}`;
    throw new UsageError(`Cannot generate dataset: ${name} must be a ${what}, got ${value}`);
  }
}

const encode = (names: readonly string[]) => names.map((name) => new TextEncoder().encode(name));
const MALE_BYTES = encode(MALE_NAMES);
const FEMALE_BYTES = encode(FEMALE_NAMES);
const COMPOUND_BYTES = encode(COMPOUND_NAMES);
const LAST_BYTES = encode(LAST_NAMES);
const longest = (pool: readonly Uint8Array[]) => Math.max(...pool.map((bytes) => bytes.length));

/** An upper bound of a row's bytes: two first names, a last name, 22 digits, 4 commas, CRLF. */
const MAX_ROW_BYTES = 2 * longest([...MALE_BYTES, ...FEMALE_BYTES, ...COMPOUND_BYTES]) + 1 +
  longest(LAST_BYTES) + 8 + 10 + 4 + 4 + 2;

const BYTE = { COMMA: 0x2c, SPACE: 0x20, DASH: 0x2d, ZERO: 0x30 } as const;

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/** Options of {@linkcode generateAgencyCsv}: the agency (from 1), its rows, seed and share. */
export interface AgencyCsvOptions {
  readonly agency: number;
  readonly rows: number;
  /** The dataset seed; each agency derives its own stream from it. @default {42} */
  readonly seed?: number;
  /** Exactly `Math.round(rows * winnerShare)` rows play 7574. @default {0.001} */
  readonly winnerShare?: number;
}

/** One generated agency file: its bytes (UTF-8, CRLF lines, no header), rows and winners. */
export interface AgencyCsv {
  readonly bytes: Uint8Array;
  readonly rows: number;
  readonly winners: number;
}

/**
 * Generates one agency file in memory, deterministically from the seed and agency.
 *
 * @throws {UsageError} If an option is out of range.
 *
 * @example Usage
 * ```ts
 * const { bytes, winners } = generateAgencyCsv({ agency: 1, rows: 1000, seed: 42 });
 * // winners === 1; bytes start with e.g. "Santiago Lionel,Lorca,30904465,1999-03-17,2201\r\n"
 * ```
 */
export function generateAgencyCsv(options: AgencyCsvOptions): AgencyCsv {
  const { agency, rows, seed = DATASET_DEFAULTS.seed } = options;
  const { winnerShare = DATASET_DEFAULTS.winnerShare } = options;
  // DNIs are unique across a dataset's row indexes: each agency's file takes its own range.
  const firstIndex = (agency - 1) * rows;
  checkOption("agency", agency, [1, 10_000]);
  checkOption("rows", rows, [0, 10_000_000]);
  checkOption("seed", seed, [0, 0xffff_ffff]);
  checkOption("winner share", winnerShare, [0, 1], false);
  checkOption("first index", firstIndex, [0, DNI_COUNT - rows]);
  const random = mulberry32(mix32(seed ^ mix32(agency)));
  const dniOf = createDniPermutation(seed);
  const winners = Math.round(rows * winnerShare);
  const wins = pickWinningRows(random, rows, winners);

  // The order of the `random()` calls below is part of the output: changing it changes
  // every file (the pinned hashes in agency_csv_test.ts catch that).
  const out = new RowWriter(rows * MAX_ROW_BYTES);
  for (let row = 0; row < rows; row++) {
    writeFirstName(out, random);
    out.byte(BYTE.COMMA);
    out.put(LAST_BYTES[below(random, LAST_BYTES.length)]!);
    out.byte(BYTE.COMMA);
    out.digits(dniOf(firstIndex + row), 8);
    out.byte(BYTE.COMMA);
    writeBirthdate(out, random);
    out.byte(BYTE.COMMA);
    // A losing row draws any number but the winning one.
    let number = wins[row] ? WINNING_NUMBER : below(random, 9999);
    if (!wins[row] && number >= WINNING_NUMBER) number++;
    out.digits(number, number < 10 ? 1 : number < 100 ? 2 : number < 1000 ? 3 : 4);
    out.byte(CR);
    out.byte(LF);
  }
  return { bytes: out.bytes(), rows, winners };
}

/** Exactly `winners` distinct winning positions among `rows`, by Floyd's sampling. */
function pickWinningRows(random: () => number, rows: number, winners: number): Uint8Array {
  const wins = new Uint8Array(rows);
  for (let j = rows - winners; j < rows; j++) {
    const t = below(random, j + 1);
    if (wins[t]) wins[j] = 1;
    else wins[t] = 1;
  }
  return wins;
}

/** First name: one name (40%), two of one gender (55%), or a compound one (5%). */
function writeFirstName(out: RowWriter, random: () => number): void {
  const shape = below(random, 100);
  if (shape < 5) {
    out.put(COMPOUND_BYTES[below(random, COMPOUND_BYTES.length)]!);
    return;
  }
  const pool = below(random, 2) === 0 ? MALE_BYTES : FEMALE_BYTES;
  const first = below(random, pool.length);
  out.put(pool[first]!);
  if (shape >= 45) {
    let second = below(random, pool.length - 1);
    if (second >= first) second++;
    out.byte(BYTE.SPACE);
    out.put(pool[second]!);
  }
}

/** A valid `YYYY-MM-DD` from 1930 to 2005. */
function writeBirthdate(out: RowWriter, random: () => number): void {
  const year = 1930 + below(random, 76);
  const month = 1 + below(random, 12);
  const day = 1 + below(random, daysInMonth(year, month));
  out.digits(year, 4);
  out.byte(BYTE.DASH);
  out.digits(month, 2);
  out.byte(BYTE.DASH);
  out.digits(day, 2);
}

/** Appends bytes to a buffer sized for the whole file, so no row is copied twice. */
class RowWriter {
  readonly #out: Uint8Array;
  #pos = 0;

  constructor(capacity: number) {
    this.#out = new Uint8Array(capacity);
  }

  byte(value: number): void {
    this.#out[this.#pos++] = value;
  }

  put(bytes: Uint8Array): void {
    for (let i = 0; i < bytes.length; i++) this.#out[this.#pos++] = bytes[i]!;
  }

  /** Writes `value` as exactly `width` decimal digits, zero-padded. */
  digits(value: number, width: number): void {
    for (let i = width - 1; i >= 0; i--) {
      this.#out[this.#pos + i] = BYTE.ZERO + (value % 10);
      value = Math.floor(value / 10);
    }
    this.#pos += width;
  }

  /** The bytes written so far (a view, not a copy). */
  bytes(): Uint8Array {
    return this.#out.subarray(0, this.#pos);
  }
}
