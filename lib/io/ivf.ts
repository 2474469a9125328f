/**
 * IVF, the simple container of libaom, SvtAv1EncApp and rav1e: a 32-byte file header, then each temporal
 * unit behind a 12-byte frame header (size, timestamp). Writing and reading.
 * @module
 */

import { EncoderError } from "../errors.ts";
import type { Packet, Rational, VideoInfo } from "../types.ts";
import { ByteStreamReader, FrameIteration, isShort } from "./byte_reader.ts";
import { type ByteSink, toByteSink } from "./sink.ts";

/** Bytes of the IVF file header. */
export const IVF_HEADER_SIZE = 32;
/** Bytes of each IVF frame header. */
export const IVF_FRAME_HEADER_SIZE = 12;
/** Largest frame the reader accepts, in bytes, so a corrupt size cannot make it allocate gigabytes. */
export const IVF_MAX_FRAME_BYTES = 256 << 20;

/** What an IVF file header says. */
export interface IvfHeader {
  /** Four-character codec code, `"AV01"` for AV1. */
  fourcc: string;
  /** Frame width in pixels, from the IVF header. */
  width: number;
  /** Frame height in pixels, from the IVF header. */
  height: number;
  /** Frame rate: the header's rate over its scale; timestamps count units of `den/num` seconds. */
  fps: Rational;
  /** Frame count written in the header (0 or a guess when the writer could not patch it). */
  frameCount: number;
  /** Header version, 0. */
  version: number;
  /** Header length the file declares, 32. */
  headerSize: number;
}

/** One IVF frame: a temporal unit's bytes and its timestamp. */
export interface IvfFrame {
  /** The frame's bytes, in a buffer of its own. */
  data: Uint8Array<ArrayBuffer>;
  /** The frame's timestamp in the file's timebase. */
  timestamp: number;
}

function configError(message: string): EncoderError {
  return new EncoderError("INVALID_CONFIG", message);
}

/**
 * The 32-byte IVF file header: `DKIF`, version 0, header size 32, fourcc, width, height, rate (`fps.num`),
 * scale (`fps.den`), frame count, 4 unused bytes.
 *
 * @example
 * ```ts
 * import { encodeIvfHeader } from "./ivf.ts";
 * const header = encodeIvfHeader({ width: 640, height: 360, fps: { num: 30, den: 1 } }, 90);
 * console.log(header.length); // 32
 * ```
 */
export function encodeIvfHeader(
  info: Pick<VideoInfo, "width" | "height" | "fps">,
  frameCount: number,
  options: { fourcc?: string } = {},
): Uint8Array<ArrayBuffer> {
  const fourcc = options.fourcc ?? "AV01";
  if (!/^[\x20-\x7e]{4}$/.test(fourcc)) {
    throw configError(`IVF fourcc must be 4 ASCII characters, got ${fourcc}`);
  }
  for (
    const [name, v, max] of [
      ["width", info.width, 0xffff],
      ["height", info.height, 0xffff],
      ["fps.num", info.fps.num, 0xffffffff],
      ["fps.den", info.fps.den, 0xffffffff],
    ] as const
  ) {
    if (!Number.isInteger(v) || v <= 0 || v > max) {
      throw configError(`IVF ${name} must be an integer from 1 to ${max}, got ${v}`);
    }
  }
  if (!Number.isInteger(frameCount) || frameCount < 0 || frameCount > 0xffffffff) {
    throw configError(`IVF frame count must be an integer from 0 to ${0xffffffff}, got ${frameCount}`);
  }
  const bytes = new Uint8Array(IVF_HEADER_SIZE);
  const view = new DataView(bytes.buffer);
  bytes.set([0x44, 0x4b, 0x49, 0x46]); // "DKIF"
  view.setUint16(4, 0, true);
  view.setUint16(6, IVF_HEADER_SIZE, true);
  for (let i = 0; i < 4; i++) bytes[8 + i] = fourcc.charCodeAt(i);
  view.setUint16(12, info.width, true);
  view.setUint16(14, info.height, true);
  view.setUint32(16, info.fps.num, true);
  view.setUint32(20, info.fps.den, true);
  view.setUint32(24, frameCount, true);
  return bytes;
}

/**
 * The 12-byte IVF frame header: size (u32 LE) and timestamp (64-bit LE, two's complement if negative).
 *
 * @example
 * ```ts
 * import { encodeIvfFrameHeader } from "./ivf.ts";
 * console.log(encodeIvfFrameHeader(1500, 7)); // Uint8Array(12) [220, 5, 0, 0, 7, 0, ...]
 * ```
 */
export function encodeIvfFrameHeader(size: number, pts: number): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(IVF_FRAME_HEADER_SIZE);
  writeIvfFrameHeader(bytes, size, pts);
  return bytes;
}

function writeIvfFrameHeader(into: Uint8Array, size: number, pts: number): void {
  if (!Number.isInteger(size) || size < 0 || size > 0xffffffff) {
    throw new EncoderError("INVALID_FRAME", `IVF frame size must fit 32 bits, got ${size}`);
  }
  if (!Number.isSafeInteger(pts)) {
    throw new EncoderError("INVALID_FRAME", `IVF timestamp must be a safe integer, got ${pts}`);
  }
  const view = new DataView(into.buffer, into.byteOffset, IVF_FRAME_HEADER_SIZE);
  view.setUint32(0, size, true);
  view.setBigInt64(4, BigInt(pts), true);
}

