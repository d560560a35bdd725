/**
 * The pure codec: typed messages ↔ frame bytes. No sockets, no `Deno.*`.
 *
 * Every frame is `magic u8 | type u8 | length u16 | body`, big-endian, at most
 * {@linkcode MAX_FRAME_SIZE} bytes. Strings are UTF-8 with a u8 length (`str8`) or, for
 * error text, a u16 length (`str16`). A BATCH carries its bets as CSV lines, the way the
 * agency's file holds them, so an agency forwards its lines without re-encoding them.
 *
 * @module
 */
import type { BetFields } from "../bet.ts";
import { joinCsvLine, splitCsvLine } from "../csv_line.ts";
import { ErrorCode, InvalidBetError, ProtocolError } from "../errors.ts";
import {
  type Batch,
  BATCH_HEADER_SIZE,
  HEADER_SIZE,
  MAGIC,
  MAX_BODY_SIZE,
  MAX_FRAME_SIZE,
  type Message,
  MessageType,
} from "./messages.ts";

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });
const LF = 0x0a;
const CR = 0x0d;

/** Refuses values a field cannot hold instead of letting `DataView` wrap them. */
function checkRange(value: number, max: number): void {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new RangeError(`Cannot encode integer: ${value} is outside 0..${max}`);
  }
}

/** Thrown internally when a write would pass the end of the frame. */
class FrameFull extends RangeError {}

/**
 * Builds one frame in a fixed buffer of {@linkcode MAX_FRAME_SIZE} bytes. Reusable:
 * {@linkcode FrameBuilder.finish} copies the frame out and resets.
 */
export class FrameBuilder {
  #buf = new Uint8Array(MAX_FRAME_SIZE);
  #view = new DataView(this.#buf.buffer);
  #pos = HEADER_SIZE;

  /** Bytes written so far, header included. */
  get size(): number {
    return this.#pos;
  }

  #room(n: number): void {
    if (this.#pos + n > MAX_FRAME_SIZE) {
      throw new FrameFull(`Cannot encode frame: it would exceed ${MAX_FRAME_SIZE} bytes`);
    }
  }

  /** Appends a u8. */
  u8(value: number): this {
    checkRange(value, 0xff);
    this.#room(1);
    this.#view.setUint8(this.#pos, value);
    this.#pos += 1;
    return this;
  }

  /** Appends a big-endian u16. */
  u16(value: number): this {
    checkRange(value, 0xffff);
    this.#room(2);
    this.#view.setUint16(this.#pos, value);
    this.#pos += 2;
    return this;
  }

  /** Appends a big-endian u32. */
  u32(value: number): this {
    checkRange(value, 0xffffffff);
    this.#room(4);
    this.#view.setUint32(this.#pos, value);
    this.#pos += 4;
    return this;
  }

  /** Appends UTF-8 text with a u8 length; text over 255 bytes is a `RangeError`. */
  str8(text: string): this {
    return this.#str(text, 1, 0xff);
  }

  /** Appends UTF-8 text with a u16 length. */
  str16(text: string): this {
    return this.#str(text, 2, MAX_BODY_SIZE);
  }

  #str(text: string, prefix: number, max: number): this {
    this.#room(prefix);
    const start = this.#pos + prefix;
    const limit = Math.min(start + max, MAX_FRAME_SIZE);
    const { read, written } = utf8.encodeInto(text, this.#buf.subarray(start, limit));
    if (read < text.length) {
      if (limit - start === max) {
        throw new RangeError(`Cannot encode text: "${text.slice(0, 20)}…" exceeds ${max} bytes`);
      }
      throw new FrameFull(`Cannot encode frame: it would exceed ${MAX_FRAME_SIZE} bytes`);
    }
    if (prefix === 1) this.#view.setUint8(this.#pos, written);
    else this.#view.setUint16(this.#pos, written);
    this.#pos = start + written;
    return this;
  }

  /** Appends a bet's fields. */
  bet(bet: BetFields): this {
    return this.str8(bet.firstName).str8(bet.lastName).str8(bet.document).str8(bet.birthdate)
      .u16(bet.number);
  }

  /**
   * Appends a bet as one CSV line ending in `\n` (minimal quoting, no length prefix), as a
   * BATCH carries it.
   *
   * @param bet The bet.
   * @throws {RangeError} If a field holds a `\n`, which would split the record (a `\r` is
   * quoted), or the line does not fit in the frame.
   */
  betLine(bet: BetFields): this {
    const fields = [bet.firstName, bet.lastName, bet.document, bet.birthdate, String(bet.number)];
    if (fields.some((f) => f.includes("\n"))) {
      throw new RangeError("Cannot encode bet: a field holds a line break");
    }
    const line = `${joinCsvLine(fields)}\n`;
    const { read, written } = utf8.encodeInto(line, this.#buf.subarray(this.#pos));
    if (read < line.length) {
      throw new FrameFull(`Cannot encode frame: it would exceed ${MAX_FRAME_SIZE} bytes`);
    }
    this.#pos += written;
    return this;
  }

  /**
   * Writes the header and returns a copy of the frame; the builder is then empty.
   *
   * @param type The message type.
   * @returns The whole frame.
   */
  finish(type: MessageType): Uint8Array {
    this.#view.setUint8(0, MAGIC);
    this.#view.setUint8(1, type);
    this.#view.setUint16(2, this.#pos - HEADER_SIZE);
    const frame = this.#buf.slice(0, this.#pos);
    this.#pos = HEADER_SIZE;
    return frame;
  }

  /** Drops everything written since the last {@linkcode FrameBuilder.finish}. */
  reset(): void {
    this.#pos = HEADER_SIZE;
  }
}

