/**
 * The agency's fast path from CSV file to BATCH frames: the file is read in large chunks
 * and each line's fields are copied as bytes straight into the frame, never decoded into
 * strings: the bytes on the wire are those `encodeMessage` gives for the same bets. Lines
 * with quotes (rare) are split by `splitCsvLine`. A hand-written scanner
 * rather than `csv-parse` because this is the agency's whole hot path: building a record
 * object and strings per line cost ~10x more, and loading the package ~20 ms of start-up.
 *
 * @module
 */
import { splitCsvLine } from "../shared/csv_line.ts";
import { FrameBuilder, MAX_FRAME_SIZE, MessageType } from "../shared/protocol/mod.ts";

/** A line of the agency's CSV could not be read as a bet. */
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

const COMMA = 0x2c;
const QUOTE = 0x22;
const LF = 0x0a;
const CR = 0x0d;
const ZERO = 0x30;
const NINE = 0x39;

/** Bytes read from the file at once. */
const READ_SIZE = 256 * 1024;

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** Packs lines into frames; one per agency file. */
class Packer {
  readonly #builder = new FrameBuilder();
  readonly #spans = new Int32Array(8);
  readonly #path: string;
  readonly #agency: number;
  readonly #maxAmount: number;
  readonly #framesPerChunk: number;
  readonly #chunk: Uint8Array;
  #chunkEnd = 0;
  #batches: ChunkBatch[] = [];
  #seq = 0;
  #count = 0;
  line = 0;

  constructor(path: string, agency: number, options: ChunkOptions) {
    this.#path = path;
    this.#agency = agency;
    this.#maxAmount = options.maxAmount;
    this.#framesPerChunk = Math.max(1, options.framesPerChunk);
    this.#chunk = new Uint8Array(this.#framesPerChunk * MAX_FRAME_SIZE);
    this.#start();
  }

  #start(): void {
    this.#builder.u16(this.#agency).u32(this.#seq).u16(0);
    this.#count = 0;
  }

  /** Closes the current batch into the chunk, if it has bets; true when the chunk is full. */
  #finishBatch(): boolean {
    if (this.#count === 0) return false;
    this.#builder.patchU16(6, this.#count);
    const start = this.#chunkEnd;
    this.#chunkEnd = this.#builder.finishInto(MessageType.BATCH, this.#chunk, start);
    this.#batches.push({ seq: this.#seq, count: this.#count, start, end: this.#chunkEnd });
    this.#seq++;
    this.#start();
    return this.#batches.length >= this.#framesPerChunk;
  }

  /** Hands out the chunk packed so far (closing the open batch if `last`) and starts anew. */
  take(last: boolean): BatchChunk | undefined {
    if (last) this.#finishBatch();
    if (this.#batches.length === 0) return undefined;
    const chunk = { bytes: this.#chunk.subarray(0, this.#chunkEnd), batches: this.#batches };
    this.#batches = [];
    this.#chunkEnd = 0;
    return chunk;
  }

  #fail(detail: string): never {
    throw new BetsFileError(this.#path, this.line, detail);
  }

  /** Adds the line `buf[start, end)` (no line ending); true when the chunk is full. */
  add(buf: Uint8Array, start: number, end: number): boolean {
    const spans = this.#spans;
    let field = 0;
    let fieldStart = start;
    for (let i = start; i < end; i++) {
      const byte = buf[i]!;
      if (byte === QUOTE) return this.#addQuoted(buf.subarray(start, end));
      if (byte === COMMA) {
        if (field === 4) this.#fail("expected 5 fields, found more");
        spans[field * 2] = fieldStart;
        spans[field * 2 + 1] = i;
        field++;
        fieldStart = i + 1;
      }
    }
    if (field !== 4) this.#fail(`expected 5 fields, found ${field + 1}`);
    const digits = end - fieldStart;
    let number = 0;
    for (let i = fieldStart; i < end; i++) {
      const byte = buf[i]!;
      if (byte < ZERO || byte > NINE || digits > 4) {
        this.#fail(`number "${decoder.decode(buf.subarray(fieldStart, end))}" is not 0-9999`);
      }
      number = number * 10 + byte - ZERO;
    }
    if (digits === 0) this.#fail('number "" is not 0-9999');
    return this.#append(buf, number);
  }

  #append(src: Uint8Array, number: number): boolean {
    let fits: boolean;
    try {
      fits = this.#count < this.#maxAmount && this.#builder.rawBet(src, this.#spans, number);
    } catch (error) {
      this.#fail(error instanceof Error ? error.message : String(error));
    }
    if (fits) {
      this.#count++;
      return false;
    }
    const full = this.#finishBatch();
    if (!this.#builder.rawBet(src, this.#spans, number)) {
      this.#fail("the bet does not fit in one frame");
    }
    this.#count++;
    return full;
  }

  #addQuoted(line: Uint8Array): boolean {
    const fields = splitCsvLine(decoder.decode(line));
    if (fields === undefined) this.#fail("unbalanced quotes");
    if (fields.length !== 5) this.#fail(`expected 5 fields, found ${fields.length}`);
    const number = fields[4]!;
    if (!/^\d{1,4}$/.test(number)) this.#fail(`number "${number}" is not 0-9999`);
    const bytes = fields.slice(0, 4).map((f) => encoder.encode(f));
    const joined = new Uint8Array(bytes.reduce((n, b) => n + b.length, 0));
    let offset = 0;
    bytes.forEach((b, i) => {
      joined.set(b, offset);
      this.#spans[i * 2] = offset;
      this.#spans[i * 2 + 1] = offset + b.length;
      offset += b.length;
    });
    return this.#append(joined, Number(number));
  }
}

/**
 * Reads an agency's CSV and yields its BATCH frames, packed back to back in chunks of
 * up to `framesPerChunk` frames: at most `maxAmount` bets per batch and never over
 * 8 KiB per frame. Memory stays flat whatever the file's size.
 *
 * @param path The CSV file (`first_name,last_name,document,birthdate,number`).
 * @param agency The agency id.
 * @param options Batch size and chunk size.
 * @returns Chunks whose batches are numbered from 0.
 * @throws {BetsFileError} For a line without 5 fields, a bad number or a field over 255
 * bytes, naming the line.
 */
export async function* csvBatchChunks(
  path: string,
  agency: number,
  options: ChunkOptions,
): AsyncGenerator<BatchChunk> {
  using file = await Deno.open(path, { read: true });
  const packer = new Packer(path, agency, options);
  let buf = new Uint8Array(READ_SIZE);
  let filled = 0;
  for (;;) {
    if (filled === buf.length) {
      // A line longer than the buffer: grow it (a valid line is far shorter).
      const bigger = new Uint8Array(buf.length * 2);
      bigger.set(buf);
      buf = bigger;
    }
    const n = await file.read(buf.subarray(filled));
    const eof = n === null;
    if (!eof) filled += n;
    const view = buf.subarray(0, filled);
    let start = 0;
    for (let lf = view.indexOf(LF); lf !== -1; lf = view.indexOf(LF, start)) {
      packer.line++;
      const end = lf > start && view[lf - 1] === CR ? lf - 1 : lf;
      if (end > start && packer.add(view, start, end)) yield packer.take(false)!;
      start = lf + 1;
    }
    if (eof) {
      if (start < filled) {
        packer.line++;
        const end = buf[filled - 1] === CR ? filled - 1 : filled;
        if (end > start && packer.add(buf, start, end)) yield packer.take(false)!;
      }
      break;
    }
    buf.copyWithin(0, start, filled);
    filled -= start;
  }
  const last = packer.take(true);
  if (last) yield last;
}
