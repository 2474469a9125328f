/**
 * YUV4MPEG2 (Y4M) reading and writing: the raw video format `ffmpeg -f yuv4mpegpipe` and every AV1
 * encoder's command-line tool speak. The reader streams frame by frame and holds at most one frame plus
 * one chunk of input.
 * @module
 */

import { EncoderError } from "../errors.ts";
import { type ChromaPosition, type Frame, frameByteLength, type Rational, type VideoInfo } from "../types.ts";
import { ByteStreamReader, FrameIteration, isShort } from "./byte_reader.ts";

const MAGIC = "YUV4MPEG2 ";
const MAGIC_BYTES = new TextEncoder().encode(MAGIC);
const FRAME_BYTES = new TextEncoder().encode("FRAME");
const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** Longest stream header accepted, in bytes, before giving up on finding its newline. */
export const Y4M_MAX_HEADER_BYTES = 4096;

/** What a Y4M stream header says: {@linkcode VideoInfo} plus the raw colourspace tag and extensions. */
export interface Y4mInfo extends VideoInfo {
  /** The `C` tag value, such as `"420jpeg"` or `"420p10"`; `"420jpeg"` when the header has none. */
  colorspace: string;
  /** Every `X` tag of the header, without the `X`, such as `"COLORRANGE=FULL"`. */
  extensions: string[];
}

/** A frame read from Y4M: data of exactly one frame, timestamp = frame index, duration 1. */
export interface Y4mFrame extends Frame {
  /** Exactly one frame, in a buffer of its own (transferable). */
  data: Uint8Array<ArrayBuffer>;
  /** The frame's index in the stream, in frame-duration units. */
  timestamp: number;
  /** Always 1: one frame duration. */
  duration: number;
  /** Parameters of the `FRAME` line after the word `FRAME`, if it had any (such as `"Ixyz"`). */
  frameParams?: string;
}

/** Options of {@linkcode Y4mReader.open}. */
export interface Y4mReaderOptions {
  /** Largest width or height accepted. Default 16384. */
  maxDimension?: number;
  /** Largest frame accepted, in bytes. Default 1 GiB. */
  maxFrameBytes?: number;
}

interface ColorspaceFacts {
  chroma: VideoInfo["chroma"];
  bitDepth: number;
  chromaPosition?: ChromaPosition;
}

/** Colourspace tags this reader accepts, mapped to what they mean. */
const COLORSPACES: Record<string, ColorspaceFacts> = {
  "420jpeg": { chroma: "420", bitDepth: 8, chromaPosition: "unknown" },
  "420paldv": { chroma: "420", bitDepth: 8, chromaPosition: "unknown" },
  "420mpeg2": { chroma: "420", bitDepth: 8, chromaPosition: "vertical" },
  "420": { chroma: "420", bitDepth: 8, chromaPosition: "colocated" },
  "420p10": { chroma: "420", bitDepth: 10, chromaPosition: "colocated" },
  "420p12": { chroma: "420", bitDepth: 12, chromaPosition: "colocated" },
  "422": { chroma: "422", bitDepth: 8 },
  "422p10": { chroma: "422", bitDepth: 10 },
  "422p12": { chroma: "422", bitDepth: 12 },
  "444": { chroma: "444", bitDepth: 8 },
  "444p10": { chroma: "444", bitDepth: 10 },
  "444p12": { chroma: "444", bitDepth: 12 },
  "mono": { chroma: "mono", bitDepth: 8 },
  "mono10": { chroma: "mono", bitDepth: 10 },
  "mono12": { chroma: "mono", bitDepth: 12 },
};

function invalid(message: string): EncoderError {
  return new EncoderError("INVALID_INPUT", message);
}

function printable(bytes: Uint8Array): string {
  return JSON.stringify(decoder.decode(bytes.subarray(0, 16)));
}

function parseRatio(tag: string, value: string, allowZero: boolean): Rational {
  const m = /^(\d+):(\d+)$/.exec(value);
  const num = m ? Number(m[1]) : NaN;
  const den = m ? Number(m[2]) : NaN;
  if (
    !m || !Number.isSafeInteger(num) || !Number.isSafeInteger(den) || (!allowZero && (num <= 0 || den <= 0))
  ) {
    throw invalid(
      `Y4M header tag ${tag}${value} is not a valid ratio: write it as two positive integers, such as ${tag}30000:1001`,
    );
  }
  return { num, den };
}

