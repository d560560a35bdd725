/**
 * The agency's fast path from CSV file to BATCH frames: the file is read in large chunks
 * and its lines go into the frames as they are: a BATCH carries CSV lines, so the agency
 * only finds where lines end, skips blank ones and copies runs of lines with one `set`.
 * Checking the bets is the server's job (it must anyway, and says which bet was wrong).
 *
 * @module
 */
import { BATCH_HEADER_SIZE, encodeBatchHeader, MAX_FRAME_SIZE } from "../shared/protocol/mod.ts";

/** A line of the agency's CSV cannot be sent at all. */
export class BetsFileError extends SyntaxError {
  /** The file. */
  readonly path: string;
  /** The 1-based line number. */
  readonly line: number;

  /**
   * @param path The file.
   * @param line The line.
   * @param detail What was wrong.
   * @param options Standard error options.
   */
  constructor(path: string, line: number, detail: string, options?: ErrorOptions) {
    super(`Cannot read bets from ${path} line ${line}: ${detail}`, options);
    this.name = "BetsFileError";
    this.path = path;
    this.line = line;
  }
}

/** One batch inside a {@linkcode BatchChunk}. */
export interface ChunkBatch {
  /** The batch's sequence number, from 0. */
  readonly seq: number;
  /** Bets in the batch. */
  readonly count: number;
  /** Where its frame starts in the chunk's bytes. */
  readonly start: number;
  /** Where its frame ends in the chunk's bytes. */
  readonly end: number;
  /** The file's line (1-based) of its first bet. */
  readonly firstLine: number;
  /** The file's line of its last bet. */
  readonly lastLine: number;
}

/** BATCH frames packed back to back, to go out in one write. */
export interface BatchChunk {
  /** The frames; a view into a reused buffer, valid until the generator resumes. */
  readonly bytes: Uint8Array;
  /** The batches, in order. */
  readonly batches: readonly ChunkBatch[];
}

/** Options of {@linkcode csvBatchChunks}. */
export interface ChunkOptions {
  /** The most bets in one batch (`batch.maxAmount`). */
  readonly maxAmount: number;
  /** The most frames in one chunk. */
  readonly framesPerChunk: number;
}

const LF = 0x0a;
const CR = 0x0d;

/** Bytes read from the file at once. */
const READ_SIZE = 256 * 1024;

/** The most bytes of lines one frame holds. */
const MAX_LINES_SIZE = MAX_FRAME_SIZE - BATCH_HEADER_SIZE;

/**
 * Packs lines into frames; one per agency file. Lines are taken as runs: consecutive
 * lines of the read buffer are copied into the chunk with one `set` when the run ends.
 */
class Packer {
  readonly #path: string;
  readonly #agency: number;
  readonly #maxAmount: number;
  readonly #framesPerChunk: number;
  readonly #chunk: Uint8Array;
  /** Where the open frame starts in the chunk. */
  #frameStart = 0;
  /** Where its lines end, counting the run not yet copied. */
  #end = BATCH_HEADER_SIZE;
  /** The run of lines not yet copied: `#src[#runStart, #runEnd)`. */
  #src: Uint8Array | undefined;
  #runStart = 0;
  #runEnd = 0;
  #batches: ChunkBatch[] = [];
  #seq = 0;
  #count = 0;
  #firstLine = 0;
  #lastLine = 0;
  /** Lines read so far: the one being looked at is line `line`. */
  line = 0;

  constructor(path: string, agency: number, options: ChunkOptions) {
    this.#path = path;
    this.#agency = agency;
    this.#maxAmount = Math.max(1, options.maxAmount);
    this.#framesPerChunk = Math.max(1, options.framesPerChunk);
    this.#chunk = new Uint8Array(this.#framesPerChunk * MAX_FRAME_SIZE);
  }

