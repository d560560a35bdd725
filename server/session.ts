/**
 * One agency's connection: the binary protocol's server side. Batches are pipelined: the session
 * keeps reading while earlier batches are being stored, and acks leave in order as the store says
 * each batch is durable. A batch under a sequence already taken (a retry) is acknowledged only once
 * the store has found it the same as the first; the session reads nothing more until then.
 *
 * @module
 */
import { type BetFields, betProblem } from "../shared/bet.ts";
import { concatBytes } from "../shared/bytes.ts";
import {
  ConnectionError,
  ErrorCode,
  errorCodeName,
  InvalidBetError,
  ProtocolError,
  StorageError,
  type StorageErrorKind,
} from "../shared/errors.ts";
import { type ActionLogger, LogAction } from "../shared/log.ts";
import type { FramedConnection } from "../shared/net/framed_conn.ts";
import {
  decodeMessage,
  encodeMessage,
  MAX_LISTED_AGENCIES,
  type Message,
  MessageType,
  readBatchHeader,
} from "../shared/protocol/mod.ts";
import { batchRows, SERVER_CLOCK } from "./batch_rows.ts";
import type { DrawStatus } from "./draw.ts";
import { secretMatches } from "./secrets.ts";
import {
  type BatchWatcher,
  type BetStore,
  leftOut,
  type StoreReceipt,
  type StoreStats,
} from "./storage.ts";

/**
 * What a session uses of the bet storage: `BetStore` on the thread that owns it, or a
 * `RemoteStore` in a worker, which asks the owner.
 */
export type SessionStore =
  & Pick<
    BetStore,
    "progress" | "watch" | "storeRows" | "storeBets" | "markDone"
  >
  & { readonly stats: Pick<StoreStats, "winners"> };

/** What a session uses of the draw: the `Lottery` on the owner, or a worker's view of it. */
export interface SessionDraw {
  /** Whether the draw has finished, and its result or which agencies are pending. */
  readonly status: DrawStatus;
  /** Counted agencies still loading. */
  readonly pending: number;
  /** Tells the draw an agency is done, once its DONE is durable. */
  markDone(agency: number): unknown;
  /** Where the draw stands once it is over, or after `maxMs`. */
  waitForDraw(maxMs: number): Promise<DrawStatus>;
}

/** Agencies in trouble, for the progress line: a `Set`, or one shared by every thread. */
export interface AgencySet extends Iterable<number> {
  readonly size: number;
  add(agency: number): unknown;
  delete(agency: number): unknown;
}

/** What every session shares. */
export interface SessionContext {
  /** Valid agency ids are 1..agencies. */
  readonly agencies: number;
  /** How long a winners or total query before the draw is held waiting for it. */
  readonly drawWaitMs: number;
  readonly store: SessionStore;
  readonly lottery: SessionDraw;
  readonly log: ActionLogger;
  /** Whether the server is shutting down (its own closes are not failures). */
  readonly closing: () => boolean;
  /** Per-agency secrets; empty means agencies are not authenticated. */
  readonly secrets: ReadonlyMap<number, string>;
  /**
   * Agencies whose last batch was refused, or whose session failed before they were done,
   * for the progress line; a stored batch or a DONE takes an agency out.
   */
  readonly troubled: AgencySet;
}

/** The server settings a session reads. */
export interface SessionSettings {
  readonly agencies: number;
  readonly drawWait: { readonly ms: number };
}

/**
 * A thread's SessionContext: the owner and every worker build theirs the same way, from the
 * settings and their own store, draw and log.
 */
export function sessionContext(
  settings: SessionSettings,
  parts: Omit<SessionContext, "agencies" | "drawWaitMs">,
): SessionContext {
  return { agencies: settings.agencies, drawWaitMs: settings.drawWait.ms, ...parts };
}

/** Batches a session may have queued for storage before it stops reading. */
const MAX_INFLIGHT = 128;

/** How many documents go in one WINNERS frame (9 bytes each at most, well under 8 KiB). */
const WINNERS_PER_FRAME = 512;

/**
 * Where an ack stands: `queued` until the store says its batch is durable, `checking` while
 * a retry is compared with the batch stored first, `same` once it was found the same,
 * `refused` with the error the agency is told, `fatal` for an unexpected error (it ends the
 * session).
 */
