/**
 * One agency's connection: the binary protocol's server side. Batches are pipelined:
 * the session keeps reading while earlier batches are being stored, and acks leave in
 * order once each batch is durable.
 *
 * @module
 */
import { type BetFields, betProblem } from "../shared/bet.ts";
import {
  ConnectionError,
  ErrorCode,
  errorCodeName,
  InvalidBetError,
  ProtocolError,
} from "../shared/errors.ts";
import type { ActionLogger } from "../shared/log.ts";
import { concatFrames, type FramedConnection } from "../shared/net/framed_conn.ts";
import { decodeMessage, encodeMessage, type Message, MessageType } from "../shared/protocol/mod.ts";
import { batchHeader, batchRows } from "./batch_rows.ts";
import type { Lottery } from "./draw.ts";
import { secretMatches } from "./secrets.ts";
import type { BetStore } from "./storage.ts";

/** What every session shares. */
export interface SessionContext {
  /** Expected agencies: valid ids are 1..agencies. */
  readonly agencies: number;
  /** How long a winners or total query before the draw is held waiting for it. */
  readonly drawWaitMs: number;
  readonly store: BetStore;
  readonly lottery: Lottery;
  readonly log: ActionLogger;
  /** Whether the server is shutting down (its own closes are not failures). */
  readonly closing: () => boolean;
  /** Per-agency secrets; empty means agencies are not authenticated. */
  readonly secrets: ReadonlyMap<number, string>;
}

/** Batches a session may have queued for storage before it stops reading. */
const MAX_INFLIGHT = 128;

/** How many documents go in one WINNERS frame (9 bytes each at most, well under 8 KiB). */
const WINNERS_PER_FRAME = 512;

function refuse(code: ErrorCode, message: string): ProtocolError {
  return new ProtocolError(code, message);
}

/** Serves one agency until it closes, breaks the protocol, or the server shuts down. */
class AgencySession {
  readonly #conn: FramedConnection;
  readonly #ip: string;
  readonly #ctx: SessionContext;
  #agency = 0;
  #acks: Promise<void> = Promise.resolve();
  #inflight = 0;
  /** Sequences whose acks are queued, in the order they will be sent. */
  readonly #ackOrder: number[] = [];
  /** Encoded acks held back to leave together. */
  readonly #ackFrames: Uint8Array[] = [];

  constructor(conn: FramedConnection, ip: string, ctx: SessionContext) {
    this.#conn = conn;
    this.#ip = ip;
    this.#ctx = ctx;
  }

  /** Resolves once every queued ack has been handled. */
  async settled(): Promise<void> {
    await this.#acks.catch(() => {});
  }

