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
import { CR, LF } from "../bytes.ts";
import { joinCsvLine, splitCsvLine } from "../csv_line.ts";
import { ErrorCode, InvalidBetError, malformed, ProtocolError } from "../errors.ts";
import {
  type Batch,
  BATCH_BODY,
  BATCH_HEADER_SIZE,
  type BatchHeader,
  HEADER_SIZE,
  MAGIC,
  MAX_BODY_SIZE,
  MAX_FRAME_SIZE,
  type Message,
  MessageType,
} from "./messages.ts";

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** Refuses values a field cannot hold instead of letting `DataView` wrap them. */
function checkRange(value: number, max: number): void {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new RangeError(`Cannot encode integer: ${value} is outside 0..${max}`);
  }
}

function frameFull(): RangeError {
  return new RangeError(`Cannot encode frame: it would exceed ${MAX_FRAME_SIZE} bytes`);
}

/** Builds one frame at a time in a fixed buffer of {@linkcode MAX_FRAME_SIZE} bytes. */
class FrameWriter {
  readonly #buf = new Uint8Array(MAX_FRAME_SIZE);
  readonly #view = new DataView(this.#buf.buffer);
  #pos = HEADER_SIZE;

  /** Empties the writer for a new frame. */
  start(): this {
    this.#pos = HEADER_SIZE;
    return this;
  }

  u8(value: number): this {
    return this.#int(value, 1);
  }

  u16(value: number): this {
    return this.#int(value, 2);
  }

  u32(value: number): this {
    return this.#int(value, 4);
  }

  /** Appends an unsigned big-endian integer of `size` bytes. */
  #int(value: number, size: 1 | 2 | 4): this {
    checkRange(value, 2 ** (8 * size) - 1);
    if (this.#pos + size > MAX_FRAME_SIZE) throw frameFull();
    if (size === 1) this.#view.setUint8(this.#pos, value);
    else if (size === 2) this.#view.setUint16(this.#pos, value);
    else this.#view.setUint32(this.#pos, value);
    this.#pos += size;
    return this;
  }

