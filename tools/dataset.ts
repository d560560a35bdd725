/**
 * The project's bet data: a seeded, deterministic generator of agency files in the
 * course's format, an importer for the course's `dataset.zip`, and `ensure` for the demo.
 *
 * Each file `agency-{N}.csv` holds `first_name,last_name,document,birthdate,number` rows,
 * no header, CRLF line endings, UTF-8. Generated files carry an exact, known number of
 * winning bets (number 7574) and DNIs that are unique across the whole dataset.
 *
 * ```sh
 * deno task dataset generate [--agencies 5] [--bets-per-agency 20000] [--seed 42] \
 *   [--winner-share 0.001] [--out .data]
 * deno task dataset import dataset.zip [--out .data]
 * deno task dataset ensure [--agencies 5] [--out .data]
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { basename, join } from "node:path";
import { unzipSync } from "fflate";

/** The number that wins the draw, as in the course's `hasWon(bet)`. */
export const WINNING_NUMBER = 7574;

/** Defaults of `generate` and `ensure`. */
export const DATASET_DEFAULTS = {
  /** Where agency files live. */
  dir: ".data",
  /** Number of agency files. */
  agencies: 5,
  /** Rows in each file. */
  betsPerAgency: 20_000,
  /** PRNG seed. */
  seed: 42,
  /** Share of rows whose number is {@linkcode WINNING_NUMBER}. */
  winnerShare: 0.001,
} as const;

/** The agency file names the importer and `ensure` recognise. */
const AGENCY_FILE = /^agency-([1-9]\d{0,5})\.csv$/;

const DNI_MIN = 10_000_000;
/** How many 8-digit DNIs exist; also the most rows a dataset can have. */
const DNI_COUNT = 90_000_000;
const MAX_AGENCIES = 10_000;
const MAX_BETS_PER_AGENCY = 10_000_000;
const MAX_SEED = 0xffff_ffff;