  async run(first: Message): Promise<void> {
    if (!(await this.#hello(first))) return;
    for (;;) {
      const frame = await this.#conn.readFrame();
      if (frame === null) break;
      // A BYE with a body is malformed: it falls through to decodeMessage, which says so.
      if (frame.type === MessageType.BYE && frame.body.length === 0) break;
      // Batches, the bulk of the traffic, are read in place; the rest is decoded.
      if (frame.type === MessageType.BATCH) await this.#batch(frame.body);
      else await this.#dispatch(decodeMessage(frame.type, frame.body));
    }
    await this.#acks;
  }

  async #hello(message: Message): Promise<boolean> {
    if (message.type !== MessageType.HELLO) {
      throw refuse(
        ErrorCode.UNEXPECTED_MESSAGE,
        "Cannot serve agency: the first message must be HELLO",
      );
    }
    if (message.agency < 1 || message.agency > this.#ctx.agencies) {
      throw refuse(
        ErrorCode.INVALID_AGENCY,
        `Cannot serve agency ${message.agency}: expected an id from 1 to ${this.#ctx.agencies}`,
      );
    }
    const secret = this.#ctx.secrets.get(message.agency);
    if (this.#ctx.secrets.size > 0 && !secretMatches(secret, message.secret)) {
      throw refuse(ErrorCode.UNAUTHORIZED, `Cannot serve agency ${message.agency}: wrong secret`);
    }
    this.#agency = message.agency;
    const progress = this.#ctx.store.progress(message.agency);
    this.#ctx.log.debug("hello", "success", {
      ip: this.#ip,
      agency: message.agency,
      next_seq: progress.nextSeq,
    });
    await this.#conn.send({ type: MessageType.WELCOME, ...progress });
    return true;
  }

  async #dispatch(message: Message): Promise<void> {
    switch (message.type) {
      case MessageType.BET:
        return await this.#single(message.seq, message.bet);
      case MessageType.DONE:
        this.#ownAgency(message.agency);
        return await this.#done(message.batches);
      case MessageType.WINNERS_QUERY:
        this.#ownAgency(message.agency);
        return await this.#winners();
      case MessageType.TOTAL_QUERY:
        return await this.#total();
      default:
        throw refuse(
          ErrorCode.UNEXPECTED_MESSAGE,
          `Cannot serve agency ${this.#agency}: unexpected message type 0x${
            message.type.toString(16)
          }`,
        );
    }
  }

  #ownAgency(agency: number): void {
    if (agency !== this.#agency) {
      throw refuse(
        ErrorCode.INVALID_AGENCY,
        `Agency ${this.#agency} cannot act for agency ${agency}`,
      );
    }
  }

  /** A BATCH body: validated and turned into rows in place, then queued for storage. */
  async #batch(body: Uint8Array): Promise<void> {
    const { agency, seq, count } = batchHeader(body);
    this.#ownAgency(agency);
    await this.#submit(seq, count, () => {
      const batch = batchRows(body);
      return this.#ctx.store.storeRows(this.#agency, seq, batch);
    });
  }

  /** Exercise 5's single bet, stored as a batch of one and logged by itself. */
  async #single(seq: number, bet: BetFields): Promise<void> {
    await this.#submit(seq, 1, () => {
      const problem = betProblem(bet);
      if (problem !== undefined) throw new InvalidBetError(`Invalid bet 1 of 1: ${problem}`);
      return this.#ctx.store.storeBets(this.#agency, seq, [bet]);
    }, bet);
  }

  /**
   * Runs `store` (which validates synchronously, then queues the write) and chains the
   * ack behind earlier ones. A refused batch becomes a failed ack, not a closed session.
   */
  async #submit(
    seq: number,
    count: number,
    store: () => Promise<unknown>,
    single?: BetFields,
  ): Promise<void> {
    if (this.#inflight >= MAX_INFLIGHT) await this.#acks;
    let stored: Promise<unknown>;
    try {
      const status = this.#ctx.lottery.status;
      if (status.drawn && seq >= this.#ctx.store.progress(this.#agency).nextSeq) {
        throw refuse(ErrorCode.DRAW_CLOSED, "Cannot store bets: the draw already took place");
      }
      stored = store();
    } catch (error) {
      // A body that cannot be decoded ends the session; a bad bet only fails the batch.
      if (error instanceof ProtocolError && error.code === ErrorCode.MALFORMED) throw error;
      stored = Promise.reject(error);
    }
    this.#inflight++;
    this.#ackOrder.push(seq);
    this.#acks = this.#acks.then(() => this.#ack(seq, count, stored, single));
    // A failed write surfaces when the ack is sent; this only keeps it from being unhandled.
    stored.catch(() => {});
  }

  async #ack(
    seq: number,
    count: number,
    stored: Promise<unknown>,
    single: BetFields | undefined,
  ): Promise<void> {
    try {
      await stored;
      this.#ctx.log.info("apuesta_recibida", "success", { cantidad: count });
      if (single) {
        this.#ctx.log.info("apuesta_almacenada", "success", {
          dni: single.document,
          numero: single.number,
        });
      }
      this.#sendAck(seq, 0, count, "");
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      this.#ctx.log.error("apuesta_recibida", "fail", {
        cantidad: count,
        agency: this.#agency,
        seq,
        error: errorCodeName(error.code),
        detail: error.message,
      });
      this.#sendAck(seq, error.code, count, error.message);
    } finally {
      this.#inflight--;
      this.#ackOrder.shift();
      // Acks of batches stored in the same group go out in one write: hold this one back
      // while the next ack in line is already durable (its turn comes right after).
      const next = this.#ackOrder[0];
      if (next === undefined || !this.#ctx.store.isStored(this.#agency, next)) this.#flushAcks();
    }
  }

  #sendAck(seq: number, status: number, count: number, reason: string): void {
    this.#ackFrames.push(
      encodeMessage({ type: MessageType.BATCH_ACK, seq, status, count, reason }),
    );
  }

  /**
   * Writes the held acks without waiting for the write. A failed write needs no handling
   * here: the batches are stored (or refused) all the same, and a retry after
   * reconnecting is acknowledged as a duplicate.
   */
  #flushAcks(): void {
    if (this.#ackFrames.length === 0) return;
    const frames = this.#ackFrames.splice(0);
    const bytes = frames.length === 1 ? frames[0]! : concatFrames(frames);
    this.#conn.send(bytes).catch(() => {});
  }

  async #done(batches: number): Promise<void> {
    await this.#acks;
    const { nextSeq } = this.#ctx.store.progress(this.#agency);
    if (batches !== nextSeq) {
      throw refuse(
        ErrorCode.OUT_OF_ORDER,
        `Cannot close agency ${this.#agency}: it sent ${batches} batches, ${nextSeq} are stored`,
      );
    }
    await this.#ctx.store.markDone(this.#agency);
    this.#ctx.lottery.markDone(this.#agency);
    this.#ctx.log.info("agencia_lista", "success", {
      agency: this.#agency,
      pendientes: this.#ctx.lottery.pending,
    });
    await this.#conn.send({ type: MessageType.DONE_ACK, pending: this.#ctx.lottery.pending });
  }

  async #winners(): Promise<void> {
    const status = await this.#ctx.lottery.waitForDraw(this.#ctx.drawWaitMs);
    if (!status.drawn) {
      // The query was already held for drawWaitMs: the agency may ask again at once.
      await this.#conn.send({
        type: MessageType.NOT_READY,
        pending: status.pending,
        retryAfterMs: 0,
      });
      return;
    }
    const documents = status.winners.get(this.#agency) ?? [];
    let offset = 0;
    do {
      const chunk = documents.slice(offset, offset + WINNERS_PER_FRAME);
      offset += chunk.length;
      await this.#conn.send({
        type: MessageType.WINNERS,
        total: documents.length,
        last: offset >= documents.length,
        documents: chunk,
      });
    } while (offset < documents.length);
  }

  async #total(): Promise<void> {
    const status = await this.#ctx.lottery.waitForDraw(this.#ctx.drawWaitMs);
    await this.#conn.send(
      status.drawn
        ? { type: MessageType.TOTAL, winners: status.total, pending: 0, retryAfterMs: 0 }
        : {
          type: MessageType.TOTAL,
          winners: this.#ctx.store.stats.winners,
          pending: status.pending,
          retryAfterMs: 0,
        },
    );
  }
}