type AckOutcome =
  | { readonly kind: "queued" }
  | { readonly kind: "checking" }
  | { readonly kind: "same" }
  | { readonly kind: "refused"; readonly error: ProtocolError }
  | { readonly kind: "fatal"; readonly error: unknown };

const QUEUED: AckOutcome = { kind: "queued" };
const CHECKING: AckOutcome = { kind: "checking" };
const SAME: AckOutcome = { kind: "same" };

/** The outcome of a batch the store did not take. */
function notTaken(error: unknown): AckOutcome {
  return error instanceof ProtocolError ? { kind: "refused", error } : { kind: "fatal", error };
}

/** A batch (or single bet) waiting for its ack. */
interface PendingAck {
  readonly seq: number;
  readonly count: number;
  /** Exercise 5's single bet, logged by itself once stored. */
  readonly single: BetFields | undefined;
  outcome: AckOutcome;
}

/** The refusals behind the one logged in full (`after`, `code`), for one summary line. */
interface RefusedRun {
  readonly after: number;
  readonly code: number;
  batches: number;
  bets: number;
  first: number;
  last: number;
  readonly errors: Set<string>;
}

/** The wire code of each kind of storage failure. */
const STORAGE_CODES: Readonly<Record<StorageErrorKind, ErrorCode>> = {
  unusable: ErrorCode.STORAGE_FAILED,
  damaged: ErrorCode.STORAGE_FAILED,
  failed: ErrorCode.STORAGE_FAILED,
  busy: ErrorCode.STORAGE_FAILED,
  notStored: ErrorCode.STORAGE_FAILED,
  conflict: ErrorCode.CONFLICT,
  closed: ErrorCode.SHUTTING_DOWN,
  unknownAgency: ErrorCode.INVALID_AGENCY,
  excluded: ErrorCode.INVALID_AGENCY,
  outOfOrder: ErrorCode.OUT_OF_ORDER,
  afterDone: ErrorCode.UNEXPECTED_MESSAGE,
};

/** A storage failure as the protocol error the agency is sent; anything else as it is. */
export function wireError(error: unknown): unknown {
  if (!(error instanceof StorageError)) return error;
  return new ProtocolError(STORAGE_CODES[error.kind], error.message, { cause: error });
}

/** Serves one agency until it closes, breaks the protocol, or the server shuts down. */
class AgencySession implements BatchWatcher {
  readonly #conn: FramedConnection;
  readonly #ip: string;
  readonly #ctx: SessionContext;
  #agency = 0;
  /** Batches queued for storage or refused, in arrival order: acks leave in this order. */
  readonly #pending: PendingAck[] = [];
  /** The agency's batches below this sequence are durable, as the store last said. */
  #durable = 0;
  #watch: Disposable | undefined;
  /** A retry found different from the stored batch: nothing more of this session is stored. */
  #conflict: ProtocolError | undefined;
  #refused: RefusedRun | undefined;
  /** The one task waiting on the acks: the read loop, or after it the session's end. */
  #waiter: (PromiseWithResolvers<void> & { readonly ready: () => boolean }) | undefined;
  /** An unexpected error while acking: it ends the session. */
  #fatal: unknown;
  /** Encoded acks held back to leave together. */
  readonly #ackFrames: Uint8Array[] = [];

  constructor(conn: FramedConnection, ip: string, ctx: SessionContext) {
    this.#conn = conn;
    this.#ip = ip;
    this.#ctx = ctx;
  }

  /** The store: the agency's batches below `nextSeq` are durable. */
  durable(nextSeq: number): void {
    this.#durable = nextSeq;
    this.#sendSettledAcks();
  }

  /** The store: queued batches from `fromSeq` on were not stored. */
  failed(fromSeq: number, error: StorageError): void {
    const refusal = wireError(error);
    for (const ack of this.#pending) {
      if (ack.outcome.kind === "queued" && ack.seq >= fromSeq) ack.outcome = notTaken(refusal);
    }
    this.#sendSettledAcks();
  }