function parseDimension(tag: "W" | "H", value: string, max: number): number {
  const name = tag === "W" ? "width" : "height";
  if (!/^-?\d+$/.test(value)) {
    throw invalid(`Y4M header tag ${tag}${value} is not a number: the ${name} must be a positive integer`);
  }
  const n = Number(value);
  if (n <= 0) throw invalid(`Y4M ${name} must be positive, got ${value}: the header is corrupt`);
  if (n > max) {
    throw invalid(`Y4M ${name} ${value} is larger than the ${max} supported: scale the video down first`);
  }
  return n;
}

/**
 * Parses the text of a Y4M stream header (the line without its newline).
 *
 * @example
 * ```ts
 * import { parseY4mHeader } from "./y4m.ts";
 * const info = parseY4mHeader("YUV4MPEG2 W640 H360 F30:1 Ip A1:1 C420p10");
 * console.log(info.width, info.bitDepth); // 640 10
 * ```
 */
export function parseY4mHeader(line: string, options: Y4mReaderOptions = {}): Y4mInfo {
  const maxDimension = options.maxDimension ?? 16384;
  const maxFrameBytes = options.maxFrameBytes ?? 1 << 30;
  if (!line.startsWith(MAGIC)) {
    throw invalid(
      `Input is not a Y4M stream: it starts with ${
        JSON.stringify(line.slice(0, 16))
      } instead of "YUV4MPEG2 ". `
        + "Convert it with `ffmpeg -i input -f yuv4mpegpipe -`",
    );
  }
  let width: number | undefined;
  let height: number | undefined;
  let fps: Rational | undefined;
  let interlace: VideoInfo["interlace"];
  let pixelAspect: Rational | undefined;
  let colorspace = "420jpeg";
  let colorRange: VideoInfo["colorRange"];
  const extensions: string[] = [];
  for (const token of line.slice(MAGIC.length).split(" ")) {
    if (token === "") continue;
    const tag = token[0];
    const value = token.slice(1);
    switch (tag) {
      case "W":
        width = parseDimension("W", value, maxDimension);
        break;
      case "H":
        height = parseDimension("H", value, maxDimension);
        break;
      case "F":
        fps = parseRatio("F", value, false);
        break;
      case "I":
        if (value === "p" || value === "t" || value === "b" || value === "m") interlace = value;
        else if (value !== "?") {
          throw invalid(`Y4M header tag I${value} is not an interlacing mode: use Ip, It, Ib, Im or I?`);
        }
        break;
      case "A": {
        const ratio = parseRatio("A", value, true);
        if (ratio.num > 0 && ratio.den > 0) pixelAspect = ratio;
        break;
      }
      case "C":
        colorspace = value;
        break;
      case "X":
        extensions.push(value);
        if (value.startsWith("COLORRANGE=")) {
          const range = value.slice("COLORRANGE=".length).toUpperCase();
          if (range === "FULL") colorRange = "full";
          else if (range === "LIMITED") colorRange = "limited";
        }
        break;
      default:
        // The format says readers ignore tags they do not know.
        break;
    }
  }
  if (width === undefined || height === undefined) {
    throw invalid(
      `Y4M header has no ${width === undefined ? "W (width)" : "H (height)"} tag: the stream is corrupt`,
    );
  }
  if (fps === undefined) {
    throw invalid(
      "Y4M header has no F (frame rate) tag: add one such as F30:1, or regenerate the file with ffmpeg",
    );
  }
  const facts = COLORSPACES[colorspace];
  if (!facts) {
    throw invalid(
      `Y4M colourspace C${colorspace} is not supported: use one of ${
        Object.keys(COLORSPACES).map((c) => "C" + c).join(", ")
      } (for example \`ffmpeg -i input -pix_fmt yuv420p -f yuv4mpegpipe -\`)`,
    );
  }
  const info: Y4mInfo = {
    width,
    height,
    fps,
    bitDepth: facts.bitDepth,
    chroma: facts.chroma,
    colorspace,
    extensions,
  };
  if (facts.chromaPosition) info.chromaPosition = facts.chromaPosition;
  info.interlace = interlace ?? "p";
  if (pixelAspect) info.pixelAspect = pixelAspect;
  if (colorRange) info.colorRange = colorRange;
  const bytes = frameByteLength(info);
  if (bytes > maxFrameBytes) {
    throw invalid(
      `Y4M frames of ${width}x${height} C${colorspace} take ${bytes} bytes each, more than the ${maxFrameBytes} `
        + "allowed: scale the video down or raise maxFrameBytes",
    );
  }
  return info;
}

