/**
 * {@linkcode VideoEncoder}: the WebCodecs video encoder for AV1, over SVT-AV1 (default) or rav1e. Calls
 * are queued and processed in order as the specification's control message queue does; chunks go to
 * `output` with `decoderConfig` (codec string and `av1C` from the bitstream) on the first one after each
 * `configure()`.
 * @module
 */
import { locateRav1e, locateSvtAv1 } from "../../ffi/load.ts";
import { av1CodecConfigurationRecord, codecString, parseCodecString } from "../av1/codec_string.ts";
import { findSequenceHeader } from "../av1/obu.ts";
import { parseSequenceHeader, type SequenceHeader } from "../av1/sequence_header.ts";
import { MAX_SIDE } from "../encoder/config.ts";
import { type Rav1eConfig, Rav1eEncoder, rav1eSettings } from "../encoder/rav1e.ts";
import { type SvtAv1Config, SvtAv1Encoder, svtAv1Params } from "../encoder/svt_av1.ts";
import { EncoderError } from "../errors.ts";
import type { Encoder, Packet, Rational } from "../types.ts";
import { EncodedVideoChunk } from "./encoded_video_chunk.ts";
import { type VideoColorSpaceInit, VideoFrame } from "./video_frame.ts";

/** Which library encodes: a non-standard member of {@linkcode VideoEncoderConfig}. */
export type Av1Backend = "svt-av1" | "rav1e";

/** The `av1` member of {@linkcode VideoEncoderConfig}, from the AV1 WebCodecs Registration. */
export interface AV1EncoderConfig {
  /**
   * Use the screen content coding tools (palette, intra block copy) on every frame: for screen captures,
   * slides and text. SVT-AV1 takes it (`scm=1`); rav1e has no such setting, so with rav1e a config with
   * `true` is not supported. `false` (the default) leaves the choice to the encoder.
   */
  forceScreenContentTools?: boolean;
}

/** The argument of `configure()` and `isConfigSupported()`, as in WebCodecs, plus two extensions. */
export interface VideoEncoderConfig {
  /** `"av01.P.LLT.DD"`: profile 0, level (SVT-AV1 is told it), tier, bit depth 8 or 10. */
  codec: string;
  /** Coded width in pixels. */
  width: number;
  /** Coded height in pixels. */
  height: number;
  /** Display width, for the decoder config's aspect ratio (defaults to `width`). */
  displayWidth?: number;
  /** Display height (defaults to `height`). */
  displayHeight?: number;
  /** Target bits per second. */
  bitrate?: number;
  /** "variable" (default), "constant" (CBR) or "quantizer" (per-frame `av1.quantizer`). */
  bitrateMode?: "constant" | "variable" | "quantizer";
  /** Frames per second; default 30. */
  framerate?: number;
  /**
   * "quality" (default) or "realtime": low delay, no frame reordering (SVT-AV1 low-delay prediction
   * `pred-struct=1` at preset 12; rav1e `low_latency` with one frame of RDO lookahead at speed 10).
   */
  latencyMode?: "quality" | "realtime";
  /**
   * Only "L1T1" (one spatial and one temporal layer): neither backend signals temporal or spatial layers
   * (OBU extension headers and operating points), so "L1T2", "L1T3", "L2T1"… are not supported.
   */
  scalabilityMode?: string;
  /** "discard" (default); "keep" is not supported: AV1 here has no alpha. */
  alpha?: "keep" | "discard";
  /** Accepted and ignored: both backends are software encoders. */
  hardwareAcceleration?: "no-preference" | "prefer-hardware" | "prefer-software";
  /** A hint about the content (`"motion"`, `"detail"`, `"text"`); accepted and echoed. */
  contentHint?: string;
  /** AV1 settings of the AV1 WebCodecs Registration. */
  av1?: AV1EncoderConfig;
  /** Non-standard: the library, default "svt-av1". */
  av1Backend?: Av1Backend;
  /**
   * Non-standard: options passed to the backend (e.g. `{ preset: 12 }` for SVT-AV1, `{ speed: 10 }` for
   * rav1e). Geometry and rate control come from the standard members.
   */
  av1BackendOptions?: Partial<SvtAv1Config> | Partial<Rav1eConfig>;
}

/** What `isConfigSupported()` resolves with. */
export interface VideoEncoderSupport {
  /** Whether this implementation can encode the config. */
  supported: boolean;
  /** The config as understood: the recognised members only. */
  config: VideoEncoderConfig;
}

