/**
 * One entry point for every output format: {@linkcode openContainerWriter} by name, and
 * {@linkcode formatFromPath} to pick the name from a file extension.
 * @module
 */

import { EncoderError } from "../errors.ts";
import { IvfWriter } from "../io/ivf.ts";
import { ObuWriter } from "../io/obu.ts";
import type { ByteSink } from "../io/sink.ts";
import type { Packet, Rational, VideoInfo } from "../types.ts";
import { CONTAINER_FORMATS, type ContainerFormat } from "./format.ts";
import { Mp4Writer } from "./mp4.ts";
import { WebmWriter } from "./webm.ts";
import type { ContainerWriter } from "./writer.ts";

export { CONTAINER_FORMATS, type ContainerFormat, formatFromPath, parseContainerFormat } from "./format.ts";

/** Options of {@linkcode openContainerWriter}. */
export interface OpenContainerWriterOptions {
  /** WebM/MKV: write forward with unknown sizes. Default: when the target cannot seek. */
  live?: boolean;
  /** fMP4: the shortest fragment in seconds, default 0 (one fragment per key-frame interval). */
  fragmentDuration?: number;
  /** WebM/MKV/MP4: seconds per timestamp unit. Default `fps.den / fps.num`. */
  timeBase?: Rational;
  /** The encoder's sequence header OBU, for a first key frame that lacks one. */
  sequenceHeader?: Uint8Array;
}

/**
 * A writer for `format` over a sink or a `WritableStream`: `IvfWriter`, `ObuWriter`, `WebmWriter` or
 * `Mp4Writer`, behind one `{ writePacket, close }` shape. mediabunny loads only when WebM or MP4 is asked
 * for, at the first packet.
 *
 * @example
 * ```ts
 * import { formatFromPath, openContainerWriter } from "./open.ts";
 * import { fileSink } from "../io/sink.ts";
 * const path = "/tmp/open_example.ivf";
 * const writer = openContainerWriter(formatFromPath(path) ?? "ivf", await fileSink(path), {
 *   width: 64, height: 48, fps: { num: 30, den: 1 },
 * });
 * await writer.writePacket({ data: new Uint8Array([0x12, 0x00]), timestamp: 0, duration: 1, keyFrame: true });
 * await writer.close();
 * ```
 */
export function openContainerWriter(
  format: ContainerFormat,
  target: ByteSink | WritableStream<Uint8Array>,
  info: Pick<VideoInfo, "width" | "height" | "fps">,
  options: OpenContainerWriterOptions = {},
): ContainerWriter {
  switch (format) {
    case "ivf":
      return wrapWriter(new IvfWriter(target, info));
    case "obu":
      return wrapWriter(new ObuWriter(target));
    case "webm":
    case "mkv":
      return new WebmWriter(target, info, {
        live: options.live,
        matroska: format === "mkv",
        timeBase: options.timeBase,
        sequenceHeader: options.sequenceHeader,
      });
    case "mp4":
    case "fmp4":
      return new Mp4Writer(target, info, {
        fragmented: format === "fmp4",
        fragmentDuration: options.fragmentDuration,
        timeBase: options.timeBase,
        sequenceHeader: options.sequenceHeader,
      });
    default:
      throw new EncoderError(
        "INVALID_CONFIG",
        `Unknown output format ${JSON.stringify(format)}: use one of ${CONTAINER_FORMATS.join(", ")}`,
      );
  }
}

function wrapWriter(w: IvfWriter | ObuWriter): ContainerWriter {
  return {
    writePacket: (packet: Packet) => w.writePacket(packet),
    close: () => w.close(),
    [Symbol.asyncDispose]: () => w.close(),
  };
}
