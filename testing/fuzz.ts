/**
 * Seeded generators of hostile frames for the fuzz tests: random valid messages of every
 * type, and mutations of them (truncated, oversized lengths, wrong types, bad UTF-8,
 * huge counts, garbage after a valid frame, bit flips, random bytes). Each generated
 * frame says what a correct decoder must do with it, when that is known.
 *
 * Test support only: nothing in the programs imports it.
 *
 * @module
 */
import type { BetFields } from "../shared/bet.ts";
import { ErrorCode } from "../shared/errors.ts";
import { encodeMessage } from "../shared/protocol/codec.ts";
import {
  HEADER_SIZE,
  MAX_BODY_SIZE,
  type Message,
  MessageType,
} from "../shared/protocol/messages.ts";
import { concatBytes } from "../shared/bytes.ts";
import { Random } from "./random.ts";

/** How a fuzz frame was made. */
export type Mutation =
  | "none"
  | "truncated"
  | "cut_body"
  | "oversized_length"
  | "extended_body"
  | "wrong_type"
  | "bad_utf8"
  | "huge_count"
  | "bit_flip"
  | "garbage_after"
  | "random_bytes"
  | "splice";

/** Every {@linkcode Mutation}, in a stable order. */
export const MUTATIONS: readonly Mutation[] = [
  "none",
  "truncated",
  "cut_body",
  "oversized_length",
  "extended_body",
  "wrong_type",
  "bad_utf8",
  "huge_count",
  "bit_flip",
  "garbage_after",
  "random_bytes",
  "splice",
];

/** What a correct decoder must do with a fuzz frame. */
export type Expectation =
  /** Decode exactly `message`. */
  | { readonly kind: "message"; readonly message: Message }
  /** Yield nothing and wait for more bytes. */
  | { readonly kind: "incomplete" }
  /** Fail with a `ProtocolError` of this code. */
  | { readonly kind: "error"; readonly code: ErrorCode }
  /** Anything but a crash: messages, a `ProtocolError`, or waiting for more. */
  | { readonly kind: "any" };

/** A generated frame (or byte string posing as one). */
export interface FuzzFrame {
  readonly mutation: Mutation;
  readonly bytes: Uint8Array;
  readonly expect: Expectation;
}

const PLAIN = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ,\"'-.";
const WIDE = ["á", "é", "í", "ó", "ú", "ñ", "Ñ", "ü", "ç", "€", "中", "😀", "\u0000", "\n", "|"];
/** Four bytes the generator plants in a string, for `bad_utf8` to overwrite. */
const SENTINEL = "~~~~";
const SENTINEL_BYTE = 0x7e;

/** Replacements for the sentinel: each is invalid UTF-8 wherever it sits in a string. */
const INVALID_UTF8: readonly (readonly number[])[] = [
  [0xff, 0x41, 0x41, 0x41],
  [0xfe, 0xfe, 0x41, 0x41],
  [0x80, 0x41, 0x41, 0x41],
  [0x41, 0xbf, 0x41, 0x41],
  [0xc0, 0xaf, 0x41, 0x41],
  [0xc1, 0x81, 0x41, 0x41],
  [0xe0, 0x80, 0xaf, 0x41],
  [0xed, 0xa0, 0x80, 0x41],
  [0xf4, 0x90, 0x80, 0x80],
  [0xf8, 0x88, 0x80, 0x80],
  [0xe2, 0x82, 0x41, 0x41],
  [0x41, 0x41, 0x41, 0xc3],
];

/** Characters to cut strings from: mostly ASCII, with some multi-byte and odd ones. */
const POOL: readonly string[] = (() => {
  const random = new Random(1);
  return Array.from(
    { length: 4096 },
    () => random.chance(0.85) ? PLAIN[random.int(0, PLAIN.length - 1)]! : random.pick(WIDE),
  );
})();

function text(random: Random, maxChars: number): string {
  const n = random.chance(0.8) ? random.int(0, Math.min(maxChars, 12)) : random.int(0, maxChars);
  const at = random.int(0, POOL.length - n);
  return POOL.slice(at, at + n).join("");
}

/**
 * A random bet. A BATCH carries bets as CSV lines, so a batch's bets keep line breaks out
 * of their names and their number to four digits; a BET's u16 number takes any value.
 */
