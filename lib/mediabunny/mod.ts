/**
 * AV1 for mediabunny through SVT-AV1 or rav1e: {@linkcode registerAv1Encoder} registers this package's
 * encoder with mediabunny's `registerEncoder`, so that a mediabunny `Output` (with a `VideoSampleSource`
 * or a `CanvasSource`…) or a `Conversion` with `codec: "av1"` encodes in Deno, Bun and Node, where there
 * is no WebCodecs `VideoEncoder`. Encoding waits while the library holds its frames, so a conversion
 * reads its input only as fast as the encoder takes it.
 *
 * @example
 * ```ts
 * import { BufferTarget, Output, QUALITY_LOW, VideoSample, VideoSampleSource, WebMOutputFormat } from "mediabunny";
 * import { registerAv1Encoder } from "./mod.ts";
 *
 * await registerAv1Encoder({ backend: "svt-av1", backendOptions: { preset: 12 } });
 * const output = new Output({ format: new WebMOutputFormat(), target: new BufferTarget() });
 * const source = new VideoSampleSource({ codec: "av1", bitrate: QUALITY_LOW });
 * output.addVideoTrack(source, { frameRate: 30 });
 * await output.start();
 * for (let i = 0; i < 3; i++) {
 *   const pixels = new Uint8Array(160 * 120 * 3 / 2).fill(16 + i * 40);
 *   const sample = new VideoSample(pixels, { format: "I420", codedWidth: 160, codedHeight: 120, timestamp: i / 30, duration: 1 / 30 });
 *   await source.add(sample);
 *   sample.close();
 * }
 * await output.finalize();
 * console.log(output.target.buffer!.byteLength > 0); // true
 * ```
 * @module
 */
import { locateRav1e, locateSvtAv1 } from "../../ffi/load.ts";
import { stripTemporalDelimiters } from "../av1/obu.ts";
import { loadMediabunny, type Mediabunny } from "../container/mediabunny.ts";
import type { Rav1eConfig } from "../encoder/rav1e.ts";
import type { SvtAv1Config } from "../encoder/svt_av1.ts";
import { EncoderError } from "../errors.ts";
import type { EncodedVideoChunk } from "../webcodecs/encoded_video_chunk.ts";
import {
  type Av1Backend,
  configUnsupportedReason,
  type EncodedVideoChunkMetadata,
  VideoEncoder,
  type VideoEncoderConfig,
  type VideoEncoderEncodeOptions,
} from "../webcodecs/video_encoder.ts";
import { type VideoColorSpaceInit, VideoFrame, type VideoPixelFormat } from "../webcodecs/video_frame.ts";

export type { Av1Backend, Mediabunny };

/** The parts of the mediabunny module the encoder is registered with. */
export type MediabunnyEncoderApi = Pick<
  Mediabunny,
  "CustomVideoEncoder" | "EncodedPacket" | "registerEncoder"
>;

/** Options of {@linkcode registerAv1Encoder}. */
export interface Av1EncoderOptions {
  /** The library that encodes: "svt-av1" (default) or "rav1e". */
  backend?: Av1Backend;
  /**
   * Options for the backend, as `av1BackendOptions` of the WebCodecs facade takes them: `{ preset: 12 }`,
   * `{ threads: 2 }`, `{ libraryPath }` for SVT-AV1; `{ speed: 10 }` for rav1e. Size, frame rate and rate
   * control come from mediabunny's encoding config.
   */
  backendOptions?: Partial<SvtAv1Config> | Partial<Rav1eConfig>;
  /**
   * AV1 settings of the WebCodecs registration applied to every encoder, e.g.
   * `{ forceScreenContentTools: true }` (SVT-AV1 only).
   */
  av1?: VideoEncoderConfig["av1"];
  /**
   * Frames given to the encoder that the library has not taken yet before `encode()` waits; default 1.
   * mediabunny waits for `encode()`, so this is how far the input may run ahead of the encoder.
   */
  maxQueuedFrames?: number;
  /**
   * The mediabunny module to register with. Default: the one this package depends on. Pass your own
   * (`import * as mediabunny from "mediabunny"`) when your application resolves another copy.
   */
  mediabunny?: MediabunnyEncoderApi;
}

