/**
 * What an AV1 file holds: format, codec string, size, bit depth, frame and key-frame counts, duration,
 * bitrate and frame rate, for IVF, OBU, WebM/Matroska and MP4 (progressive or fragmented). IVF and OBU
 * are read by our own readers, WebM and MP4 through mediabunny; the codec string and key frames always
 * come from the bitstream.
 * @module
 */

import { readFile } from "node:fs/promises";
import { codecString } from "../av1/codec_string.ts";
import { findSequenceHeader, isKeyFramePacket, splitTemporalUnits } from "../av1/obu.ts";
import { OBU_TEMPORAL_DELIMITER } from "../av1/obu_header.ts";
import { parseSequenceHeader, type SequenceHeader } from "../av1/sequence_header.ts";
import { EncoderError } from "../errors.ts";
import { readIvf } from "../io/ivf.ts";
import type { Rational } from "../types.ts";
import { loadMediabunny } from "./mediabunny.ts";

/** Formats {@linkcode probeBytes} recognises; `fmp4` is MP4 with movie fragments. */
export type ProbeFormat = "ivf" | "obu" | "webm" | "mkv" | "mp4" | "fmp4";

/** What {@linkcode probeFile} and {@linkcode probeBytes} report. */
export interface ProbeResult {
  /** The container the file was read as. */
  format: ProbeFormat;
  /** Codec string `av01.P.LLT.DD` from the first sequence header in the stream. */
  codec: string;
  /** What the container declares (WebM/MP4: from `CodecPrivate`/`av1C`), when it declares it. */
  containerCodec?: string;
  /** Coded width in pixels, from the sequence header. */
  width: number;
  /** Coded height in pixels, from the sequence header. */
  height: number;
  /** Bits per sample: 8, 10 or 12. */
  bitDepth: number;
  /** Packets (temporal units). */
  frames: number;
  /** Packets that are random access points, read from the bitstream. */
  keyFrames: number;
  /** Packets the container flags as key frames (WebM/MP4 only). */
  containerKeyFrames?: number;
  /** From the first timestamp to the end of the last packet; `null` when the file has no timing (OBU). */
  durationSeconds: number | null;
  /** Bits of AV1 payload per second over the duration, in kbit/s; `null` without a duration. */
  bitrateKbps: number | null;
  /** Frame rate as a rational (`30000/1001`), or `null` when unknown or variable. */
  fps: Rational | null;
  /** File size in bytes. */
  bytes: number;
}

/** Options of {@linkcode probeBytes} and {@linkcode probeFile}. */
export interface ProbeOptions {
  /** Frame rate to assume for OBU streams without timing info. Default: none, duration unknown. */
  fps?: Rational;
}

function invalid(message: string, cause?: unknown): EncoderError {
  return new EncoderError("INVALID_INPUT", message, cause === undefined ? {} : { cause });
}

function detect(bytes: Uint8Array): "ivf" | "obu" | "matroska" | "isobmff" | undefined {
  const ascii = (at: number, n: number) => String.fromCharCode(...bytes.subarray(at, at + n));
  if (bytes.length >= 4 && ascii(0, 4) === "DKIF") return "ivf";
  if (bytes.length >= 4 && bytes[0] === 0x1a && bytes[1] === 0x45 && bytes[2] === 0xdf && bytes[3] === 0xa3) {
    return "matroska";
  }
  if (bytes.length >= 8 && ["ftyp", "styp", "moov", "moof"].includes(ascii(4, 4))) return "isobmff";
  // A low-overhead stream starts with a temporal delimiter OBU that has a size field.
  if (
    bytes.length >= 2 && ((bytes[0] >> 3) & 0x0f) === OBU_TEMPORAL_DELIMITER && (bytes[0] & 0x82) === 0x02
  ) {
    return "obu";
  }
  return undefined;
}

