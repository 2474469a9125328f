/**
 * Encoding one chunk: an encoder with its own key-frame and scene logic off, frames read from a Y4M
 * range, packets written to an IVF file through a temporary name, so a file under its final name is
 * always complete.
 * @module
 */
import { createHash } from "node:crypto";
import { rename, rm } from "node:fs/promises";
import process from "node:process";
import { findSequenceHeader } from "../av1/obu.ts";
import { type Rav1eConfig, Rav1eEncoder } from "../encoder/rav1e.ts";
import { type SvtAv1Config, SvtAv1Encoder } from "../encoder/svt_av1.ts";
import { EncoderError } from "../errors.ts";
import { IvfWriter } from "../io/ivf.ts";
import { fileSink } from "../io/sink.ts";
import type { Encoder, Frame, VideoInfo } from "../types.ts";
import type { Chunk } from "./plan.ts";

/** Encoder settings of a chunked encode: SVT-AV1 (default) or rav1e, without the frame geometry. */
export type ChunkedConfig =
  | ({ codec?: "svt-av1" } & Omit<SvtAv1Config, "width" | "height" | "fps" | "bitDepth" | "chroma">)
  | ({ codec: "rav1e" } & Omit<Rav1eConfig, "width" | "height" | "fps" | "bitDepth" | "chroma">);

/** What encoding one chunk produced. */
export interface ChunkResult {
  /** The chunk's position in the plan, from 0. */
  index: number;
  /** File name of the chunk's IVF, relative to its directory. */
  file: string;
  /** Frames the chunk's file holds. */
  frames: number;
  /** Size of the chunk's IVF file in bytes. */
  bytes: number;
  /** The sequence header OBU of the chunk's first key frame, hex. */
  sequenceHeader: string;
}

/** Settings that do not change the bitstream (threads, logging, buffering, library path). */
const NOT_BITSTREAM = new Set(["threads", "logLevel", "maxQueuedPackets", "libraryPath", "threadPriority"]);

function sorted(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sorted);
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.keys(value).sort().map((k) => [k, sorted((value as Record<string, unknown>)[k])]),
    );
  }
  return value;
}

/** SHA-256 (hex) of a JSON value with sorted keys. */
export function hashJson(value: unknown): string {
  return createHash("sha256").update(JSON.stringify(sorted(value))).digest("hex");
}

/** Hash of the settings that shape the bitstream: chunk files are named with its first 12 digits. */
export function settingsHash(
  config: ChunkedConfig,
  info: Pick<VideoInfo, "width" | "height" | "fps" | "bitDepth" | "chroma">,
): string {
  const kept = Object.fromEntries(
    Object.entries(config).filter(([k, v]) => !NOT_BITSTREAM.has(k) && v !== undefined),
  );
  return hashJson({
    codec: config.codec ?? "svt-av1",
    config: kept,
    info: {
      width: info.width,
      height: info.height,
      fps: info.fps,
      bitDepth: info.bitDepth,
      chroma: info.chroma,
    },
  });
}

/** Name of chunk `index`'s IVF file: index and settings hash, so other settings never reuse it. */
export function chunkFileName(index: number, hash: string): string {
  return `chunk-${String(index).padStart(5, "0")}-${hash.slice(0, 12)}.ivf`;
}

/**
 * Creates the encoder for one chunk: the caller's settings with key frames and scene detection off, so
 * the chunk's first frame is its only key frame. SVT-AV1 1.4 takes `keyint -1` (no periodic key frames)
 * and `scd 0`; rav1e has no scene-detection key, so its minimum and maximum key-frame intervals are both
 * set past any chunk length (65535), which leaves only the first frame a key frame.
 */