/** The pixel formats the encoder takes from a `VideoSample` (it converts them to I420 itself). */
const SAMPLE_FORMATS: ReadonlySet<string> = new Set<VideoPixelFormat>([
  "I420",
  "I420P10",
  "NV12",
  "RGBA",
  "RGBX",
  "BGRA",
  "BGRX",
]);

/** What is registered with one mediabunny module: the class in use. */
interface Registration {
  current?: unknown;
}

/**
 * One registration per mediabunny module. Registering again registers a new class and retires the old
 * one (its `supports` answers false): mediabunny remembers answers per config until a class is added.
 */
const registrations = new WeakMap<object, Registration>();

/** What the encoder needs of a mediabunny `VideoSample`. */
interface SampleLike {
  format: string | null;
  codedWidth: number;
  codedHeight: number;
  timestamp: number;
  duration: number;
  colorSpace?: VideoColorSpaceInit;
  allocationSize(): number;
  copyTo(destination: Uint8Array): Promise<unknown>;
}

/**
 * mediabunny's AV1 quantizer is the 0–255 `base_q_idx` of its codec registry; the WebCodecs AV1
 * registration's is 0–63, libaom's scale, whose index is about four times it (libaom's
 * `quantizer_to_qindex`: 4q up to 60, then 244, 249, 255).
 */
export function quantizerFromQIndex(qIndex: number): number {
  if (qIndex >= 252) return 63;
  if (qIndex >= 247) return 62;
  return Math.min(61, Math.max(0, Math.round(qIndex / 4)));
}

function configFor(config: VideoEncoderConfig, options: Av1EncoderOptions): VideoEncoderConfig {
  return {
    ...config,
    av1: options.av1 ?? config.av1,
    av1Backend: options.backend ?? "svt-av1",
    av1BackendOptions: options.backendOptions,
  };
}

function checkOptions(options: Av1EncoderOptions): void {
  if (options === null || typeof options !== "object") {
    throw new EncoderError("INVALID_CONFIG", "registerAv1Encoder options must be an object");
  }
  if (options.backend !== undefined && options.backend !== "svt-av1" && options.backend !== "rav1e") {
    throw new EncoderError(
      "INVALID_CONFIG",
      `backend must be "svt-av1" or "rav1e", got ${JSON.stringify(options.backend)}`,
    );
  }
  const max = options.maxQueuedFrames;
  if (max !== undefined && (!Number.isInteger(max) || max < 0)) {
    throw new EncoderError("INVALID_CONFIG", `maxQueuedFrames must be an integer of 0 or more, got ${max}`);
  }
}