  /** Waits for the queued acks, stops watching, logs the refusals' summary, notes a failure. */
  async end(failure: unknown): Promise<void> {
    await this.#idle().catch(() => {});
    this.#watch?.[Symbol.dispose]();
    this.#logRefusedRun();
    const agency = this.#agency;
    if (failure !== undefined && agency !== 0 && !this.#ctx.store.progress(agency).done) {
      this.#ctx.troubled.add(agency);
    }
  }

  /** Resolves once every queued ack has been sent; rejects with an unexpected error. */
  #idle(): Promise<void> {
    return this.#waitUntil(() => this.#pending.length === 0);
  }

  #waitUntil(ready: () => boolean): Promise<void> {
    if (this.#fatal !== undefined) return Promise.reject(this.#fatal);
    if (ready()) return Promise.resolve();
    this.#waiter = { ready, ...Promise.withResolvers<void>() };
    return this.#waiter.promise;
  }

  async run(first: Message): Promise<void> {
    await this.#hello(first);
    for (;;) {
      const frame = await this.#conn.readFrame();
      if (frame === null) break;
      // A BYE with a body is malformed: it falls through to decodeMessage, which says so.
      if (frame.type === MessageType.BYE && frame.body.length === 0) break;
      if (this.#pending.length >= MAX_INFLIGHT) {
        await this.#waitUntil(() => this.#pending.length < MAX_INFLIGHT);
      }
      // Batches, the bulk of the traffic, are read in place; the rest is decoded.
      if (frame.type === MessageType.BATCH) {
        const retry = this.#batch(frame.body);
        // Nothing after a retry is taken before the retry is known to be the same batch.
        if (retry) await retry;
      } else {
        await this.#dispatch(decodeMessage(frame.type, frame.body));
      }
    }
    await this.#idle();
  }

  async #hello(message: Message): Promise<void> {
    if (message.type !== MessageType.HELLO) {
      throw new ProtocolError(
        ErrorCode.UNEXPECTED_MESSAGE,
        "Cannot serve agency: the first message must be HELLO",
      );
    }
    const { agency } = message;
    if (agency < 1 || agency > this.#ctx.agencies) {
      throw new ProtocolError(
        ErrorCode.INVALID_AGENCY,
        `Cannot serve agency ${agency}: expected an id from 1 to ${this.#ctx.agencies}`,
      );
    }
    const { secrets, store } = this.#ctx;
    if (secrets.size > 0 && !secretMatches(secrets.get(agency), message.secret)) {
      throw new ProtocolError(
        ErrorCode.UNAUTHORIZED,
        `Cannot serve agency ${agency}: wrong secret`,
      );
    }
    const { nextSeq, done, excluded } = store.progress(agency);
    if (excluded) throw leftOut(agency);
    this.#agency = agency;
    this.#durable = nextSeq;
    this.#watch = store.watch(agency, this);
    this.#ctx.log.debug(LogAction.HELLO, "success", { ip: this.#ip, agency, next_seq: nextSeq });
    await this.#conn.send({ type: MessageType.WELCOME, nextSeq, done });
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
        throw new ProtocolError(
          ErrorCode.UNEXPECTED_MESSAGE,
          `Cannot serve agency ${this.#agency}: unexpected message type 0x${
            message.type.toString(16)
          }`,
        );
    }
  }

  #ownAgency(agency: number): void {
    if (agency !== this.#agency) {
      throw new ProtocolError(
        ErrorCode.INVALID_AGENCY,
        `Agency ${this.#agency} cannot act for agency ${agency}`,
      );
    }
  }

  /** A BATCH body: validated and turned into rows in place, then queued for storage. */
  #batch(body: Uint8Array): Promise<void> | undefined {
    const header = readBatchHeader(body);
    this.#ownAgency(header.agency);
    return this.#submit(header.seq, header.count, () => {
      const batch = batchRows(body, header);
      return this.#ctx.store.storeRows(this.#agency, header.seq, batch);
    });
  }

  /** Exercise 5's single bet, stored as a batch of one and logged by itself. */
  #single(seq: number, bet: BetFields): Promise<void> | undefined {
    return this.#submit(seq, 1, () => {
      const problem = betProblem(bet, { clock: SERVER_CLOCK });
      if (problem !== undefined) throw new InvalidBetError(`Invalid bet 1 of 1: ${problem}`);
      return this.#ctx.store.storeBets(this.#agency, seq, [bet]);
    }, bet);
  }

  /**
   * Runs `store` (which validates synchronously, then queues the write) and queues the ack
   * behind earlier ones: a refused batch is a failed ack, not a closed session. Returns,
   * for a retry, its comparison with the stored batch (which never rejects).
   */
  #submit(seq: number, count: number, store: () => StoreReceipt, single?: BetFields) {
    const ack: PendingAck = { seq, count, single, outcome: QUEUED };
    let receipt: StoreReceipt | undefined;
    try {
      if (this.#conflict !== undefined) throw this.#conflict;
      const status = this.#ctx.lottery.status;
      if (status.drawn && seq >= this.#ctx.store.progress(this.#agency).nextSeq) {
        throw new ProtocolError(
          ErrorCode.DRAW_CLOSED,
          "Cannot store bets: the draw already took place",
        );
      }
      receipt = store();
    } catch (error) {
      // A body that cannot be decoded ends the session; a bad bet only fails the batch.
      if (error instanceof ProtocolError && error.code === ErrorCode.MALFORMED) throw error;
      ack.outcome = notTaken(wireError(error));
    }
    this.#pending.push(ack);
    if (receipt === undefined) {
      // Refused at once: its ack still waits for those of earlier batches.
      this.#sendSettledAcks();
    } else if (receipt.kind === "retry") {
      ack.outcome = CHECKING;
      return receipt.same.then(() => SAME, (cause) => {
        const error = wireError(cause);
        if (error instanceof ProtocolError && error.code === ErrorCode.CONFLICT) {
          this.#conflict = error;
        }
        return notTaken(error);
      }).then((outcome) => {
        ack.outcome = outcome;
        this.#sendSettledAcks();
      });
    }
    return undefined;
  }

  /**
   * Logs and sends, in order, the acks at the head of the queue whose batches are
   * settled; they leave in one write. Then wakes the waiter if what it waits for holds.
   */
  #sendSettledAcks(): void {
    while (this.#fatal === undefined) {
      const ack = this.#pending[0];
      if (ack === undefined || ack.outcome.kind === "checking") break;
      if (ack.outcome.kind === "queued" && ack.seq >= this.#durable) break;
      this.#pending.shift();
      const { seq, count, single, outcome } = ack;
      if (outcome.kind === "queued") {
        this.#logRefusedRun();
        if (this.#ctx.troubled.size > 0) this.#ctx.troubled.delete(this.#agency);
        this.#ctx.log.info(LogAction.APUESTA_RECIBIDA, "success", { cantidad: count });
        if (single) {
          this.#ctx.log.info(LogAction.APUESTA_ALMACENADA, "success", {
            dni: single.document,
            numero: single.number,
          });
        }
        this.#sendAck(seq, 0, count, "");
      } else if (outcome.kind === "same") {
        // Not received now: the course's apuesta_recibida lines add up to the bets stored.
        this.#ctx.log.info(LogAction.LOTE_REENVIADO, "success", {
          agency: this.#agency,
          seq,
          cantidad: count,
          detail: "sent again, the same bets as stored",
        });
        this.#sendAck(seq, 0, count, "");
      } else if (outcome.kind === "refused") {
        this.#refuse(seq, count, outcome.error);
      } else if (outcome.kind === "fatal") {
        this.#fatal = outcome.error;
      }
    }
    this.#flushAcks();
    const waiter = this.#waiter;
    if (waiter === undefined) return;
    if (this.#fatal !== undefined) waiter.reject(this.#fatal);
    else if (waiter.ready()) waiter.resolve();
    else return;
    this.#waiter = undefined;
  }

  /**
   * Refuses a batch, logged in full; the pipelined batches refused behind it for its sake
   * (its gap, or the same failure) go into one summary line. A bad bet is always in full.
   */
  #refuse(seq: number, count: number, error: ProtocolError): void {
    this.#ctx.troubled.add(this.#agency);
    const run = this.#refused;
    const code = error.code;
    const behind = run !== undefined && code !== ErrorCode.INVALID_BET &&
      (code === ErrorCode.OUT_OF_ORDER || code === run.code);
    if (!behind) {
      this.#logRefusedRun();
      this.#ctx.log.error(LogAction.APUESTA_RECIBIDA, "fail", {
        cantidad: count,
        agency: this.#agency,
        seq,
        error: errorCodeName(code),
        detail: error.message,
      });
      this.#refused = {
        after: seq,
        code,
        batches: 0,
        bets: 0,
        first: -1,
        last: -1,
        errors: new Set(),
      };
    } else {
      if (run.batches === 0) run.first = seq;
      run.batches++;
      run.bets += count;
      run.last = seq;
      run.errors.add(errorCodeName(error.code));
    }
    this.#sendAck(seq, error.code, count, error.message);
  }

  /** Logs the summary of the refusals behind the last one logged in full, if any. */
  #logRefusedRun(): void {
    const run = this.#refused;
    this.#refused = undefined;
    if (run === undefined || run.batches === 0) return;
    this.#ctx.log.warning(LogAction.APUESTA_RECIBIDA, "fail", {
      cantidad: run.bets,
      agency: this.#agency,
      lotes: run.batches,
      desde_lote: run.first,
      hasta_lote: run.last,
      error: [...run.errors].join(" "),
      detail: `refused behind batch ${run.after}, summarized in this one line`,
    });
  }

  #sendAck(seq: number, status: number, count: number, reason: string): void {
    this.#ackFrames.push(
      encodeMessage({ type: MessageType.BATCH_ACK, seq, status, count, reason }),
    );
  }

  /**
   * Writes the held acks without waiting. A failed write needs no handling: the batches
   * are stored (or refused) all the same, and a retry after reconnecting is acknowledged.
   */
  #flushAcks(): void {
    if (this.#ackFrames.length === 0) return;
    const frames = this.#ackFrames.splice(0);
    const bytes = frames.length === 1 ? frames[0]! : concatBytes(frames);
    this.#conn.send(bytes).catch(() => {});
  }

  async #done(batches: number): Promise<void> {
    if (this.#conflict !== undefined) throw this.#conflict;
    await this.#idle();
    const { nextSeq } = this.#ctx.store.progress(this.#agency);
    if (batches !== nextSeq) {
      throw new ProtocolError(
        ErrorCode.OUT_OF_ORDER,
        `Cannot close agency ${this.#agency}: it sent ${batches} batches, ${nextSeq} are stored`,
      );
    }
    await this.#ctx.store.markDone(this.#agency);
    this.#ctx.lottery.markDone(this.#agency);
    this.#ctx.troubled.delete(this.#agency);
    this.#ctx.log.info(LogAction.AGENCIA_LISTA, "success", {
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
        pendingAgencies: status.pendingAgencies.slice(0, MAX_LISTED_AGENCIES),
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
    const [winners, pending] = status.drawn
      ? [status.total, 0]
      : [this.#ctx.store.stats.winners, status.pending];
    await this.#conn.send({ type: MessageType.TOTAL, winners, pending, retryAfterMs: 0 });
  }
}

/**
 * Serves an agency's framed connection (the caller closes it) from `ip`. A protocol
 * violation is answered with an ERROR frame, logged, and ends the session.
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
    failure = wireError(error);
  }
  // Batches already queued are stored and acknowledged (or refused) before the session
  // ends, so shutdown never logs a batch after it has closed the storage.
  await session.end(ctx.closing() ? undefined : failure);
  if (failure === undefined) return;
  if (failure instanceof ProtocolError) {
    ctx.log.error(LogAction.RECEIVE_MESSAGE, "fail", {
      ip,
      error: errorCodeName(failure.code),
      detail: failure.message,
    });
    await conn.send({
      type: MessageType.ERROR,
      code: failure.code,
      retryAfterMs: failure.retryAfterMs,
      message: failure.message,
    }).catch(() => {});
  } else if (failure instanceof ConnectionError) {
    if (ctx.closing()) return;
    if (conn.timedOut) {
      ctx.log.warning(LogAction.IDLE_TIMEOUT, "fail", { ip, detail: failure.message });
    } else if (!conn.closed) {
      ctx.log.warning(LogAction.CONNECTION_LOST, "fail", { ip, detail: failure.message });
    }
  } else {
    throw failure;
  }
}