/**
 * Parses the 32-byte IVF file header.
 *
 * @example
 * ```ts
 * import { decodeIvfHeader, encodeIvfHeader } from "./ivf.ts";
 * const header = decodeIvfHeader(encodeIvfHeader({ width: 64, height: 48, fps: { num: 25, den: 1 } }, 3));
 * console.log(header.fourcc, header.frameCount); // "AV01" 3
 * ```
 */
export function decodeIvfHeader(bytes: Uint8Array): IvfHeader {
  if (bytes.length < IVF_HEADER_SIZE) {
    throw new EncoderError(
      "INVALID_INPUT",
      `IVF header is truncated: got ${bytes.length} of ${IVF_HEADER_SIZE} bytes. The file is incomplete`,
    );
  }
  const magic = String.fromCharCode(bytes[0], bytes[1], bytes[2], bytes[3]);
  if (magic !== "DKIF") {
    throw new EncoderError(
      "INVALID_INPUT",
      `Input is not IVF: it starts with ${JSON.stringify(magic)} instead of "DKIF". Give an .ivf file`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, IVF_HEADER_SIZE);
  const headerSize = view.getUint16(6, true);
  if (headerSize < IVF_HEADER_SIZE) {
    throw new EncoderError(
      "INVALID_INPUT",
      `IVF header declares ${headerSize} bytes, less than 32: the file is corrupt`,
    );
  }
  return {
    fourcc: String.fromCharCode(bytes[8], bytes[9], bytes[10], bytes[11]),
    width: view.getUint16(12, true),
    height: view.getUint16(14, true),
    fps: { num: view.getUint32(16, true), den: view.getUint32(20, true) },
    frameCount: view.getUint32(24, true),
    version: view.getUint16(4, true),
    headerSize,
  };
}

/** Options of {@linkcode IvfWriter}. */
export interface IvfWriterOptions {
  /** Codec code. Default `"AV01"`. */
  fourcc?: string;
  /**
   * Frame count to write in the header up front, for sinks that cannot patch it later (a pipe).
   * Default 0. On a seekable sink the real count replaces it on `close()`.
   */
  frameCount?: number;
}

/**
 * Writes packets to IVF. The header goes out before the first packet; on `close()` the frame count is
 * patched into it when the sink can seek (a file), and left as written otherwise.
 *
 * @example
 * ```ts
 * import { IvfWriter, ivfFileSink } from "./mod.ts";
 * const ivf = new IvfWriter(await ivfFileSink("/tmp/example.ivf"), { width: 64, height: 48, fps: { num: 30, den: 1 } });
 * await ivf.writePacket({ data: new Uint8Array([0x12, 0x00]), timestamp: 0 });
 * await ivf.close();
 * ```
 */
export class IvfWriter implements AsyncDisposable {
  #sink: ByteSink;
  #header: Uint8Array;
  /** The header's write, once started: everything after the header waits for it. */
  #headerWrite: Promise<void> | null = null;
  #count = 0;
  #closed = false;
  #closing: Promise<void> | null = null;
  #failed: unknown = null;

  /** `target` is a {@linkcode ByteSink} or a `WritableStream` (written forward only). */
  constructor(
    target: ByteSink | WritableStream<Uint8Array>,
    info: Pick<VideoInfo, "width" | "height" | "fps">,
    options: IvfWriterOptions = {},
  ) {
    this.#header = encodeIvfHeader(info, options.frameCount ?? 0, { fourcc: options.fourcc });
    this.#sink = toByteSink(target);
  }

  /** Frames written so far. */
  get frameCount(): number {
    return this.#count;
  }

  /** True once `close()` was called. */
  get closed(): boolean {
    return this.#closed;
  }

  #write(bytes: Uint8Array): Promise<void> {
    // Started synchronously so that writes keep their order even when callers do not await each one.
    return this.#sink.write(bytes).catch((err) => {
      this.#failed ??= err;
      throw err;
    });
  }

  #writeHeader(): Promise<void> {
    this.#headerWrite ??= this.#write(this.#header);
    return this.#headerWrite;
  }

  /** Writes one packet (a temporal unit) with `packet.timestamp` as its IVF timestamp. */
  writePacket(packet: Pick<Packet, "data" | "timestamp">): Promise<void> {
    if (this.#closed) {
      return Promise.reject(new EncoderError("CLOSED", "IvfWriter is closed: create a new writer"));
    }
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(IVF_FRAME_HEADER_SIZE + packet.data.length);
      writeIvfFrameHeader(bytes, packet.data.length, packet.timestamp);
    } catch (err) {
      return Promise.reject(err);
    }
    bytes.set(packet.data, IVF_FRAME_HEADER_SIZE);
    this.#count++;
    const header = this.#writeHeader();
    const body = this.#write(bytes);
    return header.then(() => body);
  }

  /** Writes the header if nothing was written, patches the frame count when possible, closes the sink. */
  close(): Promise<void> {
    if (!this.#closing) {
      this.#closed = true;
      this.#closing = (async () => {
        try {
          await this.#writeHeader();
          if (this.#sink.seekWrite && this.#failed === null) {
            const count = new Uint8Array(4);
            new DataView(count.buffer).setUint32(0, this.#count, true);
            await this.#sink.seekWrite(24, count);
          }
        } finally {
          await this.#sink.close();
        }
      })();
    }
    return this.#closing;
  }

  /** Closes the writer, as {@linkcode close} does, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Reads IVF from bytes or a stream: the header on `open()`, then frames one at a time.
 *
 * @example
 * ```ts
 * import { encodeIvfFrameHeader, encodeIvfHeader, IvfReader } from "./ivf.ts";
 * const header = encodeIvfHeader({ width: 64, height: 48, fps: { num: 30, den: 1 } }, 1);
 * const file = new Blob([header, encodeIvfFrameHeader(2, 0), new Uint8Array([0x12, 0x00])]);
 * const reader = await IvfReader.open(file.stream());
 * for await (const frame of reader.frames()) console.log(frame.timestamp, frame.data.length);
 * ```
 */
