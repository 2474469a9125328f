/**
 * av1-stream: AV1 encoding for Deno and Bun through the SVT-AV1 and rav1e shared libraries, with real
 * backpressure. `encode(frame)` resolves when the encoder has accepted the frame, `packets()` yields the
 * encoded temporal units, and every blocking native call runs on a worker thread, never on yours.
 *
 * @example
 * ```ts
 * import { IvfWriter, ivfFileSink, SvtAv1Encoder, testSource } from "./mod.ts";
 * const input = testSource({ width: 320, height: 240, frames: 30 });
 * await using enc = await SvtAv1Encoder.create({ ...input.info, preset: 12, crf: 35 });
 * const ivf = new IvfWriter(await ivfFileSink("/tmp/mod_example.ivf"), input.info);
 * const pump = (async () => {
 *   for await (const frame of input.frames()) await enc.encode(frame);
 *   await enc.flush();
 * })();
 * for await (const packet of enc.packets()) await ivf.writePacket(packet);
 * await pump;
 * await ivf.close();
 * console.log(`${ivf.frameCount} packets`);
 * ```
 * @module
 */

export { RaColorPrimaries, RaMatrixCoefficients, RaTransferCharacteristics } from "./ffi/layouts/rav1e.ts";
export type {
  LibraryVersion,
  SvtAv1Layout,
  SvtBufferHeaderLayout,
  SvtIoFormatLayout,
} from "./ffi/layouts/svt_av1.ts";
export {
  type LocateOptions,
  locateRav1e,
  locateSvtAv1,
  RAV1E_SONAMES,
  type Rav1eLocation,
  SVT_AV1_SONAMES,
  type SvtAv1Location,
} from "./ffi/load.ts";
export * from "./lib/av1/mod.ts";
export * from "./lib/chunked/mod.ts";
export * from "./lib/container/mod.ts";
export { type CommonConfig } from "./lib/encoder/config.ts";
export {
  type Rav1eColorPrimaries,
  type Rav1eConfig,
  rav1eConfigFromFlags,
  Rav1eEncoder,
  type Rav1eFlags,
  type Rav1eMatrix,
  type Rav1eSettings,
  rav1eSettings,
  type Rav1eTransfer,
} from "./lib/encoder/rav1e.ts";
export type { Rav1eWorkerConfig } from "./lib/encoder/rav1e_worker.ts";
export { type SvtAv1Config, SvtAv1Encoder } from "./lib/encoder/svt_av1.ts";
export {
  configureEncoderThreads,
  type EncoderThreadOptions,
  type EncoderThreadStats,
  encoderThreadStats,
  warmEncoderThreads,
} from "./lib/encoder/thread_pool.ts";
export { type HostOptions, type HostSetup, WorkerEncoder } from "./lib/encoder/worker_encoder.ts";
export { EncoderError, type EncoderErrorCode, type EncoderErrorOptions } from "./lib/errors.ts";
export { fileReadable, fileSize } from "./lib/io/file_stream.ts";
export * from "./lib/io/mod.ts";
export { stdinReadable, stdoutWritable } from "./lib/io/std_stream.ts";
export * from "./lib/stream/mod.ts";
export {
  chromaPlaneSize,
  type ChromaPosition,
  type ChromaSampling,
  type EncodeOptions,
  type Encoder,
  type EncoderSetupTimes,
  type Frame,
  frameByteLength,
  type LibraryImage,
  type Packet,
  type Rational,
  type VideoInfo,
} from "./lib/types.ts";
export { VERSION } from "./lib/version.ts";
export * from "./lib/webcodecs/mod.ts";
