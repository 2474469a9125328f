/**
 * A synthetic, deterministic video source for tests, demos and benchmarks: scrolling gradient bars with
 * texture, colour bars, a bouncing checkered box and a binary frame counter, so an encoder sees motion,
 * edges and detail. Rendering copies precomputed rows, so a 1280x720 frame takes well under a millisecond.
 * @module
 */

import { EncoderError } from "../errors.ts";
import { chromaPlaneSize, type Frame, frameByteLength, type Rational, type VideoInfo } from "../types.ts";
import { encodeY4mHeader } from "./y4m.ts";

/** Options of {@linkcode testSource}. */
export interface TestSourceOptions {
  /** Frame width in pixels. */
  width: number;
  /** Frame height in pixels. */
  height: number;
  /** Frame rate. Default 30/1. */
  fps?: Rational;
  /** Number of frames; `Infinity` for an endless source. Default 60. */
  frames?: number;
  /** 8, 10 or 12; above 8 bits samples are 16-bit little-endian. Default 8. */
  bitDepth?: 8 | 10 | 12;
  /** Chroma subsampling. Default "420". */
  chroma?: VideoInfo["chroma"];
  /** Changes the texture and the box's starting point; the same seed always gives the same frames. Default 1. */
  seed?: number;
}

/** A frame of the test source: its own buffer, timestamp = index, duration 1. */
export interface TestFrame extends Frame {
  /** The frame's samples, planes packed one after another (16-bit little-endian above 8 bits). */
  data: Uint8Array<ArrayBuffer>;
  /** The frame's index, in frame-duration units. */
  timestamp: number;
  /** Always 1: one frame duration. */
  duration: number;
}

/** A source of raw frames: what {@linkcode testSource} returns, shaped like a `Y4mReader`. */
export interface TestSource {
  /** The frames' geometry; `frameCount` is set when the source is finite. */
  readonly info: VideoInfo;
  /** Bytes of one frame. */
  readonly frameSize: number;
  /** Renders frame `index` (timestamp = index, duration 1) into a fresh buffer. */
  frame(index: number): TestFrame;
  /** Every frame from 0, each in its own buffer; each call starts again from frame 0. */
  frames(): AsyncIterableIterator<TestFrame>;
}

const MAX_DIMENSION = 16384;

function configError(message: string): EncoderError {
  return new EncoderError("INVALID_CONFIG", message);
}

/** Small fast deterministic PRNG (mulberry32). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A position bouncing between 0 and `span` at `speed` per frame. */
function bounce(t: number, speed: number, span: number, phase: number): number {
  if (span <= 0) return 0;
  const p = Math.floor(t * speed + phase) % (2 * span);
  return p < span ? p : 2 * span - p;
}

type Samples = Uint8Array | Uint16Array;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

// 75% colour bars (white, yellow, cyan, green, magenta, red, blue, black) as 8-bit BT.601 Cb/Cr.
const BAR_U = [128, 44, 156, 72, 184, 100, 212, 128];
const BAR_V = [128, 142, 44, 58, 198, 212, 114, 128];
const LUMA_VARIANTS = 16;
const BANDS = 4;

class TestPattern {
  readonly info: VideoInfo;
  readonly frameSize: number;
  #shift: number;
  #cw: number;
  #ch: number;
  #lumaRows: Samples[] = [];
  #uRows: Samples[] = [];
  #vRows: Samples[] = [];
  #boxRows: [Samples, Samples];
  #box: { w: number; h: number; phaseX: number; phaseY: number };
  #white: number;
  #black: number;