export class IvfReader implements AsyncDisposable {
  #bytes: ByteStreamReader;
  #header: IvfHeader;
  #iteration: FrameIteration<IvfFrame>;

  private constructor(bytes: ByteStreamReader, header: IvfHeader) {
    this.#bytes = bytes;
    this.#header = header;
    this.#iteration = new FrameIteration(bytes, "IvfReader");
  }

  /** Reads and checks the file header. */
  static async open(input: ReadableStream<Uint8Array> | Uint8Array): Promise<IvfReader> {
    const readable = input instanceof Uint8Array
      ? new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(input);
          controller.close();
        },
      })
      : input;
    const bytes = new ByteStreamReader(readable);
    try {
      const head = await bytes.readExactly(IVF_HEADER_SIZE);
      if (isShort(head)) {
        throw new EncoderError(
          "INVALID_INPUT",
          `IVF header is truncated: got ${head.got} of ${IVF_HEADER_SIZE} bytes. The file is incomplete`,
        );
      }
      const header = decodeIvfHeader(head);
      if (header.headerSize > IVF_HEADER_SIZE) {
        const extra = await bytes.readExactly(header.headerSize - IVF_HEADER_SIZE);
        if (isShort(extra)) {
          throw new EncoderError("INVALID_INPUT", "IVF header is truncated: the file is incomplete");
        }
      }
      return new IvfReader(bytes, header);
    } catch (err) {
      await bytes.cancel(err);
      throw err;
    }
  }

  /** The file header. */
  get header(): IvfHeader {
    return this.#header;
  }

  /** Frames in order; iterate once. A truncated frame throws `INVALID_INPUT`. */
  frames(): AsyncIterableIterator<IvfFrame> {
    return this.#iteration.frames((index) => this.#readFrame(index));
  }

  /** Frame `index`, or `undefined` at the end of the file. */
  async #readFrame(index: number): Promise<IvfFrame | undefined> {
    const head = await this.#bytes.readExactly(IVF_FRAME_HEADER_SIZE);
    if (isShort(head)) {
      if (head.got === 0) return undefined;
      throw new EncoderError(
        "INVALID_INPUT",
        `IVF frame ${index} header is truncated: got ${head.got} of ${IVF_FRAME_HEADER_SIZE} bytes. The file is incomplete`,
      );
    }
    const view = new DataView(head.buffer);
    const size = view.getUint32(0, true);
    const timestamp = Number(view.getBigInt64(4, true));
    if (size > IVF_MAX_FRAME_BYTES) {
      throw new EncoderError(
        "INVALID_INPUT",
        `IVF frame ${index} claims ${size} bytes, more than the ${IVF_MAX_FRAME_BYTES} allowed: the file is corrupt`,
      );
    }
    const data = await this.#bytes.readExactly(size);
    if (isShort(data)) {
      throw new EncoderError(
        "INVALID_INPUT",
        `IVF frame ${index} is truncated: got ${data.got} of ${size} bytes. The file is incomplete`,
      );
    }
    return { data, timestamp };
  }

  /** Stops reading and cancels the input; idempotent. */
  close(): Promise<void> {
    return this.#iteration.close();
  }

  /** Releases the reader, as {@linkcode close} does, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Parses a whole IVF file held in memory.
 *
 * @example
 * ```ts
 * import { encodeIvfHeader, readIvf } from "./ivf.ts";
 * const { header, frames } = await readIvf(encodeIvfHeader({ width: 8, height: 8, fps: { num: 1, den: 1 } }, 0));
 * console.log(header.width, frames.length); // 8 0
 * ```
 */
export async function readIvf(bytes: Uint8Array): Promise<{ header: IvfHeader; frames: IvfFrame[] }> {
  const reader = await IvfReader.open(bytes);
  const frames: IvfFrame[] = [];
  for await (const frame of reader.frames()) frames.push(frame);
  return { header: reader.header, frames };
}
