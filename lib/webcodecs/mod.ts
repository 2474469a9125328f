/**
 * WebCodecs for AV1 on Deno and Bun: {@linkcode VideoEncoder}, {@linkcode VideoFrame} and
 * {@linkcode EncodedVideoChunk} shaped as the W3C specification has them, so browser code encodes on the
 * server unchanged.
 *
 * @example
 * ```ts
 * import { VideoEncoder, VideoFrame } from "./mod.ts";
 * const encoder = new VideoEncoder({
 *   output: (chunk, metadata) => {
 *     if (metadata?.decoderConfig) console.log(metadata.decoderConfig.codec);
 *   },
 *   error: (e) => console.error(e.name, e.message),
 * });
 * encoder.configure({ codec: "av01.0.04M.08", width: 160, height: 120, latencyMode: "realtime" });
 * const frame = new VideoFrame(new Uint8Array(160 * 120 * 3 / 2).fill(128), {
 *   format: "I420",
 *   codedWidth: 160,
 *   codedHeight: 120,
 *   timestamp: 0,
 * });
 * encoder.encode(frame, { keyFrame: true });
 * frame.close();
 * await encoder.flush();
 * encoder.close();
 * ```
 * @module
 */

export * from "./encoded_video_chunk.ts";
export { type PlaneRegion, rgbToI420 } from "./pixel_convert.ts";
export * from "./video_encoder.ts";
export * from "./video_frame.ts";
