/**
 * Chunk planning: where to cut a video into independently encoded, key-frame-aligned chunks. Cuts come
 * from a scene-change measure on 1/8-scale luma (or fixed intervals), within a minimum and maximum length.
 * @module
 */
import { EncoderError } from "../errors.ts";
import type { Frame, VideoInfo } from "../types.ts";

/** One chunk: frames `start` (inclusive) to `end` (exclusive) of the input; `start` becomes a key frame. */
export interface Chunk {
  /** Position of the chunk in the plan, from 0. */
  index: number;
  /** First frame (inclusive); it is encoded as a key frame. */
  start: number;
  /** Frame after the last one (exclusive). */
  end: number;
}

/** Options of {@linkcode planChunks}. */
export interface PlanOptions {
  /** "scene" (default) cuts at scene changes; "fixed" cuts every `maxLength` frames. */
  method?: "scene" | "fixed";
  /** Shortest chunk in frames (only the last one may be shorter). Default: one second of frames, at least 8. */
  minLength?: number;
  /** Longest chunk in frames. Default: ten seconds of frames. At most 65535. */
  maxLength?: number;
  /**
   * A frame is a scene change when its difference from the previous frame exceeds `threshold` times the
   * median of the last 32 differences (and `minScore`). Default 3.
   */
  threshold?: number;
  /** Smallest mean absolute luma difference (0–255 scale) that can be a scene change. Default 8. */
  minScore?: number;
  /** Frames that must start a chunk whatever the lengths say (forced key frames). */
  keyFrames?: Iterable<number>;
  /** Plan at most this many frames of the input. */
  maxFrames?: number;
}

/** What {@linkcode planChunks} decided. */
export interface ChunkPlan {
  /** Frames planned (the input's, or `maxFrames` if smaller). */
  frameCount: number;
  /** The chunks, in order, covering every frame once. */
  chunks: Chunk[];
  /** Scene changes found (frame numbers), whether or not a chunk starts there. */
  sceneChanges: number[];
  /** How the cuts were chosen. */
  method: "scene" | "fixed";
}

/** Side of the blocks a frame's luma is averaged over before comparing frames. */
export const SCENE_SCALE = 8;

/** The luma plane of a frame averaged over 8x8 blocks, as 8-bit values. */
export function downscaleLuma(
  luma: Uint8Array,
  info: Pick<VideoInfo, "width" | "height" | "bitDepth">,
): Uint8Array {
  const { width, height } = info;
  const w = Math.max(1, Math.floor(width / SCENE_SCALE));
  const h = Math.max(1, Math.floor(height / SCENE_SCALE));
  const bw = Math.max(1, Math.floor(width / w));
  const bh = Math.max(1, Math.floor(height / h));
  const wide = info.bitDepth > 8;
  const samples = wide
    ? new Uint16Array(luma.buffer, luma.byteOffset, Math.floor(luma.byteLength / 2))
    : luma;
  const shift = info.bitDepth - 8;
  const out = new Uint8Array(w * h);
  for (let by = 0; by < h; by++) {
    for (let bx = 0; bx < w; bx++) {
      let sum = 0;
      for (let y = by * bh; y < (by + 1) * bh; y++) {
        const row = y * width;
        for (let x = bx * bw; x < (bx + 1) * bw; x++) sum += samples[row + x];
      }
      out[by * w + bx] = (sum / (bw * bh)) >> shift;
    }
  }
  return out;
}

/** Mean absolute difference of two downscaled frames (0 to 255). */
export function sceneScore(a: Uint8Array, b: Uint8Array): number {
  let sad = 0;
  for (let i = 0; i < a.length; i++) sad += Math.abs(a[i] - b[i]);
  return a.length ? sad / a.length : 0;
}

