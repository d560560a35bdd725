/**
 * An agency (exercises 6–8): streams its CSV to the server in batches of at most
 * `batch.maxAmount` bets and 8 KiB, with a bounded window of unacknowledged batches,
 * declares itself done, then asks for its winners and for the total.
 *
 * A lost connection is not fatal: the agency reconnects with backoff and resumes at
 * the sequence the server's WELCOME names (batching is deterministic for a given file
 * and `maxAmount`, so batch `seq` always holds the same bets). It first sends again the
 * last batch the server holds: the server acknowledges it only if it holds the same
 * bets, so an agency never resumes on bets loaded from other data.
 *
 * @module
 */
import {
  ConnectionError,
  ErrorCode,
  errorCodeName,
  errorText,
  ProtocolError,
} from "../shared/errors.ts";
import { type ActionLogger, LogAction } from "../shared/log.ts";
import type { FramedConnection } from "../shared/net/framed_conn.ts";
import { MessageType } from "../shared/protocol/mod.ts";
import type { ClientConfig } from "./config.ts";
import {
  backoffDelay,
  type ConnectConfig,
  hintedDelay,
  openServerConnection,
  sleep,
} from "./connect.ts";
import { type ChunkBatch, csvBatchChunks, openBetsFile } from "./csv_batches.ts";

/** What an agency run achieved. */
export interface AgencyResult {
  /** Bets the server acknowledged in this run (resumed ones excluded). */
  readonly betsSent: number;
  /** Batches the server holds for this agency (its next sequence number). */
  readonly batches: number;
  /** This agency's winners' documents; `undefined` when stopped early. */
  readonly winners?: readonly string[];
  /** Winners across all agencies; `undefined` when stopped early. */
  readonly totalWinners?: number;
  /** Whether a signal stopped the run before the end. */
  readonly stopped: boolean;
}

/** The configuration an agency uses. */
export type AgencyConfig =
  & ConnectConfig
  & Pick<ClientConfig, "batchMaxAmount" | "dataPath" | "window" | "secret" | "timeout">;

/** Documents listed in full in the `ganadores` log line; longer lists are cut. */
const LISTED_DOCUMENTS = 50;

/** The least time between two INFO lines of an agency waiting for the draw. */
const WAIT_LOG_MS = 5000;

function listDocuments(documents: readonly string[]): string {
  const listed = documents.slice(0, LISTED_DOCUMENTS).join(" ");
  const rest = documents.length - LISTED_DOCUMENTS;
  return rest > 0 ? `${listed} (+${rest} more)` : listed;
}

/** Runs one connection's worth of the agency protocol; throws ConnectionError to retry. */
class AgencyRun {
  readonly #config: AgencyConfig;
  /** The agency's bets file, read again from its start by each session. */
  readonly #file: Deno.FsFile;
  readonly #log: ActionLogger;
  readonly #signal: AbortSignal;
  #betsSent = 0;
  /** Batches the server holds: from WELCOME, then one more per ack. */
  #batches = 0;
  /** The most batches the server has acknowledged at once (its highest ack + 1). */
  #acked = 0;
  #doneAcked = false;
  /** Batches the server held when this connection began (its WELCOME). */
  #held = 0;
  #lastProgress = performance.now();

  constructor(config: AgencyConfig, file: Deno.FsFile, log: ActionLogger, signal: AbortSignal) {
    this.#config = config;
    this.#file = file;
    this.#log = log;
    this.#signal = signal;
  }

  /**
   * How far the server has acknowledged, the highest batch plus one for the DONE: it never
   * decreases and is at most the file's batches plus one, whatever a server says.
   */
  get progress(): number {
    return this.#acked + (this.#doneAcked ? 1 : 0);
  }