function writeBody(b: FrameBuilder, msg: Message): void {
  switch (msg.type) {
    case MessageType.HELLO:
      b.u16(msg.agency).str8(msg.secret);
      return;
    case MessageType.WELCOME:
      b.u32(msg.nextSeq).u8(msg.done ? 1 : 0);
      return;
    case MessageType.BET:
      b.u32(msg.seq).bet(msg.bet);
      return;
    case MessageType.BATCH:
      if (msg.bets.length === 0) throw new RangeError("Cannot encode batch: it holds no bets");
      b.u16(msg.agency).u32(msg.seq).u16(msg.bets.length);
      for (const bet of msg.bets) b.betLine(bet);
      return;
    case MessageType.BATCH_ACK:
      b.u32(msg.seq).u16(msg.status).u16(msg.count).str16(msg.reason);
      return;
    case MessageType.DONE:
      b.u16(msg.agency).u32(msg.batches);
      return;
    case MessageType.DONE_ACK:
      b.u16(msg.pending);
      return;
    case MessageType.WINNERS_QUERY:
      b.u16(msg.agency);
      return;
    case MessageType.WINNERS:
      b.u32(msg.total).u8(msg.last ? 1 : 0).u16(msg.documents.length);
      for (const document of msg.documents) b.str8(document);
      return;
    case MessageType.NOT_READY:
      b.u16(msg.pending).u32(msg.retryAfterMs).u16(msg.pendingAgencies.length);
      for (const agency of msg.pendingAgencies) b.u16(agency);
      return;
    case MessageType.TOTAL_QUERY:
    case MessageType.BYE:
      return;
    case MessageType.TOTAL:
      b.u32(msg.winners).u16(msg.pending).u32(msg.retryAfterMs);
      return;
    case MessageType.ERROR:
      b.u16(msg.code).u32(msg.retryAfterMs).str16(msg.message);
      return;
  }
}

/**
 * Encodes a message as one frame.
 *
 * @param msg The message.
 * @returns The frame bytes.
 * @throws {RangeError} If the frame would exceed {@linkcode MAX_FRAME_SIZE} bytes or a
 * string its length prefix.
 *
 * @example Usage
 * ```ts
 * encodeMessage({ type: MessageType.TOTAL_QUERY }); // Uint8Array [0xfb, 0x0b, 0, 0]
 * ```
 */
export function encodeMessage(msg: Message): Uint8Array {
  try {
    writeBody(shared, msg);
    return shared.finish(msg.type);
  } catch (error) {
    shared.reset();
    throw error;
  }
}

/** Reused by every `encodeMessage` call: `finish` copies the frame out. */
const shared = new FrameBuilder();

/**
 * Writes a BATCH frame's first {@linkcode BATCH_HEADER_SIZE} bytes (frame header, agency,
 * sequence, count) in front of lines already in `out`: how an agency sends its CSV lines
 * without copying them through a builder.
 *
 * @param out The buffer holding the frame.
 * @param offset Where the frame starts; its lines follow at `offset + BATCH_HEADER_SIZE`.
 * @param batch Agency, sequence and how many lines follow.
 * @param linesLength Bytes of lines, each ending in `\n`.
 * @returns The offset just past the frame.
 * @throws {RangeError} If the frame would exceed {@linkcode MAX_FRAME_SIZE} bytes or a
 * value its field.
 */
