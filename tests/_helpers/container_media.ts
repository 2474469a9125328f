/**
 * Helpers for the container tests: a small SVT-AV1 encode shared by a test file, writing packets through
 * a container to memory or a file, reading them back with mediabunny, ISOBMFF box walking and ffprobe.
 * @module
 */

import assert from "node:assert/strict";
import { findSequenceHeader, parseSequenceHeader } from "../../lib/av1/mod.ts";
import { loadMediabunny } from "../../lib/container/mediabunny.ts";
import { SvtAv1Encoder } from "../../lib/encoder/svt_av1.ts";
import type { ByteSink } from "../../lib/io/sink.ts";
import { testSource } from "../../lib/io/testsrc.ts";
import type { Packet, Rational, VideoInfo } from "../../lib/types.ts";
import { encodeAll, run } from "./encode.ts";

export { dav1dFrameCount, needs, run, tempPath } from "./encode.ts";

/** A clip: its info and the encoder's packets. */
export interface Clip {
  info: Pick<VideoInfo, "width" | "height" | "fps">;
  packets: Packet[];
  sequenceHeader: Uint8Array;
}

const clips = new Map<string, Promise<Clip>>();

/** 160x120, preset 12, a key frame every `keyint` frames; encoded once per process and options. */
export function clip(options: { frames?: number; fps?: Rational; keyint?: number } = {}): Promise<Clip> {
  const frames = options.frames ?? 30;
  const fps = options.fps ?? { num: 30, den: 1 };
  const keyint = options.keyint ?? 10;
  const key = `${frames}@${fps.num}/${fps.den}k${keyint}`;
  let c = clips.get(key);
  if (!c) {
    c = (async () => {
      const source = testSource({ width: 160, height: 120, frames, fps });
      await using enc = await SvtAv1Encoder.create({ ...source.info, preset: 12, keyint });
      const packets = await encodeAll(enc, source.frames());
      return { info: { width: 160, height: 120, fps }, packets, sequenceHeader: enc.sequenceHeader() };
    })();
    clips.set(key, c);
  }
  return c;
}

/** A seekable in-memory sink, like a file: `bytes()` once closed. */
export function memorySink(): ByteSink & {
  bytes(): Uint8Array;
  writes: number;
  seeks: number;
  closed: boolean;
} {
  let buf = new Uint8Array(1 << 16);
  let length = 0;
  const put = (at: number, bytes: Uint8Array) => {
    if (at + bytes.length > buf.length) {
      const bigger = new Uint8Array(Math.max(buf.length * 2, at + bytes.length));
      bigger.set(buf.subarray(0, length));
      buf = bigger;
    }
    buf.set(bytes, at);
    length = Math.max(length, at + bytes.length);
  };
  const sink = {
    writes: 0,
    seeks: 0,
    closed: false,
    write(bytes: Uint8Array) {
      sink.writes++;
      put(length, bytes);
      return Promise.resolve();
    },
    seekWrite(at: number, bytes: Uint8Array) {
      sink.seeks++;
      put(at, bytes);
      return Promise.resolve();
    },
    close() {
      sink.closed = true;
      return Promise.resolve();
    },
    bytes: () => buf.slice(0, length),
  };
  return sink;
}

/** One packet as mediabunny reads it back; times in seconds. */
export interface ReadPacket {
  data: Uint8Array;
  timestamp: number;
  duration: number;
  key: boolean;
}

/** The primary video track of a WebM/MP4 file: its format name, codec string, size and packets. */
export async function readBack(bytes: Uint8Array): Promise<{
  format: string;
  codec: string | null;
  width: number;
  height: number;
  packets: ReadPacket[];
}> {
  const mb = await loadMediabunny();
  using input = new mb.Input({ source: new mb.BufferSource(bytes), formats: mb.ALL_FORMATS });
  const format = (await input.getFormat()).name;
  const track = await input.getPrimaryVideoTrack();
  if (!track) throw new Error("no video track");
  const config = await track.getDecoderConfig();
  const packets: ReadPacket[] = [];
  for await (const p of new mb.EncodedPacketSink(track).packets()) {
    packets.push({
      data: p.data.slice(),
      timestamp: p.timestamp,
      duration: p.duration,
      key: p.type === "key",
    });
  }
  return {
    format,
    codec: config?.codec ?? null,
    width: await track.getCodedWidth(),
    height: await track.getCodedHeight(),
    packets,
  };
}

