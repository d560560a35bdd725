/**
 * The lottery protocol's constants and typed messages. Byte layouts are in the README
 * ("Protocol") and in {@link ./codec.ts}.
 *
 * @module
 */
import type { BetFields } from "../bet.ts";

/**
 * First byte of every frame. 0xFB never occurs in UTF-8 text, so the server tells a
 * binary-protocol connection from an echo (`nc`) one by its first byte.
 */
export const MAGIC = 0xfb;

/** Bytes before the body: magic u8, type u8, body length u16 big-endian. */
export const HEADER_SIZE = 4;

/** The largest frame, header included (the course's 8 kB limit). */
export const MAX_FRAME_SIZE = 8192;

/** The largest body. */
export const MAX_BODY_SIZE = MAX_FRAME_SIZE - HEADER_SIZE;

/**
 * Where a BATCH body's fields start: agency u16, sequence u32, count u16, then the lines
 * (each bet a CSV line ending in `\n`). The one definition every reader and writer uses.
 */
export const BATCH_BODY = { agency: 0, seq: 2, count: 6, lines: 8 } as const;

/** Bytes of a BATCH frame before its lines: the frame header, then the body's own. */
export const BATCH_HEADER_SIZE = HEADER_SIZE + BATCH_BODY.lines;

/** Message type codes (the frame's second byte). */
export const MessageType = {
  HELLO: 0x01,
  WELCOME: 0x02,
  BET: 0x03,
  BATCH: 0x04,
  BATCH_ACK: 0x05,
  DONE: 0x06,
  DONE_ACK: 0x07,
  WINNERS_QUERY: 0x08,
  WINNERS: 0x09,
  NOT_READY: 0x0a,
  TOTAL_QUERY: 0x0b,
  TOTAL: 0x0c,
  ERROR: 0x0d,
  BYE: 0x0e,
} as const;

/** One of the {@linkcode MessageType} codes. */
export type MessageType = typeof MessageType[keyof typeof MessageType];

/** Agency → server, first of a connection: who it is (1..65535), with its secret if any. */
export interface Hello {
  readonly type: typeof MessageType.HELLO;
  readonly agency: number;
  readonly secret: string;
}

/** Server → agency: where it stands, to resume (every batch before `nextSeq` is stored). */
export interface Welcome {
  readonly type: typeof MessageType.WELCOME;
  readonly nextSeq: number;
  readonly done: boolean;
}

/** Agency → server: one bet (exercise 5), stored as a batch of one under `seq`. */
export interface BetMessage {
  readonly type: typeof MessageType.BET;
  readonly seq: number;
  readonly bet: BetFields;
}

/**
 * Agency → server: a batch of bets (exercise 6), number `seq` of the agency's (from 0).
 * On the wire its bets are CSV lines (`first_name,last_name,document,birthdate,number`,
 * minimal quoting, each ending in `\n` or `\r\n`).
 */
export interface Batch {
  readonly type: typeof MessageType.BATCH;
  readonly agency: number;
  readonly seq: number;
  readonly bets: readonly BetFields[];
}

/** A BATCH frame's header: agency, sequence, and the count of lines that follow. */
export type BatchHeader = Pick<Batch, "agency" | "seq"> & { readonly count: number };

/**
 * Server → agency: the outcome of a batch or a single bet of `count` bets: `status` 0 when
 * every bet was stored, otherwise an error code, nothing stored, and the `reason`.
 */
export interface BatchAck {
  readonly type: typeof MessageType.BATCH_ACK;
  readonly seq: number;
  readonly status: number;
  readonly count: number;
  readonly reason: string;
}

/** Agency → server: every bet was sent, in `batches` batches (the server checks it has them). */
export interface Done {
  readonly type: typeof MessageType.DONE;
  readonly agency: number;
  readonly batches: number;
}

/** Server → agency: done was recorded; `pending` agencies are still loading. */
export interface DoneAck {
  readonly type: typeof MessageType.DONE_ACK;
  readonly pending: number;
}

/** Agency → server: which of my bets won? */
export interface WinnersQuery {
  readonly type: typeof MessageType.WINNERS_QUERY;
  readonly agency: number;
}

/** Server → agency: winners' DNIs, `total` in all, in frames until the `last` one. */
export interface Winners {
  readonly type: typeof MessageType.WINNERS;
  readonly total: number;
  readonly last: boolean;
  readonly documents: readonly string[];
}

/**
 * Server → agency: the draw has not happened; `pending` agencies are still loading, the first
 * {@linkcode MAX_LISTED_AGENCIES} of them listed, ascending. Ask again after `retryAfterMs`.
 */
export interface NotReady {
  readonly type: typeof MessageType.NOT_READY;
  readonly pending: number;
  readonly retryAfterMs: number;
  readonly pendingAgencies: readonly number[];
}

/** The most agency ids one NOT_READY lists: what fits in a frame. */
export const MAX_LISTED_AGENCIES = (MAX_BODY_SIZE - 8) / 2;

/** Agency → server: how many winners in all agencies? */
export interface TotalQuery {
  readonly type: typeof MessageType.TOTAL_QUERY;
}

/** Server → agency: total winners; partial while `pending` agencies are still loading. */
export interface Total {
  readonly type: typeof MessageType.TOTAL;
  readonly winners: number;
  readonly pending: number;
  readonly retryAfterMs: number;
}

/**
 * Either side: something went wrong (see `ErrorCode`). `retryAfterMs` says when the
 * refused request may succeed if tried again (e.g. when the idle timeout can next free a
 * connection slot); 0 = no hint.
 */
export interface ErrorMessage {
  readonly type: typeof MessageType.ERROR;
  readonly code: number;
  readonly retryAfterMs: number;
  readonly message: string;
}

/** Agency → server: closing on purpose. */
export interface Bye {
  readonly type: typeof MessageType.BYE;
}

/** Every message of the protocol. */
export type Message =
  | Hello
  | Welcome
  | BetMessage
  | Batch
  | BatchAck
  | Done
  | DoneAck
  | WinnersQuery
  | Winners
  | NotReady
  | TotalQuery
  | Total
  | ErrorMessage
  | Bye;
