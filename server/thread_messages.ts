/**
 * The messages between the storage's owner (the main thread) and the session workers. Rows
 * travel as transferred `ArrayBuffer`s (moved, not copied); nothing else crosses but numbers,
 * short strings and, once, the winners.
 *
 * @module
 */
import {
  type ErrorCode,
  errorText,
  ProtocolError,
  StorageError,
  type StorageErrorKind,
} from "../shared/errors.ts";
import type { ServerOptions } from "./server.ts";

/**
 * An error across threads: a `StorageError`'s kind and path, a `ProtocolError`'s code, or
 * only another error's message.
 */
export interface ThreadError {
  readonly storage?: { readonly kind: StorageErrorKind; readonly path: string };
  readonly code?: number;
  readonly message: string;
}

/** An error as it crosses to another thread. */
export function toThreadError(error: unknown): ThreadError {
  if (error instanceof StorageError) {
    return { storage: { kind: error.kind, path: error.path }, message: error.message };
  }
  if (error instanceof ProtocolError) return { code: error.code, message: error.message };
  return { message: errorText(error) };
}

/** An error back from another thread, of the class it had there (or a plain `Error`). */
export function fromThreadError({ storage, code, message }: ThreadError): Error {
  if (storage !== undefined) return new StorageError(storage.path, message, { kind: storage.kind });
  return code === undefined ? new Error(message) : new ProtocolError(code as ErrorCode, message);
}

/** A batch's rows as they cross: `rows` is the transferred buffer of exactly those bytes. */
export interface RowsMessage {
  readonly agency: number;
  readonly seq: number;
  readonly count: number;
  readonly winners: number;
  readonly rows: ArrayBuffer;
}

/** Worker → owner. */
export type ToOwner =
  /** The worker listens and accepts. */
  | { readonly kind: "listening" }
  /** The worker could not start. */
  | { readonly kind: "start_failed"; readonly error: string }
  /** The worker has stopped accepting and every session of it has ended. */
  | { readonly kind: "stopped" }
  /** An error nothing in the worker handled: the worker cannot be trusted to go on. */
  | { readonly kind: "worker_failed"; readonly error: string }
  /**
   * New batches, for the owner to check and queue in order: per batch five numbers in
   * `items` (agency, sequence, bets, winners, bytes of rows), its rows next in `rows`. One
   * message carries every batch a worker's turn of the event loop produced.
   */
  | { readonly kind: "store"; readonly items: readonly number[]; readonly rows: ArrayBuffer }
  /** A batch under a sequence taken: the owner answers `reply` once it is compared. */
  | ({ readonly kind: "retry"; readonly id: number } & RowsMessage)
  /** An agency's DONE: `reply` once durable and counted by the draw. */
  | { readonly kind: "done"; readonly id: number; readonly agency: number }
  /** The worker's sessions want (or no longer want) to hear of an agency's batches. */
  | { readonly kind: "watch" | "unwatch"; readonly agency: number };

/** Owner → worker. */
export type ToWorker =
  /** The first message: what the worker serves with. */
  | {
    readonly kind: "init";
    readonly index: number;
    readonly config: ServerOptions;
    readonly logLevel: string;
    readonly secrets: ReadonlyMap<number, string>;
    readonly shared: SharedArrayBuffer;
  }
  /** Stop accepting, let the sessions end, answer `stopped`. */
  | { readonly kind: "stop" }
  /** Per pair in `progress` (agency, next sequence): every batch below it is durable. */
  | { readonly kind: "durable"; readonly progress: readonly number[] }
  /**
   * Per pair in `progress` (agency, sequence): the owner took this worker's batch as new, or
   * found it the same as the batch another session stored under that sequence first. Only
   * then may the worker count it durable: the agency's durable sequence may have been reached
   * by another session's batches.
   */
  | { readonly kind: "taken"; readonly progress: readonly number[] }
  /** The agency's queued batches from `fromSeq` on were not stored. */
  | {
    readonly kind: "failed";
    readonly agency: number;
    readonly fromSeq: number;
    readonly error: ThreadError;
  }
  /** The answer to a `retry` or `done`. */
  | { readonly kind: "reply"; readonly id: number; readonly error?: ThreadError }
  /** The draw's result, sent to every worker once, before the barrier opens. */
  | {
    readonly kind: "drawn";
    readonly winners: ReadonlyArray<readonly [number, readonly string[]]>;
    readonly total: number;
  }
  /** The draw failed (its rows could not be read): every winners query gets this error. */
  | { readonly kind: "drawFailed"; readonly error: ThreadError };
