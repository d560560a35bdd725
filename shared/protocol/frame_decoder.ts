/**
 * A chunk-fed frame splitter: bytes in any slicing, whole frames out. Pure: no sockets.
 *
 * @module
 */
import { ErrorCode, malformed, ProtocolError } from "../errors.ts";
import { HEADER_SIZE, MAGIC, MAX_BODY_SIZE, MAX_FRAME_SIZE } from "./messages.ts";

/**
 * A frame whose header was checked: its type byte and its body, not decoded yet, a view
 * into the decoder's buffer valid until the next {@linkcode FrameDecoder.push} or
 * {@linkcode FrameDecoder.commit}.
 */
export interface RawFrame {
  readonly type: number;
  readonly body: Uint8Array;
}

/**
 * Options of {@linkcode FrameDecoder}: the largest body accepted (a header declaring more
 * is rejected before its body arrives; 8188 by default), and the most bytes of buffer that
 * reads fill (65536 by default; at least two whole frames).
 */
export interface FrameDecoderOptions {
  readonly maxBodySize?: number;
  readonly bufferSize?: number;
}

/**
 * Splits a byte stream into frames. Memory is bounded: one buffer of two whole frames, which
 * grows once to `bufferSize` bytes when a read fills all the space it was given (a peer
 * sending faster than it is read). A short connection so holds 16 KiB, not 64 KiB.
 *
 * @example Usage
 * ```ts
 * const decoder = new FrameDecoder();
 * decoder.push(bytes);
 * for (let frame = decoder.next(); frame; frame = decoder.next()) handle(frame);
 * ```
 */
export class FrameDecoder {
  readonly #maxBody: number;
  readonly #capacity: number;
  #buf: Uint8Array;
  #start = 0;
  #end = 0;
  /** The length of the space last handed out, so `commit` can tell a read that filled it. */
  #offered = 0;

  constructor(options: FrameDecoderOptions = {}) {
    this.#maxBody = Math.min(options.maxBodySize ?? MAX_BODY_SIZE, MAX_BODY_SIZE);
    const least = MAX_FRAME_SIZE * 2;
    this.#capacity = Math.max(options.bufferSize ?? 65536, least);
    this.#buf = new Uint8Array(least);
  }

  /** The bytes of buffer held now (grows at most once, to `bufferSize`). */
  get bufferLength(): number {
    return this.#buf.length;
  }

  /** Bytes received but not yet returned as frames (non-zero at EOF means a cut frame). */
  get buffered(): number {
    return this.#end - this.#start;
  }

  /** The free tail of the buffer (never empty), to read into without a copy; then `commit`. */
  space(): Uint8Array {
    if (this.#buf.length - this.#end < MAX_FRAME_SIZE) this.#compact();
    const space = this.#buf.subarray(this.#end);
    this.#offered = space.length;
    return space;
  }

  /** Marks `n` bytes read into {@linkcode FrameDecoder.space} as received. */
  commit(n: number): void {
    this.#end += n;
    if (n === this.#offered && this.#buf.length < this.#capacity) this.#grow();
    this.#offered = 0;
  }

  /** Copies a chunk in; between pushes, call `next` until it returns `undefined`. */
  push(chunk: Uint8Array): void {
    let offset = 0;
    while (offset < chunk.length) {
      const space = this.space();
      const n = Math.min(space.length, chunk.length - offset);
      space.set(chunk.subarray(offset, offset + n));
      this.commit(n);
      offset += n;
      if (offset < chunk.length && this.#buf.length - this.#end === 0) {
        throw new RangeError("Cannot buffer chunk: call next() between pushes");
      }
    }
  }

  /**
   * Returns the next whole frame, or `undefined` when more bytes are needed.
   *
   * @throws {ProtocolError} `MALFORMED` for a bad magic byte, `LIMIT_EXCEEDED` for a length
   * over the maximum (known as soon as the header is in).
   */
  next(): RawFrame | undefined {
    const available = this.#end - this.#start;
    if (available < 1) return undefined;
    const magic = this.#buf[this.#start]!;
    if (magic !== MAGIC) {
      const first = `first byte 0x${magic.toString(16)} is not 0x${MAGIC.toString(16)}`;
      throw malformed("frame", first);
    }
    if (available < HEADER_SIZE) return undefined;
    const type = this.#buf[this.#start + 1]!;
    const length = (this.#buf[this.#start + 2]! << 8) | this.#buf[this.#start + 3]!;
    if (length > this.#maxBody) {
      throw new ProtocolError(
        ErrorCode.LIMIT_EXCEEDED,
        `Cannot decode frame: length ${length} exceeds the maximum of ${this.#maxBody}`,
      );
    }
    if (available < HEADER_SIZE + length) return undefined;
    const bodyStart = this.#start + HEADER_SIZE;
    this.#start = bodyStart + length;
    if (this.#start === this.#end) this.#start = this.#end = 0;
    return { type, body: this.#buf.subarray(bodyStart, bodyStart + length) };
  }

  #grow(): void {
    const bigger = new Uint8Array(this.#capacity);
    bigger.set(this.#buf.subarray(this.#start, this.#end));
    this.#end -= this.#start;
    this.#start = 0;
    this.#buf = bigger;
  }

  #compact(): void {
    if (this.#start === 0) return;
    this.#buf.copyWithin(0, this.#start, this.#end);
    this.#end -= this.#start;
    this.#start = 0;
  }
}