  constructor(info: VideoInfo, seed: number) {
    this.info = info;
    this.frameSize = frameByteLength(info);
    this.#shift = info.bitDepth - 8;
    [this.#cw, this.#ch] = chromaPlaneSize(info);
    const { width: w } = info;
    const random = prng(seed);
    const Ctor = info.bitDepth > 8 ? Uint16Array : Uint8Array;
    const s = this.#shift;
    this.#white = 235 << s;
    this.#black = 16 << s;

    // Luma rows are periodic with period w and twice as long, so any window of w samples is one copy.
    const barPitch = Math.max(4, Math.floor(w / 8));
    for (let band = 0; band < BANDS; band++) {
      for (let v = 0; v < LUMA_VARIANTS; v++) {
        const row = new Ctor(2 * w);
        for (let x = 0; x < w; x++) {
          const ramp = x < w / 2 ? (2 * x) / w : 2 - (2 * x) / w;
          let y = 40 + 150 * ramp + band * 12 + (random() - 0.5) * 24;
          if (x % barPitch < 2) y = 225;
          row[x] = row[x + w] = Math.max(16, Math.min(235, Math.round(y))) << s;
        }
        this.#lumaRows.push(row);
      }
    }
    // Chroma: colour bars, rotated per band so the picture has horizontal edges too.
    const cw = this.#cw;
    for (let band = 0; band < BANDS && cw > 0; band++) {
      const u = new Ctor(2 * cw);
      const v = new Ctor(2 * cw);
      for (let x = 0; x < cw; x++) {
        const bar = (Math.floor((x * 8) / cw) + band * 3) % 8;
        u[x] = u[x + cw] = BAR_U[bar] << s;
        v[x] = v[x + cw] = BAR_V[bar] << s;
      }
      this.#uRows.push(u);
      this.#vRows.push(v);
    }
    // The box: a checkerboard of 8-sample squares, as two alternating rows.
    const bw = Math.max(2, Math.floor(info.width / 6) & ~1);
    const bh = Math.max(2, Math.floor(info.height / 5) & ~1);
    const a = new Ctor(bw);
    const b = new Ctor(bw);
    for (let x = 0; x < bw; x++) {
      const on = (x >> 3) & 1;
      a[x] = (on ? 200 : 60) << s;
      b[x] = (on ? 60 : 200) << s;
    }
    this.#boxRows = [a, b];
    this.#box = {
      w: Math.min(bw, info.width),
      h: Math.min(bh, info.height),
      phaseX: random() * 1000,
      phaseY: random() * 1000,
    };
  }

