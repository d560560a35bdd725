/**
 * The read path of the bet storage: where each durable batch lies in `bets.csv`, with the
 * checksum its journal record holds, and which batches hold a winner. Every read goes through
 * the handle the store opened (never the path, which may name another file by now), one
 * positioned read at a time, and every batch read is checked against its checksum: what the
 * journal says is what is read, or the read fails as damage.
 *
 * @module
 */
import type { Bet } from "../../shared/bet.ts";
import { LF } from "../../shared/bytes.ts";
import { errorText, StorageError } from "../../shared/errors.ts";
import { parseRow } from "../bets_csv.ts";
import { type ByteSearch, byteSearch } from "../byte_search.ts";
import { checksum } from "../journal.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Bytes read at once at most (more only for a single batch larger than this). */
const LOAD_CHUNK = 1024 * 1024;

/** Bytes between two batches a read takes in rather than seek past them. */
const MAX_GAP = 64 * 1024;

/** Reads up to this size are made synchronously (see {@linkcode readAtOnce}). */
const SYNC_READ_MAX = 64 * 1024;

/**
 * Fills `bytes` from `position` of `file` synchronously; how many bytes it got (fewer at
 * the file's end). For small reads: an async read or seek costs some 60 µs of thread hops
 * each, a small synchronous one a few µs, and the draw reads one batch per winner.
 */
function readAtOnce(file: Deno.FsFile, position: number, bytes: Uint8Array): number {
  file.seekSync(position, Deno.SeekMode.Start);
  let filled = 0;
  while (filled < bytes.length) {
    const n = file.readSync(bytes.subarray(filled));
    if (n === null) break;
    filled += n;
  }
  return filled;
}

/** Every row of `rows` (whole CRLF-terminated rows) as a bet. */
function* everyRow(rows: Uint8Array): Generator<Bet> {
  let start = 0;
  for (let lf = rows.indexOf(LF); lf !== -1; lf = rows.indexOf(LF, start)) {
    yield parseRow(decoder.decode(rows.subarray(start, lf - 1)));
    start = lf + 1;
  }
}

/** The rows of `rows` ending in the needle `,<number>\r\n` that `find` finds, as bets. */
function* rowsMatching(rows: Uint8Array, find: ByteSearch, needleLength: number): Generator<Bet> {
  for (let at = find(rows); at !== -1; at = find(rows, at + 1)) {
    const start = rows.lastIndexOf(LF, at) + 1;
    yield parseRow(decoder.decode(rows.subarray(start, at + needleLength - 2)));
  }
}

/** The durable batches of `bets.csv` and the reads of them, through one open handle. */
export class BatchReader {
  readonly #file: Deno.FsFile;
  readonly #path: string;
  /** Batch `i` is `[starts[i], ends[i])` of the file, with checksum `crcs[i]`. */
  readonly #starts: number[] = [];
  readonly #ends: number[] = [];
  readonly #crcs: number[] = [];
  /** The batches holding a winner, ascending: the draw reads only these. */
  readonly #winners: number[] = [];
  /** The read in progress: each seeks, then reads, before the next may seek. */
  #reading: Promise<void> = Promise.resolve();

  /**
   * `file` is `bets.csv` at `path` (named in errors), open for reading through a handle
   * nothing writes through (an append would move its offset between a seek and a read).
   */
  constructor(file: Deno.FsFile, path: string) {
    this.#file = file;
    this.#path = path;
  }

  /** Notes a durable batch; returns its index for {@linkcode BatchReader.batch}. */
  add(start: number, end: number, rowsCrc: number, hasWinner: boolean): number {
    const index = this.#starts.length;
    this.#starts.push(start);
    this.#ends.push(end);
    this.#crcs.push(rowsCrc);
    if (hasWinner) this.#winners.push(index);
    return index;
  }