function bet(random: Random, inBatch = false): BetFields {
  const name = () => inBatch ? text(random, 30).replaceAll("\n", " ") : text(random, 30);
  return {
    firstName: name(),
    lastName: name(),
    document: String(random.int(0, 99_999_999)),
    birthdate: `${random.int(1900, 2024)}-${String(random.int(1, 12)).padStart(2, "0")}-${
      String(random.int(1, 28)).padStart(2, "0")
    }`,
    number: random.chance(0.1) ? 7574 : random.int(0, inBatch ? 9999 : 65535),
  };
}

function u32(random: Random): number {
  return random.chance(0.1) ? random.pick([0, 1, 0xffffffff]) : random.int(0, 0xffffffff);
}

function u16(random: Random): number {
  return random.chance(0.1) ? random.pick([0, 1, 65535]) : random.int(0, 65535);
}

/**
 * A random message of the given type; its frame fits in 8192 bytes.
 *
 * @param random The randomness.
 * @param type The message type.
 * @returns The message.
 */
export function randomMessage(random: Random, type: MessageType): Message {
  switch (type) {
    case MessageType.HELLO:
      return { type, agency: u16(random), secret: text(random, 40) };
    case MessageType.WELCOME:
      return { type, nextSeq: u32(random), done: random.chance(0.5) };
    case MessageType.BET:
      return { type, seq: u32(random), bet: bet(random) };
    case MessageType.BATCH: {
      // An empty batch cannot be encoded: the codec refuses it.
      const count = random.int(1, random.chance(0.1) ? 140 : 20);
      return {
        type,
        agency: u16(random),
        seq: u32(random),
        bets: Array.from({ length: count }, () => bet(random, true)),
      };
    }
    case MessageType.BATCH_ACK:
      return {
        type,
        seq: u32(random),
        status: u16(random),
        count: u16(random),
        reason: text(random, 100),
      };
    case MessageType.DONE:
      return { type, agency: u16(random), batches: u32(random) };
    case MessageType.DONE_ACK:
      return { type, pending: u16(random) };
    case MessageType.WINNERS_QUERY:
      return { type, agency: u16(random) };
    case MessageType.WINNERS: {
      const count = random.chance(0.1) ? 0 : random.int(1, random.chance(0.1) ? 800 : 30);
      return {
        type,
        total: u32(random),
        last: random.chance(0.5),
        documents: Array.from({ length: count }, () => String(random.int(0, 99_999_999))),
      };
    }
    case MessageType.NOT_READY: {
      const count = random.chance(0.1) ? 0 : random.int(1, random.chance(0.1) ? 4090 : 10);
      return {
        type,
        pending: u16(random),
        retryAfterMs: u32(random),
        pendingAgencies: Array.from({ length: count }, () => u16(random)),
      };
    }
    case MessageType.TOTAL_QUERY:
    case MessageType.BYE:
      return { type };
    case MessageType.TOTAL:
      return { type, winners: u32(random), pending: u16(random), retryAfterMs: u32(random) };
    case MessageType.ERROR:
      return {
        type,
        code: u16(random),
        retryAfterMs: random.chance(0.5) ? 0 : u32(random),
        message: random.chance(0.02) ? "e".repeat(MAX_BODY_SIZE - 8) : text(random, 200),
      };
  }
}

const TYPES = Object.values(MessageType) as MessageType[];

/**
 * Encodes a random message of a random (or given) type whose body fits in `maxBody`
 * bytes, shrinking lists that overflow.
 *
 * @param random The randomness.
 * @param options The type (random when omitted) and the body limit.
 * @returns The message and its frame.
 */
export function randomFrame(
  random: Random,
  options: { readonly type?: MessageType; readonly maxBody?: number } = {},
): { message: Message; bytes: Uint8Array } {
  const type = options.type ?? random.pick(TYPES);
  const maxBody = options.maxBody ?? MAX_BODY_SIZE;
  let message = randomMessage(random, type);
  for (;;) {
    let bytes: Uint8Array | undefined;
    try {
      bytes = encodeMessage(message);
    } catch (error) {
      if (!(error instanceof RangeError)) throw error;
    }
    if (bytes !== undefined && bytes.length - HEADER_SIZE <= maxBody) return { message, bytes };
    if (message.type === MessageType.BATCH && message.bets.length > 1) {
      message = { ...message, bets: message.bets.slice(0, message.bets.length >> 1) };
    } else if (message.type === MessageType.WINNERS && message.documents.length > 0) {
      message = {
        ...message,
        documents: message.documents.slice(0, message.documents.length >> 1),
      };
    } else {
      message = randomMessage(random, type);
    }
  }
}