/** `metadata.decoderConfig` of an output chunk: what a `VideoDecoder` needs. */
export interface VideoDecoderConfig {
  /** The codec string of the bitstream's sequence header. */
  codec: string;
  /** Coded width in pixels. */
  codedWidth: number;
  /** Coded height in pixels. */
  codedHeight: number;
  /** Horizontal part of the display aspect ratio. */
  displayAspectWidth?: number;
  /** Vertical part of the display aspect ratio. */
  displayAspectHeight?: number;
  /** The colour space the stream signals. */
  colorSpace?: VideoColorSpaceInit;
  /** The `av1C` record (AV1CodecConfigurationRecord with the sequence header OBU). */
  description?: Uint8Array<ArrayBuffer>;
}

/** The second argument of `output`. */
export interface EncodedVideoChunkMetadata {
  /** Present on the first chunk and after a configuration change: what a decoder needs. */
  decoderConfig?: VideoDecoderConfig;
  /** Temporal layer of the chunk when a scalability mode is set. */
  svc?: { temporalLayerId: number };
}

/** The argument of `new VideoEncoder(init)`. */
export interface VideoEncoderInit {
  /** Called with each encoded chunk, in decode order. */
  output: (chunk: EncodedVideoChunk, metadata?: EncodedVideoChunkMetadata) => void;
  /** Called once when the encoder closes on an error. */
  error: (error: DOMException) => void;
}

/** The second argument of `encode()`. */
export interface VideoEncoderEncodeOptions {
  /** Make this frame a key frame. */
  keyFrame?: boolean;
  /**
   * With `bitrateMode: "quantizer"`: the frame's quantizer, 0 to 63 (SVT-AV1 `qp`, rav1e quantizer
   * index ×4); without one, the previous frame's. SVT-AV1 takes it per picture (`use-q-file`). rav1e
   * cannot change the quantizer of a running stream, so there a quantizer different from the previous
   * frame's starts a new encoder session: that frame becomes a key frame.
   */
  av1?: { quantizer?: number | null };
}

/** "unconfigured", "configured" or "closed". */
export type CodecState = "unconfigured" | "configured" | "closed";

/** A configuration checked for support, in the units the backends take. */
interface Normalized {
  config: VideoEncoderConfig;
  backend: Av1Backend;
  bitDepth: 8 | 10;
  level: number;
  fps: Rational;
  /** Microseconds per frame when the config gave a frame rate. */
  frameDuration?: number;
  mode: "constant" | "variable" | "quantizer";
  kbps?: number;
  realtime: boolean;
  screenContent: boolean;
}

interface Session {
  encoder: Encoder;
  pump: Promise<void>;
  frames: number;
  /** False once the backend refused a forced key frame: key frames then start a new session. */
  forcedKeyFrames: boolean;
  qp?: number;
}

interface Message {
  run(generation: number): Promise<void>;
  frame?: VideoFrame;
}

/** Quantizer (0–63) of frames without one in quantizer mode: SVT-AV1's default CRF. */
const DEFAULT_QUANTIZER = 35;

const notSupported = (message: string) => new DOMException(message, "NotSupportedError");
const invalidState = (message: string) => new DOMException(message, "InvalidStateError");

const ENUMS = {
  bitrateMode: ["constant", "variable", "quantizer"],
  latencyMode: ["quality", "realtime"],
  alpha: ["keep", "discard"],
  hardwareAcceleration: ["no-preference", "prefer-hardware", "prefer-software"],
  av1Backend: ["svt-av1", "rav1e"],
} as const;

