/**
 * A pass-through TCP proxy that measures ack latency: the time from a BATCH frame
 * passing towards the server to its BATCH_ACK passing back, per connection. It forwards
 * every byte unchanged, so the programs need no instrumentation. Frames are split with
 * the protocol's own {@linkcode FrameDecoder}.
 *
 * @module
 */
import { writeAll } from "../../shared/bytes.ts";
import { ProtocolError } from "../../shared/errors.ts";
import { FrameDecoder, MessageType, type RawFrame } from "../../shared/protocol/mod.ts";

/** Pairs each BATCH of one connection with its BATCH_ACK by sequence number. */
export class AckTimer {
  readonly #sentAt = new Map<number, number>();

  /** Notes a frame going to the server, read at `at` (`performance.now()`); only BATCHes matter. */
  sent(frame: RawFrame, at: number): void {
    // BATCH body: agency u16, seq u32, count u16, bets (shared/protocol/codec.ts).
    if (frame.type === MessageType.BATCH && frame.body.length >= 6) {
      this.#sentAt.set(new DataView(frame.body.buffer, frame.body.byteOffset).getUint32(2), at);
    }
  }

  /**
   * Matches a frame going to the client, read at `at`, against the batches sent: the ms
   * since its BATCH when it is the ack of a batch seen, else undefined.
   */
  acked(frame: RawFrame, at: number): number | undefined {
    // BATCH_ACK body: seq u32, status u16, count u16, reason (shared/protocol/codec.ts).
    if (frame.type !== MessageType.BATCH_ACK || frame.body.length < 4) return undefined;
    const seq = new DataView(frame.body.buffer, frame.body.byteOffset).getUint32(0);
    const sentAt = this.#sentAt.get(seq);
    if (sentAt === undefined) return undefined;
    this.#sentAt.delete(seq);
    return at - sentAt;
  }
}

/**
 * Listens on 127.0.0.1 (a free port) and relays each connection to a target port,
 * timing every batch until its ack.
 */
export class AckLatencyProxy implements AsyncDisposable {
  readonly #listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  readonly #conns = new Set<Deno.Conn>();
  readonly #relays: Promise<void>[] = [];
  readonly #accepting: Promise<void>;
  /** The port agencies connect to. */
  readonly port: number = this.#listener.addr.port;
  /** Every ack latency seen so far, in milliseconds, in the order the acks passed. */
  readonly latenciesMs: number[] = [];

  /** @param targetPort The server's port on 127.0.0.1. */
  constructor(targetPort: number) {
    this.#accepting = (async () => {
      try {
        for await (const client of this.#listener) {
          this.#relays.push(this.#relay(client, targetPort).catch(() => {}));
        }
      } catch {
        // Listener closed.
      }
    })();
  }

  /** Stops listening, closes every relayed connection and waits for the relays to end. */
  async close(): Promise<void> {
    closeQuietly(this.#listener);
    for (const conn of this.#conns) closeQuietly(conn);
    this.#conns.clear();
    await this.#accepting;
    await Promise.all(this.#relays);
  }

  /** Same as {@linkcode AckLatencyProxy.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #relay(client: Deno.TcpConn, targetPort: number): Promise<void> {
    this.#conns.add(client);
    let upstream: Deno.TcpConn | undefined;
    try {
      upstream = await Deno.connect({ hostname: "127.0.0.1", port: targetPort });
      this.#conns.add(upstream);
      // Forward each chunk at once: Nagle's algorithm would add delays of its own.
      client.setNoDelay(true);
      upstream.setNoDelay(true);
      const timer = new AckTimer();
      await Promise.all([
        pump(client, upstream, (frame, at) => timer.sent(frame, at)),
        pump(upstream, client, (frame, at) => {
          const ms = timer.acked(frame, at);
          if (ms !== undefined) this.latenciesMs.push(ms);
        }),
      ]);
    } finally {
      for (const conn of [client, upstream]) {
        if (conn && this.#conns.delete(conn)) closeQuietly(conn);
      }
    }
  }
}

/**
 * Copies one direction until EOF, handing each whole frame to `onFrame` with the time
 * its last chunk was read. Bytes are read straight into the decoder's buffer and
 * written on from there. A stream that is not valid frames is still forwarded, just
 * no longer watched.
 */
async function pump(
  from: Deno.TcpConn,
  to: Deno.TcpConn,
  onFrame: (frame: RawFrame, at: number) => void,
): Promise<void> {
  const decoder = new FrameDecoder();
  let watching = true;
  try {
    for (;;) {
      const space = decoder.space();
      const n = await from.read(space);
      if (n === null) break;
      const at = performance.now();
      // A view of the decoder's buffer: valid until the next space(), after the write.
      const chunk = space.subarray(0, n);
      if (watching) {
        decoder.commit(n);
        try {
          for (let frame = decoder.next(); frame; frame = decoder.next()) onFrame(frame, at);
        } catch (error) {
          if (!(error instanceof ProtocolError)) throw error;
          watching = false;
        }
      }
      await writeAll(to, chunk);
    }
    await to.closeWrite().catch(() => {});
  } catch {
    // Reset or closed: the other direction ends too.
    closeQuietly(to);
    closeQuietly(from);
  }
}

function closeQuietly(resource: { close(): void }): void {
  try {
    resource.close();
  } catch {
    // Already closed.
  }
}
