/**
 * Joining chunk files into one stream: every chunk's sequence header must be the same, timestamps become
 * one running count, and the packets go through the same container writers as a normal encode.
 * @module
 */
import { isKeyFramePacket } from "../av1/obu.ts";
import { findSequenceHeader } from "../av1/obu.ts";
import { type ContainerFormat, openContainerWriter } from "../container/open.ts";
import { EncoderError } from "../errors.ts";
import { fileReadable } from "../io/file_stream.ts";
import { IvfReader } from "../io/ivf.ts";
import { type ByteSink, fileSink } from "../io/sink.ts";
import type { VideoInfo } from "../types.ts";

/** One chunk file to join: its IVF path, first frame in the whole stream and frame count. */
export interface JoinChunk {
  /** Path of the chunk's IVF file. */
  path: string;
  /** Index of the chunk's first frame in the whole stream. */
  start: number;
  /** Frames the chunk holds (checked against the file). */
  frames: number;
}

/** Options of {@linkcode joinChunks}. */
export interface JoinOptions {
  /** Output format. Default "ivf". */
  format?: ContainerFormat;
  /** Called after each chunk with the frames written so far. */
  onProgress?: (frames: number) => void;
}

/** What {@linkcode joinChunks} wrote. */
export interface JoinResult {
  /** Frames written. */
  frames: number;
  /** Bytes written, container included. */
  bytes: number;
  /** The sequence header every chunk shares. */
  sequenceHeader: Uint8Array;
}

async function firstSequenceHeader(path: string): Promise<Uint8Array | null> {
  const reader = await IvfReader.open(await fileReadable(path));
  try {
    for await (const frame of reader.frames()) return findSequenceHeader(frame.data);
    return null;
  } finally {
    await reader.close();
  }
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/**
 * Writes the chunks, in order, as one stream to `output` (a path, a {@linkcode ByteSink} or a
 * `WritableStream`). Packet timestamps become `chunk.start + local timestamp`, so the stream counts
 * frames from 0 without gaps. Throws an `INVALID_INPUT` error before writing anything when a chunk's
 * sequence header differs from the first chunk's, and when a chunk has not exactly `frames` packets.
 *
 * @example
 * ```ts
 * import { joinChunks } from "./join.ts";
 * // chunks from encodeChunked's work directory (see encodeChunked for a full run)
 * const chunks: { path: string; start: number; frames: number }[] = [];
 * if (chunks.length) await joinChunks(chunks, "/tmp/joined.ivf", { width: 160, height: 120, fps: { num: 30, den: 1 } });
 * ```
 */
export async function joinChunks(
  chunks: JoinChunk[],
  output: string | ByteSink | WritableStream<Uint8Array>,
  info: Pick<VideoInfo, "width" | "height" | "fps">,
  options: JoinOptions = {},
): Promise<JoinResult> {
  if (chunks.length === 0) throw new EncoderError("INVALID_INPUT", "Nothing to join: the plan has no chunks");
  const ordered = [...chunks].sort((a, b) => a.start - b.start);
  let expectedStart = 0;
  let reference: Uint8Array | undefined;
  for (const [i, c] of ordered.entries()) {
    if (c.start !== expectedStart) {
      throw new EncoderError(
        "INVALID_INPUT",
        `Chunk ${i} starts at frame ${c.start} but the previous chunk ends at ${expectedStart}: a chunk is missing`,
      );
    }
    expectedStart += c.frames;
    const header = await firstSequenceHeader(c.path);
    if (!header) {
      throw new EncoderError(
        "INVALID_INPUT",
        `Chunk ${i} (${c.path}) has no sequence header in its first packet: encode it again`,
      );
    }
    reference ??= header;
    if (!same(header, reference)) {
      throw new EncoderError(
        "INVALID_INPUT",
        `Chunk ${i}'s sequence header differs from chunk 0's: every chunk must come from the same encoder, version and settings. Delete ${c.path} and encode it again`,
      );
    }
  }
  const target = typeof output === "string" ? await fileSink(output) : output;
  const writer = openContainerWriter(
    options.format ?? "ivf",
    target,
    { ...info, frameCount: expectedStart } as VideoInfo,
    {
      sequenceHeader: reference,
    },
  );
  let frames = 0;
  let bytes = 0;
  let failed = false;
  try {
    for (const [i, c] of ordered.entries()) {
      const reader = await IvfReader.open(await fileReadable(c.path));
      let n = 0;
      try {
        for await (const frame of reader.frames()) {
          await writer.writePacket({
            data: frame.data,
            timestamp: c.start + frame.timestamp,
            duration: 1,
            keyFrame: n === 0 || isKeyFramePacket(frame.data),
          });
          n++;
          bytes += frame.data.byteLength;
        }
      } finally {
        await reader.close();
      }
      if (n !== c.frames) {
        throw new EncoderError(
          "INVALID_INPUT",
          `Chunk ${i} (${c.path}) has ${n} packets, not ${c.frames}: encode it again`,
        );
      }
      frames += n;
      options.onProgress?.(frames);
    }
  } catch (e) {
    failed = true;
    throw e;
  } finally {
    try {
      await writer.close();
    } catch (e) {
      // After a failed write (a reader of stdout that went away) the close fails too: the first error is
      // the one to report.
      if (!failed) throw e;
    }
  }
  return { frames, bytes, sequenceHeader: reference! };
}
