/**
 * The transport: exact reads, complete writes, serialized sends and idle timeouts over a
 * byte stream (a `Deno.Conn` or anything shaped like one). All socket I/O of the
 * protocol goes through here.
 *
 * @module
 */
import { concatBytes, writeAll } from "../bytes.ts";
import { ConnectionError, ErrorCode, ProtocolError } from "../errors.ts";
import { decodeMessage, encodeMessage } from "../protocol/codec.ts";
import { FrameDecoder, type RawFrame } from "../protocol/frame_decoder.ts";
import { type Message, MessageType } from "../protocol/messages.ts";
import { Deadline, globalTimer, type Timer } from "./timer.ts";

/** The part of `Deno.Conn` the transport uses. */
export type ByteStream = Pick<Deno.Conn, "read" | "write" | "close">;

const CONNECTION_ERRORS = [
  Deno.errors.ConnectionReset,
  Deno.errors.ConnectionAborted,
  Deno.errors.BrokenPipe,
  Deno.errors.BadResource,
  Deno.errors.Interrupted,
  Deno.errors.NotConnected,
  Deno.errors.UnexpectedEof,
  Deno.errors.TimedOut,
];

/** Whether an error a socket call threw means the connection is gone (reset, closed, timeout). */
export function isConnectionLost(error: unknown): boolean {
  return error instanceof ConnectionError ||
    CONNECTION_ERRORS.some((kind) => error instanceof kind);
}

/**
 * Reads once into `buf` (`null` at the end), waiting at most `ms` (`Infinity`, or 0 without
 * `deadline`, is forever): the one way a read times out, by closing the stream. A
 * connection passes its reused `deadline`, whose expiry closes it; else one is made.
 *
 * @throws {Deno.errors.TimedOut} When nothing came within `ms`.
 */
export async function readWithin(
  stream: Pick<ByteStream, "read" | "close">,
  buf: Uint8Array,
  ms: number,
  deadline?: Deadline,
): Promise<number | null> {
  const own = deadline === undefined && ms > 0 && ms < Infinity
    ? new Deadline(globalTimer, () => stream.close())
    : undefined;
  const limit = deadline ?? own;
  if (ms < Infinity) limit?.set(ms);
  try {
    const n = await stream.read(buf);
    // Some streams end a read cut short by close() as EOF instead of failing it.
    if (limit?.expired) throw new Deno.errors.TimedOut(`nothing read within ${ms} ms`);
    return n;
  } catch (error) {
    if (!limit?.expired || error instanceof Deno.errors.TimedOut) throw error;
    throw new Deno.errors.TimedOut(`nothing read within ${ms} ms`, { cause: error });
  } finally {
    limit?.clear();
    own?.dispose();
  }
}

/** A frame waiting in the send queue. */
interface Outgoing {
  readonly frame: Uint8Array;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/** Options of {@linkcode FramedConnection}; a timeout of 0 (the default) is none. */
export interface FramedConnectionOptions {
  /** A read that waits longer than this closes the connection with a `ConnectionError`. */
  readonly idleTimeoutMs?: number;
  /**
   * A frame whose first bytes are in must be whole within this time, however steadily its
   * bytes trickle in (a slow-loris peer resets the idle timer with every byte).
   */
  readonly frameTimeoutMs?: number;
  /** A frame not written within this time (the peer reads nothing) closes the connection. */
  readonly writeTimeoutMs?: number;
  /** The largest frame body accepted: 8188 unless given. */
  readonly maxBodySize?: number;
  /** Bytes already read from the stream (e.g. while sniffing the protocol). */
  readonly initial?: Uint8Array;
  /** Runs the timeouts: `globalTimer` unless given (a short-lived program passes `signalTimer`). */
  readonly timer?: Timer;
}

/** A connection speaking the lottery protocol: whole messages in, queued complete writes out. */
export class FramedConnection {
  readonly #stream: ByteStream;
  readonly #decoder: FrameDecoder;
  readonly #idleTimeoutMs: number;
  readonly #frameTimeoutMs: number;
  readonly #writeTimeoutMs: number;
  /** The current read's deadline: one timer serves every read (reads come by the thousand). */
  readonly #readDeadline: Deadline;
  /** The current write's deadline, likewise. */
  readonly #writeDeadline: Deadline;
  readonly #outbox: Outgoing[] = [];
  #writing: Promise<void> | undefined;
  #closed = false;
  #timedOut = false;

  /** Frames `stream` (e.g. a `Deno.Conn`). */
  constructor(stream: ByteStream, options: FramedConnectionOptions = {}) {
    this.#stream = stream;
    this.#decoder = new FrameDecoder(
      options.maxBodySize === undefined ? {} : { maxBodySize: options.maxBodySize },
    );
    this.#idleTimeoutMs = options.idleTimeoutMs ?? 0;
    this.#frameTimeoutMs = options.frameTimeoutMs ?? 0;
    this.#writeTimeoutMs = options.writeTimeoutMs ?? 0;
    const timer = options.timer ?? globalTimer;
    const timeOut = (): void => {
      this.#timedOut = true;
      this.close();
    };
    this.#readDeadline = new Deadline(timer, timeOut);
    this.#writeDeadline = new Deadline(timer, timeOut);
    if (options.initial) this.#decoder.push(options.initial);
  }