export function encodeBatchHeader(
  out: Uint8Array,
  offset: number,
  batch: { readonly agency: number; readonly seq: number; readonly count: number },
  linesLength: number,
): number {
  checkRange(batch.agency, 0xffff);
  checkRange(batch.seq, 0xffffffff);
  checkRange(batch.count, 0xffff);
  checkRange(linesLength, MAX_FRAME_SIZE - BATCH_HEADER_SIZE);
  const view = new DataView(out.buffer, out.byteOffset + offset, BATCH_HEADER_SIZE);
  view.setUint8(0, MAGIC);
  view.setUint8(1, MessageType.BATCH);
  view.setUint16(2, BATCH_HEADER_SIZE - HEADER_SIZE + linesLength);
  view.setUint16(4, batch.agency);
  view.setUint32(6, batch.seq);
  view.setUint16(10, batch.count);
  return offset + BATCH_HEADER_SIZE + linesLength;
}

/** Reads typed fields from a body, failing with `MALFORMED` on a short body. */
class BodyReader {
  readonly #body: Uint8Array;
  readonly #view: DataView;
  #pos = 0;

  constructor(body: Uint8Array) {
    this.#body = body;
    this.#view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  }

  #need(n: number, what: string): void {
    if (this.#pos + n > this.#body.length) {
      throw new ProtocolError(
        ErrorCode.MALFORMED,
        `Cannot decode ${what}: body ends at byte ${this.#body.length}, needed ${this.#pos + n}`,
      );
    }
  }

  u8(what: string): number {
    this.#need(1, what);
    return this.#view.getUint8(this.#pos++);
  }

  u16(what: string): number {
    this.#need(2, what);
    const value = this.#view.getUint16(this.#pos);
    this.#pos += 2;
    return value;
  }

  u32(what: string): number {
    this.#need(4, what);
    const value = this.#view.getUint32(this.#pos);
    this.#pos += 4;
    return value;
  }

  str(prefix: 1 | 2, what: string): string {
    const length = prefix === 1 ? this.u8(what) : this.u16(what);
    this.#need(length, what);
    // Every successful BATCH_ACK has an empty reason: no view, no decoder call.
    if (length === 0) return "";
    this.#pos += length;
    return this.#text(this.#body.subarray(this.#pos - length, this.#pos), what);
  }

  /** The rest of the body, as bytes. */
  rest(): Uint8Array {
    const bytes = this.#body.subarray(this.#pos);
    this.#pos = this.#body.length;
    return bytes;
  }

  #text(bytes: Uint8Array, what: string): string {
    try {
      return strictUtf8.decode(bytes);
    } catch (error) {
      throw new ProtocolError(ErrorCode.MALFORMED, `Cannot decode ${what}: invalid UTF-8`, {
        cause: error,
      });
    }
  }

  bet(): BetFields {
    return {
      firstName: this.str(1, "first name"),
      lastName: this.str(1, "last name"),
      document: this.str(1, "document"),
      birthdate: this.str(1, "birthdate"),
      number: this.u16("number"),
    };
  }

  end(what: string): void {
    if (this.#pos !== this.#body.length) {
      throw new ProtocolError(
        ErrorCode.MALFORMED,
        `Cannot decode ${what}: ${
          this.#body.length - this.#pos
        } unexpected bytes after the message`,
      );
    }
  }
}

/**
 * Reads one BATCH line as a bet; a line that cannot be one is an invalid bet (the batch
 * is refused, the connection stays), not a malformed frame.
 */
function decodeBetLine(line: string, index: number, count: number): BetFields {
  const fail = (problem: string): never => {
    throw new InvalidBetError(`Invalid bet ${index + 1} of ${count}: ${problem}`);
  };
  const fields = splitCsvLine(line) ?? fail("unbalanced quotes");
  if (fields.length !== 5) fail(`expected 5 fields, found ${fields.length}`);
  const [firstName, lastName, document, birthdate, number] = fields as [
    string,
    string,
    string,
    string,
    string,
  ];
  if (!/^[0-9]{1,4}$/.test(number)) fail(`number "${number}" is not 0-9999`);
  return { firstName, lastName, document, birthdate, number: Number(number) };
}

/** Keeps a leading BOM: only the one opening a batch's text is dropped. */
const strictUtf8KeepingBom = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * One BATCH line as text, without its line ending. A line that is not UTF-8 (a file saved
 * as Latin-1, say) is an invalid bet too: the frame around it is sound.
 */
function lineText(line: Uint8Array, index: number, count: number): string {
  const end = line.length > 0 && line[line.length - 1] === CR ? line.length - 1 : line.length;
  try {
    return (index === 0 ? strictUtf8 : strictUtf8KeepingBom).decode(line.subarray(0, end));
  } catch {
    throw new InvalidBetError(`Invalid bet ${index + 1} of ${count}: not UTF-8 text`);
  }
}