export function createChunkEncoder(
  info: VideoInfo,
  config: ChunkedConfig,
  threads?: number,
): Promise<Encoder> {
  if (config.codec === "rav1e") {
    const { codec: _c, ...rest } = config;
    return Rav1eEncoder.create({
      ...rest,
      ...info,
      threads: rest.threads ?? threads,
      keyint: 65535,
      minKeyint: 65535,
      maxQueuedPackets: 4,
    });
  }
  const { codec: _c, ...rest } = config;
  const create = () =>
    SvtAv1Encoder.create({
      ...rest,
      ...info,
      threads: rest.threads ?? threads,
      keyint: -1,
      forceKeyFrames: false,
      params: { ...rest.params, scd: 0 },
      maxQueuedPackets: 4,
    });
  // SVT-AV1 1.4 fills process-wide function tables in init_handle: two at once race and print
  // "Pointer ... is set before" by the hundred. One creation at a time; encoding stays parallel.
  const created = svtCreation.then(create);
  svtCreation = created.then(() => {}, () => {});
  return created;
}

let svtCreation: Promise<void> = Promise.resolve();

/** Options of {@linkcode encodeChunk}. */
export interface EncodeChunkOptions {
  /** Encoder threads when the config sets none. */
  threads?: number;
  /** Called after each packet with the frames done so far in this chunk; awaited. */
  onFrame?: (frames: number) => void | Promise<void>;
  /** Stops the chunk: the encoder is closed and the promise rejects with an ABORTED error. */
  signal?: AbortSignal;
}

/**
 * Encodes `frames` (exactly the chunk's frames, in order) into `dir/name`, written to a temporary file
 * and renamed when complete. Checks that the chunk starts with a key frame carrying a sequence header and
 * that every frame came out.
 */
export async function encodeChunk(
  frames: AsyncIterable<Frame>,
  chunk: Chunk & { info: VideoInfo; config: ChunkedConfig; path: string },
  options: EncodeChunkOptions = {},
): Promise<Omit<ChunkResult, "file">> {
  const expected = chunk.end - chunk.start;
  const tmp = `${chunk.path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  const signal = options.signal;
  if (signal?.aborted) throw aborted(chunk.index);
  const enc = await createChunkEncoder(chunk.info, chunk.config, options.threads);
  const writer = new IvfWriter(await fileSink(tmp), chunk.info);
  const onAbort = () => void enc.close();
  signal?.addEventListener("abort", onAbort);
  // An abort while the encoder was being created came before the listener: without this close the
  // packet loop below waited for ever (a Ctrl-C early in a --chunked run hung it, seen in Deno).
  if (signal?.aborted) onAbort();
  let done = false;
  try {
    const pump = (async () => {
      let n = 0;
      for await (const frame of frames) {
        if (signal?.aborted) break;
        await enc.encode({ data: frame.data, timestamp: n, duration: 1 });
        n++;
      }
      if (!signal?.aborted) await enc.flush();
      return n;
    })();
    pump.catch(() => enc.close());
    let count = 0;
    let bytes = 0;
    let header: Uint8Array | null = null;
    for await (const packet of enc.packets()) {
      if (count === 0) {
        header = packet.keyFrame ? findSequenceHeader(packet.data) : null;
        if (!header) {
          throw new EncoderError(
            "INVALID_STATE",
            `Chunk ${chunk.index} does not start with a key frame and sequence header`,
            {
              library: enc.codec,
            },
          );
        }
      }
      await writer.writePacket(packet);
      count++;
      bytes += packet.data.byteLength;
      await options.onFrame?.(count);
    }
    const sent = await pump;
    if (signal?.aborted) throw aborted(chunk.index);
    if (sent !== expected || count !== expected) {
      throw new EncoderError(
        "INVALID_STATE",
        `Chunk ${chunk.index} should have ${expected} frames but ${sent} were read and ${count} packets came out`,
        { library: enc.codec },
      );
    }
    await writer.close();
    await rename(tmp, chunk.path);
    done = true;
    return { index: chunk.index, frames: count, bytes, sequenceHeader: toHex(header!) };
  } catch (err) {
    if (signal?.aborted) throw aborted(chunk.index);
    throw err;
  } finally {
    signal?.removeEventListener("abort", onAbort);
    await enc.close();
    if (!done) {
      await writer.close().catch(() => {});
      await rm(tmp, { force: true });
    }
  }
}

function aborted(index: number): EncoderError {
  return new EncoderError(
    "ABORTED",
    `Chunked encode aborted during chunk ${index}: run again with resume to continue`,
  );
}

/** Bytes as lower-case hex. */
export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