function median(values: number[]): number {
  if (!values.length) return 0;
  const s = [...values].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function checkedLengths(options: PlanOptions, fps: number): { min: number; max: number } {
  const min = options.minLength ?? Math.max(8, Math.round(fps));
  const max = options.maxLength ?? Math.max(min, Math.round(10 * fps));
  if (!Number.isInteger(min) || min < 1) {
    throw new EncoderError("INVALID_CONFIG", `Chunk minLength must be a positive integer, got ${min}`);
  }
  if (!Number.isInteger(max) || max < min || max > 65535) {
    throw new EncoderError(
      "INVALID_CONFIG",
      `Chunk maxLength must be an integer from minLength (${min}) to 65535, got ${max}`,
    );
  }
  return { min, max };
}

/** Scene changes in a list of frame differences (`scores[i]` compares frame i-1 with frame i). */
export function findSceneChanges(scores: ArrayLike<number>, options: PlanOptions = {}): number[] {
  const threshold = options.threshold ?? 3;
  const minScore = options.minScore ?? 8;
  const recent: number[] = [];
  const cuts: number[] = [];
  for (let i = 1; i < scores.length; i++) {
    const s = scores[i];
    if (s >= minScore && s > threshold * median(recent)) {
      cuts.push(i);
      continue; // a cut's score says nothing about the motion around it
    }
    recent.push(s);
    if (recent.length > 32) recent.shift();
  }
  return cuts;
}

/**
 * Turns frame differences (or just a frame count, for fixed intervals) into chunks. Forced key frames
 * always cut; scene changes cut when both sides keep `minLength`; a chunk reaching `maxLength` is cut at
 * its most scene-like frame past `minLength`.
 *
 * @example
 * ```ts
 * import { planFromScores } from "./plan.ts";
 * const scores = new Array(40).fill(2);
 * scores[25] = 90;
 * const plan = planFromScores(scores, { minLength: 8, maxLength: 20 });
 * console.log(plan.chunks.map((c) => [c.start, c.end])); // [[0, 13], [13, 25], [25, 40]]
 * ```
 */
export function planFromScores(
  scores: ArrayLike<number> | { frameCount: number },
  options: PlanOptions & { fps?: number } = {},
): ChunkPlan {
  const values = "frameCount" in scores ? undefined : scores as ArrayLike<number>;
  const total = values ? values.length : (scores as { frameCount: number }).frameCount;
  const n = options.maxFrames !== undefined ? Math.min(total, options.maxFrames) : total;
  const method = options.method ?? (values ? "scene" : "fixed");
  const { min, max } = checkedLengths(options, options.fps ?? 30);
  const sceneChanges = method === "scene" && values
    ? findSceneChanges(Array.prototype.slice.call(values, 0, n), options)
    : [];
  const scenes = new Set(sceneChanges);
  const forced = [...new Set(options.keyFrames ?? [])].filter((f) => f > 0 && f < n).sort((a, b) => a - b);
  const chunks: Chunk[] = [];
  let start = 0;
  while (start < n) {
    const hardEnd = Math.min(n, start + max);
    let end: number | undefined = forced.find((f) => f > start && f < hardEnd);
    if (end === undefined) {
      for (let f = start + min; f < hardEnd; f++) {
        if (scenes.has(f) && n - f >= min) {
          end = f;
          break;
        }
      }
    }
    if (end === undefined && hardEnd < n) {
      // The last chunk would be too short: split what is left in two instead.
      if (n - hardEnd < min) end = start + Math.ceil((n - start) / 2);
      else if (method === "scene" && values) {
        let best = hardEnd;
        for (let f = start + min; f <= hardEnd; f++) if (values[f] > values[best]) best = f;
        end = best;
      } else end = hardEnd;
    }
    end ??= hardEnd;
    chunks.push({ index: chunks.length, start, end });
    start = end;
  }
  return { frameCount: n, chunks, sceneChanges, method };
}

/**
 * Plans chunks for frames read in order: measures each frame's difference from the previous one on
 * 1/8-scale luma (only that small picture is kept), then calls {@linkcode planFromScores}. With
 * `method: "fixed"` and a known `info.frameCount` it reads nothing.
 *
 * @example
 * ```ts
 * import { planChunks } from "./plan.ts";
 * import { testSource } from "../io/testsrc.ts";
 * const src = testSource({ width: 160, height: 120, frames: 40 });
 * const plan = await planChunks(src.frames(), src.info, { minLength: 8, maxLength: 16 });
 * console.log(plan.chunks.length);
 * ```
 */
export async function planChunks(
  frames: AsyncIterable<Frame> | Iterable<Frame>,
  info: VideoInfo,
  options: PlanOptions = {},
): Promise<ChunkPlan> {
  const fps = info.fps.num / info.fps.den;
  if (options.method === "fixed" && info.frameCount !== undefined) {
    return planFromScores({ frameCount: info.frameCount }, { ...options, fps });
  }
  const scores: number[] = [];
  let previous: Uint8Array | undefined;
  const lumaBytes = info.width * info.height * (info.bitDepth > 8 ? 2 : 1);
  for await (const frame of frames) {
    if (options.maxFrames !== undefined && scores.length >= options.maxFrames) break;
    const small = downscaleLuma(frame.data.subarray(0, lumaBytes), info);
    scores.push(previous ? sceneScore(previous, small) : 0);
    previous = small;
  }
  return planFromScores(scores, { ...options, fps });
}