/** True when top-level ISOBMFF boxes include a movie fragment. */
function hasMovieFragments(bytes: Uint8Array): boolean {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  while (at + 8 <= bytes.length) {
    let size = view.getUint32(at);
    const type = String.fromCharCode(...bytes.subarray(at + 4, at + 8));
    if (type === "moof") return true;
    if (size === 1 && at + 16 <= bytes.length) size = Number(view.getBigUint64(at + 8));
    if (size < 8) return false;
    at += size;
  }
  return false;
}

/** A frame rate from a rate in hertz: the simplest fraction with a denominator up to 1001 that fits. */
function toRational(rate: number | null | undefined): Rational | null {
  if (!rate || !Number.isFinite(rate) || rate <= 0) return null;
  for (const den of [1, 1001, 2, 3, 4, 5, 6, 8, 10, 12, 100, 1000]) {
    const num = Math.round(rate * den);
    if (num > 0 && Math.abs(num / den - rate) <= rate * 2e-6) return { num, den };
  }
  return { num: Math.round(rate * 1000), den: 1000 };
}

/** A duration within WebM's millisecond rounding of a whole number of frames, as that many frames. */
function onFrameGrid(seconds: number, fps: Rational): number {
  const frames = Math.round((seconds * fps.num) / fps.den);
  const snapped = (frames * fps.den) / fps.num;
  return Math.abs(snapped - seconds) <= 0.0015 ? snapped : seconds;
}

function median(values: number[]): number | undefined {
  if (!values.length) return undefined;
  const s = [...values].sort((a, b) => a - b);
  return s[s.length >> 1];
}

function sequenceHeaderOf(packets: Uint8Array[], format: string): SequenceHeader {
  for (const p of packets) {
    const obu = findSequenceHeader(p);
    if (obu) return parseSequenceHeader(obu, { format: "obu" });
  }
  throw invalid(`The ${format} stream has no sequence header OBU: it is not an AV1 stream we can describe`);
}

function keyFrameCount(packets: Uint8Array[]): number {
  let n = 0;
  for (const p of packets) if (isKeyFramePacket(p)) n++;
  return n;
}

interface Timed {
  data: Uint8Array;
  /** Seconds. */
  start: number;
  /** Seconds; may be 0 when the container has no durations. */
  duration: number;
}

function timing(packets: Timed[]): { durationSeconds: number | null; fallbackRate: number | null } {
  if (!packets.length) return { durationSeconds: 0, fallbackRate: null };
  const starts = packets.map((p) => p.start).sort((a, b) => a - b);
  const deltas = starts.slice(1).map((t, i) => t - starts[i]).filter((d) => d > 0);
  const step = median(deltas);
  const end = Math.max(...packets.map((p) => p.start + (p.duration > 0 ? p.duration : step ?? 0)));
  return { durationSeconds: end - starts[0], fallbackRate: step ? 1 / step : null };
}

function finish(
  base: Omit<ProbeResult, "bitrateKbps" | "codec" | "bitDepth" | "frames" | "keyFrames">,
  packets: Uint8Array[],
  seq: SequenceHeader,
): ProbeResult {
  const payload = packets.reduce((n, p) => n + p.length, 0);
  const d = base.durationSeconds;
  return {
    format: base.format,
    codec: codecString(seq),
    ...(base.containerCodec ? { containerCodec: base.containerCodec } : {}),
    width: base.width,
    height: base.height,
    bitDepth: seq.bitDepth,
    frames: packets.length,
    keyFrames: keyFrameCount(packets),
    ...(base.containerKeyFrames !== undefined ? { containerKeyFrames: base.containerKeyFrames } : {}),
    durationSeconds: d,
    bitrateKbps: d && d > 0 ? Math.round((payload * 8) / d / 10) / 100 : null,
    fps: base.fps,
    bytes: base.bytes,
  };
}