/**
 * Serves an agency's connection whose first message is `first` (normally HELLO). A
 * protocol violation is answered with an ERROR frame, logged, and ends the session.
 *
 * @param conn The framed connection (closed by the caller).
 * @param ip The peer's address, for logs.
 * @param ctx Shared server state.
 */
export async function serveAgency(
  conn: FramedConnection,
  ip: string,
  ctx: SessionContext,
): Promise<void> {
  const session = new AgencySession(conn, ip, ctx);
  let failure: unknown;
  try {
    const first = await conn.read();
    if (first !== null) await session.run(first);
  } catch (error) {
    failure = error;
  }
  // Batches already queued are stored and acknowledged (or refused) before the session
  // ends, so shutdown never logs a batch after it has closed the storage.
  await session.settled();
  if (failure === undefined) return;
  if (failure instanceof ProtocolError) {
    ctx.log.error("receive_message", "fail", {
      ip,
      error: errorCodeName(failure.code),
      detail: failure.message,
    });
    await conn.send({ type: MessageType.ERROR, code: failure.code, message: failure.message })
      .catch(() => {});
  } else if (failure instanceof ConnectionError) {
    if (ctx.closing()) return;
    if (conn.timedOut) ctx.log.warning("idle_timeout", "fail", { ip, detail: failure.message });
    else if (!conn.closed) {
      ctx.log.warning("connection_lost", "fail", { ip, detail: failure.message });
    }
  } else {
    throw failure;
  }
}