  /** Copies the pending run into the chunk; due before its source buffer changes. */
  flushRun(): void {
    if (this.#src === undefined) return;
    const length = this.#runEnd - this.#runStart;
    this.#chunk.set(this.#src.subarray(this.#runStart, this.#runEnd), this.#end - length);
    this.#src = undefined;
  }

  /** Closes the open batch into the chunk, if it has bets; true when the chunk is full. */
  #finishBatch(): boolean {
    if (this.#count === 0) return false;
    this.flushRun();
    const start = this.#frameStart;
    const linesLength = this.#end - start - BATCH_HEADER_SIZE;
    const batch = { agency: this.#agency, seq: this.#seq, count: this.#count };
    const end = encodeBatchHeader(this.#chunk, start, batch, linesLength);
    this.#batches.push({
      seq: this.#seq,
      count: this.#count,
      start,
      end,
      firstLine: this.#firstLine,
      lastLine: this.#lastLine,
    });
    this.#seq++;
    this.#count = 0;
    this.#frameStart = end;
    this.#end = end + BATCH_HEADER_SIZE;
    return this.#batches.length >= this.#framesPerChunk;
  }

  /**
   * Hands out the chunk packed so far and starts anew. Called when a batch has just
   * closed, or with `last` to close the open one.
   */
  take(last: boolean): BatchChunk | undefined {
    if (last) this.#finishBatch();
    if (this.#batches.length === 0) return undefined;
    const chunk = { bytes: this.#chunk.subarray(0, this.#frameStart), batches: this.#batches };
    this.#batches = [];
    this.#frameStart = 0;
    this.#end = BATCH_HEADER_SIZE;
    return chunk;
  }

  /**
   * Makes room in the open batch for a line of `size` bytes (its ending included),
   * closing the batch when the line would not fit.
   *
   * @returns Whether the chunk is now full: take it before adding the line.
   * @throws {BetsFileError} When the line is too long for any frame.
   */
  room(size: number): boolean {
    if (size > MAX_LINES_SIZE) {
      throw new BetsFileError(
        this.#path,
        this.line,
        `the line is ${size} bytes, more than the ${MAX_LINES_SIZE} a batch frame holds`,
      );
    }
    const fits = this.#count < this.#maxAmount &&
      this.#end - this.#frameStart + size <= MAX_FRAME_SIZE;
    return !fits && this.#finishBatch();
  }

  /** Adds the line `buf[start, end)`, ending included, after {@linkcode Packer.room}. */
  add(buf: Uint8Array, start: number, end: number): void {
    if (this.#count === 0) this.#firstLine = this.line;
    this.#lastLine = this.line;
    this.#count++;
    if (this.#src !== buf || this.#runEnd !== start) {
      this.flushRun();
      this.#src = buf;
      this.#runStart = start;
    }
    this.#runEnd = end;
    this.#end += end - start;
  }

  /** Adds a last line that has no ending, with a `\n`. */
  addUnterminated(buf: Uint8Array, start: number, end: number): void {
    this.add(buf, start, end);
    this.flushRun();
    this.#chunk[this.#end++] = LF;
  }
}

/**
 * Reads an agency's CSV and yields its BATCH frames, packed back to back in chunks of
 * up to `framesPerChunk` frames: at most `maxAmount` bets per batch and never over
 * 8 KiB per frame, each bet the file's line as it is. Blank lines are skipped. Memory
 * stays flat whatever the file's size.
 *
 * @param path The CSV file (`first_name,last_name,document,birthdate,number`).
 * @param agency The agency id.
 * @param options Batch size and chunk size.
 * @returns Chunks whose batches are numbered from 0.
 * @throws {BetsFileError} For a line too long for a frame, naming the line.
 */
export async function* csvBatchChunks(
  path: string,
  agency: number,
  options: ChunkOptions,
): AsyncGenerator<BatchChunk> {
  using file = await Deno.open(path, { read: true });
  const packer = new Packer(path, agency, options);
  const buf = new Uint8Array(READ_SIZE);
  let filled = 0;
  for (;;) {
    if (filled === buf.length) {
      // A whole buffer without a line break: that line cannot fit in any frame.
      throw new BetsFileError(
        path,
        packer.line + 1,
        `the line is over ${buf.length} bytes, more than the ${MAX_LINES_SIZE} a batch frame holds`,
      );
    }
    const n = await file.read(buf.subarray(filled));
    const eof = n === null;
    if (!eof) filled += n;
    const view = buf.subarray(0, filled);
    let start = 0;
    for (let lf = view.indexOf(LF); lf !== -1; lf = view.indexOf(LF, start)) {
      packer.line++;
      const blank = lf === start || (lf === start + 1 && view[start] === CR);
      if (!blank) {
        if (packer.room(lf + 1 - start)) yield packer.take(false)!;
        packer.add(view, start, lf + 1);
      }
      start = lf + 1;
    }
    if (eof) {
      const blank = start === filled || (filled === start + 1 && view[start] === CR);
      if (!blank) {
        packer.line++;
        if (packer.room(filled - start + 1)) yield packer.take(false)!;
        packer.addUnterminated(view, start, filled);
      }
      break;
    }
    // The pending run points into the buffer about to move.
    packer.flushRun();
    buf.copyWithin(0, start, filled);
    filled -= start;
  }
  const last = packer.take(true);
  if (last) yield last;
}