  render(t: number): Uint8Array<ArrayBuffer> {
    const { width: w, height: h, bitDepth } = this.info;
    const out = new Uint8Array(this.frameSize);
    const bps = bitDepth > 8 ? 2 : 1;
    const view = (offset: number, length: number): Samples =>
      bps === 2 ? new Uint16Array(out.buffer, offset, length) : out.subarray(offset, offset + length);

    // Luma: diagonal scrolling gradient with texture.
    const luma = view(0, w * h);
    const speed = Math.max(1, Math.round(w / 160));
    for (let y = 0; y < h; y++) {
      const band = Math.min(BANDS - 1, Math.floor((y * BANDS) / h));
      const row = this.#lumaRows[band * LUMA_VARIANTS + (y % LUMA_VARIANTS)];
      const offset = (t * speed + (y >> 1)) % w;
      luma.set(row.subarray(offset, offset + w), y * w);
    }
    // The bouncing box.
    const box = this.#box;
    const bx = bounce(t, Math.max(1, w / 90), w - box.w, box.phaseX);
    const by = bounce(t, Math.max(1, h / 70), h - box.h, box.phaseY);
    for (let y = 0; y < box.h; y++) {
      const row = this.#boxRows[(y >> 3) & 1];
      luma.set(row.subarray(0, box.w), (by + y) * w + bx);
    }
    // A binary frame counter along the top, so that every frame differs.
    const cell = Math.max(2, Math.floor(Math.min(w, h) / 32));
    const bits = Math.min(16, Math.floor(w / cell));
    for (let y = 0; y < Math.min(cell, h); y++) {
      for (let i = 0; i < bits; i++) {
        const start = y * w + i * cell;
        luma.fill((t >> (bits - 1 - i)) & 1 ? this.#white : this.#black, start, start + cell);
      }
    }

    // Chroma: slowly scrolling colour bars, and a box of its own colour.
    const cw = this.#cw, ch = this.#ch;
    if (cw > 0) {
      const planeBytes = cw * ch * bps;
      const u = view(w * h * bps, cw * ch);
      const v = view(w * h * bps + planeBytes, cw * ch);
      const cspeed = Math.max(1, Math.round(cw / 240));
      const offset = (t * cspeed) % cw;
      for (let y = 0; y < ch; y++) {
        const band = Math.min(BANDS - 1, Math.floor((y * BANDS) / ch));
        u.set(this.#uRows[band].subarray(offset, offset + cw), y * cw);
        v.set(this.#vRows[band].subarray(offset, offset + cw), y * cw);
      }
      const sx = w / cw, sy = h / ch;
      const cx0 = Math.floor(bx / sx), cx1 = Math.ceil((bx + box.w) / sx);
      const cy0 = Math.floor(by / sy), cy1 = Math.ceil((by + box.h) / sy);
      for (let y = cy0; y < Math.min(cy1, ch); y++) {
        u.fill(90 << this.#shift, y * cw + cx0, y * cw + Math.min(cx1, cw));
        v.fill(240 << this.#shift, y * cw + cx0, y * cw + Math.min(cx1, cw));
      }
    }
    if (bps === 2 && !LITTLE_ENDIAN) {
      for (let i = 0; i < out.length; i += 2) {
        const lo = out[i];
        out[i] = out[i + 1];
        out[i + 1] = lo;
      }
    }
    return out;
  }
}

function checkDimension(name: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v <= 0 || v > MAX_DIMENSION) {
    throw configError(`Test source ${name} must be an integer from 1 to ${MAX_DIMENSION}, got ${v}`);
  }
  return v;
}

function resolveOptions(options: TestSourceOptions): { info: VideoInfo; frames: number; seed: number } {
  const width = checkDimension("width", options.width);
  const height = checkDimension("height", options.height);
  const fps = options.fps ?? { num: 30, den: 1 };
  if (!Number.isSafeInteger(fps.num) || !Number.isSafeInteger(fps.den) || fps.num <= 0 || fps.den <= 0) {
    throw configError(`Test source fps must be two positive integers, got ${fps.num}/${fps.den}`);
  }
  const frames = options.frames ?? 60;
  if (frames !== Infinity && (!Number.isSafeInteger(frames) || frames < 0)) {
    throw configError(`Test source frames must be a non-negative integer or Infinity, got ${frames}`);
  }
  const bitDepth = options.bitDepth ?? 8;
  if (bitDepth !== 8 && bitDepth !== 10 && bitDepth !== 12) {
    throw configError(`Test source bitDepth must be 8, 10 or 12, got ${bitDepth}`);
  }
  const chroma = options.chroma ?? "420";
  if (!["420", "422", "444", "mono"].includes(chroma)) {
    throw configError(
      `Test source chroma must be "420", "422", "444" or "mono", got ${JSON.stringify(chroma)}`,
    );
  }
  const info: VideoInfo = {
    width,
    height,
    fps: { num: fps.num, den: fps.den },
    bitDepth,
    chroma,
    interlace: "p",
    colorRange: "limited",
  };
  if (chroma === "420") info.chromaPosition = "unknown";
  if (frames !== Infinity) info.frameCount = frames;
  return { info, frames, seed: options.seed ?? 1 };
}

/**
 * A deterministic synthetic video source with motion and detail, shaped like a `Y4mReader`.
 *
 * @example
 * ```ts
 * import { testSource } from "./testsrc.ts";
 * const source = testSource({ width: 320, height: 240, frames: 10 });
 * for await (const frame of source.frames()) console.log(frame.timestamp, frame.data.length);
 * ```
 */
export function testSource(options: TestSourceOptions): TestSource {
  const { info, frames, seed } = resolveOptions(options);
  const pattern = new TestPattern(info, seed);
  const frame = (index: number) => ({ data: pattern.render(index), timestamp: index, duration: 1 });
  return {
    info,
    frameSize: pattern.frameSize,
    frame,
    async *frames() {
      for (let i = 0; i < frames; i++) yield frame(i);
    },
  };
}

/**
 * The test source as a Y4M byte stream (header, then `FRAME` + data per frame), pulled on demand.
 *
 * @example
 * ```ts
 * import { testSourceY4m } from "./testsrc.ts";
 * const response = new Response(testSourceY4m({ width: 64, height: 48, frames: 2 }));
 * console.log((await response.arrayBuffer()).byteLength);
 * ```
 */
export function testSourceY4m(options: TestSourceOptions): ReadableStream<Uint8Array> {
  const source = testSource(options);
  const total = source.info.frameCount ?? Infinity;
  const marker = new TextEncoder().encode("FRAME\n");
  let index = -1;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (index < 0) {
        controller.enqueue(encodeY4mHeader(source.info));
      } else if (index < total) {
        const data = source.frame(index).data;
        const chunk = new Uint8Array(marker.length + data.length);
        chunk.set(marker);
        chunk.set(data, marker.length);
        controller.enqueue(chunk);
      }
      index++;
      if (index >= total) controller.close();
    },
  }, { highWaterMark: 0 });
}

/** Default geometry of a bare `testsrc` spec. */
export const TEST_SOURCE_DEFAULTS = {
  width: 320,
  height: 240,
  fps: { num: 30, den: 1 },
  frames: 60,
} as const;

/**
 * True when an input name is a test source spec (`testsrc` or `testsrc:...`).
 *
 * @example
 * ```ts
 * import { isTestSourceSpec } from "./testsrc.ts";
 * console.log(isTestSourceSpec("testsrc:640x360"), isTestSourceSpec("in.y4m")); // true false
 * ```
 */
export function isTestSourceSpec(input: string): boolean {
  return input === "testsrc" || input.startsWith("testsrc:");
}

/**
 * Parses a frame rate: an integer (`30`), a ratio (`30000/1001`) or a decimal (`29.97`, read as 30000/1001
 * when that is what it rounds, else exactly).
 *
 * @example
 * ```ts
 * import { parseFrameRate } from "./testsrc.ts";
 * console.log(parseFrameRate("29.97")); // { num: 30000, den: 1001 }
 * ```
 */
export function parseFrameRate(text: string): Rational {
  const bad = () =>
    new EncoderError(
      "INVALID_INPUT",
      `Frame rate ${
        JSON.stringify(text)
      } is invalid: write an integer (30), a ratio (30000/1001) or a decimal (29.97)`,
    );
  let m = /^(\d+)(?:[/:](\d+))?$/.exec(text);
  if (m) {
    const num = Number(m[1]), den = m[2] === undefined ? 1 : Number(m[2]);
    if (num <= 0 || den <= 0 || !Number.isSafeInteger(num) || !Number.isSafeInteger(den)) throw bad();
    return { num, den };
  }
  m = /^(\d+)\.(\d{1,6})$/.exec(text);
  if (!m) throw bad();
  const value = Number(text);
  if (!(value > 0)) throw bad();
  const ntsc = Math.round(value * 1.001);
  if (Math.abs(value - (ntsc * 1000) / 1001) < 0.001) return { num: ntsc * 1000, den: 1001 };
  let den = 10 ** m[2].length;
  let num = Math.round(value * den);
  const gcd = (a: number, b: number): number => (b ? gcd(b, a % b) : a);
  const g = gcd(num, den);
  num /= g;
  den /= g;
  return { num, den };
}

/**
 * Parses `testsrc[:WxH[@fps][:frames]]` into {@linkcode testSource} options (defaults 320x240@30, 60 frames).
 *
 * @example
 * ```ts
 * import { parseTestSourceSpec, testSource } from "./testsrc.ts";
 * const options = parseTestSourceSpec("testsrc:640x360@30000/1001:90");
 * console.log(testSource(options).info.fps); // { num: 30000, den: 1001 }
 * ```
 */
export function parseTestSourceSpec(spec: string): TestSourceOptions & { fps: Rational; frames: number } {
  const usage = "write it as testsrc[:WIDTHxHEIGHT[@FPS][:FRAMES]], such as testsrc:640x360@30:90";
  const m = /^testsrc(?::(\d+)x(\d+)(?:@([^:]+))?(?::([^:]*))?)?$/.exec(spec);
  if (!m) {
    throw new EncoderError("INVALID_INPUT", `Test source spec ${JSON.stringify(spec)} is invalid: ${usage}`);
  }
  const options = {
    width: TEST_SOURCE_DEFAULTS.width as number,
    height: TEST_SOURCE_DEFAULTS.height as number,
    fps: { ...TEST_SOURCE_DEFAULTS.fps } as Rational,
    frames: TEST_SOURCE_DEFAULTS.frames as number,
  };
  if (m[1] !== undefined) {
    options.width = Number(m[1]);
    options.height = Number(m[2]);
    for (const [name, v] of [["width", options.width], ["height", options.height]] as const) {
      if (v <= 0 || v > MAX_DIMENSION) {
        throw new EncoderError(
          "INVALID_INPUT",
          `Test source ${name} in ${JSON.stringify(spec)} must be from 1 to ${MAX_DIMENSION}, got ${v}`,
        );
      }
    }
  }
  if (m[3] !== undefined) options.fps = parseFrameRate(m[3]);
  if (m[4] !== undefined) {
    if (!/^\d+$/.test(m[4]) || !Number.isSafeInteger(Number(m[4]))) {
      throw new EncoderError(
        "INVALID_INPUT",
        `Test source frame count ${JSON.stringify(m[4])} in ${
          JSON.stringify(spec)
        } is not a whole number: ${usage}`,
      );
    }
    options.frames = Number(m[4]);
  }
  return options;
}
