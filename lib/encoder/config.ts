/**
 * Settings both backends share, and their checks: what the frames look like and how often key frames come.
 * @module
 */
import { EncoderError } from "../errors.ts";
import type { ChromaSampling, Rational, VideoInfo } from "../types.ts";

/** Options with the same name and meaning in every backend. */
export interface CommonConfig {
  /** Frame width in pixels (even for 4:2:0 and 4:2:2; at most 16384). */
  width: number;
  /** Frame height in pixels (even for 4:2:0; at most 16384). */
  height: number;
  /** Frames per second. Default 30/1. */
  fps?: Rational;
  /** 8 (default) or 10; rav1e also 12. */
  bitDepth?: number;
  /** Chroma subsampling of the input; default "420". */
  chroma?: ChromaSampling;
  /** Maximum distance between key frames, in frames. */
  keyint?: number;
  /** Encoder threads (SVT-AV1 `lp`, rav1e `threads`); 0 or unset picks from the core count. */
  threads?: number;
}

/** Largest side either library takes. */
export const MAX_SIDE = 16384;

/** Checks the frame geometry and rate; returns the normalized description of the input. */
export function checkCommonConfig(
  config: CommonConfig & Partial<VideoInfo>,
  library: "svt-av1" | "rav1e",
): VideoInfo {
  const fail = (msg: string) => new EncoderError("INVALID_CONFIG", msg, { library });
  if (config === null || typeof config !== "object") throw fail("Encoder config must be an object");
  const { width, height } = config;
  for (const [name, v] of [["Width", width], ["Height", height]] as const) {
    if (!Number.isInteger(v) || v <= 0) throw fail(`${name} must be a positive integer, got ${v}`);
    if (v > MAX_SIDE) throw fail(`${name} must be at most ${MAX_SIDE}, got ${v}`);
  }
  const chroma = config.chroma ?? "420";
  if (!["420", "422", "444", "mono"].includes(chroma)) {
    throw fail(`Chroma must be "420", "422", "444" or "mono", got ${JSON.stringify(chroma)}`);
  }
  if (chroma === "420" && (width % 2 !== 0 || height % 2 !== 0)) {
    throw fail(
      `Width and height must be even for 4:2:0 input, got ${width}x${height}: crop or pad by one pixel`,
    );
  }
  if (chroma === "422" && width % 2 !== 0) throw fail(`Width must be even for 4:2:2 input, got ${width}`);
  const fps = config.fps ?? { num: 30, den: 1 };
  if (
    !fps || !Number.isInteger(fps.num) || !Number.isInteger(fps.den) || fps.num <= 0 || fps.den <= 0
    || fps.num > 0xffffffff || fps.den > 0xffffffff
  ) {
    throw fail(`Frame rate must be positive integers { num, den }, got ${JSON.stringify(fps)}`);
  }
  const bitDepth = config.bitDepth ?? 8;
  if (![8, 10, 12].includes(bitDepth)) throw fail(`Bit depth must be 8, 10 or 12, got ${bitDepth}`);
  if (config.keyint !== undefined && !Number.isInteger(config.keyint)) {
    throw fail(`keyint must be an integer number of frames, got ${config.keyint}`);
  }
  if (config.threads !== undefined && (!Number.isInteger(config.threads) || config.threads < 0)) {
    throw fail(`threads must be a non-negative integer, got ${config.threads}`);
  }
  return { width, height, fps: { num: fps.num, den: fps.den }, bitDepth, chroma };
}