function decodeBatch(r: BodyReader): Batch {
  const agency = r.u16("batch agency");
  const seq = r.u32("batch sequence");
  const count = r.u16("batch count");
  // An empty batch would take a sequence for nothing (an impostor's could make an agency skip one).
  if (count === 0) {
    throw new ProtocolError(ErrorCode.MALFORMED, "Cannot decode batch: it holds no bets");
  }
  const bytes = r.rest();
  if (bytes.length > 0 && bytes[bytes.length - 1] !== LF) {
    throw new ProtocolError(
      ErrorCode.MALFORMED,
      "Cannot decode batch: its last line does not end in a line break",
    );
  }
  // Split on the byte: a line break never occurs inside a UTF-8 character (nor a Latin-1 one).
  const lines: Uint8Array[] = [];
  for (let start = 0; start < bytes.length;) {
    const end = bytes.indexOf(LF, start);
    lines.push(bytes.subarray(start, end));
    start = end + 1;
  }
  if (lines.length !== count) {
    throw new ProtocolError(
      ErrorCode.MALFORMED,
      `Cannot decode batch: its header says ${count} bets, its body holds ${lines.length} line${
        lines.length === 1 ? "" : "s"
      }`,
    );
  }
  const bets = lines.map((line, i) => decodeBetLine(lineText(line, i, count), i, count));
  return { type: MessageType.BATCH, agency, seq, bets };
}

function decodeWith(type: number, r: BodyReader): Message {
  switch (type) {
    case MessageType.HELLO:
      return { type, agency: r.u16("hello agency"), secret: r.str(1, "hello secret") };
    case MessageType.WELCOME:
      return { type, nextSeq: r.u32("welcome sequence"), done: r.u8("welcome done") === 1 };
    case MessageType.BET:
      return { type, seq: r.u32("bet sequence"), bet: r.bet() };
    case MessageType.BATCH:
      return decodeBatch(r);
    case MessageType.BATCH_ACK:
      return {
        type,
        seq: r.u32("ack sequence"),
        status: r.u16("ack status"),
        count: r.u16("ack count"),
        reason: r.str(2, "ack reason"),
      };
    case MessageType.DONE:
      return { type, agency: r.u16("done agency"), batches: r.u32("done batches") };
    case MessageType.DONE_ACK:
      return { type, pending: r.u16("done-ack pending") };
    case MessageType.WINNERS_QUERY:
      return { type, agency: r.u16("winners-query agency") };
    case MessageType.WINNERS: {
      const total = r.u32("winners total");
      const last = r.u8("winners last") === 1;
      const count = r.u16("winners count");
      const documents: string[] = [];
      for (let i = 0; i < count; i++) documents.push(r.str(1, "winner document"));
      return { type, total, last, documents };
    }
    case MessageType.NOT_READY: {
      const pending = r.u16("not-ready pending");
      const retryAfterMs = r.u32("not-ready retry");
      const count = r.u16("not-ready count");
      const pendingAgencies: number[] = [];
      for (let i = 0; i < count; i++) pendingAgencies.push(r.u16("not-ready agency"));
      return { type, pending, retryAfterMs, pendingAgencies };
    }
    case MessageType.TOTAL_QUERY:
    case MessageType.BYE:
      return { type };
    case MessageType.TOTAL:
      return {
        type,
        winners: r.u32("total winners"),
        pending: r.u16("total pending"),
        retryAfterMs: r.u32("total retry"),
      };
    case MessageType.ERROR:
      return {
        type,
        code: r.u16("error code"),
        retryAfterMs: r.u32("error retry"),
        message: r.str(2, "error message"),
      };
    default:
      throw new ProtocolError(
        ErrorCode.UNEXPECTED_MESSAGE,
        `Cannot decode frame: unknown message type 0x${type.toString(16).padStart(2, "0")}`,
      );
  }
}

/**
 * Decodes a frame's body into a typed message.
 *
 * @param type The frame's type byte.
 * @param body The body, exactly as long as the header said.
 * @returns The message.
 * @throws {ProtocolError} `MALFORMED` for a short, long or non-UTF-8 body,
 * `UNEXPECTED_MESSAGE` for an unknown type.
 */
export function decodeMessage(type: number, body: Uint8Array): Message {
  const reader = new BodyReader(body);
  const message = decodeWith(type, reader);
  reader.end(`message type 0x${type.toString(16).padStart(2, "0")}`);
  return message;
}
