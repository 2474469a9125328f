/**
 * MP4 output through mediabunny: a progressive file with its index first (fast start), or fragmented MP4
 * with one fragment per key-frame interval, both written strictly forward to any sink.
 * @module
 */

import type { ByteSink } from "../io/sink.ts";
import type { Rational, VideoInfo } from "../types.ts";
import { MuxingWriter } from "./writer.ts";

/** Options of {@linkcode Mp4Writer}. */
export interface Mp4WriterOptions {
  /**
   * Fragmented MP4 (`ftyp`, `moov` with `mvex`, then `moof`+`mdat` pairs), each fragment starting at a key
   * frame: for live delivery, HLS/DASH-style segments and Media Source Extensions. Default false: a
   * progressive file whose `moov` comes first, held in memory until `close()`.
   */
  fragmented?: boolean;
  /**
   * Fragmented only: the shortest fragment in seconds; a fragment ends at the first key frame after it.
   * Default 0: one fragment per key-frame interval. A fragment goes out when the next key frame arrives.
   */
  fragmentDuration?: number;
  /** Seconds per timestamp unit. Default `fps.den / fps.num`: timestamps count frames. */
  timeBase?: Rational;
  /** The encoder's sequence header OBU, used when the first key frame lacks one. */
  sequenceHeader?: Uint8Array;
}

/**
 * Writes AV1 packets to MP4. The codec string and `av1C` come from the first key frame's sequence
 * header; temporal delimiters are stripped from samples as the AV1-in-ISOBMFF binding requires; the
 * track's timescale is the frame rate's, so timestamps stay exact; key-frame flags fill `stss`.
 *
 * @example
 * ```ts
 * import { Mp4Writer } from "./mp4.ts";
 * import { fileSink } from "../io/sink.ts";
 * import { SvtAv1Encoder } from "../encoder/svt_av1.ts";
 * import { testSource } from "../io/testsrc.ts";
 * const source = testSource({ width: 160, height: 120, frames: 20 });
 * await using enc = await SvtAv1Encoder.create({ ...source.info, preset: 12, keyint: 10 });
 * const mp4 = new Mp4Writer(await fileSink("/tmp/mp4_example.mp4"), source.info, { fragmented: true });
 * const pump = (async () => {
 *   for await (const frame of source.frames()) await enc.encode(frame);
 *   await enc.flush();
 * })();
 * for await (const packet of enc.packets()) await mp4.writePacket(packet);
 * await pump;
 * await mp4.close();
 * console.log(mp4.packetCount); // 20
 * ```
 */
export class Mp4Writer extends MuxingWriter {
  /** `target` is a {@linkcode ByteSink} or a `WritableStream`; MP4 is written strictly forward to either. */
  constructor(
    target: ByteSink | WritableStream<Uint8Array>,
    info: Pick<VideoInfo, "width" | "height" | "fps">,
    options: Mp4WriterOptions = {},
  ) {
    super(
      options.fragmented ? "Fmp4Writer" : "Mp4Writer",
      options.fragmented ? "fmp4" : "mp4",
      target,
      info,
      {
        fragmentDuration: options.fragmentDuration,
        timeBase: options.timeBase,
        sequenceHeader: options.sequenceHeader,
      },
    );
  }
}
