/**
 * Enhanced FLV for AV1 (Veovera's Enhanced RTMP, v1): the tags an RTMP publisher sends, as a
 * {@linkcode StreamFormat}. Each connection starts with the FLV header and `onMetaData`, then a
 * `SequenceStart` video tag carrying the `av1C` record (the sequence header OBU as its `configOBUs`), then
 * `CodedFrames` tags with each packet's OBUs, temporal delimiters stripped. A video tag body starts with
 * `0x80 | FrameType << 4 | PacketType` and the FourCC `av01`. The RTMP link turns these tags into RTMP
 * messages; written to a file or a socket they are a live `.flv` stream that ffmpeg reads.
 * @module
 */

import { av1CodecConfigurationRecord } from "../../av1/codec_string.ts";
import { findSequenceHeader, stripTemporalDelimiters } from "../../av1/obu.ts";
import { EncoderError } from "../../errors.ts";
import type { StreamFormat } from "../../stream/format.ts";
import type { Packet, Rational, VideoInfo } from "../../types.ts";
import { encodeAmf0 } from "./amf.ts";

/** FLV tag types. */
export const FLV_TAG_VIDEO = 9;
export const FLV_TAG_SCRIPT = 18;

/** Enhanced RTMP video packet types (the low nibble of the first byte when its top bit is set). */
export const VideoPacketType = {
  SequenceStart: 0,
  CodedFrames: 1,
  SequenceEnd: 2,
  CodedFramesX: 3,
  Metadata: 4,
  MPEG2TSSequenceStart: 5,
} as const;

/** FLV video frame types. */
export const VideoFrameType = { Key: 1, Inter: 2 } as const;

/** `av01` as the big-endian number that `videocodecid` carries in `onMetaData`. */
export const AV1_FOURCC = 0x61763031;
const FOURCC = new Uint8Array([0x61, 0x76, 0x30, 0x31]);

/** Options of {@linkcode flvFormat}. */
export interface FlvFormatOptions {
  /** The encoder's sequence header OBU, for a first key frame that lacks one. */
  sequenceHeader?: Uint8Array;
  /** Seconds per timestamp unit. Default `fps.den / fps.num`: timestamps count frames. */
  timeBase?: Rational;
}

/** One FLV tag: 11-byte header, body, and the 4-byte size of the tag that follows it. */
export function flvTag(type: number, timestampMs: number, body: Uint8Array): Uint8Array<ArrayBuffer> {
  if (!Number.isInteger(timestampMs) || timestampMs < 0 || timestampMs > 0xffffffff) {
    throw new EncoderError(
      "INVALID_FRAME",
      `FLV timestamps are 0 to 2^32-1 ms, got ${timestampMs}: start the stream's timestamps at 0 or more`,
    );
  }
  if (body.length > 0xffffff) {
    throw new EncoderError("INVALID_FRAME", `An FLV tag holds at most 16 MiB, got ${body.length} bytes`);
  }
  const out = new Uint8Array(11 + body.length + 4);
  const v = new DataView(out.buffer);
  out[0] = type;
  v.setUint32(0, (type << 24) | body.length);
  v.setUint32(4, ((timestampMs & 0xffffff) << 8) | (timestampMs >>> 24));
  out.set(body, 11);
  v.setUint32(11 + body.length, 11 + body.length);
  return out;
}

/** The body of an Enhanced RTMP AV1 video tag. */
export function av1VideoTagBody(
  frameType: number,
  packetType: number,
  payload: Uint8Array = new Uint8Array(0),
): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(5 + payload.length);
  out[0] = 0x80 | (frameType << 4) | packetType;
  out.set(FOURCC, 1);
  out.set(payload, 5);
  return out;
}

function join(parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function sameBytes(a: Uint8Array | undefined, b: Uint8Array): boolean {
  return a !== undefined && a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * Live Enhanced FLV carrying AV1: the stream format of {@linkcode rtmpSink}, usable on its own for a
 * `.flv` file or socket. Timestamps become milliseconds through `timeBase`. A key frame with a sequence
 * header that differs from the one last sent (a fresh encoder after `reinit`) gets a new `SequenceStart`
 * first. `end()` sends `SequenceEnd`.
 *
 * @example
 * ```ts
 * import { flvFormat } from "./flv.ts";
 * const flv = flvFormat({ width: 64, height: 64, fps: { num: 30, den: 1 } });
 * const header = flv.header() as Uint8Array;
 * console.log(String.fromCharCode(...header.subarray(0, 3))); // "FLV"
 * ```
 */
export function flvFormat(
  info: Pick<VideoInfo, "width" | "height" | "fps">,
  options: FlvFormatOptions = {},
): StreamFormat {
  const tb = options.timeBase ?? { num: info.fps.den, den: info.fps.num };
  let known = options.sequenceHeader?.length
    ? findSequenceHeader(options.sequenceHeader)?.slice()
    : undefined;
  let sent: Uint8Array | undefined;
  let lastMs = 0;
  const metadata = encodeAmf0([
    "onMetaData",
    new Map<string, number | boolean>([
      ["duration", 0],
      ["width", info.width],
      ["height", info.height],
      ["framerate", info.fps.num / info.fps.den],
      ["videocodecid", AV1_FOURCC],
      ["stereo", false],
    ]),
  ]);
  const fileHeader = new Uint8Array([0x46, 0x4c, 0x56, 0x01, 0x01, 0, 0, 0, 9, 0, 0, 0, 0]);
  return {
    name: "flv",
    contentType: "video/x-flv",
    header() {
      sent = undefined;
      return join([fileHeader, flvTag(FLV_TAG_SCRIPT, 0, metadata)]);
    },
    packet(packet: Packet) {
      const ms = Math.round((packet.timestamp * tb.num * 1000) / tb.den);
      lastMs = ms;
      const parts: Uint8Array[] = [];
      if (packet.keyFrame) {
        const sh = findSequenceHeader(packet.data);
        if (sh) known = sh.slice();
      }
      if (!sent && !packet.keyFrame) {
        throw new EncoderError(
          "INVALID_STATE",
          `An FLV stream must start at a key frame, got a packet at ${packet.timestamp}`,
        );
      }
      if (packet.keyFrame && !sameBytes(sent, known ?? new Uint8Array(0))) {
        if (!known) {
          throw new EncoderError(
            "INVALID_FRAME",
            "The first key frame has no sequence header: pass sequenceHeader (encoder.sequenceHeader())",
          );
        }
        parts.push(
          flvTag(
            FLV_TAG_VIDEO,
            ms,
            av1VideoTagBody(
              VideoFrameType.Key,
              VideoPacketType.SequenceStart,
              av1CodecConfigurationRecord(known),
            ),
          ),
        );
        sent = known;
      }
      const frameType = packet.keyFrame ? VideoFrameType.Key : VideoFrameType.Inter;
      const obus = stripTemporalDelimiters(packet.data);
      parts.push(flvTag(FLV_TAG_VIDEO, ms, av1VideoTagBody(frameType, VideoPacketType.CodedFrames, obus)));
      return join(parts);
    },
    end() {
      if (!sent) return new Uint8Array(0);
      sent = undefined;
      return flvTag(FLV_TAG_VIDEO, lastMs, av1VideoTagBody(VideoFrameType.Key, VideoPacketType.SequenceEnd));
    },
  };
}