/** The specification's "valid VideoEncoderConfig" (plus WebIDL conversions): TypeError when not. */
function checkValid(config: VideoEncoderConfig): void {
  if (config === null || typeof config !== "object") throw new TypeError("The config must be an object");
  if (typeof config.codec !== "string" || config.codec.trim() === "") {
    throw new TypeError('config.codec must be a codec string such as "av01.0.04M.08"');
  }
  for (const name of ["width", "height"] as const) {
    const v = config[name];
    if (typeof v !== "number" || !Number.isFinite(v) || v < 1 || v > 0xffffffff) {
      throw new TypeError(`config.${name} must be a positive integer, got ${String(v)}`);
    }
  }
  if ((config.displayWidth === undefined) !== (config.displayHeight === undefined)) {
    throw new TypeError("Give both displayWidth and displayHeight, or neither");
  }
  for (const name of ["displayWidth", "displayHeight"] as const) {
    const v = config[name];
    if (v !== undefined && (typeof v !== "number" || !Number.isFinite(v) || v < 1)) {
      throw new TypeError(`config.${name} must be a positive integer, got ${String(v)}`);
    }
  }
  if (config.bitrate !== undefined && (typeof config.bitrate !== "number" || !(config.bitrate >= 1))) {
    throw new TypeError(
      `config.bitrate must be a positive number of bits per second, got ${String(config.bitrate)}`,
    );
  }
  if (
    config.framerate !== undefined
    && (typeof config.framerate !== "number" || !Number.isFinite(config.framerate) || config.framerate <= 0)
  ) {
    throw new TypeError(`config.framerate must be a positive number, got ${String(config.framerate)}`);
  }
  if (config.av1 !== undefined && (config.av1 === null || typeof config.av1 !== "object")) {
    throw new TypeError("config.av1 must be an object such as { forceScreenContentTools: true }");
  }
  for (const [name, values] of Object.entries(ENUMS)) {
    const v = (config as unknown as Record<string, unknown>)[name];
    if (v !== undefined && !(values as readonly unknown[]).includes(v)) {
      throw new TypeError(`config.${name} must be one of ${values.join(", ")}, got ${JSON.stringify(v)}`);
    }
  }
}

/** The members of a config this encoder recognises (what `isConfigSupported()` echoes). */
function cloneConfig(config: VideoEncoderConfig): VideoEncoderConfig {
  const out: Record<string, unknown> = {};
  for (
    const key of [
      "codec",
      "width",
      "height",
      "displayWidth",
      "displayHeight",
      "bitrate",
      "bitrateMode",
      "framerate",
      "latencyMode",
      "scalabilityMode",
      "alpha",
      "hardwareAcceleration",
      "contentHint",
      "av1Backend",
    ] as const
  ) {
    if (config[key] !== undefined) out[key] = key === "codec" ? config.codec.trim() : config[key];
  }
  // A dictionary member with a default: echoed converted, with its default filled in.
  if (config.av1 !== undefined) {
    out.av1 = { forceScreenContentTools: Boolean(config.av1.forceScreenContentTools) };
  }
  if (config.av1BackendOptions !== undefined) out.av1BackendOptions = { ...config.av1BackendOptions };
  return out as unknown as VideoEncoderConfig;
}

function framerateToRational(fps: number): Rational {
  if (Number.isInteger(fps)) return { num: fps, den: 1 };
  const ntsc = fps * 1001 / 1000;
  if (Math.abs(ntsc - Math.round(ntsc)) < 1e-3) return { num: Math.round(ntsc) * 1000, den: 1001 };
  return { num: Math.round(fps * 1000), den: 1000 };
}