function setLength(frame: Uint8Array, length: number): void {
  frame[2] = length >> 8;
  frame[3] = length & 0xff;
}

/** A message of a type that carries a string, with the sentinel planted in one. */
function messageWithSentinel(random: Random): Message {
  const type = random.pick([
    MessageType.HELLO,
    MessageType.BET,
    MessageType.BATCH,
    MessageType.BATCH_ACK,
    MessageType.WINNERS,
    MessageType.ERROR,
  ]);
  const plant = (s: string): string => {
    const cut = random.int(0, Math.min(s.length, 20));
    return s.slice(0, cut).replaceAll("~", "") + SENTINEL + s.slice(cut, 30).replaceAll("~", "");
  };
  const m = randomMessage(random, type);
  switch (m.type) {
    case MessageType.HELLO:
      return { ...m, secret: plant(m.secret) };
    case MessageType.BET:
      return { ...m, bet: { ...m.bet, lastName: plant(m.bet.lastName) } };
    case MessageType.BATCH: {
      const bets = m.bets.length > 0 ? m.bets.slice(0, 3) : [bet(random, true)];
      const i = random.int(0, bets.length - 1);
      bets[i] = { ...bets[i]!, document: plant(bets[i]!.document) };
      return { ...m, bets };
    }
    case MessageType.BATCH_ACK:
      return { ...m, reason: plant(m.reason) };
    case MessageType.WINNERS: {
      const documents = m.documents.length > 0 ? m.documents.slice(0, 5) : ["1"];
      const i = random.int(0, documents.length - 1);
      documents[i] = plant(documents[i]!);
      return { ...m, documents };
    }
    case MessageType.ERROR:
      return { ...m, message: plant(m.message.slice(0, 60)) };
    default:
      return m;
  }
}

function findSentinel(bytes: Uint8Array): number {
  for (let i = HEADER_SIZE; i + 3 < bytes.length; i++) {
    if (
      bytes[i] === SENTINEL_BYTE && bytes[i + 1] === SENTINEL_BYTE &&
      bytes[i + 2] === SENTINEL_BYTE && bytes[i + 3] === SENTINEL_BYTE
    ) return i;
  }
  return -1;
}

/** Offset of the u16 count in a BATCH (2) or WINNERS (9) body, from the frame's start. */
const COUNT_OFFSET: Readonly<Record<number, number>> = {
  [MessageType.BATCH]: HEADER_SIZE + 6,
  [MessageType.WINNERS]: HEADER_SIZE + 5,
};

/**
 * Makes one fuzz frame with the given mutation.
 *
 * @param random The randomness.
 * @param mutation What to do to a valid frame.
 * @param maxBody The decoder's body limit (lengths above it are "oversized").
 * @returns The bytes and what a decoder must do with them.
 */