async function probeIvf(bytes: Uint8Array): Promise<ProbeResult> {
  const { header, frames } = await readIvf(bytes);
  if (header.fourcc !== "AV01") {
    throw invalid(`The IVF file holds ${JSON.stringify(header.fourcc)}, not AV1 ("AV01")`);
  }
  const packets = frames.map((f) => f.data);
  const seq = sequenceHeaderOf(packets, "IVF");
  // IVF timestamps count units of scale/rate seconds; the frame rate is units per second over the usual step.
  const unit = header.fps.num > 0 ? header.fps.den / header.fps.num : 0;
  const { durationSeconds, fallbackRate } = timing(
    frames.map((f) => ({ data: f.data, start: f.timestamp * unit, duration: 0 })),
  );
  const step = median(frames.slice(1).map((f, i) => f.timestamp - frames[i].timestamp).filter((d) => d > 0));
  const fps = step === 1 || (step === undefined && unit > 0)
    ? { num: header.fps.num, den: header.fps.den }
    : toRational(fallbackRate);
  return finish(
    {
      format: "ivf",
      width: header.width,
      height: header.height,
      durationSeconds: unit > 0 ? durationSeconds : null,
      fps,
      bytes: bytes.length,
    },
    packets,
    seq,
  );
}

function probeObu(bytes: Uint8Array, options: ProbeOptions): ProbeResult {
  const packets = splitTemporalUnits(bytes);
  const seq = sequenceHeaderOf(packets, "OBU");
  const t = seq.timingInfo;
  let fps: Rational | null = options.fps ?? null;
  if (!fps && t?.equalPictureInterval && t.numTicksPerPicture && t.numUnitsInDisplayTick) {
    fps = toRational(t.timeScale / (t.numUnitsInDisplayTick * t.numTicksPerPicture));
  }
  return finish(
    {
      format: "obu",
      width: seq.maxFrameWidth,
      height: seq.maxFrameHeight,
      durationSeconds: fps ? (packets.length * fps.den) / fps.num : null,
      fps,
      bytes: bytes.length,
    },
    packets,
    seq,
  );
}

async function probeContainer(bytes: Uint8Array, kind: "matroska" | "isobmff"): Promise<ProbeResult> {
  const mb = await loadMediabunny();
  const what = kind === "matroska" ? "WebM" : "MP4";
  using input = new mb.Input({ source: new mb.BufferSource(bytes), formats: mb.ALL_FORMATS });
  try {
    const formatName = (await input.getFormat()).name;
    const track = await input.getPrimaryVideoTrack();
    if (!track) throw invalid(`The ${what} file has no video track`);
    const codec = await track.getCodec();
    if (codec !== "av1") throw invalid(`The ${what} file's video is ${codec ?? "an unknown codec"}, not AV1`);
    const timed: Timed[] = [];
    let containerKeyFrames = 0;
    for await (const p of new mb.EncodedPacketSink(track).packets()) {
      timed.push({ data: p.data, start: p.timestamp, duration: p.duration });
      if (p.type === "key") containerKeyFrames++;
    }
    const packets = timed.map((p) => p.data);
    const seq = sequenceHeaderOf(packets, what);
    const { durationSeconds, fallbackRate } = timing(timed);
    const metrics = await track.computeFrameRateMetrics().catch(() => undefined);
    const format: ProbeFormat = kind === "matroska"
      ? (formatName === "WebM" ? "webm" : "mkv")
      : hasMovieFragments(bytes)
      ? "fmp4"
      : "mp4";
    const containerCodec = await track.getCodecParameterString().catch(() => null);
    const fps = toRational(metrics?.underlyingFrameRate ?? metrics?.bestGuessFrameRate ?? fallbackRate);
    return finish(
      {
        format,
        ...(containerCodec ? { containerCodec } : {}),
        width: await track.getCodedWidth(),
        height: await track.getCodedHeight(),
        containerKeyFrames,
        durationSeconds: fps && durationSeconds !== null
          ? onFrameGrid(durationSeconds, fps)
          : durationSeconds,
        fps,
        bytes: bytes.length,
      },
      packets,
      seq,
    );
  } catch (err) {
    if (err instanceof EncoderError) throw err;
    throw invalid(
      `Could not read the ${what} file: ${(err as Error)?.message ?? err}. It may be truncated`,
      err,
    );
  }
}