/**
 * Reads a Y4M byte stream: the header on {@linkcode Y4mReader.open}, then frames one at a time.
 *
 * @example
 * ```ts
 * import { Y4mReader, testSourceY4m } from "./mod.ts";
 * const reader = await Y4mReader.open(testSourceY4m({ width: 64, height: 48, frames: 3 }));
 * console.log(reader.info.width, reader.info.height);
 * for await (const frame of reader.frames()) console.log(frame.timestamp, frame.data.length);
 * ```
 */
export class Y4mReader implements AsyncDisposable, Disposable {
  #bytes: ByteStreamReader;
  #info: Y4mInfo;
  #frameSize: number;
  #iteration: FrameIteration<Y4mFrame>;

  private constructor(bytes: ByteStreamReader, info: Y4mInfo) {
    this.#bytes = bytes;
    this.#info = info;
    this.#frameSize = frameByteLength(info);
    this.#iteration = new FrameIteration(bytes, "Y4mReader");
  }

  /** Reads and checks the stream header; the stream is locked to this reader until `close()`. */
  static async open(
    readable: ReadableStream<Uint8Array>,
    options: Y4mReaderOptions = {},
  ): Promise<Y4mReader> {
    const bytes = new ByteStreamReader(readable);
    try {
      const line = await bytes.readLine(Y4M_MAX_HEADER_BYTES, (soFar) => {
        const n = Math.min(soFar.length, MAGIC_BYTES.length);
        for (let i = 0; i < n; i++) {
          if (soFar[i] !== MAGIC_BYTES[i]) {
            throw invalid(
              `Input is not a Y4M stream: it starts with ${printable(soFar)} instead of "YUV4MPEG2 ". `
                + "Convert it with `ffmpeg -i input -f yuv4mpegpipe -`",
            );
          }
        }
      });
      if (isShort(line)) {
        if (line.kind === "too-long") {
          throw invalid(
            `Y4M header has no newline in its first ${Y4M_MAX_HEADER_BYTES} bytes: the input is not Y4M or is corrupt`,
          );
        }
        throw invalid(
          line.got === 0
            ? 'Input is empty: expected a Y4M stream starting with "YUV4MPEG2 "'
            : "Input ends inside the Y4M header: the stream is truncated",
        );
      }
      return new Y4mReader(bytes, parseY4mHeader(decoder.decode(line), options));
    } catch (err) {
      await bytes.cancel(err);
      throw err;
    }
  }

  /** What the header says about the video. */
  get info(): Y4mInfo {
    return this.#info;
  }

  /** Bytes of one frame's data. */
  get frameSize(): number {
    return this.#frameSize;
  }

  /** True once closed or read to the end. */
  get closed(): boolean {
    return this.#iteration.closed;
  }

  /**
   * Frames in order, each in its own buffer. Can be iterated once; leaving the loop early closes the reader.
   * A truncated last frame or a damaged `FRAME` marker throws an `INVALID_INPUT` error.
   */
  frames(): AsyncIterableIterator<Y4mFrame> {
    return this.#iteration.frames((index) => this.#readFrame(index));
  }

