/**
 * Helpers for the WebCodecs tests: an encoder that records what it outputs, and synthetic frames.
 * @module
 */
import {
  type EncodedVideoChunk,
  type EncodedVideoChunkMetadata,
  VideoEncoder,
  type VideoEncoderConfig,
  VideoFrame,
} from "../../lib/webcodecs/mod.ts";

/** What an encoder gave its callbacks. */
export interface Recorded {
  encoder: VideoEncoder;
  chunks: { chunk: EncodedVideoChunk; metadata?: EncodedVideoChunkMetadata; bytes: Uint8Array }[];
  errors: DOMException[];
}

/** A VideoEncoder whose output and error callbacks record into arrays. */
export function recordingEncoder(): Recorded {
  const rec: Recorded = { encoder: undefined as unknown as VideoEncoder, chunks: [], errors: [] };
  rec.encoder = new VideoEncoder({
    output: (chunk, metadata) => {
      const bytes = new Uint8Array(chunk.byteLength);
      chunk.copyTo(bytes);
      rec.chunks.push({ chunk, metadata, bytes });
    },
    error: (e) => rec.errors.push(e),
  });
  return rec;
}

/** Fast settings for each backend. */
export function fastConfig(
  backend: "svt-av1" | "rav1e",
  extra: Partial<VideoEncoderConfig> = {},
): VideoEncoderConfig {
  return {
    codec: "av01.0.04M.08",
    width: 160,
    height: 120,
    av1Backend: backend,
    av1BackendOptions: backend === "svt-av1" ? { preset: 12 } : { speed: 10 },
    ...extra,
  };
}

/** A moving I420 test picture: a gradient whose offset depends on `index`. */
export function i420Frame(
  index: number,
  width = 160,
  height = 120,
  init: { timestamp?: number; duration?: number } = {},
): VideoFrame {
  const cw = width >> 1, ch = height >> 1;
  const data = new Uint8Array(width * height + 2 * cw * ch);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) data[y * width + x] = (x + y + index * 8) & 255;
  }
  data.fill(100 + index, width * height, width * height + cw * ch);
  data.fill(150 - index, width * height + cw * ch);
  return new VideoFrame(data, {
    format: "I420",
    codedWidth: width,
    codedHeight: height,
    timestamp: init.timestamp ?? index * 33_333,
    duration: init.duration,
  });
}

/** Resolves once `condition()` holds; rejects after `ms`. */
export async function waitFor(condition: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > end) throw new Error("Timed out waiting for a condition");
    await new Promise((r) => setTimeout(r, 5));
  }
}