/** Top-level ISOBMFF boxes: type, offset and size. */
export function boxes(
  bytes: Uint8Array,
  from = 0,
  to = bytes.length,
): { type: string; at: number; size: number }[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: { type: string; at: number; size: number }[] = [];
  let at = from;
  while (at + 8 <= to) {
    const size = view.getUint32(at);
    const type = String.fromCharCode(...bytes.subarray(at + 4, at + 8));
    if (size < 8) throw new Error(`bad box ${type} at ${at}`);
    out.push({ type, at, size });
    at += size;
  }
  return out;
}

/** The children of a container box. */
export function children(
  bytes: Uint8Array,
  box: { at: number; size: number },
): { type: string; at: number; size: number }[] {
  return boxes(bytes, box.at + 8, box.at + box.size);
}

/** Samples in each `moof` of a fragmented MP4, in file order (from each `trun`'s sample count). */
export function fragmentSampleCounts(bytes: Uint8Array): number[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return boxes(bytes).filter((b) => b.type === "moof").map((moof) => {
    let n = 0;
    for (const traf of children(bytes, moof).filter((b) => b.type === "traf")) {
      for (const trun of children(bytes, traf).filter((b) => b.type === "trun")) {
        n += view.getUint32(trun.at + 12);
      }
    }
    return n;
  });
}

/** The payload of the first box of `type` found anywhere (a plain byte search for its fourcc). */
export function findBoxPayload(bytes: Uint8Array, type: string): Uint8Array | undefined {
  const code = [...type].map((c) => c.charCodeAt(0));
  for (let i = 4; i + 4 <= bytes.length; i++) {
    if (code.every((c, j) => bytes[i + j] === c)) {
      const size = new DataView(bytes.buffer, bytes.byteOffset).getUint32(i - 4);
      if (size >= 8 && i - 4 + size <= bytes.length) return bytes.subarray(i + 4, i - 4 + size);
    }
  }
  return undefined;
}

/** ffprobe's view of a file's video stream and format, with frames counted by decoding. */
export function ffprobe(path: string): { stream: Record<string, string>; format: Record<string, string> } {
  const r = run("ffprobe", [
    "-v",
    "error",
    "-count_frames",
    "-select_streams",
    "v:0",
    "-show_entries",
    "stream=codec_name,profile,level,width,height,r_frame_rate,nb_frames,nb_read_frames,duration:format=format_name,duration",
    "-of",
    "json",
    path,
  ]);
  if (r.code !== 0) throw new Error(`ffprobe failed: ${r.stderr}`);
  const json = JSON.parse(r.stdout);
  return { stream: json.streams[0], format: json.format };
}

/**
 * Checks what ffprobe says of a file holding {@linkcode clip}'s packets: AV1 Main at the level its
 * sequence header names, 160x120 at 30/1, 30 frames decoded, one second long; and what ffmpeg decodes.
 * `nb_frames` (the container's own count) is checked where the container has one.
 */
export function assertClipProbe(
  path: string,
  packets: Packet[],
  options: { containerFrameCount?: boolean } = {},
) {
  const { stream, format } = ffprobe(path);
  assert.equal(stream.codec_name, "av1");
  assert.equal(stream.profile, "Main");
  assert.equal(
    Number(stream.level),
    parseSequenceHeader(findSequenceHeader(packets[0].data)!).operatingPoints[0].seqLevelIdx,
  );
  assert.equal(stream.width, 160);
  assert.equal(stream.height, 120);
  assert.equal(stream.r_frame_rate, "30/1");
  if (options.containerFrameCount) assert.equal(Number(stream.nb_frames), 30);
  assert.equal(Number(stream.nb_read_frames), 30);
  assert.equal(Number(format.duration), 1);
  assert.equal(ffmpegDecodedFrames(path), 30);
  return { stream, format };
}

/** Frames ffmpeg decodes from a file (one framecrc line each), or -1 when it fails. */
export function ffmpegDecodedFrames(path: string): number {
  const r = run("ffmpeg", ["-v", "error", "-i", path, "-map", "0:v:0", "-f", "framecrc", "-"]);
  if (r.code !== 0) return -1;
  return r.stdout.split("\n").filter((l) => /^\d+,/.test(l)).length;
}
