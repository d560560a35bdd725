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

/** Bytes of a BATCH frame before its lines: header, agency u16, sequence u32, count u16. */
export const BATCH_HEADER_SIZE = HEADER_SIZE + 8;

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

/** Agency → server, first message of a connection: who it is. */
export interface Hello {
  readonly type: typeof MessageType.HELLO;
  /** Agency id, 1..65535. */
  readonly agency: number;
  /** The agency's secret; empty when the server runs without secrets. */
  readonly secret: string;
}

/** Server → agency: where the agency stands, so it can resume. */
export interface Welcome {
  readonly type: typeof MessageType.WELCOME;
  /** The next batch sequence number the server expects (all before it are stored). */
  readonly nextSeq: number;
  /** Whether the agency already declared itself done. */
  readonly done: boolean;
}

/** Agency → server: one bet (exercise 5), stored as a batch of one. */
export interface BetMessage {
  readonly type: typeof MessageType.BET;
  /** The batch sequence number this bet takes. */
  readonly seq: number;
  readonly bet: BetFields;
}

/**
 * Agency → server: a batch of bets (exercise 6). On the wire its bets are CSV lines
 * (`first_name,last_name,document,birthdate,number`, minimal quoting, each ending in
 * `\n` or `\r\n`).
 */
export interface Batch {
  readonly type: typeof MessageType.BATCH;
  /** Agency id; must match the session's. */
  readonly agency: number;
  /** Per-agency sequence number, from 0, one per batch. */
  readonly seq: number;
  readonly bets: readonly BetFields[];
}

/** Server → agency: the outcome of a batch or a single bet. */
export interface BatchAck {
  readonly type: typeof MessageType.BATCH_ACK;
  readonly seq: number;
  /** 0 when every bet was stored, otherwise an error code and nothing was stored. */
  readonly status: number;
  /** How many bets the batch held. */
  readonly count: number;
  /** Why the batch was refused; empty on success. */
  readonly reason: string;
}

/** Agency → server: every bet was sent. */
export interface Done {
  readonly type: typeof MessageType.DONE;
  readonly agency: number;
  /** How many batches the agency sent in all, so the server can check it has them. */
  readonly batches: number;
}

/** Server → agency: done was recorded. */
export interface DoneAck {
  readonly type: typeof MessageType.DONE_ACK;
  /** Agencies still loading after this one. */
  readonly pending: number;
}

/** Agency → server: which of my bets won? */
export interface WinnersQuery {
  readonly type: typeof MessageType.WINNERS_QUERY;
  readonly agency: number;
}

/**
 * Server → agency: winners' DNIs. A long list spans several frames; `last` marks the
 * final one and `total` is the whole list's length.
 */
export interface Winners {
  readonly type: typeof MessageType.WINNERS;
  readonly total: number;
  readonly last: boolean;
  readonly documents: readonly string[];
}

/** Server → agency: the draw has not happened; ask again later. */
export interface NotReady {
  readonly type: typeof MessageType.NOT_READY;
  /** Agencies still loading. */
  readonly pending: number;
  /** Suggested wait before asking again. */
  readonly retryAfterMs: number;
  /**
   * The ids of the agencies the draw still waits for, ascending; at most
   * {@linkcode MAX_LISTED_AGENCIES} (then `pending` is larger).
   */
  readonly pendingAgencies: readonly number[];
}

/** The most agency ids one NOT_READY lists: what fits in a frame. */
export const MAX_LISTED_AGENCIES = (MAX_BODY_SIZE - 8) / 2;

/** Agency → server: how many winners in all agencies? */
export interface TotalQuery {
  readonly type: typeof MessageType.TOTAL_QUERY;
}

/** Server → agency: total winners; partial while `pending > 0`. */
export interface Total {
  readonly type: typeof MessageType.TOTAL;
  /** Winners counted so far (final when `pending` is 0). */
  readonly winners: number;
  /** Agencies still loading. */
  readonly pending: number;
  readonly retryAfterMs: number;
}

/** Either side: something went wrong; see `ErrorCode`. */
export interface ErrorMessage {
  readonly type: typeof MessageType.ERROR;
  readonly code: number;
  /**
   * When the refused request may succeed if tried again (e.g. when the idle timeout can
   * next free a connection slot); 0 = no hint.
   */
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