  /** Appends UTF-8 text after its length in `prefix` bytes (a `RangeError` when too long). */
  str(text: string, prefix: 1 | 2): this {
    const max = prefix === 1 ? 0xff : MAX_BODY_SIZE;
    const at = this.#pos;
    this.#int(0, prefix);
    const limit = Math.min(this.#pos + max, MAX_FRAME_SIZE);
    const { read, written } = utf8.encodeInto(text, this.#buf.subarray(this.#pos, limit));
    if (read < text.length) {
      if (limit - this.#pos !== max) throw frameFull();
      // The text itself stays out of the message: it may be a secret.
      const bytes = utf8.encode(text).length;
      throw new RangeError(`Cannot encode text: ${bytes} bytes exceed the maximum of ${max}`);
    }
    if (prefix === 1) this.#view.setUint8(at, written);
    else this.#view.setUint16(at, written);
    this.#pos += written;
    return this;
  }

  /** Appends a bet's fields, as a BET carries them. */
  bet(bet: BetFields): this {
    return this.str(bet.firstName, 1).str(bet.lastName, 1).str(bet.document, 1)
      .str(bet.birthdate, 1).u16(bet.number);
  }

  /**
   * Appends a bet as one CSV line ending in `\n` (minimal quoting), as a BATCH carries it.
   *
   * @throws {RangeError} If a field holds a `\n` (it would split the line) or it does not fit.
   */
  betLine(bet: BetFields): this {
    const fields = [bet.firstName, bet.lastName, bet.document, bet.birthdate, String(bet.number)];
    if (fields.some((f) => f.includes("\n"))) {
      throw new RangeError("Cannot encode bet: a field holds a line break");
    }
    const line = `${joinCsvLine(fields)}\n`;
    const { read, written } = utf8.encodeInto(line, this.#buf.subarray(this.#pos));
    if (read < line.length) throw frameFull();
    this.#pos += written;
    return this;
  }

  /** Writes the header and returns a copy of the frame. */
  finish(type: MessageType): Uint8Array {
    this.#view.setUint8(0, MAGIC);
    this.#view.setUint8(1, type);
    this.#view.setUint16(2, this.#pos - HEADER_SIZE);
    return this.#buf.slice(0, this.#pos);
  }
}

function writeBody(w: FrameWriter, msg: Message): void {
  switch (msg.type) {
    case MessageType.HELLO:
      w.u16(msg.agency).str(msg.secret, 1);
      return;
    case MessageType.WELCOME:
      w.u32(msg.nextSeq).u8(msg.done ? 1 : 0);
      return;
    case MessageType.BET:
      w.u32(msg.seq).bet(msg.bet);
      return;
    case MessageType.BATCH:
      if (msg.bets.length === 0) throw new RangeError("Cannot encode batch: it holds no bets");
      w.u16(msg.agency).u32(msg.seq).u16(msg.bets.length);
      for (const bet of msg.bets) w.betLine(bet);
      return;
    case MessageType.BATCH_ACK:
      w.u32(msg.seq).u16(msg.status).u16(msg.count).str(msg.reason, 2);
      return;
    case MessageType.DONE:
      w.u16(msg.agency).u32(msg.batches);
      return;
    case MessageType.DONE_ACK:
      w.u16(msg.pending);
      return;
    case MessageType.WINNERS_QUERY:
      w.u16(msg.agency);
      return;
    case MessageType.WINNERS:
      w.u32(msg.total).u8(msg.last ? 1 : 0).u16(msg.documents.length);
      for (const document of msg.documents) w.str(document, 1);
      return;
    case MessageType.NOT_READY:
      w.u16(msg.pending).u32(msg.retryAfterMs).u16(msg.pendingAgencies.length);
      for (const agency of msg.pendingAgencies) w.u16(agency);
      return;
    case MessageType.TOTAL_QUERY:
    case MessageType.BYE:
      return;
    case MessageType.TOTAL:
      w.u32(msg.winners).u16(msg.pending).u32(msg.retryAfterMs);
      return;
    case MessageType.ERROR:
      w.u16(msg.code).u32(msg.retryAfterMs).str(msg.message, 2);
      return;
  }
}

/** Reused by every `encodeMessage` call: `finish` copies the frame out. */
const writer = new FrameWriter();

/**
 * Encodes a message as one frame.
 *
 * @throws {RangeError} If the frame would exceed 8192 bytes or a value its field.
 *
 * @example Usage
 * ```ts
 * encodeMessage({ type: MessageType.TOTAL_QUERY }); // Uint8Array [0xfb, 0x0b, 0, 0]
 * ```
 */
export function encodeMessage(msg: Message): Uint8Array {
  writeBody(writer.start(), msg);
  return writer.finish(msg.type);
}

/**
 * Writes a BATCH frame's header, agency, sequence and count at `offset` in `out`, in front
 * of `linesLength` bytes of lines already there (how an agency sends its lines without
 * copying them); returns the offset just past the frame.
 *
 * @throws {RangeError} If the frame would exceed 8192 bytes or a value its field.
 */
export function encodeBatchHeader(
  out: Uint8Array,
  offset: number,
  batch: BatchHeader,
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
  view.setUint16(HEADER_SIZE + BATCH_BODY.agency, batch.agency);
  view.setUint32(HEADER_SIZE + BATCH_BODY.seq, batch.seq);
  view.setUint16(HEADER_SIZE + BATCH_BODY.count, batch.count);
  return offset + BATCH_HEADER_SIZE + linesLength;
}

/**
 * Reads a BATCH body's header (see {@linkcode BATCH_BODY}): agency, sequence and bet count,
 * without touching the lines.
 *
 * @throws {ProtocolError} `MALFORMED` for a body shorter than the header, or of no bets.
 */
export function readBatchHeader(body: Uint8Array): BatchHeader {
  if (body.length < BATCH_BODY.lines) {
    throw malformed("batch", `body of ${body.length} bytes is shorter than its header`);
  }
  const view = new DataView(body.buffer, body.byteOffset, BATCH_BODY.lines);
  const count = view.getUint16(BATCH_BODY.count);
  // An empty batch would take a sequence for nothing (an impostor's could make an agency skip one).
  if (count === 0) throw malformed("batch", "it holds no bets");
  return { agency: view.getUint16(BATCH_BODY.agency), seq: view.getUint32(BATCH_BODY.seq), count };
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
      throw malformed(what, `body ends at byte ${this.#body.length}, needed ${this.#pos + n}`);
    }
  }

  /** An unsigned big-endian integer of `size` bytes. */
  int(size: 1 | 2 | 4, what: string): number {
    this.#need(size, what);
    const at = this.#pos;
    this.#pos += size;
    return size === 1
      ? this.#view.getUint8(at)
      : size === 2
      ? this.#view.getUint16(at)
      : this.#view.getUint32(at);
  }

  /** UTF-8 text after its length in `prefix` bytes. */
  str(prefix: 1 | 2, what: string): string {
    const length = this.int(prefix, what);
    this.#need(length, what);
    // Every successful BATCH_ACK has an empty reason: no view, no decoder call.
    if (length === 0) return "";
    this.#pos += length;
    try {
      return strictUtf8.decode(this.#body.subarray(this.#pos - length, this.#pos));
    } catch (error) {
      throw malformed(what, "invalid UTF-8", { cause: error });
    }
  }

  /** The rest of the body, as bytes. */
  rest(): Uint8Array {
    const bytes = this.#body.subarray(this.#pos);
    this.#pos = this.#body.length;
    return bytes;
  }

  end(what: string): void {
    const left = this.#body.length - this.#pos;
    if (left !== 0) {
      throw malformed(what, `${left} unexpected bytes after the message`);
    }
  }
}

/** Keeps a leading BOM: only the one opening a batch's text is dropped. */
const strictUtf8KeepingBom = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * One BATCH line (without its `\n`) as a bet. A line that cannot be one (not UTF-8, as a
 * file saved as Latin-1; unbalanced quotes; not five fields; no number) is an invalid bet:
 * the batch is refused, the connection stays, for the frame around it is sound.
 */
function decodeBetLine(line: Uint8Array, index: number, count: number): BetFields {
  const fail = (problem: string): never => {
    throw new InvalidBetError(`Invalid bet ${index + 1} of ${count}: ${problem}`);
  };
  const end = line[line.length - 1] === CR ? line.length - 1 : line.length;
  let text = "";
  try {
    text = (index === 0 ? strictUtf8 : strictUtf8KeepingBom).decode(line.subarray(0, end));
  } catch {
    fail("not UTF-8 text");
  }
  const fields = splitCsvLine(text) ?? fail("unbalanced quotes");
  if (fields.length !== 5) fail(`expected 5 fields, found ${fields.length}`);
  const [firstName = "", lastName = "", document = "", birthdate = "", number = ""] = fields;
  if (!/^[0-9]{1,4}$/.test(number)) fail(`number "${number}" is not 0-9999`);
  return { firstName, lastName, document, birthdate, number: Number(number) };
}

function decodeBatch(r: BodyReader): Batch {
  const agency = r.int(2, "batch agency");
  const seq = r.int(4, "batch sequence");
  const count = r.int(2, "batch count");
  if (count === 0) throw malformed("batch", "it holds no bets");
  const bytes = r.rest();
  if (bytes.length > 0 && bytes[bytes.length - 1] !== LF) {
    throw malformed("batch", "its last line does not end in a line break");
  }
  // Split on the byte: a line break never occurs inside a UTF-8 character (nor a Latin-1 one).
  const lines: Uint8Array[] = [];
  for (let start = 0; start < bytes.length;) {
    const end = bytes.indexOf(LF, start);
    lines.push(bytes.subarray(start, end));
    start = end + 1;
  }
  if (lines.length !== count) {
    const held = `${lines.length} line${lines.length === 1 ? "" : "s"}`;
    throw malformed("batch", `its header says ${count} bets, its body holds ${held}`);
  }
  const bets = lines.map((line, i) => decodeBetLine(line, i, count));
  return { type: MessageType.BATCH, agency, seq, bets };
}

function decodeWith(type: number, r: BodyReader): Message {
  switch (type) {
    case MessageType.HELLO:
      return { type, agency: r.int(2, "hello agency"), secret: r.str(1, "hello secret") };
    case MessageType.WELCOME:
      return { type, nextSeq: r.int(4, "welcome sequence"), done: r.int(1, "welcome done") === 1 };
    case MessageType.BET:
      return {
        type,
        seq: r.int(4, "bet sequence"),
        bet: {
          firstName: r.str(1, "first name"),
          lastName: r.str(1, "last name"),
          document: r.str(1, "document"),
          birthdate: r.str(1, "birthdate"),
          number: r.int(2, "number"),
        },
      };
    case MessageType.BATCH:
      return decodeBatch(r);
    case MessageType.BATCH_ACK:
      return {
        type,
        seq: r.int(4, "ack sequence"),
        status: r.int(2, "ack status"),
        count: r.int(2, "ack count"),
        reason: r.str(2, "ack reason"),
      };
    case MessageType.DONE:
      return { type, agency: r.int(2, "done agency"), batches: r.int(4, "done batches") };
    case MessageType.DONE_ACK:
      return { type, pending: r.int(2, "done-ack pending") };
    case MessageType.WINNERS_QUERY:
      return { type, agency: r.int(2, "winners-query agency") };
    case MessageType.WINNERS: {
      const total = r.int(4, "winners total");
      const last = r.int(1, "winners last") === 1;
      const count = r.int(2, "winners count");
      const documents = Array.from({ length: count }, () => r.str(1, "winner document"));
      return { type, total, last, documents };
    }
    case MessageType.NOT_READY: {
      const pending = r.int(2, "not-ready pending");
      const retryAfterMs = r.int(4, "not-ready retry");
      const count = r.int(2, "not-ready count");
      const pendingAgencies = Array.from({ length: count }, () => r.int(2, "not-ready agency"));
      return { type, pending, retryAfterMs, pendingAgencies };
    }
    case MessageType.TOTAL_QUERY:
    case MessageType.BYE:
      return { type };
    case MessageType.TOTAL:
      return {
        type,
        winners: r.int(4, "total winners"),
        pending: r.int(2, "total pending"),
        retryAfterMs: r.int(4, "total retry"),
      };
    case MessageType.ERROR:
      return {
        type,
        code: r.int(2, "error code"),
        retryAfterMs: r.int(4, "error retry"),
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
 * Decodes a frame's body, exactly as long as its header said, into a typed message.
 *
 * @throws {ProtocolError} `MALFORMED` for a short, long or non-UTF-8 body,
 * `UNEXPECTED_MESSAGE` for an unknown type.
 */
export function decodeMessage(type: number, body: Uint8Array): Message {
  const reader = new BodyReader(body);
  const message = decodeWith(type, reader);
  reader.end(`message type 0x${type.toString(16).padStart(2, "0")}`);
  return message;
}
