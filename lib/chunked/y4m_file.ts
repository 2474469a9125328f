/**
 * Random access to a Y4M file for chunked encoding: one pass finds every frame's offset (and measures
 * scene changes on the way), then any range of frames is read straight from disk, one frame in memory at
 * a time. Streams that cannot seek (stdin, a synthetic source) are first spilled to a Y4M file.
 * @module
 */
import { createHash } from "node:crypto";
import { open, rename, rm } from "node:fs/promises";
import process from "node:process";
import { EncoderError } from "../errors.ts";
import {
  encodeY4mFrame,
  encodeY4mHeader,
  parseY4mHeader,
  Y4M_MAX_HEADER_BYTES,
  type Y4mInfo,
} from "../io/y4m.ts";
import { type Frame, frameByteLength, type VideoInfo } from "../types.ts";
import { downscaleLuma, sceneScore } from "./plan.ts";

type Handle = Awaited<ReturnType<typeof open>>;

const FRAME = new TextEncoder().encode("FRAME");
const decoder = new TextDecoder();

/** What one pass over a Y4M file learned. */
export interface Y4mIndex {
  /** The stream header's information. */
  info: Y4mInfo;
  /** Bytes of the stream header, newline included. */
  headerLength: number;
  /** Bytes of one frame's samples (the `FRAME` line excluded). */
  frameSize: number;
  /** Complete frames in the file. */
  frameCount: number;
  /** Byte offset of each frame's `FRAME` line. */
  offsets: number[];
  /** Scene-change score of each frame against the previous one (when asked for). */
  scores?: number[];
}