/** A bad argument, option or input file; the CLI prints its message and exits with 2. */
export class DatasetError extends Error {
  /**
   * @param message What went wrong, std style: "Cannot import dataset: …".
   * @param options Standard error options.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "DatasetError";
  }
}

// ---------------------------------------------------------------------------------------
// Seeded randomness
// ---------------------------------------------------------------------------------------

/** Mixes a 32-bit value (the finalizer of MurmurHash3); used to derive seeds and keys. */
function mix32(value: number): number {
  let h = value >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85eb_ca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2_ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** A mulberry32 generator: small, fast, and good enough for test data. */
function createRandom(seed: number): () => number {
  let state = seed >>> 0;
  return function next(): number {
    state = (state + 0x6d2b_79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** A uniform integer in `[0, n)` from a 32-bit random value. */
function below(random: () => number, n: number): number {
  return Math.floor((random() / 0x1_0000_0000) * n);
}

/**
 * A keyed permutation of `[0, DNI_COUNT)`: a 4-round Feistel network on 28 bits with
 * cycle walking, so every row of a dataset gets a distinct, random-looking DNI.
 */
function createDniPermutation(seed: number): (index: number) => number {
  const keys = [1, 2, 3, 4].map((round) => mix32(seed ^ Math.imul(round, 0x9e37_79b9)));
  function permute28(value: number): number {
    let left = value >>> 14;
    let right = value & 0x3fff;
    for (const key of keys) {
      const next = left ^ (mix32(right ^ key) & 0x3fff);
      left = right;
      right = next;
    }
    return (left << 14) | right;
  }
  return function dniOf(index: number): number {
    let value = index;
    do value = permute28(value); while (value >= DNI_COUNT);
    return DNI_MIN + value;
  };
}

// ---------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------

const MALE_NAMES = [
  "Santiago",
  "Lionel",
  "Agustín",
  "Agustin",
  "Emanuel",
  "Tiago",
  "Nicolás",
  "Nicolas",
  "Diego",
  "Marcos",
  "Nahuel",
  "Joaquín",
  "Joaquin",
  "Sebastián",
  "Sebastian",
  "Ezequiel",
  "Gabriel",
  "Alejandro",
  "Lautaro",
  "Lucas",
  "Juan",
  "Daniel",
  "Tomás",
  "Tomas",
  "Ignacio",
  "Axel",
  "Facundo",
  "Benjamín",
  "Benjamin",
  "Thiago",
  "Franco",
  "Martín",
  "Martin",
  "Matías",
  "Matias",
  "David",
  "Leonel",
  "Ariel",
  "Gonzalo",
  "Kevin",
  "José",
  "Uriel",
  "Rodrigo",
  "Valentín",
  "Luciano",
  "Francisco",
  "Javier",
  "Mateo",
  "Fernando",
  "Pablo",
  "Tobías",
  "Alexis",
  "Maximiliano",
  "Cristian",
  "Leandro",
  "Luis",
  "Alan",
  "Andrés",
  "Iván",
  "Federico",
  "Máximo",
  "Dylan",
  "Antonio",
  "Manuel",
  "Bautista",
  "Elías",
  "Carlos",
  "Ramiro",
  "Alejo",
  "Jonathan",
  "Joel",
  "Bruno",
  "Ángel",
  "Miguel",
  "Leonardo",
  "Ismael",
  "Enzo",
  "Santino",
  "Pedro",
  "Jeremías",
  "Thomas",
  "Marco",
  "Mariano",
];

const FEMALE_NAMES = [
  "María",
  "Maria",
  "Valentina",
  "Milagros",
  "Agustina",
  "Abril",
  "Abigail",
  "Belén",
  "Belen",
  "Sofía",
  "Sofia",
  "Candela",
  "Camila",
  "Rocío",
  "Rocio",
  "Micaela",
  "Aylén",
  "Ana",
  "Brisa",
  "Magalí",
  "Priscila",
  "Ayelén",
  "Ludmila",
  "Guadalupe",
  "Ailén",
  "Florencia",
  "Lucía",
  "Victoria",
  "Antonella",
  "Julieta",
  "Agostina",
  "Lourdes",
  "Jazmín",
  "Kiara",
  "Luz",
  "Soledad",
  "Morena",
  "Martina",
  "Pilar",
  "Celeste",
  "Iara",
  "Luciana",
  "Paula",
  "Sol",
  "Tatiana",
  "Mía",
  "Lara",
  "Clara",
  "Nicole",
  "Brenda",
  "Delfina",
  "Josefina",
  "Constanza",
  "Bianca",
  "Emilia",
  "Candelaria",
  "Eugenia",
  "Maia",
  "Luján",
  "Magdalena",
  "Laura",
  "Rosario",
  "Luna",
  "Ariana",
];

/** First names that are themselves compound, used now and then whole. */
const COMPOUND_NAMES = [
  "María José",
  "María Belén",
  "María Victoria",
  "María Luz",
  "María De Los Ángeles",
  "María Del Carmen",
  "Juan Pablo",
  "Juan Cruz",
  "Juan Martín",
  "José Luis",
  "Juan Ignacio",
  "Ana Laura",
];

const LAST_NAMES = [
  "Lorca",
  "Zambrano",
  "Fernández",
  "Rivera",
  "Varela",
  "Mamani",
  "Rotman",
  "Basile",
  "Quispe",
  "Arredondo",
  "Abadía",
  "Huarte",
  "Salazar",
  "Arellano",
  "Martínez",
  "Rivas",
  "Gonzales",
  "Sojero",
  "Rosso",
  "Pavón",
  "Casares",
  "Vargas",
  "Álvarez",
  "Totora",
  "Pereira",
  "Leiva",
  "Mejía",
  "Rotundo",
  "Santana",
  "Sosa",
  "Rodríguez",
  "Sberna",
  "Portillo",
  "Sánchez",
  "Giménez",
  "Sala",
  "Marini",
  "Marín",
  "Fazzi",
  "Raimundo",
  "De Luca",
  "López",
  "Pedone",
  "Castro",
  "Huergo",
  "Morales",
  "Surace",
  "Nave",
  "Duarte",
  "De León",
  "Vasile",
  "Demichelis",
  "Giordano",
  "Hoffmann",
  "Ibáñez",
  "Salem",
  "Leal",
  "Díaz",
  "Mancuso",
  "Hernández",
  "León",
  "Pineda",
  "Godoy",
  "Castillo",
  "Goicochea",
  "Mora",
  "Ramírez",
  "Jiménez",
  "Sorbera",
  "Borges",
  "Rojas",
  "Silva",
  "Carrizo",
  "Vera",
  "Marino",
  "Scanone",
  "Lorenzo",
  "Nessi",
  "Marchi",
  "Schapira",
  "Santos",
  "Espinoza",
  "Pereyra",
  "Fava",
  "Muñoz",
  "Flores",
  "Farías",
  "Galán",
  "Valenzuela",
  "Sotomayor",
  "Gómez",
  "Contreras",
  "Farina",
  "Soto",
  "González",
  "Gutiérrez",
  "Villalba",
  "Reyes",
  "García",
  "Saldaña",
  "Hidalgo",
  "Moreno",
  "Andrade",
  "Carranza",
  "Agüero",
  "Fornerón",
  "Delgado",
  "Pérez",
  "Benítez",
  "Amenedo",
  "Pinedo",
  "Rebollo",
  "Mariani",
];

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

const COMMA = 0x2c;
const SPACE = 0x20;
const DASH = 0x2d;
const ZERO = 0x30;

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

// ---------------------------------------------------------------------------------------
// Generation
// ---------------------------------------------------------------------------------------

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
  /** The DNIs of the winning rows, in file order. */
  readonly winningDocuments: readonly string[];
}

function checkInteger(name: string, value: number, min: number, max: number): void {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new RangeError(
      `Cannot generate dataset: ${name} must be a whole number from ${min} to ${max}, got ${value}`,
    );
  }
}

function checkShare(value: number): void {
  if (!Number.isFinite(value) || value < 0 || value > 1) {
    throw new RangeError(
      `Cannot generate dataset: winner share must be a number from 0 to 1, got ${value}`,
    );
  }
}

/**
 * Generates one agency file in memory, deterministically from the seed and agency.
 *
 * @param options Agency, row count, seed and winner share.
 * @returns The bytes and what they contain.
 * @throws {RangeError} If an option is out of range.
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
  checkInteger("agency", agency, 1, MAX_AGENCIES);
  checkInteger("rows", rows, 0, MAX_BETS_PER_AGENCY);
  checkInteger("seed", seed, 0, MAX_SEED);
  checkShare(winnerShare);
  checkInteger("first index", firstIndex, 0, DNI_COUNT - rows);

  const random = createRandom(mix32(seed ^ mix32(agency)));
  const dniOf = createDniPermutation(seed);

  // Exactly `winners` distinct winning positions, by Floyd's sampling.
  const winners = Math.round(rows * winnerShare);
  const wins = new Uint8Array(rows);
  for (let j = rows - winners; j < rows; j++) {
    const t = below(random, j + 1);
    if (wins[t]) wins[j] = 1;
    else wins[t] = 1;
  }

  const out = new Uint8Array(rows * MAX_ROW_BYTES);
  const winningDocuments: string[] = [];
  let pos = 0;
  function put(bytes: Uint8Array): void {
    for (let i = 0; i < bytes.length; i++) out[pos++] = bytes[i]!;
  }
  function putDigits(value: number, width: number): void {
    for (let i = width - 1; i >= 0; i--) {
      out[pos + i] = ZERO + (value % 10);
      value = Math.floor(value / 10);
    }
    pos += width;
  }

  for (let row = 0; row < rows; row++) {
    // First name: one name (40%), two of one gender (55%), or a compound one (5%).
    const shape = below(random, 100);
    if (shape < 5) {
      put(COMPOUND_BYTES[below(random, COMPOUND_BYTES.length)]!);
    } else {
      const pool = below(random, 2) === 0 ? MALE_BYTES : FEMALE_BYTES;
      const first = below(random, pool.length);
      put(pool[first]!);
      if (shape >= 45) {
        let second = below(random, pool.length - 1);
        if (second >= first) second++;
        out[pos++] = SPACE;
        put(pool[second]!);
      }
    }
    out[pos++] = COMMA;
    put(LAST_BYTES[below(random, LAST_BYTES.length)]!);
    out[pos++] = COMMA;

    const dni = dniOf(firstIndex + row);
    putDigits(dni, 8);
    out[pos++] = COMMA;

    const year = 1930 + below(random, 76);
    const month = 1 + below(random, 12);
    const day = 1 + below(random, daysInMonth(year, month));
    putDigits(year, 4);
    out[pos++] = DASH;
    putDigits(month, 2);
    out[pos++] = DASH;
    putDigits(day, 2);
    out[pos++] = COMMA;

    let number: number;
    if (wins[row]) {
      number = WINNING_NUMBER;
      winningDocuments.push(String(dni));
    } else {
      number = below(random, 9999);
      if (number >= WINNING_NUMBER) number++;
    }
    putDigits(number, number < 10 ? 1 : number < 100 ? 2 : number < 1000 ? 3 : 4);
    out[pos++] = 0x0d;
    out[pos++] = 0x0a;
  }
  return { bytes: out.subarray(0, pos), rows, winners, winningDocuments };
}

/** One agency file of a dataset, as written or imported. */
export interface AgencyFileSummary {
  /** The agency number. */
  readonly agency: number;
  /** The file's path. */
  readonly path: string;
  /** Number of rows (bets). */
  readonly rows: number;
  /** Number of rows whose number is 7574. */
  readonly winners: number;
  /** The DNIs of the winning rows, in file order. */
  readonly winningDocuments: readonly string[];
}

/** What a dataset directory holds after `generate`, `import` or `ensure`. */
export interface DatasetSummary {
  /** The directory. */
  readonly dir: string;
  /** One entry per agency file, by agency number. */
  readonly files: readonly AgencyFileSummary[];
  /** Total rows. */
  readonly rows: number;
  /** Total winners. */
  readonly winners: number;
  /** Agency files removed because the new dataset does not have them. */
  readonly removed: readonly string[];
}

/** Options of {@linkcode generateDataset}. */
export interface GenerateOptions {
  /**
   * Output directory, created if missing.
   *
   * @default {".data"}
   */
  readonly dir?: string;
  /**
   * Number of agency files.
   *
   * @default {5}
   */
  readonly agencies?: number;
  /**
   * Rows in each file.
   *
   * @default {20000}
   */
  readonly betsPerAgency?: number;
  /**
   * PRNG seed.
   *
   * @default {42}
   */
  readonly seed?: number;
  /**
   * Share of winning rows in each file.
   *
   * @default {0.001}
   */
  readonly winnerShare?: number;
  /** Called after each file is written. */
  readonly onProgress?: (file: AgencyFileSummary, total: number) => void;
}

/**
 * Writes a file atomically: a temporary file in the same directory, then a rename.
 *
 * @param path The destination.
 * @param bytes The content.
 */
async function writeAtomically(path: string, bytes: Uint8Array): Promise<void> {
  const dir = join(path, "..");
  const temp = await Deno.makeTempFile({ dir, prefix: `.${basename(path)}.`, suffix: ".tmp" });
  try {
    await Deno.writeFile(temp, bytes);
    // makeTempFile creates 0600; data files are read by containers running as other users.
    await Deno.chmod(temp, 0o644);
    await Deno.rename(temp, path);
  } catch (error) {
    await Deno.remove(temp).catch(() => {});
    throw error;
  }
}

/**
 * Lists the agency files of a directory.
 *
 * @param dir The directory.
 * @returns Agency number and file name, sorted by agency; empty if the directory is missing.
 */
export async function listAgencyFiles(
  dir: string,
): Promise<{ agency: number; name: string }[]> {
  const found: { agency: number; name: string }[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      const match = AGENCY_FILE.exec(entry.name);
      if (match && (entry.isFile || entry.isSymlink)) {
        found.push({ agency: Number(match[1]), name: entry.name });
      }
    }
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
  return found.sort((a, b) => a.agency - b.agency);
}

/** Removes agency files whose number is not in `keep`; returns the removed names. */
async function removeOtherAgencyFiles(dir: string, keep: ReadonlySet<number>): Promise<string[]> {
  const removed: string[] = [];
  for (const { agency, name } of await listAgencyFiles(dir)) {
    if (!keep.has(agency)) {
      await Deno.remove(join(dir, name));
      removed.push(name);
    }
  }
  return removed;
}

function summarize(dir: string, files: AgencyFileSummary[], removed: string[]): DatasetSummary {
  return {
    dir,
    files,
    rows: files.reduce((sum, file) => sum + file.rows, 0),
    winners: files.reduce((sum, file) => sum + file.winners, 0),
    removed,
  };
}

/**
 * Generates `agency-1.csv` … `agency-N.csv` into a directory, each written atomically,
 * and removes other agency files there so the directory holds one consistent dataset.
 *
 * @param options Directory, size, seed and winner share.
 * @returns What was written.
 * @throws {RangeError} If an option is out of range.
 *
 * @example Usage
 * ```ts
 * const summary = await generateDataset({ dir: ".data", agencies: 5, betsPerAgency: 20000 });
 * // summary.winners === 100
 * ```
 */
export async function generateDataset(options: GenerateOptions = {}): Promise<DatasetSummary> {
  const dir = options.dir ?? DATASET_DEFAULTS.dir;
  const agencies = options.agencies ?? DATASET_DEFAULTS.agencies;
  const betsPerAgency = options.betsPerAgency ?? DATASET_DEFAULTS.betsPerAgency;
  const seed = options.seed ?? DATASET_DEFAULTS.seed;
  const winnerShare = options.winnerShare ?? DATASET_DEFAULTS.winnerShare;
  checkInteger("agencies", agencies, 1, MAX_AGENCIES);
  checkInteger("bets per agency", betsPerAgency, 0, MAX_BETS_PER_AGENCY);
  checkInteger("seed", seed, 0, MAX_SEED);
  checkShare(winnerShare);
  if (agencies * betsPerAgency > DNI_COUNT) {
    throw new RangeError(
      `Cannot generate dataset: ${agencies} agencies of ${betsPerAgency} bets exceed the ${DNI_COUNT} distinct 8-digit DNIs`,
    );
  }

  await Deno.mkdir(dir, { recursive: true });
  const files: AgencyFileSummary[] = [];
  for (let agency = 1; agency <= agencies; agency++) {
    const csv = generateAgencyCsv({ agency, rows: betsPerAgency, seed, winnerShare });
    const path = join(dir, `agency-${agency}.csv`);
    await writeAtomically(path, csv.bytes);
    const file = {
      agency,
      path,
      rows: csv.rows,
      winners: csv.winners,
      winningDocuments: csv.winningDocuments,
    };
    files.push(file);
    options.onProgress?.(file, agencies);
  }
  const removed = await removeOtherAgencyFiles(dir, new Set(files.map((file) => file.agency)));
  return summarize(dir, files, removed);
}

// ---------------------------------------------------------------------------------------
// Import
// ---------------------------------------------------------------------------------------

/** Reads an agency file's content: row count and winners; throws on a malformed row. */
function inspectAgencyCsv(name: string, bytes: Uint8Array): { rows: number; winners: string[] } {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch (error) {
    throw new DatasetError(`Cannot import dataset: ${name} is not UTF-8 text`, { cause: error });
  }
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  const winners: string[] = [];
  let rows = 0;
  for (const [index, raw] of lines.entries()) {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (line === "") continue;
    const fields = line.split(",");
    if (fields.length !== 5) {
      throw new DatasetError(
        `Cannot import dataset: ${name} line ${
          index + 1
        } has ${fields.length} fields, expected 5 (first_name,last_name,document,birthdate,number)`,
      );
    }
    rows++;
    if (Number(fields[4]) === WINNING_NUMBER) winners.push(fields[2]!);
  }
  return { rows, winners };
}

/** Options of {@linkcode importDataset}. */
export interface ImportOptions {
  /**
   * Output directory, created if missing.
   *
   * @default {".data"}
   */
  readonly dir?: string;
}

/**
 * Imports a course-style `dataset.zip` (entries `agency-1.csv` … `agency-N.csv`, at the
 * top or inside one folder) into a directory. Each file is checked (UTF-8, five fields a
 * row) and written atomically; agency files the zip does not have are removed.
 *
 * @param zipPath The zip file.
 * @param options The output directory.
 * @returns What was imported.
 * @throws {DatasetError} If the file is missing, not a zip, has no agency files, has
 * an agency file twice, or one of them is malformed.
 *
 * @example Usage
 * ```ts
 * const summary = await importDataset("dataset.zip", { dir: ".data" });
 * // summary.files.length === 5
 * ```
 */
export async function importDataset(
  zipPath: string,
  options: ImportOptions = {},
): Promise<DatasetSummary> {
  const dir = options.dir ?? DATASET_DEFAULTS.dir;
  let zipped: Uint8Array;
  try {
    zipped = await Deno.readFile(zipPath);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new DatasetError(`Cannot import dataset: file "${zipPath}" not found`, {
        cause: error,
      });
    }
    if (error instanceof Deno.errors.IsADirectory) {
      throw new DatasetError(`Cannot import dataset: "${zipPath}" is a directory`, {
        cause: error,
      });
    }
    throw error;
  }

  const entries = new Map<number, { name: string; entry: string }>();
  let unzipped: Record<string, Uint8Array>;
  try {
    unzipped = unzipSync(zipped, {
      filter(file) {
        const parts = file.name.split("/");
        const name = parts.at(-1) ?? "";
        const match = AGENCY_FILE.exec(name);
        // Ignore macOS resource forks and anything nested deeper than one folder.
        if (!match || parts.length > 2 || parts[0] === "__MACOSX") return false;
        const agency = Number(match[1]);
        const previous = entries.get(agency);
        if (previous) {
          throw new DatasetError(
            `Cannot import dataset: "${zipPath}" has ${name} twice ("${previous.entry}" and "${file.name}")`,
          );
        }
        entries.set(agency, { name, entry: file.name });
        return true;
      },
    });
  } catch (error) {
    if (error instanceof DatasetError) throw error;
    throw new DatasetError(
      `Cannot import dataset: "${zipPath}" is not a valid zip archive (${
        error instanceof Error ? error.message : String(error)
      })`,
      { cause: error },
    );
  }
  if (entries.size === 0) {
    throw new DatasetError(
      `Cannot import dataset: "${zipPath}" has no agency-N.csv entries at its top or in one folder`,
    );
  }

  const checked = [...entries.entries()].sort(([a], [b]) => a - b).map(([agency, found]) => {
    const bytes = unzipped[found.entry]!;
    return { agency, name: found.name, bytes, ...inspectAgencyCsv(found.name, bytes) };
  });
  await Deno.mkdir(dir, { recursive: true });
  const files: AgencyFileSummary[] = [];
  for (const { agency, name, bytes, rows, winners } of checked) {
    const path = join(dir, name);
    await writeAtomically(path, bytes);
    files.push({ agency, path, rows, winners: winners.length, winningDocuments: winners });
  }
  const removed = await removeOtherAgencyFiles(dir, new Set(entries.keys()));
  return summarize(dir, files, removed);
}

// ---------------------------------------------------------------------------------------
// Ensure
// ---------------------------------------------------------------------------------------

/** The result of {@linkcode ensureDataset}. */
export interface EnsureResult {
  /** Whether default data was generated (the directory had no agency file). */
  readonly generated: boolean;
  /** The summary of what was generated, when it was. */
  readonly summary?: DatasetSummary;
  /** The agency file names present afterwards. */
  readonly files: readonly string[];
  /** Agencies in 1..`agencies` that still have no file (only when data already existed). */
  readonly missing: readonly number[];
}

/**
 * Generates the default dataset (seed 42, 20000 bets per agency, 20 winners each) only
 * when the directory has no `agency-*.csv` at all; existing data, generated or imported,
 * is kept as is.
 *
 * @param dir The data directory, e.g. `.data`.
 * @param agencies How many agencies the caller needs.
 * @returns Whether data was generated, the files present, and any agency still missing.
 *
 * @example Usage
 * ```ts
 * const { generated, missing } = await ensureDataset(".data", 5);
 * ```
 */
export async function ensureDataset(dir: string, agencies: number): Promise<EnsureResult> {
  checkInteger("agencies", agencies, 1, MAX_AGENCIES);
  const existing = await listAgencyFiles(dir);
  if (existing.length > 0) {
    const present = new Set(existing.map((file) => file.agency));
    const missing: number[] = [];
    for (let agency = 1; agency <= agencies; agency++) {
      if (!present.has(agency)) missing.push(agency);
    }
    return { generated: false, files: existing.map((file) => file.name), missing };
  }
  const summary = await generateDataset({ dir, agencies });
  return {
    generated: true,
    summary,
    files: summary.files.map((file) => basename(file.path)),
    missing: [],
  };
}

// ---------------------------------------------------------------------------------------
// CLI
// ---------------------------------------------------------------------------------------

const USAGE = `Usage:
  deno task dataset generate [--agencies 5] [--bets-per-agency 20000] [--seed 42]
                             [--winner-share 0.001] [--out .data]
  deno task dataset import PATH.zip [--out .data]
  deno task dataset ensure [--agencies 5] [--out .data]`;

/** Rows from which `generate` reports progress on stderr. */
const PROGRESS_THRESHOLD = 200_000;

function parseInteger(flag: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  // Range checks happen in the generator, which names the allowed range.
  if (!/^-?\d+$/.test(raw.trim())) {
    throw new DatasetError(`Cannot run dataset: --${flag} must be a whole number, got "${raw}"`);
  }
  return Number(raw);
}

function parseShare(raw: string | undefined): number {
  if (raw === undefined) return DATASET_DEFAULTS.winnerShare;
  const value = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(value) || value < 0 || value > 1) {
    throw new DatasetError(
      `Cannot run dataset: --winner-share must be a number from 0 to 1, got "${raw}"`,
    );
  }
  return value;
}

function describe(summary: DatasetSummary, verb: string): string {
  const perAgency = summary.files.map((file) => `${file.agency}=${file.winners}`).join(", ");
  const removed = summary.removed.length > 0 ? `; removed stale ${summary.removed.join(", ")}` : "";
  return `dataset: ${verb} ${summary.files.length} files in ${summary.dir} (${summary.rows} rows; winners per agency: ${perAgency})${removed}`;
}

/**
 * Parses `node:util` arguments, joining `--flag -3` into `--flag=-3` so a negative value
 * is reported as a bad value rather than a missing one.
 */
function parseCli(args: readonly string[]) {
  const valued = new Set(["agencies", "bets-per-agency", "seed", "winner-share", "out"]);
  const joined: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const next = args[i + 1];
    if (arg.startsWith("--") && valued.has(arg.slice(2)) && next && /^-\d/.test(next)) {
      joined.push(`${arg}=${next}`);
      i++;
    } else {
      joined.push(arg);
    }
  }
  try {
    return parseArgs({
      args: joined,
      allowPositionals: true,
      strict: true,
      options: {
        agencies: { type: "string" },
        "bets-per-agency": { type: "string" },
        seed: { type: "string" },
        "winner-share": { type: "string" },
        out: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (error) {
    const text = error instanceof Error ? error.message : String(error);
    const option = /'(--?[\w-]+)/.exec(text)?.[1];
    const code = (error as { code?: string }).code;
    const detail = code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" && option
      ? `unknown option "${option}"`
      : code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE" && option
      ? `option "${option}" needs a value`
      : text.split("\n")[0];
    throw new DatasetError(`Cannot run dataset: ${detail}`, { cause: error });
  }
}

/**
 * Runs the CLI.
 *
 * @param args The command-line arguments.
 * @returns The exit code: 0, or 2 for bad input (after one line on stderr).
 */
export async function main(args: readonly string[]): Promise<number> {
  try {
    const { values, positionals } = parseCli(args);
    const [command, ...rest] = positionals;
    if (values.help) {
      console.log(USAGE);
      return 0;
    }
    const dir = values.out ?? DATASET_DEFAULTS.dir;
    const allowed: Record<string, readonly string[]> = {
      generate: ["agencies", "bets-per-agency", "seed", "winner-share", "out"],
      import: ["out"],
      ensure: ["agencies", "out"],
    };
    if (command === undefined) {
      throw new DatasetError(`Cannot run dataset: missing subcommand (generate, import or ensure)`);
    }
    const flags = allowed[command];
    if (flags === undefined) {
      throw new DatasetError(
        `Cannot run dataset: unknown subcommand "${command}" (expected generate, import or ensure)`,
      );
    }
    for (const key of Object.keys(values)) {
      if (!flags.includes(key)) {
        throw new DatasetError(`Cannot run dataset ${command}: option "--${key}" does not apply`);
      }
    }
    const expectedPositionals = command === "import" ? 1 : 0;
    if (rest.length !== expectedPositionals) {
      throw new DatasetError(
        command === "import" && rest.length === 0
          ? `Cannot import dataset: missing the zip file to import`
          : `Cannot run dataset ${command}: unexpected argument "${rest[expectedPositionals]}"`,
      );
    }

    if (command === "generate") {
      const agencies = parseInteger("agencies", values.agencies, DATASET_DEFAULTS.agencies);
      const betsPerAgency = parseInteger(
        "bets-per-agency",
        values["bets-per-agency"],
        DATASET_DEFAULTS.betsPerAgency,
      );
      const seed = parseInteger("seed", values.seed, DATASET_DEFAULTS.seed);
      const winnerShare = parseShare(values["winner-share"]);
      const large = agencies * betsPerAgency >= PROGRESS_THRESHOLD;
      const started = performance.now();
      const summary = await generateDataset({
        dir,
        agencies,
        betsPerAgency,
        seed,
        winnerShare,
        onProgress(file, total) {
          if (large) {
            console.error(
              `dataset: wrote ${file.path} (${file.agency}/${total}, ${file.rows} rows, ${file.winners} winners)`,
            );
          }
        },
      });
      if (large) {
        console.error(`dataset: done in ${Math.round(performance.now() - started)} ms`);
      }
      console.log(describe(summary, "generated"));
    } else if (command === "import") {
      console.log(describe(await importDataset(rest[0]!, { dir }), "imported"));
    } else {
      const agencies = parseInteger("agencies", values.agencies, DATASET_DEFAULTS.agencies);
      const result = await ensureDataset(dir, agencies);
      if (result.summary) {
        console.log(describe(result.summary, "generated"));
      } else {
        console.log(`dataset: kept ${result.files.length} existing files in ${dir}`);
        if (result.missing.length > 0) {
          console.error(
            `dataset: warning: ${dir} has no file for agencies ${result.missing.join(", ")}`,
          );
        }
      }
    }
    return 0;
  } catch (error) {
    if (
      error instanceof DatasetError || error instanceof RangeError ||
      error instanceof TypeError
    ) {
      console.error(error.message);
      return 2;
    }
    console.error(`Cannot run dataset: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
