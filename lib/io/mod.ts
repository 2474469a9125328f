/**
 * Raw video in and encoded video out: a streaming Y4M reader and writer, a synthetic test source, and
 * IVF and low-overhead OBU writers over files or `WritableStream`s. Runtime-neutral (Deno and Bun).
 *
 * @example
 * ```ts
 * import { IvfWriter, ivfFileSink, testSource } from "./mod.ts";
 * const source = testSource({ width: 320, height: 240, frames: 30 });
 * const ivf = new IvfWriter(await ivfFileSink("/tmp/out.ivf"), source.info);
 * for await (const frame of source.frames()) {
 *   // const packets = encoder.encode(frame) ... then for each packet:
 *   await ivf.writePacket({ data: new Uint8Array([0x12, 0x00]), timestamp: frame.timestamp });
 * }
 * await ivf.close();
 * ```
 * @module
 */

export {
  decodeIvfHeader,
  encodeIvfFrameHeader,
  encodeIvfHeader,
  IVF_FRAME_HEADER_SIZE,
  IVF_HEADER_SIZE,
  type IvfFrame,
  type IvfHeader,
  IvfReader,
  IvfWriter,
  type IvfWriterOptions,
  readIvf,
} from "./ivf.ts";
export {
  firstObuHasSizeField,
  ObuWriter,
  type ObuWriterOptions,
  startsWithTemporalDelimiter,
  TEMPORAL_DELIMITER,
} from "./obu.ts";
export { type ByteSink, fileSink, ivfFileSink, toByteSink, writableSink } from "./sink.ts";
export {
  isTestSourceSpec,
  parseFrameRate,
  parseTestSourceSpec,
  TEST_SOURCE_DEFAULTS,
  type TestFrame,
  type TestSource,
  testSource,
  type TestSourceOptions,
  testSourceY4m,
} from "./testsrc.ts";
export {
  encodeY4mFrame,
  encodeY4mHeader,
  parseY4mHeader,
  Y4M_MAX_HEADER_BYTES,
  y4mColorspace,
  type Y4mFrame,
  type Y4mHeaderInfo,
  type Y4mInfo,
  Y4mReader,
  type Y4mReaderOptions,
  Y4mWriter,
} from "./y4m.ts";
