/**
 * One agency file, generated in memory: `first_name,last_name,document,birthdate,number`
 * rows, no header, CRLF line endings, UTF-8, with an exact number of winning rows. Pure:
 * the bytes depend only on the options, never on the machine or the clock.
 *
 * @module
 */
import { WINNING_NUMBER } from "../../shared/bet.ts";
import { mulberry32 } from "../../testing/random.ts";
import { UsageError } from "../_cli.ts";
import { COMPOUND_NAMES, FEMALE_NAMES, LAST_NAMES, MALE_NAMES } from "./names.ts";
import { below, createDniPermutation, DNI_COUNT, mix32 } from "./random.ts";

/** Defaults of the generator and of `generate`/`ensure`. */
export const DATASET_DEFAULTS = {
  /** Where agency files live. */
  dir: ".data",
  /** Number of agency files. */
  agencies: 5,
  /** Rows in each file. */
  betsPerAgency: 20_000,
  /** PRNG seed. */
  seed: 42,
  /** Share of rows whose number is the winning number, 7574. */
  winnerShare: 0.001,
} as const;

/**
 * Checks that an option is a number in a range (a whole one unless `whole` is false).
 *
 * @param name The option, as the message names it (e.g. `bets per agency`).
 * @param value The value.
 * @param range The smallest and largest allowed values.
 * @param whole Whether it must be a whole number.
 * @throws {UsageError} If the value is out of range.
 */
export function checkOption(
  name: string,
  value: number,
  range: [number, number],
  whole = true,
): void {
  if (!(value >= range[0] && value <= range[1]) || (whole && !Number.isSafeInteger(value))) {
    throw new UsageError(
      `Cannot generate dataset: ${name} must be a ${whole ? "whole " : ""}number from ${
        range[0]
      } to ${range[1]}, got ${value}`,
    );
  }
}

const encoder = new TextEncoder();

function encodeAll(names: readonly string[]): Uint8Array[] {
  return names.map((name) => encoder.encode(name));
}

const MALE_BYTES = encodeAll(MALE_NAMES);
const FEMALE_BYTES = encodeAll(FEMALE_NAMES);
const COMPOUND_BYTES = encodeAll(COMPOUND_NAMES);
const LAST_BYTES = encodeAll(LAST_NAMES);

function longest(pool: readonly Uint8Array[]): number {
  return Math.max(...pool.map((bytes) => bytes.length));
}

/** An upper bound of one row's bytes: two first names, a last name, 8+10+4 digits, 4 commas, CRLF. */
const MAX_ROW_BYTES = Math.max(
  2 * Math.max(longest(MALE_BYTES), longest(FEMALE_BYTES)) + 1,
  longest(COMPOUND_BYTES),
) + longest(LAST_BYTES) + 8 + 10 + 4 + 4 + 2;

const BYTE = { COMMA: 0x2c, SPACE: 0x20, DASH: 0x2d, ZERO: 0x30, CR: 0x0d, LF: 0x0a } as const;

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/** Options of {@linkcode generateAgencyCsv}. */
export interface AgencyCsvOptions {
  /** The agency number, from 1. */
  readonly agency: number;
  /** How many rows to write. */
  readonly rows: number;
  /**
   * The dataset seed; each agency derives its own stream from it.
   *
   * @default {42}
   */
  readonly seed?: number;
  /**
   * Share of rows whose number is 7574; exactly `Math.round(rows * winnerShare)` rows win.
   *
   * @default {0.001}
   */
  readonly winnerShare?: number;
  /**
   * Index of this file's first row in the whole dataset; DNIs are unique across
   * indexes, so files of one dataset must use disjoint ranges.
   *
   * @default {(agency - 1) * rows}
   */
  readonly firstIndex?: number;
}

/** One generated agency file. */
export interface AgencyCsv {
  /** The file's bytes: UTF-8, CRLF lines, no header. */
  readonly bytes: Uint8Array;
  /** Number of rows. */
  readonly rows: number;
  /** Number of rows whose number is 7574. */
  readonly winners: number;
}

/**
 * Generates one agency file in memory, deterministically from the seed and agency.
 *
 * @param options Agency, row count, seed and winner share.
 * @returns The bytes and what they contain.
 * @throws {UsageError} If an option is out of range.
 *
 * @example Usage
 * ```ts
 * const { bytes, winners } = generateAgencyCsv({ agency: 1, rows: 1000, seed: 42 });
 * // winners === 1; bytes start with e.g. "Santiago Lionel,Lorca,30904465,1999-03-17,2201\r\n"
 * ```
 */
export function generateAgencyCsv(options: AgencyCsvOptions): AgencyCsv {
  const { agency, rows } = options;
  const seed = options.seed ?? DATASET_DEFAULTS.seed;
  const winnerShare = options.winnerShare ?? DATASET_DEFAULTS.winnerShare;
  const firstIndex = options.firstIndex ?? (agency - 1) * rows;
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
    const dni = dniOf(firstIndex + row);
    out.digits(dni, 8);
    out.byte(BYTE.COMMA);
    writeBirthdate(out, random);
    out.byte(BYTE.COMMA);
    let number: number;
    if (wins[row]) {
      number = WINNING_NUMBER;
    } else {
      number = below(random, 9999);
      if (number >= WINNING_NUMBER) number++;
    }
    out.digits(number, number < 10 ? 1 : number < 100 ? 2 : number < 1000 ? 3 : 4);
    out.byte(BYTE.CR);
    out.byte(BYTE.LF);
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
