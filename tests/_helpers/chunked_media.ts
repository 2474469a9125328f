/**
 * Inputs for chunked-encoding tests: a 160x120 Y4M file with a hard scene cut, written frame by frame.
 * @module
 */
import { readFileSync } from "node:fs";
import { spillY4m } from "../../lib/chunked/y4m_file.ts";
import { readIvf } from "../../lib/io/ivf.ts";
import { testSource } from "../../lib/io/testsrc.ts";
import type { Frame, VideoInfo } from "../../lib/types.ts";

/** Frames of the test source, luma inverted from `cut` on: a scene change no measure can miss. */
export function hardCutFrames(
  frames: number,
  cut: number,
  width = 160,
  height = 120,
): { info: VideoInfo; frames(): AsyncIterableIterator<Frame> } {
  const src = testSource({ width, height, frames });
  return {
    info: { ...src.info, frameCount: frames },
    async *frames() {
      for (let i = 0; i < frames; i++) {
        const f = src.frame(i);
        if (i >= cut) { for (let p = 0; p < width * height; p++) f.data[p] = 255 - f.data[p]; }
        yield f;
      }
    },
  };
}

/** Writes `hardCutFrames` to a Y4M file. */
export async function writeHardCutY4m(path: string, frames = 40, cut = 23): Promise<string> {
  const src = hardCutFrames(frames, cut);
  await spillY4m(src.frames(), src.info, path);
  return path;
}

/** Packets of an IVF file, with timestamps. */
export async function ivfPackets(path: string): Promise<{ data: Uint8Array; timestamp: number }[]> {
  return (await readIvf(readFileSync(path))).frames;
}