  /** Whether the connection was closed for being idle too long. */
  get timedOut(): boolean {
    return this.#timedOut;
  }

  /** Whether {@linkcode FramedConnection.close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Reads the next message; `null` when the peer closed between frames.
   *
   * @throws {ConnectionError} On a close inside a frame, a reset, or an idle timeout.
   * @throws {ProtocolError} On a malformed or oversized frame.
   */
  async read(): Promise<Message | null> {
    const frame = await this.readFrame();
    return frame === null ? null : decodeMessage(frame.type, frame.body);
  }

  /**
   * Reads the next frame without decoding its body (for hot paths that read the body in
   * place): valid until the next read; `null` when the peer closed between frames.
   *
   * @throws {ConnectionError} On a close inside a frame, a reset, or an idle timeout.
   * @throws {ProtocolError} On a bad magic byte or an oversized length.
   */
  async readFrame(): Promise<RawFrame | null> {
    let deadline: number | undefined;
    for (;;) {
      const frame = this.#decoder.next();
      if (frame) return frame;
      if (deadline === undefined && this.#frameTimeoutMs > 0 && this.#decoder.buffered > 0) {
        deadline = performance.now() + this.#frameTimeoutMs;
      }
      const n = await this.#readChunk(deadline);
      if (n === null) {
        if (this.#decoder.buffered === 0) return null;
        throw new ConnectionError(
          `Cannot read frame: connection closed inside a frame (${this.#decoder.buffered} bytes pending)`,
        );
      }
      this.#decoder.commit(n);
    }
  }

  async #readChunk(deadline?: number): Promise<number | null> {
    const left = deadline === undefined ? Infinity : Math.max(0, deadline - performance.now());
    const frameLimited = left < (this.#idleTimeoutMs || Infinity);
    const wait = Math.min(left, this.#idleTimeoutMs || Infinity);
    try {
      return await readWithin(this.#stream, this.#decoder.space(), wait, this.#readDeadline);
    } catch (error) {
      throw new ConnectionError(
        !this.#timedOut
          ? "Cannot read: connection lost"
          : frameLimited
          ? `Cannot read frame: not whole within ${this.#frameTimeoutMs} ms`
          : `Cannot read: idle for more than ${this.#idleTimeoutMs} ms`,
        { cause: error },
      );
    }
  }

  /**
   * Queues a message (or an encoded frame); resolves once it is written. Frames leave in
   * order, never interleaved; those queued during a write leave together in the next.
   *
   * @throws {ConnectionError} If the connection fails.
   */
  send(message: Message | Uint8Array): Promise<void> {
    const frame = message instanceof Uint8Array ? message : encodeMessage(message);
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    this.#outbox.push({ frame, resolve, reject });
    this.#writing ??= this.#drainOutbox();
    return promise;
  }

  async #drainOutbox(): Promise<void> {
    try {
      while (this.#outbox.length > 0) {
        const batch = this.#outbox.splice(0);
        try {
          if (this.#closed) throw new ConnectionError("Cannot write: connection is closed");
          const bytes = batch.length === 1
            ? batch[0]!.frame
            : concatBytes(batch.map((b) => b.frame));
          await this.#write(bytes);
          for (const item of batch) item.resolve();
        } catch (error) {
          for (const item of batch) item.reject(error);
        }
      }
    } finally {
      // Cleared in the same turn the queue is found empty, so a later send starts a new drain.
      this.#writing = undefined;
    }
  }

  async #write(bytes: Uint8Array): Promise<void> {
    if (this.#writeTimeoutMs > 0) this.#writeDeadline.set(this.#writeTimeoutMs);
    try {
      await writeAll(this.#stream, bytes);
    } catch (error) {
      throw new ConnectionError(
        this.#writeDeadline.expired
          ? `Cannot write: the peer read nothing for ${this.#writeTimeoutMs} ms`
          : `Cannot write: connection lost`,
        { cause: error },
      );
    } finally {
      this.#writeDeadline.clear();
    }
  }

  /**
   * Reads the next message and fails unless it is one of `types`; an ERROR frame from
   * the peer becomes a {@linkcode ProtocolError} with its code.
   *
   * @throws {ConnectionError} If the peer closes first.
   * @throws {ProtocolError} On an error frame or an unexpected message.
   */
  async expect<T extends Message["type"]>(
    ...types: T[]
  ): Promise<Extract<Message, { type: T }>> {
    const message = await this.read();
    if (message === null) throw new ConnectionError("Cannot read reply: connection closed by peer");
    if ((types as number[]).includes(message.type)) {
      return message as Extract<Message, { type: T }>;
    }
    if (message.type === MessageType.ERROR) {
      throw new ProtocolError(message.code as ErrorCode, `Peer error: ${message.message}`, {
        retryAfterMs: message.retryAfterMs,
      });
    }
    throw new ProtocolError(
      ErrorCode.UNEXPECTED_MESSAGE,
      `Cannot use reply: unexpected message type 0x${message.type.toString(16)}`,
    );
  }

  /** Closes the stream; idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#readDeadline.dispose();
    this.#writeDeadline.dispose();
    try {
      this.#stream.close();
    } catch {
      // Already closed by the peer or by a failed read: nothing left to release.
    }
  }

  /** Closes the stream. */
  [Symbol.dispose](): void {
    this.close();
  }
}