  async session(conn: FramedConnection): Promise<AgencyResult> {
    const id = this.#config.id;
    await conn.send({ type: MessageType.HELLO, agency: id, secret: this.#config.secret });
    const welcome = await conn.expect(MessageType.WELCOME);
    this.#batches = this.#held = welcome.nextSeq;
    const batches = await this.#sendBatches(conn, welcome.done);
    if (batches === undefined) return this.stopped();
    if (!welcome.done) {
      await conn.send({ type: MessageType.DONE, agency: id, batches });
      await conn.expect(MessageType.DONE_ACK);
      this.#doneAcked = true;
    }
    this.#log.info(LogAction.APUESTAS_ENVIADAS, "success", {
      client_id: id,
      cantidad: this.#betsSent,
      lotes: batches,
    });
    const winners = await this.#queryWinners(conn);
    if (winners === undefined) return this.stopped();
    this.#log.info(LogAction.CONSULTA_GANADORES, "success", {
      client_id: id,
      cant_ganadores: winners.length,
    });
    this.#log.info(LogAction.GANADORES, "success", { client_id: id, dnis: listDocuments(winners) });
    const total = await this.#queryTotal(conn);
    if (total === undefined) return this.stopped();
    this.#log.info(LogAction.CONSULTA_TOTAL_GANADORES, "success", {
      client_id: id,
      cant_ganadores: total,
    });
    await conn.send({ type: MessageType.BYE });
    return { betsSent: this.#betsSent, batches, winners, totalWinners: total, stopped: false };
  }

  /** The result of a run cut short by a signal. */
  stopped(): AgencyResult {
    return { betsSent: this.#betsSent, batches: this.#batches, stopped: true };
  }

  /**
   * Sends the batches the server lacks, a chunk of frames per write, at most `window`
   * unacknowledged; first again the last one it holds, a probe it acknowledges only if it
   * holds the same bets. Returns how many batches the file makes (then all acknowledged, so
   * as many as the server holds), or undefined if stopped.
   *
   * @throws {ProtocolError} `CONFLICT` when the file makes fewer batches than the server has,
   * or more than it has with the DONE.
   */
  async #sendBatches(conn: FramedConnection, done: boolean): Promise<number | undefined> {
    const unacked: ChunkBatch[] = [];
    let batches = 0;
    const held = this.#held;
    const probe = held - 1;
    const { dataPath, id, batchMaxAmount, window } = this.#config;
    // Half a window per write: the other half is in flight meanwhile.
    const framesPerChunk = Math.max(1, Math.floor(window / 2));
    const options = { path: dataPath, agency: id, maxAmount: batchMaxAmount, framesPerChunk };
    for (const chunk of csvBatchChunks(this.#file, options)) {
      if (this.#signal.aborted) break;
      batches = chunk.batches.at(-1)!.seq + 1;
      if (done && batches > held) throw this.#otherData(held, done, "more");
      const fresh = chunk.batches.filter((b) => b.seq === probe || b.seq >= held);
      if (fresh.length === 0) continue;
      while (unacked.length + fresh.length > window) await this.#readAck(conn, unacked);
      await conn.send(chunk.bytes.subarray(fresh[0]!.start, fresh.at(-1)!.end));
      unacked.push(...fresh);
    }
    while (unacked.length > 0) await this.#readAck(conn, unacked);
    if (this.#signal.aborted) return undefined;
    if (batches < held) throw this.#otherData(held, done, `only ${batches}`);
    return batches;
  }

  /** The server holds more (or fewer) of this agency's batches than its file makes. */
  #otherData(held: number, done: boolean, found: string): ProtocolError {
    const { id, dataPath, batchMaxAmount } = this.#config;
    return new ProtocolError(
      ErrorCode.CONFLICT,
      `The server holds ${held} batches of agency ${id}${done ? " and its DONE" : ""}, but ` +
        `${dataPath} makes ${found} in batches of ${batchMaxAmount}, so this agency's bets ` +
        "were already loaded from other data (another file or batch.maxAmount); to start a " +
        "fresh draw, stop the server and move its bets.csv and bets.csv.journal away",
    );
  }

  async #readAck(conn: FramedConnection, unacked: ChunkBatch[]): Promise<void> {
    const ack = await conn.expect(MessageType.BATCH_ACK);
    const expected = unacked.shift();
    if (expected === undefined || ack.seq !== expected.seq) {
      throw new ProtocolError(
        ErrorCode.UNEXPECTED_MESSAGE,
        `Cannot match ack: got sequence ${ack.seq}, expected ${expected?.seq ?? "none"}`,
      );
    }
    if (ack.status !== 0) {
      const lines = expected.firstLine === expected.lastLine
        ? `line ${expected.firstLine}`
        : `lines ${expected.firstLine}-${expected.lastLine}`;
      throw new ProtocolError(
        ack.status as ErrorCode,
        `Batch ${ack.seq} (${ack.count} bets, ${this.#config.dataPath} ${lines}) was refused: ${ack.reason}`,
      );
    }
    // The probe was stored before this connection: it is not sent in this run.
    if (ack.seq >= this.#held) this.#betsSent += expected.count;
    // Acks come in the order sent, from the probe (`#held - 1`) on.
    this.#batches = ack.seq + 1;
    this.#acked = Math.max(this.#acked, this.#batches);
    const now = performance.now();
    if (now - this.#lastProgress >= 1000) {
      this.#lastProgress = now;
      this.#log.info(LogAction.PROGRESO, "in_progress", {
        client_id: this.#config.id,
        apuestas_enviadas: this.#betsSent,
        lote: ack.seq,
      });
    }
  }

  async #queryWinners(conn: FramedConnection): Promise<string[] | undefined> {
    const id = this.#config.id;
    let loggedAt = -Infinity;
    while (!this.#signal.aborted) {
      await conn.send({ type: MessageType.WINNERS_QUERY, agency: id });
      const reply = await conn.expect(MessageType.WINNERS, MessageType.NOT_READY);
      if (reply.type === MessageType.NOT_READY) {
        // Which agencies the draw waits for, at INFO, every few seconds at most.
        const now = performance.now();
        if (now - loggedAt >= WAIT_LOG_MS) {
          loggedAt = now;
          const listed = reply.pendingAgencies;
          const more = reply.pending - listed.length;
          this.#log.info(LogAction.CONSULTA_GANADORES, "in_progress", {
            client_id: id,
            agencias_pendientes: listed.join(" ") + (more > 0 ? ` (+${more})` : ""),
          });
        }
        await sleep(reply.retryAfterMs, this.#signal);
        continue;
      }
      const documents = [...reply.documents];
      for (let last = reply.last; !last;) {
        const more = await conn.expect(MessageType.WINNERS);
        documents.push(...more.documents);
        last = more.last;
      }
      return documents;
    }
    return undefined;
  }

  async #queryTotal(conn: FramedConnection): Promise<number | undefined> {
    while (!this.#signal.aborted) {
      await conn.send({ type: MessageType.TOTAL_QUERY });
      const reply = await conn.expect(MessageType.TOTAL);
      if (reply.pending === 0) return reply.winners;
      this.#log.info(LogAction.CONSULTA_TOTAL_GANADORES, "in_progress", {
        client_id: this.#config.id,
        agencias_pendientes: reply.pending,
      });
      await sleep(reply.retryAfterMs, this.#signal);
    }
    return undefined;
  }
}

