/**
 * From frames to peers: {@linkcode createEncodeStream} turns an encoder into a transform stream, and the
 * sinks deliver packets to files, stdout, TCP, RTMP, WebSocket and HTTP peers with backpressure,
 * reconnection and a policy for a peer that is gone (`block`, `buffer`, `drop`, `reinit`).
 *
 * @example
 * ```ts
 * import { createEncodeStream, createSink } from "./mod.ts";
 * import { testSource } from "../io/testsrc.ts";
 * const source = testSource({ width: 64, height: 64, frames: 30 });
 * const encode = createEncodeStream({ ...source.info, preset: 12, lowDelay: true, keyint: 10 });
 * const sink = createSink("/tmp/stream_example.ivf", { info: source.info, onKeyFrameNeeded: () => encode.requestKeyFrame() });
 * await ReadableStream.from(source.frames()).pipeThrough(encode).pipeTo(sink);
 * console.log(sink.stats.packets); // 30
 * ```
 * @module
 */

export * from "../transport/mod.ts";
export type { SrtOptions } from "../transport/srt/srt.ts";
export type { WhipBitrateEvent, WhipOptions } from "../transport/whip.ts";
export { type Backoff, backoff, type BackoffOptions } from "./backoff.ts";
export {
  createEncodeStream,
  type EncodeStream,
  type EncodeStreamConfig,
  type EncodeStreamOptions,
} from "./encode_stream.ts";
export { ivfFormat, obuFormat, type ObuFormatOptions, type StreamFormat } from "./format.ts";
export { paceFrames, type PaceOptions } from "./pace.ts";
export {
  type DisconnectPolicy,
  PacketSink,
  type PacketSinkOptions,
  type SinkEvents,
  type SinkState,
  type SinkStats,
} from "./packet_sink.ts";
export {
  createSink,
  filePacketSink,
  httpSink,
  rtmpSink,
  stdoutSink,
  tcpSink,
  webSocketSink,
} from "./sinks.ts";