async function readAt(handle: Handle, position: number, length: number): Promise<Uint8Array<ArrayBuffer>> {
  const buf = new Uint8Array(length);
  let got = 0;
  while (got < length) {
    const { bytesRead } = await handle.read(buf, got, length - got, position + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got === length ? buf : buf.slice(0, got);
}

/** Length of the line at `position` including its newline, or -1 at end of file. */
async function lineLength(handle: Handle, position: number, what: string): Promise<number> {
  for (let size = 64;; size *= 4) {
    const bytes = await readAt(handle, position, Math.min(size, Y4M_MAX_HEADER_BYTES));
    if (bytes.length === 0) return -1;
    const nl = bytes.indexOf(0x0a);
    if (nl >= 0) return nl + 1;
    if (bytes.length < size || size >= Y4M_MAX_HEADER_BYTES) {
      throw new EncoderError(
        "INVALID_INPUT",
        `Y4M ${what} at byte ${position} has no newline: the file is corrupt or truncated`,
      );
    }
  }
}

async function readHeader(handle: Handle, path: string): Promise<{ info: Y4mInfo; headerLength: number }> {
  const length = await lineLength(handle, 0, "header");
  if (length < 0) throw new EncoderError("INVALID_INPUT", `${path} is empty: expected a Y4M file`);
  const line = decoder.decode((await readAt(handle, 0, length)).subarray(0, length - 1));
  return { info: parseY4mHeader(line), headerLength: length };
}

async function openFile(path: string): Promise<Handle> {
  try {
    return await open(path, "r");
  } catch (err) {
    throw new EncoderError("IO_ERROR", `Could not open ${path}: ${(err as Error).message}`, { cause: err });
  }
}

function checkMarker(bytes: Uint8Array, index: number, position: number) {
  for (let i = 0; i < FRAME.length; i++) {
    if (bytes[i] !== FRAME[i]) {
      throw new EncoderError(
        "INVALID_INPUT",
        `Y4M frame ${index} at byte ${position} does not start with "FRAME": the file is corrupt or changed since it was indexed`,
      );
    }
  }
}

/**
 * Reads a Y4M file once: the header, each frame's offset, and with `scores: true` each frame's
 * scene-change score (1/8-scale luma, the only part of a frame kept).
 */
export async function indexY4mFile(
  path: string,
  options: { scores?: boolean; maxFrames?: number } = {},
): Promise<Y4mIndex> {
  const handle = await openFile(path);
  try {
    const { info, headerLength } = await readHeader(handle, path);
    const frameSize = frameByteLength(info);
    const lumaBytes = info.width * info.height * (info.bitDepth > 8 ? 2 : 1);
    const offsets: number[] = [];
    const scores: number[] | undefined = options.scores ? [] : undefined;
    const size = (await handle.stat()).size;
    let previous: Uint8Array | undefined;
    let position = headerLength;
    while (position < size && (options.maxFrames === undefined || offsets.length < options.maxFrames)) {
      const marker = await lineLength(handle, position, `frame ${offsets.length} marker`);
      if (marker < 0) break;
      const head = await readAt(handle, position, FRAME.length);
      checkMarker(head, offsets.length, position);
      if (position + marker + frameSize > size) {
        throw new EncoderError(
          "INVALID_INPUT",
          `Y4M frame ${offsets.length} of ${path} is truncated: the file ends ${
            position + marker + frameSize - size
          } bytes early`,
        );
      }
      offsets.push(position);
      if (scores) {
        const small = downscaleLuma(await readAt(handle, position + marker, lumaBytes), info);
        scores.push(previous ? sceneScore(previous, small) : 0);
        previous = small;
      }
      position += marker + frameSize;
    }
    return {
      info: { ...info, frameCount: offsets.length },
      headerLength,
      frameSize,
      frameCount: offsets.length,
      offsets,
      scores,
    };
  } finally {
    await handle.close();
  }
}

/**
 * Frames `count` frames of a Y4M file starting at the `FRAME` line at byte `offset`, each in its own
 * buffer with timestamps 0, 1, 2, ... (chunk-local). Only one frame is in memory at a time.
 */
export async function* readY4mRange(
  path: string,
  offset: number,
  count: number,
): AsyncGenerator<Frame & { data: Uint8Array<ArrayBuffer> }> {
  const handle = await openFile(path);
  try {
    const { info } = await readHeader(handle, path);
    const frameSize = frameByteLength(info);
    let position = offset;
    for (let i = 0; i < count; i++) {
      const marker = await lineLength(handle, position, `frame marker`);
      if (marker < 0) {
        throw new EncoderError(
          "INVALID_INPUT",
          `${path} ends before frame ${i} of the range at byte ${offset}: the file changed`,
        );
      }
      checkMarker(await readAt(handle, position, FRAME.length), i, position);
      const data = await readAt(handle, position + marker, frameSize);
      if (data.length !== frameSize) {
        throw new EncoderError("INVALID_INPUT", `Y4M frame at byte ${position} of ${path} is truncated`);
      }
      yield { data, timestamp: i, duration: 1 };
      position += marker + frameSize;
    }
  } finally {
    await handle.close();
  }
}

/** The Y4M header of a file, without reading frames. */
export async function readY4mFileInfo(path: string): Promise<Y4mInfo> {
  const handle = await openFile(path);
  try {
    return (await readHeader(handle, path)).info;
  } finally {
    await handle.close();
  }
}

/**
 * Writes frames to a Y4M file through a temporary name, hashing every byte written; returns the SHA-256
 * (hex) and the number of frames. Used to give stdin and synthetic sources random access.
 */
export async function spillY4m(
  frames: AsyncIterable<Frame> | Iterable<Frame>,
  info: VideoInfo & { colorspace?: string },
  path: string,
  options: { maxFrames?: number } = {},
): Promise<{ sha256: string; frameCount: number }> {
  const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  const hash = createHash("sha256");
  let handle: Handle;
  try {
    handle = await open(tmp, "w");
  } catch (err) {
    throw new EncoderError("IO_ERROR", `Could not create ${tmp}: ${(err as Error).message}`, { cause: err });
  }
  let count = 0;
  try {
    const write = async (bytes: Uint8Array) => {
      hash.update(bytes);
      let done = 0;
      while (done < bytes.length) done += (await handle.write(bytes, done, bytes.length - done)).bytesWritten;
    };
    await write(encodeY4mHeader(info));
    for await (const frame of frames) {
      if (options.maxFrames !== undefined && count >= options.maxFrames) break;
      await write(encodeY4mFrame(frame));
      count++;
    }
    await handle.close();
    await rename(tmp, path);
  } catch (err) {
    await handle.close().catch(() => {});
    await rm(tmp, { force: true });
    throw err;
  }
  return { sha256: hash.digest("hex"), frameCount: count };
}