/**
 * Runs the agency to the end: send, done, winners, total. Reconnects and resumes when
 * the connection drops or the server turns it away for now.
 *
 * Two budgets of `connect.attempts` reconnections each, both reset whenever a session
 * made progress (a batch or the DONE acknowledged), so faults separated by progress never
 * add up: one for failures without a hint (waits back off from `connect.backoff`), one for
 * refusals whose ERROR says when to come back (`LIMIT_EXCEEDED` from a full server: each
 * wait is the hint, at most a minute, plus jitter). Progress is measured by the highest
 * batch acknowledged, which only grows and is bounded by the file's batches, so the run
 * ends however the server behaves. `signal` stops it after the current batch.
 *
 * @throws {BetsFileError} When the data path is no readable file, or a line cannot be sent.
 * @throws {ProtocolError} When the server refuses a batch (its code and reason).
 * @throws {ConnectionError} When the server stays unreachable, naming its address.
 */
export async function runAgency(
  config: AgencyConfig,
  options: { readonly log: ActionLogger; readonly signal: AbortSignal },
): Promise<AgencyResult> {
  // A data path that is no readable file fails now, not after a wait for the server.
  using file = await openBetsFile(config.dataPath);
  const run = new AgencyRun(config, file, options.log, options.signal);
  let reconnects = 0;
  let hinted = 0;
  for (;;) {
    let conn: FramedConnection;
    try {
      conn = await openServerConnection(config, options);
    } catch (error) {
      // Stopped (SIGTERM) while waiting for the server: not a failure.
      if (options.signal.aborted) return run.stopped();
      throw error;
    }
    const progress = run.progress;
    let failure: unknown;
    try {
      return await run.session(conn);
    } catch (error) {
      if (options.signal.aborted && isTransient(error)) return run.stopped();
      if (!isTransient(error)) throw error;
      failure = error;
    } finally {
      conn.close();
      options.log.info(LogAction.CLOSE_CONNECTION, "success", { client_id: config.id });
    }
    if (run.progress > progress) reconnects = hinted = 0;
    const hintMs = failure instanceof ProtocolError ? failure.retryAfterMs : 0;
    const tries = hintMs > 0 ? ++hinted : ++reconnects;
    if (tries > config.connectAttempts) throw giveUp(config, tries - 1, hintMs > 0, failure);
    // Back off even when the server answers at once (it may be full or shutting down).
    const wait = hintMs > 0
      ? hintedDelay(hintMs)
      : backoffDelay(reconnects, config.connectBackoff.ms);
    options.log.warning(LogAction.RECONEXION, "in_progress", {
      client_id: config.id,
      intento: tries,
      intentos: config.connectAttempts,
      retry_in_ms: wait,
      detail: describeFailure(failure),
    });
    await sleep(wait, options.signal);
  }
}

/** The error an agency gives up with: the server's address, the budget spent, the last failure. */
function giveUp(config: AgencyConfig, tries: number, hinted: boolean, failure: unknown) {
  const waits = hinted ? "waits the server asked for" : "reconnections";
  return new ConnectionError(
    `Cannot finish with server ${config.serverAddress.text}: ${tries} ${waits} in a row ` +
      `made no progress (connect.attempts); the last ended with ${describeFailure(failure)}`,
    { cause: failure },
  );
}

/** Failures worth reconnecting for: a lost connection, a full or stopping server. */
function isTransient(error: unknown): boolean {
  return error instanceof ConnectionError ||
    (error instanceof ProtocolError &&
      (error.code === ErrorCode.LIMIT_EXCEEDED || error.code === ErrorCode.SHUTTING_DOWN));
}

/** Why an agency failed, in one line for its last log line: the code's name and the message. */
export function describeFailure(error: unknown): string {
  if (error instanceof ProtocolError) return `${errorCodeName(error.code)}: ${error.message}`;
  return errorText(error);
}