  /** Frame `index`, or `undefined` at the end of the stream. */
  async #readFrame(index: number): Promise<Y4mFrame | undefined> {
    const line = await this.#bytes.readLine(Y4M_MAX_HEADER_BYTES);
    if (isShort(line)) {
      if (line.kind === "eof" && line.got === 0) return undefined;
      throw invalid(
        line.kind === "too-long"
          ? `Y4M frame ${index} has no FRAME marker line (no newline in ${Y4M_MAX_HEADER_BYTES} bytes): the stream is corrupt`
          : `Y4M stream ends inside the FRAME marker of frame ${index}: the stream is truncated`,
      );
    }
    if (!startsWithFrameWord(line)) {
      throw invalid(
        `Y4M frame ${index} does not start with "FRAME" (found ${printable(line)} at byte `
          + `${
            this.#bytes.offset - line.length - 1
          }): the stream is corrupt or its header has the wrong size`,
      );
    }
    const data = await this.#bytes.readExactly(this.#frameSize);
    if (isShort(data)) {
      throw invalid(
        `Y4M frame ${index} is truncated: got ${data.got} of ${this.#frameSize} bytes, `
          + `${this.#frameSize - data.got} missing. The input ended early (a cut file, or a program writing `
          + "it that stopped mid-frame); re-create or re-download it",
      );
    }
    const frame: Y4mFrame = { data, timestamp: index, duration: 1 };
    if (line.length > FRAME_BYTES.length) {
      const params = decoder.decode(line.subarray(FRAME_BYTES.length + 1)).trim();
      if (params) frame.frameParams = params;
    }
    return frame;
  }

  /** Stops reading, cancels the input stream and releases its lock; idempotent. */
  close(): Promise<void> {
    return this.#iteration.close();
  }

  /** Like `close()`, passing a reason to the input stream. */
  cancel(reason?: unknown): Promise<void> {
    return this.#iteration.close(reason);
  }

  /** Releases the stream, as {@linkcode close} does, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Releases the stream without waiting, for `using`. */
  [Symbol.dispose](): void {
    void this.close();
  }
}

function startsWithFrameWord(line: Uint8Array): boolean {
  if (line.length < FRAME_BYTES.length) return false;
  for (let i = 0; i < FRAME_BYTES.length; i++) if (line[i] !== FRAME_BYTES[i]) return false;
  return line.length === FRAME_BYTES.length || line[FRAME_BYTES.length] === 0x20;
}

/** What {@linkcode encodeY4mHeader} needs: video geometry, and optionally the exact colourspace tag. */
export type Y4mHeaderInfo =
  & Pick<VideoInfo, "width" | "height" | "fps" | "bitDepth" | "chroma">
  & Partial<VideoInfo>
  & {
    colorspace?: string;
  };

/**
 * The colourspace tag (without `C`) for some geometry: the `colorspace` given if it matches, else the
 * conventional tag (`420jpeg` for 8-bit 4:2:0 of unknown siting, `420p10` for 10-bit 4:2:0, ...).
 *
 * @example
 * ```ts
 * import { y4mColorspace } from "./y4m.ts";
 * console.log(y4mColorspace({ chroma: "420", bitDepth: 10 })); // "420p10"
 * ```
 */
export function y4mColorspace(
  info: Pick<VideoInfo, "chroma" | "bitDepth" | "chromaPosition"> & { colorspace?: string },
): string {
  if (info.colorspace !== undefined) {
    const facts = COLORSPACES[info.colorspace];
    if (facts && facts.chroma === info.chroma && facts.bitDepth === info.bitDepth) return info.colorspace;
  }
  const depth = info.bitDepth === 8
    ? ""
    : info.chroma === "mono"
    ? String(info.bitDepth)
    : `p${info.bitDepth}`;
  let tag = info.chroma + depth;
  if (info.chroma === "420" && info.bitDepth === 8) {
    tag = info.chromaPosition === "vertical"
      ? "420mpeg2"
      : info.chromaPosition === "colocated"
      ? "420"
      : "420jpeg";
  }
  if (!COLORSPACES[tag]) {
    throw new EncoderError(
      "INVALID_CONFIG",
      `Y4M cannot describe ${info.chroma} video at ${info.bitDepth} bits: use 8, 10 or 12 bits`,
    );
  }
  return tag;
}

/**
 * The Y4M stream header line, newline included.
 *
 * @example
 * ```ts
 * import { encodeY4mHeader } from "./y4m.ts";
 * const bytes = encodeY4mHeader({ width: 64, height: 48, fps: { num: 30, den: 1 }, bitDepth: 8, chroma: "420" });
 * console.log(new TextDecoder().decode(bytes)); // "YUV4MPEG2 W64 H48 F30:1 Ip A0:0 C420jpeg\n"
 * ```
 */
