/**
 * WebM (and Matroska) output through mediabunny: a file with sizes, duration and cues patched in at the
 * end, or a live stream written strictly forward with unknown sizes.
 * @module
 */

import type { ByteSink } from "../io/sink.ts";
import type { Rational, VideoInfo } from "../types.ts";
import { MuxingWriter } from "./writer.ts";

/** Options of {@linkcode WebmWriter}. */
export interface WebmWriterOptions {
  /**
   * Write strictly forward with unknown sizes, so the stream plays from its start as it is written (a
   * socket, a pipe, HTTP). Default: true when the target cannot seek (a `WritableStream`), false for a
   * file sink, whose sizes, duration and cues are then written at the end.
   */
  live?: boolean;
  /** Write Matroska (`.mkv`, DocType `matroska`) instead of WebM. Default false. */
  matroska?: boolean;
  /** Seconds per timestamp unit. Default `fps.den / fps.num`: timestamps count frames. */
  timeBase?: Rational;
  /** The encoder's sequence header OBU, used when the first key frame lacks one. */
  sequenceHeader?: Uint8Array;
}

/**
 * Writes AV1 packets to WebM. The codec string and `CodecPrivate` come from the first key frame's
 * sequence header; each packet's key-frame flag marks its block. WebM keeps timestamps in milliseconds.
 *
 * @example
 * ```ts
 * import { WebmWriter } from "./webm.ts";
 * import { fileSink } from "../io/sink.ts";
 * import { SvtAv1Encoder } from "../encoder/svt_av1.ts";
 * import { testSource } from "../io/testsrc.ts";
 * const source = testSource({ width: 160, height: 120, frames: 10 });
 * await using enc = await SvtAv1Encoder.create({ ...source.info, preset: 12 });
 * const webm = new WebmWriter(await fileSink("/tmp/webm_example.webm"), source.info);
 * const pump = (async () => {
 *   for await (const frame of source.frames()) await enc.encode(frame);
 *   await enc.flush();
 * })();
 * for await (const packet of enc.packets()) await webm.writePacket(packet);
 * await pump;
 * await webm.close();
 * console.log(webm.codec); // "av01.0.00M.08.0.110.02.02.02.0": level 0 at this size, no colour description
 * ```
 */
export class WebmWriter extends MuxingWriter {
  /** `target` is a {@linkcode ByteSink} (a file sink can seek) or a `WritableStream` (written forward). */
  constructor(
    target: ByteSink | WritableStream<Uint8Array>,
    info: Pick<VideoInfo, "width" | "height" | "fps">,
    options: WebmWriterOptions = {},
  ) {
    super(options.matroska ? "MkvWriter" : "WebmWriter", options.matroska ? "mkv" : "webm", target, info, {
      appendOnly: options.live,
      appendOnlyWhenForwardOnly: true,
      timeBase: options.timeBase,
      sequenceHeader: options.sequenceHeader,
    });
  }
}
