/**
 * The agency's fast path from CSV file to BATCH frames: the file is read in large chunks
 * and its lines go into the frames as they are: a BATCH carries CSV lines, so the agency
 * only finds where lines end, skips blank ones and copies runs of lines with one `set`.
 * Checking the bets is the server's job (it must anyway, and says which bet was wrong).
 *
 * @module
 */
import { CR, LF } from "../shared/bytes.ts";
import { errorText, osErrorReason } from "../shared/errors.ts";
import { BATCH_HEADER_SIZE, encodeBatchHeader, MAX_FRAME_SIZE } from "../shared/protocol/mod.ts";

/** The agency's CSV, or a line of it, cannot be read or sent at all. */
export class BetsFileError extends SyntaxError {
  /** Names the file and the (1-based) `line`, unless the whole file is at fault. */
  constructor(path: string, line: number | undefined, detail: string, options?: ErrorOptions) {
    const where = line === undefined ? path : `${path} line ${line}`;
    super(`Cannot read bets from ${where}: ${detail}`, options);
    this.name = "BetsFileError";
  }
}

/** What an agency's data path must name, for the errors that say it does not. */
const EXPECTED_FILE = "expected this agency's CSV file of bets (data.path or CLI_DATA_PATH)";

/** An OS error opening or reading the bets file, in words that name no syscall. */
function fileProblem(error: unknown): string {
  const denied = `permission denied, ${EXPECTED_FILE} that this program may read`;
  return osErrorReason(error, [
    [Deno.errors.NotFound, `no such file, ${EXPECTED_FILE}`],
    [Deno.errors.IsADirectory, `it is a directory, ${EXPECTED_FILE}`],
    [NotRegularFile, `not a regular file (a fifo or socket), ${EXPECTED_FILE}`],
    [Deno.errors.PermissionDenied, denied],
    [Deno.errors.NotCapable, denied],
  ]) ?? errorText(error);
}

/** A bets file that is a fifo or a socket: it cannot be read twice (the agency seeks back). */
class NotRegularFile extends Error {}

/**
 * Throws for a directory, a fifo or a socket; a device such as `/dev/null` (no bets) reads
 * like a file.
 */
function notRegular(path: string, info: Deno.FileInfo): void {
  // Opening a directory for reading succeeds on Linux; only its first read fails.
  if (info.isDirectory) throw new Deno.errors.IsADirectory(path);
  if (info.isFifo || info.isSocket) throw new NotRegularFile(path);
}

/**
 * Opens an agency's CSV (the caller closes it), refusing a missing path, a directory (what
 * Docker mounts in place of a missing file), a fifo or socket, or an unreadable file.
 *
 * @throws {BetsFileError} Naming the path, what is wrong and what was expected.
 */
export async function openBetsFile(path: string): Promise<Deno.FsFile> {
  let file: Deno.FsFile | undefined;
  try {
    // Before opening: opening a fifo waits for a writer, and the file is read twice (seeks).
    notRegular(path, await Deno.stat(path));
    file = await Deno.open(path, { read: true });
    notRegular(path, await file.stat());
    return file;
  } catch (error) {
    file?.close();
    throw new BetsFileError(path, undefined, fileProblem(error), { cause: error });
  }
}

/**
 * One batch inside a {@linkcode BatchChunk}: its sequence number (from 0), its bets, where
 * its frame starts and ends in the chunk's bytes, and the file's lines (1-based) of its
 * first and last bet.
 */
export interface ChunkBatch {
  readonly seq: number;
  readonly count: number;
  readonly start: number;
  readonly end: number;
  readonly firstLine: number;
  readonly lastLine: number;
}

/** BATCH frames packed back to back, to go out in one write. */
export interface BatchChunk {
  /** The frames; a view into a reused buffer, valid until the generator resumes. */
  readonly bytes: Uint8Array;
  /** The batches, in order. */
  readonly batches: readonly ChunkBatch[];
}