/**
 * Describes an AV1 stream held in memory: IVF, OBU (Section 5), WebM/Matroska or MP4/fMP4. Anything
 * else, or a truncated or malformed file, is an `EncoderError` with code `INVALID_INPUT`.
 *
 * @example
 * ```ts
 * import { probeBytes } from "./probe.ts";
 * const obu = new Uint8Array([
 *   0x12, 0x00,
 *   0x0a, 0x0a, 0x00, 0x00, 0x00, 0x03, 0xb4, 0xfd, 0x93, 0xef, 0xe4, 0x01,
 *   0x1a, 0x02, 0x10, 0x00,
 * ]);
 * const info = await probeBytes(obu);
 * console.log(info.format, info.codec, info.frames, info.keyFrames); // "obu" "av01.0.00M.08" 1 1
 * ```
 */
export async function probeBytes(bytes: Uint8Array, options: ProbeOptions = {}): Promise<ProbeResult> {
  const kind = detect(bytes);
  switch (kind) {
    case "ivf":
      return await probeIvf(bytes);
    case "obu":
      return probeObu(bytes, options);
    case "matroska":
    case "isobmff":
      return await probeContainer(bytes, kind);
    default:
      throw invalid(
        bytes.length === 0
          ? "The file is empty: give an IVF, OBU, WebM or MP4 file"
          : "Unrecognised file: it is not IVF, OBU (Section 5), WebM or MP4",
      );
  }
}

/**
 * Reads a file and describes it with {@linkcode probeBytes}.
 *
 * @example
 * ```ts
 * import { probeFile, formatProbe } from "./probe.ts";
 * import { writeFile } from "node:fs/promises";
 * await writeFile("/tmp/probe_example.obu", new Uint8Array([
 *   0x12, 0x00,
 *   0x0a, 0x0a, 0x00, 0x00, 0x00, 0x03, 0xb4, 0xfd, 0x93, 0xef, 0xe4, 0x01,
 *   0x1a, 0x02, 0x10, 0x00,
 * ]));
 * console.log(formatProbe(await probeFile("/tmp/probe_example.obu")));
 * ```
 */
export async function probeFile(path: string, options: ProbeOptions = {}): Promise<ProbeResult> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw new EncoderError(
      "IO_ERROR",
      `Could not read ${path}: ${(err as Error)?.message ?? err}. Check the path`,
      { cause: err },
    );
  }
  return await probeBytes(bytes, options);
}

/**
 * A probe result as aligned `key: value` lines for people (`--json` prints the object instead).
 *
 * @example
 * ```ts
 * import { formatProbe } from "./probe.ts";
 * console.log(formatProbe({
 *   format: "webm", codec: "av01.0.04M.08", width: 640, height: 360, bitDepth: 8, frames: 90,
 *   keyFrames: 1, durationSeconds: 3, bitrateKbps: 512.5, fps: { num: 30, den: 1 }, bytes: 192512,
 * }));
 * ```
 */
export function formatProbe(result: ProbeResult): string {
  const fps = result.fps
    ? result.fps.den === 1
      ? `${result.fps.num}`
      : `${result.fps.num}/${result.fps.den} (${(result.fps.num / result.fps.den).toFixed(3)})`
    : "unknown";
  const rows: [string, string][] = [
    ["format", result.format],
    [
      "codec",
      result.containerCodec && !result.containerCodec.startsWith(result.codec)
        ? `${result.codec} (container says ${result.containerCodec})`
        : result.codec,
    ],
    ["size", `${result.width}x${result.height}`],
    ["bit depth", String(result.bitDepth)],
    ["frame rate", fps],
    ["frames", String(result.frames)],
    ["key frames", String(result.keyFrames)],
    ["duration", result.durationSeconds === null ? "unknown" : `${result.durationSeconds.toFixed(3)} s`],
    ["bitrate", result.bitrateKbps === null ? "unknown" : `${result.bitrateKbps.toFixed(1)} kbit/s`],
    ["file size", `${result.bytes} bytes`],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join("\n");
}