/** Checks what the backends can do; throws NotSupportedError saying what is not. */
function normalize(config: VideoEncoderConfig): Normalized {
  let params;
  try {
    params = parseCodecString(config.codec.trim());
  } catch (e) {
    throw notSupported(e instanceof Error ? e.message : String(e));
  }
  if (params.profile !== 0 || params.monochrome) {
    throw notSupported(`Only AV1 profile 0 (Main, 4:2:0) is supported, got ${config.codec}`);
  }
  if (params.bitDepth !== 8 && params.bitDepth !== 10) {
    throw notSupported(`Bit depth must be 8 or 10, got ${params.bitDepth} in ${config.codec}`);
  }
  if (config.scalabilityMode !== undefined && config.scalabilityMode !== "L1T1") {
    throw notSupported(
      `Scalability mode ${JSON.stringify(config.scalabilityMode)} is not supported: use "L1T1"`,
    );
  }
  if (config.alpha === "keep") {
    throw notSupported(`alpha: "keep" is not supported: AV1 is encoded without alpha`);
  }
  const { width, height } = config;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width % 2 || height % 2) {
    throw notSupported(`Width and height must be even integers for 4:2:0, got ${width}x${height}`);
  }
  if (width > MAX_SIDE || height > MAX_SIDE) {
    throw notSupported(`Width and height must be at most ${MAX_SIDE}, got ${width}x${height}`);
  }
  const backend = config.av1Backend ?? "svt-av1";
  const screenContent = Boolean(config.av1?.forceScreenContentTools);
  if (screenContent && backend === "rav1e") {
    throw notSupported(
      "rav1e cannot force screen content tools (its configuration has no such key): "
        + 'use av1Backend "svt-av1" or leave av1.forceScreenContentTools false',
    );
  }
  const mode = config.bitrateMode ?? "variable";
  const fps = framerateToRational(config.framerate ?? 30);
  let kbps = config.bitrate === undefined ? undefined : Math.max(1, Math.round(config.bitrate / 1000));
  if (mode === "constant" && kbps === undefined) {
    // CBR needs a target: about 0.1 bit per pixel.
    kbps = Math.max(50, Math.round(width * height * (config.framerate ?? 30) * 0.1 / 1000));
  }
  const n: Normalized = {
    config: cloneConfig(config),
    backend,
    bitDepth: params.bitDepth as 8 | 10,
    level: params.level,
    fps,
    frameDuration: config.framerate === undefined ? undefined : Math.round(1e6 / config.framerate),
    mode,
    kbps: mode === "quantizer" ? undefined : kbps,
    realtime: config.latencyMode === "realtime",
    screenContent,
  };
  try {
    if (backend === "svt-av1") svtAv1Params(svtConfig(n, DEFAULT_QUANTIZER), false);
    else rav1eSettings(rav1eConfig(n, DEFAULT_QUANTIZER));
  } catch (e) {
    if (e instanceof EncoderError) throw notSupported(e.message);
    throw e;
  }
  return n;
}

/** SVT-AV1's `level` parameter (level times ten) for a `seq_level_idx`; none for 31 ("maximum"). */
function svtLevel(seqLevelIdx: number): number | undefined {
  if (seqLevelIdx >= 31) return undefined;
  return (2 + (seqLevelIdx >> 2)) * 10 + (seqLevelIdx & 3);
}

function svtConfig(n: Normalized, quantizer: number | undefined): SvtAv1Config {
  const extra = (n.config.av1BackendOptions ?? {}) as Partial<SvtAv1Config>;
  const level = svtLevel(n.level);
  const cbr = n.mode === "constant";
  const c: SvtAv1Config = {
    preset: n.realtime ? 12 : 10,
    ...extra,
    width: n.config.width,
    height: n.config.height,
    bitDepth: n.bitDepth,
    fps: n.fps,
    lowDelay: n.realtime || cbr || extra.lowDelay === true,
    params: {
      ...(level === undefined ? {} : { level }),
      ...extra.params,
      // Screen content mode 1 turns the tools on for every frame (0 off, 2 the library's own detection).
      ...(n.screenContent ? { scm: 1 } : {}),
    },
  };
  delete c.crf;
  delete c.qp;
  delete c.bitrate;
  delete c.rateControl;
  if (n.mode === "quantizer") {
    // Each picture carries its quantizer: a new one needs no new session.
    c.qp = Math.max(1, quantizer ?? DEFAULT_QUANTIZER);
    c.perFrameQp = true;
  } else if (n.kbps !== undefined) Object.assign(c, { bitrate: n.kbps, rateControl: cbr ? "cbr" : "vbr" });
  else if (extra.crf !== undefined) c.crf = extra.crf;
  return c;
}

function rav1eConfig(n: Normalized, quantizer: number | undefined): Rav1eConfig {
  const extra = (n.config.av1BackendOptions ?? {}) as Partial<Rav1eConfig>;
  const c: Rav1eConfig = {
    speed: n.realtime ? 10 : 6,
    ...extra,
    width: n.config.width,
    height: n.config.height,
    bitDepth: n.bitDepth,
    fps: n.fps,
    lowLatency: n.realtime || extra.lowLatency === true,
  };
  // Low latency with one frame of RDO lookahead: the first packet after ~5 frames instead of ~15.
  if (n.realtime && extra.rdoLookahead === undefined) c.rdoLookahead = 1;
  delete c.bitrate;
  if (n.mode === "quantizer") {
    // WebCodecs' AV1 quantizer is 0–63 (libaom's scale); rav1e takes the 0–255 quantizer index.
    const q = quantizer ?? DEFAULT_QUANTIZER;
    c.quantizer = q >= 63 ? 255 : q * 4;
  } else if (n.kbps !== undefined) c.bitrate = n.kbps;
  return c;
}