/** Options of {@linkcode csvBatchChunks}: path (for errors), agency, batch size, frames a chunk. */
export interface ChunkOptions {
  readonly path: string;
  readonly agency: number;
  readonly maxAmount: number;
  readonly framesPerChunk: number;
}

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
  /** Lines seen so far. */
  #line = 0;

  constructor(options: ChunkOptions) {
    this.#path = options.path;
    this.#agency = options.agency;
    this.#maxAmount = Math.max(1, options.maxAmount);
    this.#framesPerChunk = Math.max(1, options.framesPerChunk);
    this.#chunk = new Uint8Array(this.#framesPerChunk * MAX_FRAME_SIZE);
  }

  /** Whether the chunk holds all the frames it can: take it before scanning on. */
  get full(): boolean {
    return this.#batches.length >= this.#framesPerChunk;
  }

  /** The line after the last one seen (for errors about a line not yet whole). */
  get nextLine(): number {
    return this.#line + 1;
  }

  /** Copies the pending run into the chunk; due before its source buffer changes. */
  flushRun(): void {
    if (this.#src === undefined) return;
    const length = this.#runEnd - this.#runStart;
    this.#chunk.set(this.#src.subarray(this.#runStart, this.#runEnd), this.#end - length);
    this.#src = undefined;
  }

  /** Closes the open batch into the chunk, if it has bets. */
  #finishBatch(): void {
    if (this.#count === 0) return;
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
  }

  /**
   * Hands out the chunk packed so far and starts anew. Called when {@linkcode
   * Packer.full}, or with `last` to close the open batch at the end of the file.
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

  /** Closes the open batch to make room for a line of `size` bytes. */
  #makeRoom(size: number): void {
    if (size > MAX_LINES_SIZE) {
      throw new BetsFileError(
        this.#path,
        this.#line,
        `the line is ${size} bytes, more than the ${MAX_LINES_SIZE} a batch frame holds`,
      );
    }
    this.#finishBatch();
  }

  /**
   * Takes the whole lines of `buf` from `start` (blank ones skipped) until the chunk is
   * full or none is left; returns where the first line not taken starts. The agency's hot
   * loop: state lives in locals, and the fields are touched only when a batch closes.
   */
  scan(buf: Uint8Array, start: number): number {
    if (this.#src !== buf) this.flushRun();
    const max = this.#maxAmount;
    let count = this.#count;
    let end = this.#end;
    let limit = this.#frameStart + MAX_FRAME_SIZE;
    let line = this.#line;
    let lastLine = this.#lastLine;
    let runStart = this.#src === undefined ? -1 : this.#runStart;
    let runEnd = this.#src === undefined ? -1 : this.#runEnd;
    for (let lf = buf.indexOf(LF, start); lf !== -1; lf = buf.indexOf(LF, start)) {
      line++;
      const size = lf + 1 - start;
      if (size > 2 || (size === 2 && buf[start] !== CR)) {
        if (count === max || end + size > limit) {
          this.#save(buf, count, end, line, lastLine, runStart, runEnd);
          this.#makeRoom(size);
          if (this.full) {
            this.#line = line - 1;
            return start;
          }
          count = 0;
          end = this.#end;
          limit = this.#frameStart + MAX_FRAME_SIZE;
          runStart = runEnd = -1;
        }
        if (count === 0) this.#firstLine = line;
        if (runEnd !== start) {
          if (runEnd !== -1) {
            this.#chunk.set(buf.subarray(runStart, runEnd), end - runEnd + runStart);
          }
          runStart = start;
        }
        runEnd = lf + 1;
        end += size;
        count++;
        lastLine = line;
      }
      start = lf + 1;
    }
    this.#save(buf, count, end, line, lastLine, runStart, runEnd);
    return start;
  }

  #save(
    buf: Uint8Array,
    count: number,
    end: number,
    line: number,
    lastLine: number,
    runStart: number,
    runEnd: number,
  ): void {
    this.#count = count;
    this.#end = end;
    this.#line = line;
    this.#lastLine = lastLine;
    this.#src = runEnd === -1 ? undefined : buf;
    this.#runStart = runStart;
    this.#runEnd = runEnd;
  }
}

/**
 * Reads an agency's CSV (`file`, from {@linkcode openBetsFile}) from its start and yields its
 * BATCH frames, numbered from 0, back to back in chunks of up to `framesPerChunk`: at most
 * `maxAmount` bets and 8 KiB a frame, each bet the file's line as it is, blank lines skipped.
 * Memory stays flat whatever the file's size.
 *
 * @throws {BetsFileError} Naming the file and line, unreadable or too long for a frame.
 */
export function* csvBatchChunks(file: Deno.FsFile, options: ChunkOptions): Generator<BatchChunk> {
  file.seekSync(0, Deno.SeekMode.Start);
  const packer = new Packer(options);
  const buf = new Uint8Array(READ_SIZE);
  let filled = 0;
  for (let eof = false; !eof;) {
    if (filled === buf.length) {
      // A whole buffer without a line break: that line cannot fit in any frame.
      throw new BetsFileError(
        options.path,
        packer.nextLine,
        `the line is over ${buf.length} bytes, more than the ${MAX_LINES_SIZE} a batch frame holds`,
      );
    }
    // A sync read: 256 KiB of a local file take microseconds, less than an async op's
    // round trip through Deno's thread pool, and the agency has nothing to do meanwhile.
    const n = readChunk(file, buf.subarray(filled), options.path, packer.nextLine);
    eof = n === null;
    if (n !== null) filled += n;
    // What is left at the end is a last line without an ending: it gets one, as every
    // line in a frame has.
    else if (filled > 0) buf[filled++] = LF;
    const view = buf.subarray(0, filled);
    let start = 0;
    for (;;) {
      start = packer.scan(view, start);
      if (!packer.full) break;
      yield packer.take(false)!;
    }
    // The pending run points into the buffer about to move.
    packer.flushRun();
    buf.copyWithin(0, start, filled);
    filled -= start;
  }
  const last = packer.take(true);
  if (last) yield last;
}

/** One read of the bets file; a failure names the file and the line it was reading. */
function readChunk(file: Deno.FsFile, into: Uint8Array, path: string, line: number): number | null {
  try {
    return file.readSync(into);
  } catch (error) {
    throw new BetsFileError(path, line, fileProblem(error), { cause: error });
  }
}