/** The `CustomVideoEncoder` subclass for one mediabunny module, reading its options from `registration`. */
function encoderClass(mb: MediabunnyEncoderApi, registration: Registration, options: Av1EncoderOptions) {
  return class Av1StreamEncoder extends mb.CustomVideoEncoder {
    #encoder: VideoEncoder | undefined;
    #options: Av1EncoderOptions = options;
    #error: unknown;
    #wake: (() => void) | undefined;
    /** Timestamps and durations in seconds as mediabunny gave them, by microsecond timestamp. */
    #times = new Map<number, { timestamp: number; duration: number }>();

    static override supports(codec: string, config: VideoEncoderConfig): boolean {
      if (codec !== "av1" || registration.current !== this) return false;
      try {
        return configUnsupportedReason(configFor(config, options)) === null;
      } catch {
        return false;
      }
    }

    init(): void {
      const encoder = new VideoEncoder({
        output: (chunk, metadata) => this.#output(chunk, metadata),
        error: (e) => {
          this.#error = e;
          this.#wake?.();
          this.onError(e);
        },
      });
      encoder.addEventListener("dequeue", () => this.#wake?.());
      encoder.configure(configFor(this.config as VideoEncoderConfig, this.#options));
      this.#encoder = encoder;
    }

    #output(chunk: EncodedVideoChunk, metadata?: EncodedVideoChunkMetadata) {
      const bytes = new Uint8Array(chunk.byteLength);
      chunk.copyTo(bytes);
      const time = this.#times.get(chunk.timestamp);
      this.#times.delete(chunk.timestamp);
      // Both containers' AV1 bindings frame temporal units themselves and leave temporal delimiters out.
      const packet = new mb.EncodedPacket(
        stripTemporalDelimiters(bytes) as Uint8Array<ArrayBuffer>,
        chunk.type,
        time?.timestamp ?? chunk.timestamp / 1e6,
        time?.duration ?? (chunk.duration ?? 0) / 1e6,
      );
      // mediabunny's metadata type is the DOM's, whose decoderConfig ours matches member for member.
      this.onPacket(packet, metadata as Parameters<typeof this.onPacket>[1]);
    }

    async encode(sample: SampleLike, options: VideoEncoderEncodeOptions): Promise<void> {
      const encoder = this.#usable();
      if (!sample.format || !SAMPLE_FORMATS.has(sample.format)) {
        throw new EncoderError(
          "INVALID_FRAME",
          `The AV1 encoder takes video samples in ${[...SAMPLE_FORMATS].join(", ")}, got ${sample.format}: `
            + "convert the samples first",
        );
      }
      const data = new Uint8Array(sample.allocationSize());
      await sample.copyTo(data);
      const timestamp = Math.round(sample.timestamp * 1e6);
      const duration = Math.round(sample.duration * 1e6);
      this.#times.set(timestamp, { timestamp: sample.timestamp, duration: sample.duration });
      const frame = new VideoFrame(data, {
        format: sample.format as VideoPixelFormat,
        codedWidth: sample.codedWidth,
        codedHeight: sample.codedHeight,
        timestamp,
        duration: duration > 0 ? duration : undefined,
        colorSpace: sample.colorSpace,
      });
      try {
        const qIndex = options?.av1?.quantizer;
        encoder.encode(frame, {
          keyFrame: options?.keyFrame === true,
          av1: typeof qIndex === "number" ? { quantizer: quantizerFromQIndex(qIndex) } : undefined,
        });
      } finally {
        frame.close();
      }
      // The library's backpressure: wait while it has not taken the frames given to it.
      const max = this.#options.maxQueuedFrames ?? 1;
      while (encoder.encodeQueueSize > max && encoder.state === "configured" && this.#error === undefined) {
        await new Promise<void>((resolve) => (this.#wake = resolve));
        this.#wake = undefined;
      }
      this.#usable();
    }

    async flush(): Promise<void> {
      await this.#usable().flush();
      this.#usable();
    }

    close(): void {
      const encoder = this.#encoder;
      this.#encoder = undefined;
      if (encoder && encoder.state !== "closed") encoder.close();
      this.#times.clear();
    }

    #usable(): VideoEncoder {
      if (this.#error !== undefined) throw this.#error;
      if (!this.#encoder || this.#encoder.state === "closed") {
        throw new EncoderError("CLOSED", "The AV1 encoder was closed");
      }
      return this.#encoder;
    }
  };
}

/**
 * Registers AV1 encoding through SVT-AV1 (default) or rav1e with mediabunny. From then on every mediabunny
 * video source with `codec: "av1"`, and every `Conversion` to AV1, encodes with it wherever the config is
 * supported (see {@linkcode VideoEncoder.isConfigSupported}): 4:2:0 at 8 or 10 bits, even sizes, at least
 * 64x64 for SVT-AV1 and 16x16 for rav1e. mediabunny's quality levels map to per-frame quantizers
 * (`bitrateMode: "quantizer"`) or to a bitrate; its `latencyMode: "realtime"` to low-delay encoding.
 *
 * Calling it again (with the same mediabunny module) changes the backend and options for encoders
 * created afterwards. Rejects with an {@linkcode EncoderError} (`LIBRARY_NOT_FOUND`) when the backend's
 * library cannot be found, saying where it looked.
 *
 * @example
 * ```ts
 * import { registerAv1Encoder } from "./mod.ts";
 * await registerAv1Encoder({ backend: "rav1e", backendOptions: { speed: 10 } });
 * ```
 */
export async function registerAv1Encoder(options: Av1EncoderOptions = {}): Promise<void> {
  checkOptions(options);
  const backend = options.backend ?? "svt-av1";
  const libraryPath = (options.backendOptions as { libraryPath?: string } | undefined)?.libraryPath;
  if (backend === "svt-av1") await locateSvtAv1({ libraryPath });
  else await locateRav1e({ libraryPath });
  const mb = options.mediabunny ?? await loadMediabunny();
  const { mediabunny: _, ...rest } = options;
  let registration = registrations.get(mb);
  if (!registration) registrations.set(mb, registration = {});
  const encoder = encoderClass(mb, registration, rest);
  registration.current = encoder;
  mb.registerEncoder(encoder);
}