  /**
   * The bytes of batch `index`, checked.
   *
   * @throws {StorageError} `damaged` when they are not what was stored, `failed` when
   * reading fails.
   */
  async batch(index: number): Promise<Uint8Array> {
    const start = this.#starts[index]!;
    const bytes = new Uint8Array(this.#ends[index]! - start);
    await this.#readAt(start, bytes);
    this.#verify(index, bytes);
    return bytes;
  }

  /**
   * Streams the stored bets in order; with `number`, only rows playing it, found by a byte
   * search for `,<number>\r\n` (names hold no line break). `winnersOnly` reads only the
   * batches holding a winner (the draw, searching for the winning number).
   *
   * @throws {StorageError} `damaged` when a batch read is not what was stored (nothing of
   * it is yielded), `failed` when reading fails.
   */
  async *bets(number?: number, winnersOnly = false): AsyncGenerator<Bet> {
    const needle = number === undefined ? undefined : encoder.encode(`,${number}\r\n`);
    const find = needle && byteSearch(needle);
    const count = winnersOnly ? this.#winners.length : this.#starts.length;
    const at = (i: number) => winnersOnly ? this.#winners[i]! : i;
    let buf = new Uint8Array(LOAD_CHUNK);
    for (let first = 0; first < count;) {
      // One read for the batches that fit in a chunk, taking in small gaps between them.
      const start = this.#starts[at(first)]!;
      let last = first;
      while (
        last + 1 < count &&
        this.#ends[at(last + 1)]! - start <= LOAD_CHUNK &&
        this.#starts[at(last + 1)]! - this.#ends[at(last)]! <= MAX_GAP
      ) last++;
      const end = this.#ends[at(last)]!;
      if (end - start > buf.length) buf = new Uint8Array(end - start);
      const bytes = buf.subarray(0, end - start);
      await this.#readAt(start, bytes);
      for (let i = first; i <= last; i++) {
        const index = at(i);
        this.#verify(
          index,
          bytes.subarray(this.#starts[index]! - start, this.#ends[index]! - start),
        );
      }
      for (let i = first; i <= last; i++) {
        const index = at(i);
        const rows = bytes.subarray(this.#starts[index]! - start, this.#ends[index]! - start);
        try {
          yield* find ? rowsMatching(rows, find, needle!.length) : everyRow(rows);
        } catch (error) {
          if (!(error instanceof SyntaxError)) throw error;
          throw this.#damaged(index, `hold a row it cannot parse, ${errorText(error)}`);
        }
      }
      first = last + 1;
    }
  }

  #verify(index: number, bytes: Uint8Array): void {
    const read = checksum(bytes);
    if (read !== this.#crcs[index]) {
      throw this.#damaged(
        index,
        "were changed after they were stored, their checksum is " +
          `${read.toString(16).padStart(8, "0")}, the journal holds ` +
          this.#crcs[index]!.toString(16).padStart(8, "0"),
      );
    }
  }

  /** Batch `index` is not what was stored: `what` its bytes do (`were changed …`). */
  #damaged(index: number, what: string): StorageError {
    const path = this.#path;
    return new StorageError(
      path,
      `Storage ${path} is damaged (bytes ${this.#starts[index]} to ${this.#ends[index]} of ` +
        `bets.csv ${what.replaceAll(":", " ")}); ` +
        "nothing is answered from it. Stop the server and start it again, start-up checks " +
        "every batch and says how to recover",
      { kind: "damaged" },
    );
  }

  /** Fills `bytes` from `position` of the file, after any read in progress. */
  async #readAt(position: number, bytes: Uint8Array): Promise<void> {
    const previous = this.#reading;
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#reading = promise;
    await previous;
    try {
      let filled = 0;
      if (bytes.length <= SYNC_READ_MAX) {
        filled = readAtOnce(this.#file, position, bytes);
      } else {
        await this.#file.seek(position, Deno.SeekMode.Start);
      }
      while (filled < bytes.length) {
        const n = await this.#file.read(bytes.subarray(filled));
        if (n === null) {
          throw new StorageError(
            this.#path,
            `Storage ${this.#path} is damaged (bets.csv ends before byte ` +
              `${position + bytes.length}, which its journal accounts for); stop the server and ` +
              "start it again, start-up checks the files and says how to recover",
            { kind: "damaged" },
          );
        }
        filled += n;
      }
    } catch (error) {
      if (error instanceof StorageError) throw error;
      throw new StorageError(
        this.#path,
        `Cannot read ${this.#path} (${errorText(error).replaceAll(":", " ")}); stop the ` +
          "server and start it again, start-up checks the files",
        { kind: "failed", cause: error },
      );
    } finally {
      resolve();
    }
  }
}
