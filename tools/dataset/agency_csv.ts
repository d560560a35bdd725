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
  const lines: string[] = [];
  for (let row = 0; row < rows; row++) {
    const first = firstName(random);
    const last = LAST_NAMES[below(random, LAST_NAMES.length)]!;
    const dni = dniOf(firstIndex + row);
    const birthdate = randomBirthdate(random);
    // A losing row draws any number but the winning one.
    let number = wins[row] ? WINNING_NUMBER : below(random, 9999);
    if (!wins[row] && number >= WINNING_NUMBER) number++;
    lines.push(`${first},${last},${dni},${birthdate},${number}\r\n`);
  }
  return { bytes: new TextEncoder().encode(lines.join("")), rows, winners };
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
function firstName(random: () => number): string {
  const shape = below(random, 100);
  if (shape < 5) return COMPOUND_NAMES[below(random, COMPOUND_NAMES.length)]!;
  const pool = below(random, 2) === 0 ? MALE_NAMES : FEMALE_NAMES;
  const first = below(random, pool.length);
  if (shape < 45) return pool[first]!;
  let second = below(random, pool.length - 1);
  if (second >= first) second++;
  return `${pool[first]} ${pool[second]}`;
}

/** A valid `YYYY-MM-DD` from 1930 to 2005. */
function randomBirthdate(random: () => number): string {
  const year = 1930 + below(random, 76);
  const month = 1 + below(random, 12);
  const day = 1 + below(random, daysInMonth(year, month));
  const two = (n: number) => String(n).padStart(2, "0");
  return `${year}-${two(month)}-${two(day)}`;
}
