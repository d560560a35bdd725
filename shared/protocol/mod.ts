/**
 * The lottery protocol: typed messages, the pure codec and the chunk-fed frame decoder.
 * No sockets here; see `shared/net/` for the transport.
 *
 * @module
 */
export * from "./messages.ts";
export { decodeMessage, encodeBatchHeader, encodeMessage, readBatchHeader } from "./codec.ts";
export { FrameDecoder, type FrameDecoderOptions, type RawFrame } from "./frame_decoder.ts";