export function mutatedFrame(
  random: Random,
  mutation: Mutation,
  maxBody: number = MAX_BODY_SIZE,
): FuzzFrame {
  switch (mutation) {
    case "none": {
      const { message, bytes } = randomFrame(random, { maxBody });
      return { mutation, bytes, expect: { kind: "message", message } };
    }
    case "truncated": {
      const { bytes } = randomFrame(random, { maxBody });
      const cut = random.int(1, bytes.length - 1 || 1);
      const kept = bytes.length === HEADER_SIZE
        ? bytes.slice(0, random.int(1, 3))
        : bytes.slice(0, cut);
      return { mutation, bytes: kept, expect: { kind: "incomplete" } };
    }
    case "cut_body": {
      let frame = randomFrame(random, { maxBody });
      while (frame.bytes.length === HEADER_SIZE) frame = randomFrame(random, { maxBody });
      const body = random.int(0, frame.bytes.length - HEADER_SIZE - 1);
      const bytes = frame.bytes.slice(0, HEADER_SIZE + body);
      setLength(bytes, body);
      return { mutation, bytes, expect: { kind: "error", code: ErrorCode.MALFORMED } };
    }
    case "oversized_length": {
      const { bytes } = randomFrame(random, { maxBody });
      const frame = bytes.slice();
      const length = random.chance(0.3) ? 0xffff : random.int(maxBody + 1, 0xffff);
      setLength(frame, length);
      return { mutation, bytes: frame, expect: { kind: "error", code: ErrorCode.LIMIT_EXCEEDED } };
    }
    case "extended_body": {
      let frame = randomFrame(random, { maxBody });
      while (frame.bytes.length - HEADER_SIZE >= maxBody) frame = randomFrame(random, { maxBody });
      const room = maxBody - (frame.bytes.length - HEADER_SIZE);
      const extra = random.bytes(random.int(1, Math.min(room, 64)));
      const bytes = concatBytes([frame.bytes, extra]);
      setLength(bytes, bytes.length - HEADER_SIZE);
      return { mutation, bytes, expect: { kind: "error", code: ErrorCode.MALFORMED } };
    }
    case "wrong_type": {
      const { bytes } = randomFrame(random, { maxBody });
      const frame = bytes.slice();
      const type = random.chance(0.5) ? random.int(0, 255) : random.pick(TYPES);
      frame[1] = type;
      const known = (TYPES as number[]).includes(type);
      return {
        mutation,
        bytes: frame,
        expect: known ? { kind: "any" } : { kind: "error", code: ErrorCode.UNEXPECTED_MESSAGE },
      };
    }
    case "bad_utf8": {
      let bytes: Uint8Array;
      let at: number;
      do {
        bytes = encodeMessage(messageWithSentinel(random)).slice();
        at = findSentinel(bytes);
      } while (at < 0 || bytes.length - HEADER_SIZE > maxBody);
      bytes.set(random.pick(INVALID_UTF8), at);
      // In a BATCH the frame is sound and only one bet is bad: the batch is refused.
      const code = bytes[1] === MessageType.BATCH ? ErrorCode.INVALID_BET : ErrorCode.MALFORMED;
      return { mutation, bytes, expect: { kind: "error", code } };
    }
    case "huge_count": {
      const type = random.pick([MessageType.BATCH, MessageType.WINNERS]);
      const { message, bytes } = randomFrame(random, { type, maxBody });
      const actual = message.type === MessageType.BATCH
        ? message.bets.length
        : message.type === MessageType.WINNERS
        ? message.documents.length
        : 0;
      let count = random.chance(0.5) ? 0xffff : random.int(0, 0xffff);
      if (count === actual) count = actual === 0xffff ? 0 : actual + 1;
      const frame = bytes.slice();
      const offset = COUNT_OFFSET[type]!;
      frame[offset] = count >> 8;
      frame[offset + 1] = count & 0xff;
      return { mutation, bytes: frame, expect: { kind: "error", code: ErrorCode.MALFORMED } };
    }
    case "bit_flip": {
      const { bytes } = randomFrame(random, { maxBody });
      const frame = bytes.slice();
      const flips = random.int(1, 8);
      for (let i = 0; i < flips; i++) {
        frame[random.int(0, frame.length - 1)]! ^= 1 << random.int(0, 7);
      }
      return { mutation, bytes: frame, expect: { kind: "any" } };
    }
    case "garbage_after": {
      const { message, bytes } = randomFrame(random, { maxBody });
      const garbage = random.bytes(random.int(1, 300));
      return {
        mutation,
        bytes: concatBytes([bytes, garbage]),
        expect: { kind: "message", message },
      };
    }
    case "random_bytes": {
      const bytes = random.bytes(random.int(1, random.chance(0.1) ? 9000 : 64));
      if (random.chance(0.5)) bytes[0] = 0xfb;
      return { mutation, bytes, expect: { kind: "any" } };
    }
    case "splice": {
      const a = randomFrame(random, { maxBody }).bytes;
      const b = randomFrame(random, { maxBody }).bytes;
      const bytes = concatBytes([
        a.subarray(0, random.int(1, a.length)),
        b.subarray(random.int(0, b.length - 1)),
      ]);
      return { mutation, bytes, expect: { kind: "any" } };
    }
  }
}

/**
 * A fuzz frame with a random mutation: valid frames a quarter of the time.
 *
 * @param random The randomness.
 * @param maxBody The decoder's body limit.
 * @returns The frame.
 */
export function fuzzFrame(random: Random, maxBody: number = MAX_BODY_SIZE): FuzzFrame {
  const mutation = random.chance(0.25) ? "none" : random.pick(MUTATIONS.slice(1));
  return mutatedFrame(random, mutation, maxBody);
}