export function encodeY4mHeader(info: Y4mHeaderInfo): Uint8Array<ArrayBuffer> {
  for (
    const [name, v] of [["width", info.width], ["height", info.height], ["fps.num", info.fps.num], [
      "fps.den",
      info.fps.den,
    ]] as const
  ) {
    if (!Number.isSafeInteger(v) || v <= 0) {
      throw new EncoderError("INVALID_CONFIG", `Y4M ${name} must be a positive integer, got ${v}`);
    }
  }
  const aspect = info.pixelAspect ? `${info.pixelAspect.num}:${info.pixelAspect.den}` : "0:0";
  let line =
    `${MAGIC}W${info.width} H${info.height} F${info.fps.num}:${info.fps.den} I${info.interlace ?? "p"} `
    + `A${aspect} C${y4mColorspace(info)}`;
  if (info.colorRange) line += ` XCOLORRANGE=${info.colorRange.toUpperCase()}`;
  return encoder.encode(line + "\n");
}

/**
 * One frame as Y4M bytes: the `FRAME` line, then the data (copied into one buffer).
 *
 * @example
 * ```ts
 * import { encodeY4mFrame } from "./y4m.ts";
 * const bytes = encodeY4mFrame({ data: new Uint8Array(6) });
 * console.log(bytes.length); // 12
 * ```
 */
export function encodeY4mFrame(frame: Frame, frameParams?: string): Uint8Array<ArrayBuffer> {
  const marker = encoder.encode(frameParams ? `FRAME ${frameParams}\n` : "FRAME\n");
  const out = new Uint8Array(marker.length + frame.data.length);
  out.set(marker);
  out.set(frame.data, marker.length);
  return out;
}

/**
 * Writes a Y4M stream to a `WritableStream`: the header before the first frame, then each frame.
 *
 * @example
 * ```ts
 * import { Y4mWriter } from "./y4m.ts";
 * const chunks: Uint8Array[] = [];
 * const sink = new WritableStream<Uint8Array>({ write: (c) => void chunks.push(c) });
 * const writer = new Y4mWriter(sink, { width: 2, height: 2, fps: { num: 25, den: 1 }, bitDepth: 8, chroma: "420" });
 * await writer.write({ data: new Uint8Array(6) });
 * await writer.close();
 * ```
 */
export class Y4mWriter implements AsyncDisposable {
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #header: Uint8Array;
  #headerWritten = false;
  #frameSize: number;
  #closed = false;
  #frames = 0;

  /** Wraps a writable stream; the header is written with the first frame, or on close if none comes. */
  constructor(writable: WritableStream<Uint8Array>, info: Y4mHeaderInfo) {
    this.#header = encodeY4mHeader(info);
    this.#frameSize = frameByteLength(info);
    this.#writer = writable.getWriter();
  }

  /** Frames written so far. */
  get frameCount(): number {
    return this.#frames;
  }

  #writeHeader(): Promise<void> {
    if (this.#headerWritten) return Promise.resolve();
    this.#headerWritten = true;
    return this.#writer.write(this.#header);
  }

  /** Writes one frame; its data must be exactly one frame of the header's geometry. */
  async write(frame: Frame, frameParams?: string): Promise<void> {
    if (this.#closed) throw new EncoderError("CLOSED", "Y4mWriter is closed: create a new writer");
    if (frame.data.length !== this.#frameSize) {
      throw new EncoderError(
        "INVALID_FRAME",
        `Frame has ${frame.data.length} bytes but the Y4M header describes ${this.#frameSize}: check width, height, chroma and bit depth`,
      );
    }
    this.#frames++;
    try {
      const header = this.#writeHeader();
      await Promise.all([header, this.#writer.write(encodeY4mFrame(frame, frameParams))]);
    } catch (err) {
      throw new EncoderError("IO_ERROR", `Could not write Y4M frame: ${(err as Error)?.message ?? err}`, {
        cause: err,
      });
    }
  }

  /** Writes the header if no frame was written, then closes the stream; idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await this.#writeHeader();
      await this.#writer.close();
    } catch (err) {
      throw new EncoderError(
        "IO_ERROR",
        `Could not finish the Y4M stream: ${(err as Error)?.message ?? err}`,
        {
          cause: err,
        },
      );
    }
  }

  /** Closes the writer, as {@linkcode close} does, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