/**
 * Why {@linkcode VideoEncoder} cannot encode `config`, or `null` when it can: the synchronous part of
 * {@linkcode VideoEncoder.isConfigSupported}, for callers that must answer at once (mediabunny's
 * `CustomVideoEncoder.supports`). Whether the library is installed is not checked here. Throws a
 * TypeError for an invalid config, as `isConfigSupported` rejects with one.
 *
 * @example
 * ```ts
 * import { configUnsupportedReason } from "./mod.ts";
 * console.log(configUnsupportedReason({ codec: "av01.0.04M.08", width: 640, height: 360 })); // null
 * console.log(configUnsupportedReason({ codec: "av01.0.04M.08", width: 640, height: 360, scalabilityMode: "L1T3" }));
 * ```
 */
export function configUnsupportedReason(config: VideoEncoderConfig): string | null {
  checkValid(config);
  try {
    normalize(config);
    return null;
  } catch (e) {
    if (e instanceof DOMException && e.name === "NotSupportedError") return e.message;
    throw e;
  }
}

async function libraryAvailable(n: Normalized): Promise<string | null> {
  const path = (n.config.av1BackendOptions as { libraryPath?: string } | undefined)?.libraryPath;
  try {
    if (n.backend === "svt-av1") {
      const { version } = await locateSvtAv1({ libraryPath: path });
      if (n.screenContent && version.major >= 2) {
        // Measured with 2.3.0 and 3.1.2: scm=1 only lets SVT-AV1 choose per frame (no frame uses the
        // tools at presets 10-13, only the key frame at 4-8), where 1.x forces them in every frame.
        return `SVT-AV1 ${version.text} chooses screen content tools frame by frame (scm=1 there is a hint, `
          + "not a force): av1.forceScreenContentTools needs SVT-AV1 1.x; leave it false to let SVT-AV1 choose";
      }
    } else await locateRav1e({ libraryPath: path });
    return null;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

const PRIMARIES: Record<number, string> = {
  1: "bt709",
  4: "bt470m",
  5: "bt470bg",
  6: "smpte170m",
  9: "bt2020",
  12: "smpte432",
};
const TRANSFER: Record<number, string> = {
  1: "bt709",
  6: "smpte170m",
  8: "linear",
  13: "iec61966-2-1",
  16: "pq",
  18: "hlg",
};
const MATRIX: Record<number, string> = {
  0: "rgb",
  1: "bt709",
  5: "bt470bg",
  6: "smpte170m",
  9: "bt2020-ncl",
};

function colorSpaceOf(seq: SequenceHeader): VideoColorSpaceInit | undefined {
  if (!seq.colorDescriptionPresent) return { fullRange: seq.colorRange === 1 };
  return {
    primaries: PRIMARIES[seq.colorPrimaries] ?? null,
    transfer: TRANSFER[seq.transferCharacteristics] ?? null,
    matrix: MATRIX[seq.matrixCoefficients] ?? null,
    fullRange: seq.colorRange === 1,
  };
}

function encodingError(e: unknown): DOMException {
  if (e instanceof DOMException) return e;
  const message = e instanceof Error ? e.message : String(e);
  return new DOMException(message, "EncodingError");
}

function report(e: unknown) {
  const g = globalThis as { reportError?: (e: unknown) => void };
  if (typeof g.reportError === "function") g.reportError(e);
  else console.error(e);
}

/**
 * A WebCodecs `VideoEncoder` for AV1. Code written for the browser's encoder runs unchanged: configure,
 * encode `VideoFrame`s, receive `EncodedVideoChunk`s in `output`, `flush()` to drain.
 *
 * Frames are converted to I420 (BT.601 limited range for RGB) when they are encoded. After `flush()` the
 * next frame starts a new encoder session with a key frame (SVT-AV1 takes no picture after end of
 * stream); timestamps go on as given. `encode(frame, { keyFrame: true })` forces a key frame in the
 * library where it can (rav1e always; SVT-AV1 1.4 with CRF or QP and random access) and otherwise ends
 * the session and starts a new one, which costs the frames of lookahead in latency at that point.
 *
 * @example
 * ```ts
 * import { VideoEncoder, VideoFrame } from "./mod.ts";
 * const chunks: number[] = [];
 * const encoder = new VideoEncoder({
 *   output: (chunk) => chunks.push(chunk.byteLength),
 *   error: (e) => console.error(e),
 * });
 * encoder.configure({ codec: "av01.0.04M.08", width: 160, height: 120, av1BackendOptions: { preset: 12 } });
 * const rgba = new Uint8Array(160 * 120 * 4).fill(200);
 * for (let i = 0; i < 3; i++) {
 *   const frame = new VideoFrame(rgba, { format: "RGBA", codedWidth: 160, codedHeight: 120, timestamp: i * 33_333 });
 *   encoder.encode(frame, { keyFrame: i === 0 });
 *   frame.close();
 * }
 * await encoder.flush();
 * encoder.close();
 * console.log(chunks.length); // 3
 * ```
 */
export class VideoEncoder extends EventTarget {
  #output: VideoEncoderInit["output"];
  #error: VideoEncoderInit["error"];
  #state: CodecState = "unconfigured";
  #queue: Message[] = [];
  #running = false;
  #generation = 0;
  #active: Normalized | null = null;
  #session: Session | null = null;
  #encodeQueueSize = 0;
  #dequeueScheduled = false;
  #ondequeue: ((this: VideoEncoder, ev: Event) => unknown) | null = null;
  #pendingFlushes = new Set<{ resolve(): void; reject(e: unknown): void }>();
  #needDecoderConfig = false;
  #outputConfigKey = "";

  /** Makes an unconfigured encoder; `output` and `error` are required (TypeError otherwise). */
  constructor(init: VideoEncoderInit) {
    super();
    if (init === null || typeof init !== "object") {
      throw new TypeError("VideoEncoder needs { output, error }");
    }
    if (typeof init.output !== "function") throw new TypeError("VideoEncoder init.output must be a function");
    if (typeof init.error !== "function") throw new TypeError("VideoEncoder init.error must be a function");
    this.#output = init.output;
    this.#error = init.error;
  }

  /** Whether `config` can be encoded: resolves `{ supported, config }`; rejects with TypeError when invalid. */
  static async isConfigSupported(config: VideoEncoderConfig): Promise<VideoEncoderSupport> {
    checkValid(config);
    const echoed = cloneConfig(config);
    try {
      const n = normalize(config);
      return { supported: (await libraryAvailable(n)) === null, config: echoed };
    } catch (e) {
      if (e instanceof DOMException && e.name === "NotSupportedError") {
        return { supported: false, config: echoed };
      }
      throw e;
    }
  }

  /** `"unconfigured"`, `"configured"` or `"closed"`. */
  get state(): CodecState {
    return this.#state;
  }

  /** Frames given to `encode()` that the encoder has not taken yet. */
  get encodeQueueSize(): number {
    return this.#encodeQueueSize;
  }

  /** Called when `encodeQueueSize` goes down. */
  get ondequeue(): ((this: VideoEncoder, ev: Event) => unknown) | null {
    return this.#ondequeue;
  }

  set ondequeue(handler: ((this: VideoEncoder, ev: Event) => unknown) | null) {
    this.#ondequeue = typeof handler === "function" ? handler : null;
  }

  /** Configures the encoder (TypeError on an invalid config; an unsupported one closes it with NotSupportedError). */
  configure(config: VideoEncoderConfig): void {
    checkValid(config);
    if (this.#state === "closed") throw invalidState("Cannot configure a closed VideoEncoder");
    this.#state = "configured";
    const cloned = cloneConfig(config);
    this.#enqueue({
      run: async (generation) => {
        // Frames of the previous configuration come out first, with their own decoder config.
        await this.#endSession(generation);
        const n = normalize(cloned);
        const missing = await libraryAvailable(n);
        if (missing) throw notSupported(missing);
        if (generation !== this.#generation) return;
        this.#active = n;
        this.#needDecoderConfig = true;
      },
    });
  }

  /** Queues a frame for encoding; the frame may be closed as soon as this returns. */
  encode(frame: VideoFrame, options: VideoEncoderEncodeOptions = {}): void {
    if (this.#state !== "configured") throw invalidState(`Cannot encode: the VideoEncoder is ${this.#state}`);
    if (!(frame instanceof VideoFrame)) throw new TypeError("encode() takes a VideoFrame");
    if (frame.format === null) throw new TypeError("Cannot encode a closed VideoFrame");
    const quantizer = options?.av1?.quantizer;
    if (
      quantizer !== undefined && quantizer !== null
      && (!Number.isInteger(quantizer) || quantizer < 0 || quantizer > 63)
    ) {
      throw new TypeError(`av1.quantizer must be an integer from 0 to 63, got ${String(quantizer)}`);
    }
    const keyFrame = options?.keyFrame === true;
    const clone = frame.clone();
    this.#encodeQueueSize++;
    this.#enqueue({
      frame: clone,
      run: (generation) => this.#encodeOne(generation, clone, keyFrame, quantizer ?? undefined),
    });
  }

  /** Resolves when every queued frame has been encoded and output. */
  flush(): Promise<void> {
    if (this.#state !== "configured") {
      return Promise.reject(invalidState(`Cannot flush: the VideoEncoder is ${this.#state}`));
    }
    return new Promise<void>((resolve, reject) => {
      const pending = { resolve, reject };
      this.#pendingFlushes.add(pending);
      this.#enqueue({
        run: async (generation) => {
          await this.#endSession(generation);
          if (generation !== this.#generation) return;
          this.#pendingFlushes.delete(pending);
          resolve();
        },
      });
    });
  }

  /** Drops queued work and the configuration; pending `flush()` promises reject with AbortError. */
  reset(): void {
    if (this.#state === "closed") throw invalidState("Cannot reset a closed VideoEncoder");
    this.#reset(new DOMException("The VideoEncoder was reset", "AbortError"));
  }

  /** Like `reset()`, then the encoder is unusable. */
  close(): void {
    if (this.#state === "closed") throw invalidState("The VideoEncoder is already closed");
    this.#closeWith(new DOMException("The VideoEncoder was closed", "AbortError"));
  }

  #reset(exception: DOMException) {
    this.#state = "unconfigured";
    this.#active = null;
    this.#generation++;
    for (const m of this.#queue.splice(0)) m.frame?.close();
    if (this.#encodeQueueSize > 0) {
      this.#encodeQueueSize = 0;
      this.#scheduleDequeue();
    }
    for (const p of this.#pendingFlushes) p.reject(exception);
    this.#pendingFlushes.clear();
    const session = this.#session;
    this.#session = null;
    if (session) void session.encoder.close().catch(() => {});
  }

  #closeWith(exception: DOMException) {
    this.#reset(exception);
    this.#state = "closed";
    if (exception.name !== "AbortError") {
      try {
        this.#error(exception);
      } catch (e) {
        report(e);
      }
    }
  }

  #scheduleDequeue() {
    if (this.#dequeueScheduled) return;
    this.#dequeueScheduled = true;
    setTimeout(() => {
      this.#dequeueScheduled = false;
      const event = new Event("dequeue");
      try {
        this.#ondequeue?.call(this, event);
      } catch (e) {
        report(e);
      }
      this.dispatchEvent(event);
    }, 0);
  }

  #enqueue(message: Message) {
    this.#queue.push(message);
    void this.#process();
  }

  async #process() {
    if (this.#running) return;
    this.#running = true;
    try {
      while (this.#queue.length > 0) {
        const message = this.#queue.shift()!;
        const generation = this.#generation;
        try {
          await message.run(generation);
        } catch (e) {
          message.frame?.close();
          if (generation === this.#generation && this.#state !== "closed") this.#closeWith(encodingError(e));
        }
      }
    } finally {
      this.#running = false;
    }
  }

  async #encodeOne(generation: number, frame: VideoFrame, keyFrame: boolean, quantizer: number | undefined) {
    const n = this.#active;
    if (!n || generation !== this.#generation) return frame.close();
    const picture = VideoFrame.toI420(frame, n.bitDepth);
    const timestamp = frame.timestamp;
    const duration = frame.duration ?? n.frameDuration ?? -1;
    frame.close();
    if (!picture) throw new DOMException("The frame was closed before it was encoded", "EncodingError");
    if (picture.width !== n.config.width || picture.height !== n.config.height) {
      throw new DOMException(
        `The frame's visible size ${picture.width}x${picture.height} differs from the configured ${n.config.width}x${n.config.height}: `
          + "configure() the new size or give a matching visibleRect",
        "EncodingError",
      );
    }
    const qp = n.mode === "quantizer" ? quantizer ?? this.#session?.qp ?? DEFAULT_QUANTIZER : undefined;
    let session = this.#session;
    // rav1e takes its quantizer per session only; SVT-AV1 takes one per picture.
    const perFrameQp = n.backend === "svt-av1";
    const newQuantizer = !perFrameQp && session !== null && session.qp !== qp;
    // A new rav1e quantizer, or a key frame the backend cannot force, starts a new session (it opens with a key frame).
    if (session && (newQuantizer || (keyFrame && session.frames > 0 && !session.forcedKeyFrames))) {
      const forced = session.forcedKeyFrames;
      await this.#endSession(generation);
      if (generation !== this.#generation) return;
      session = await this.#startSession(generation, n, qp);
      if (!session) return;
      session.forcedKeyFrames = forced;
    }
    session ??= await this.#startSession(generation, n, qp);
    if (!session) return;
    const input = { data: picture.data, timestamp, duration };
    const frameQp = perFrameQp && qp !== undefined ? { qp: Math.max(1, qp) } : {};
    if (keyFrame && session.frames > 0) {
      try {
        await session.encoder.encode(input, { keyFrame: true, ...frameQp });
      } catch (e) {
        if (!(e instanceof EncoderError && e.code === "INVALID_STATE") || generation !== this.#generation) {
          throw e;
        }
        // This backend and rate control cannot force a key frame: a new session starts with one.
        await this.#endSession(generation);
        if (generation !== this.#generation) return;
        session = await this.#startSession(generation, n, qp);
        if (!session) return;
        session.forcedKeyFrames = false;
        await session.encoder.encode(input, frameQp);
      }
    } else {
      await session.encoder.encode(input, frameQp);
    }
    session.frames++;
    // Frames without a quantizer take the previous frame's.
    session.qp = qp;
    if (generation !== this.#generation) return;
    this.#encodeQueueSize--;
    this.#scheduleDequeue();
  }

  async #startSession(generation: number, n: Normalized, qp: number | undefined): Promise<Session | null> {
    const encoder: Encoder = n.backend === "svt-av1"
      ? await SvtAv1Encoder.create(svtConfig(n, qp))
      : await Rav1eEncoder.create(rav1eConfig(n, qp));
    if (generation !== this.#generation) {
      await encoder.close();
      return null;
    }
    const session: Session = { encoder, pump: Promise.resolve(), frames: 0, forcedKeyFrames: true, qp };
    session.pump = (async () => {
      for await (const packet of encoder.packets()) {
        if (generation !== this.#generation) return;
        this.#emit(packet, n);
      }
    })().catch((e) => {
      if (generation === this.#generation && this.#state !== "closed") this.#closeWith(encodingError(e));
    });
    this.#session = session;
    return session;
  }

  /** Flushes the current session, waits for all its output, and frees it. */
  async #endSession(_generation: number) {
    const session = this.#session;
    if (!session) return;
    this.#session = null;
    try {
      await session.encoder.flush();
      await session.pump;
    } finally {
      await session.encoder.close();
    }
  }

  #emit(packet: Packet, n: Normalized) {
    const chunk = new EncodedVideoChunk({
      type: packet.keyFrame ? "key" : "delta",
      timestamp: packet.timestamp,
      duration: packet.duration >= 0 ? packet.duration : undefined,
      data: packet.data,
    });
    const metadata: EncodedVideoChunkMetadata = {};
    const header = packet.keyFrame ? findSequenceHeader(packet.data) : null;
    if (header) {
      const description = av1CodecConfigurationRecord(header);
      const seq = parseSequenceHeader(header, { format: "obu" });
      const codec = codecString(seq);
      const key = `${codec}/${description.join(",")}`;
      if (this.#needDecoderConfig || key !== this.#outputConfigKey) {
        this.#needDecoderConfig = false;
        this.#outputConfigKey = key;
        const decoderConfig: VideoDecoderConfig = {
          codec,
          codedWidth: n.config.width,
          codedHeight: n.config.height,
          colorSpace: colorSpaceOf(seq),
          description,
        };
        if (n.config.displayWidth !== undefined && n.config.displayHeight !== undefined) {
          decoderConfig.displayAspectWidth = n.config.displayWidth;
          decoderConfig.displayAspectHeight = n.config.displayHeight;
        }
        metadata.decoderConfig = decoderConfig;
      }
    }
    if (n.config.scalabilityMode !== undefined) metadata.svc = { temporalLayerId: 0 };
    try {
      this.#output(chunk, metadata);
    } catch (e) {
      report(e);
    }
  }
}
