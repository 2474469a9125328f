/**
 * Types shared by every layer: raw frames going in, encoded packets coming out, and the encoder contract
 * both backends implement.
 * @module
 */

/** A rational number, such as a frame rate of 30000/1001. */
export interface Rational {
  /** Numerator. */
  num: number;
  /** Denominator, greater than zero. */
  den: number;
}

/** Chroma subsampling of raw frames. */
export type ChromaSampling = "420" | "422" | "444" | "mono";

/** Chroma sample position of 4:2:0 input (from the Y4M colourspace tag). */
export type ChromaPosition = "unknown" | "vertical" | "colocated";

/** Describes raw video: what a Y4M header or a synthetic source says about its frames. */
export interface VideoInfo {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** Frames per second as a rational. */
  fps: Rational;
  /** 8, 10 or 12. Samples above 8 bits are 16-bit little-endian. */
  bitDepth: number;
  /** Chroma subsampling of the frames. */
  chroma: ChromaSampling;
  /** Chroma sample position, for 4:2:0. */
  chromaPosition?: ChromaPosition;
  /** Interlacing from the Y4M `I` tag: "p" progressive (the only one encoders take), "t", "b", "m". */
  interlace?: "p" | "t" | "b" | "m";
  /** Pixel aspect ratio from the Y4M `A` tag. */
  pixelAspect?: Rational;
  /** Full (`"full"`) or limited (`"limited"`) range, from `XCOLORRANGE`. */
  colorRange?: "full" | "limited";
  /** Total number of frames when known (synthetic sources, files of known size). */
  frameCount?: number;
}

/**
 * One raw picture: planar Y, then U, then V (Cb, Cr), each plane tightly packed
 * (stride = plane width). Samples are bytes at 8 bits, 16-bit little-endian above.
 */
export interface Frame {
  /** The packet's bytes: one temporal unit of OBUs. */
  data: Uint8Array;
  /** Presentation time in time-base units (frame numbers unless the encoder was told otherwise). */
  timestamp?: number;
  /** Duration in time-base units (1 frame unless told otherwise). */
  duration?: number;
}

/** One encoded AV1 temporal unit, in decode order, with its bytes copied out of native memory. */
export interface Packet {
  /** The packet's bytes: one temporal unit of OBUs. */
  data: Uint8Array;
  /** Presentation timestamp in the encoder's time base (frame numbers by default). */
  timestamp: number;
  /** Duration in the encoder's time base. */
  duration: number;
  /** True when the packet starts with a key frame (a random access point). */
  keyFrame: boolean;
}

/** Which loaded image of its library an encoder runs on, as an encoder's `libraryImage` reports it. */
export interface LibraryImage {
  /**
   * `"private"`: a copy of the library that no other live encoder runs on (every SVT-AV1 encoder, where
   * copies can be made). `"shared"`: the process's one loaded image of the library file (rav1e, which
   * keeps no process-wide state; SVT-AV1 where no copy could be made).
   */
  kind: "shared" | "private";
  /**
   * False for an SVT-AV1 encoder on the shared image: other SVT-AV1 encoders live beside it share its
   * process-wide state, at the risk of the crash the copies avoid (docs/bun-crash.md); `reason` says
   * why no copy was made.
   */
  isolated: boolean;
  /** Why no private copy was made, where none could be. */
  reason?: string;
}

/** Where an encoder's start-up time went, in milliseconds (see `SvtAv1Encoder.setupTimes`). */
export interface EncoderSetupTimes {
  /** From `create()` to the encoder being ready. */
  totalMs: number;
  /** On the encoder thread, library loading on first use included. */
  threadMs: number;
  /** In the library's own set-up calls alone. */
  libraryMs: number;
}

/** Options of {@linkcode Encoder.encode}. */
export interface EncodeOptions {
  /** Make this frame a key frame. */
  keyFrame?: boolean;
  /**
   * This frame's quantizer, 1 to 63: SVT-AV1 with `perFrameQp: true` only (rav1e has no per-frame
   * quantizer and refuses it).
   */
  qp?: number;
}

/** The contract shared by {@linkcode SvtAv1Encoder} and {@linkcode Rav1eEncoder}. */
export interface Encoder extends AsyncDisposable, Disposable {
  /** Which library encodes. */
  readonly codec: "svt-av1" | "rav1e";
  /** The stream's frame rate. */
  readonly fps: Rational;
  /** Raw frame geometry this encoder accepts. */
  readonly info: VideoInfo;
  /** Bytes of one raw frame this encoder accepts. */
  readonly frameSize: number;
  /** Resolves when the encoder has accepted the frame: that is the backpressure. */
  encode(frame: Frame, options?: EncodeOptions): Promise<void>;
  /** Ask for the next frame given to `encode()` to be a key frame. */
  requestKeyFrame(): void;
  /** Async iterator over encoded packets; ends after the last packet once `flush()` was called. */
  packets(): AsyncIterableIterator<Packet>;
  /** Sends end of stream; resolves when every packet has been produced. */
  flush(): Promise<void>;
  /** The sequence header OBU the encoder writes at every key frame. */
  sequenceHeader(): Uint8Array;
  /** Releases the native encoder; idempotent. */
  close(): Promise<void>;
  /** True once closed. */
  readonly closed: boolean;
}

/** Bytes in one raw frame of the given geometry. */
export function frameByteLength(info: Pick<VideoInfo, "width" | "height" | "bitDepth" | "chroma">): number {
  const bps = info.bitDepth > 8 ? 2 : 1;
  const luma = info.width * info.height;
  const [cw, ch] = chromaPlaneSize(info);
  const chroma = info.chroma === "mono" ? 0 : 2 * cw * ch;
  return (luma + chroma) * bps;
}

/** Width and height of one chroma plane (0x0 for monochrome). */
export function chromaPlaneSize(info: Pick<VideoInfo, "width" | "height" | "chroma">): [number, number] {
  switch (info.chroma) {
    case "420":
      return [(info.width + 1) >> 1, (info.height + 1) >> 1];
    case "422":
      return [(info.width + 1) >> 1, info.height];
    case "444":
      return [info.width, info.height];
    case "mono":
      return [0, 0];
  }
}
