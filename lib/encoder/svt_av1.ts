/**
 * {@linkcode SvtAv1Encoder}: AV1 encoding with SVT-AV1, its blocking calls on a Worker.
 * @module
 */
import { locateSvtAv1 } from "../../ffi/load.ts";
import { EncoderError } from "../errors.ts";
import {
  type ChromaSampling,
  type EncodeOptions,
  type Frame,
  frameByteLength,
  type Rational,
  type VideoInfo,
} from "../types.ts";
import { checkCommonConfig, type CommonConfig } from "./config.ts";
import type { SvtAv1WorkerConfig } from "./svt_av1_worker.ts";
import { type HostOptions, WorkerEncoder } from "./worker_encoder.ts";

/** Settings of an SVT-AV1 encoder. Names shared with rav1e mean the same there. */
export interface SvtAv1Config extends CommonConfig, HostOptions {
  /** Speed/quality trade-off, -2 (slowest) to 13 (fastest). Library default 10. */
  preset?: number;
  /** Constant rate factor 1 to 63 (SvtAv1EncApp `--crf`). The library default is CRF 35. */
  crf?: number;
  /** Constant QP 1 to 63 without adaptive quantisation (SvtAv1EncApp `--rc 0 --aq-mode 0 --qp`). */
  qp?: number;
  /**
   * With `qp`: each frame may carry its own quantizer, `encode(frame, { qp })` (SvtAv1EncApp
   * `--use-q-file`: the picture header's qp); frames without one use `qp`. Default false.
   */
  perFrameQp?: boolean;
  /** Target bitrate in kbit/s; VBR unless `rateControl: "cbr"`. */
  bitrate?: number;
  /** Rate control for `bitrate`: "vbr" (default) or "cbr" (needs `lowDelay`). */
  rateControl?: "vbr" | "cbr";
  /** Maximum bitrate in kbit/s for capped CRF (SvtAv1EncApp `--mbr`). */
  maxBitrate?: number;
  /** Low-delay prediction (no frame reordering) instead of random access: for live streams. */
  lowDelay?: boolean;
  /**
   * Allow `encode(frame, { keyFrame: true })` and `requestKeyFrame()`. SVT-AV1 1.4 honours forced key
   * frames only with `enable-force-key-frames=1`, closed-GOP key frames (`irefresh-type=2`), CRF or CQP
   * and random access; this sets the first two (neither changes the bitstream: it stays identical to
   * SvtAv1EncApp's). 1.8 and later need nothing. Default: true wherever the version and the other settings
   * allow it. Where they do not (1.4 with low delay or a bitrate), a requested key frame ends the session
   * and starts a new one with the same settings, whose first picture is a key frame: it costs the
   * encoder's start-up time at that frame.
   */
  forceKeyFrames?: boolean;
  /** Any other SvtAv1EncApp long option, passed to `svt_av1_enc_parse_parameter` after the others. */
  params?: Record<string, string | number | boolean>;
  /**
   * How much SVT-AV1 prints on stderr: "fatal", "error" (the default here, unless `SVT_LOG` is set in the
   * environment), "warn", "info" (the library's own default) or "debug". SVT-AV1 reads it from the
   * process environment (`SVT_LOG`) when an encoder is created.
   */
  logLevel?: "fatal" | "error" | "warn" | "info" | "debug";
  /**
   * Scheduling of SVT-AV1's threads when the process runs as root, where the library would make them
   * real-time (SCHED_FIFO 99). "batch" (default) runs them at SCHED_BATCH, nice 10, so that the event loop
   * stays responsive while they encode; "normal" runs them like any other thread (SCHED_OTHER at the
   * process's nice value), as SvtAv1EncApp's run for a user who is not root: the command line's default,
   * where nothing else shares the process; "realtime" leaves them as the library set them: faster on a
   * machine busy with other work, like SvtAv1EncApp run as root, but the event loop then stalls for
   * hundreds of milliseconds at a time. Not root, the library never goes real-time and "batch" alone
   * changes anything.
   */
  threadPriority?: "batch" | "normal" | "realtime";
  /** Use exactly this libSvtAv1Enc file (overrides SVTAV1_LIB_PATH). */
  libraryPath?: string;
}

const DEFAULT_FPS = { num: 30, den: 1 };

const SVT_LOG_LEVELS = { fatal: 0, error: 1, warn: 2, info: 3, debug: 4 } as const;

const int = (v: unknown) => typeof v === "number" && Number.isInteger(v);

function range(name: string, v: number | undefined, lo: number, hi: number) {
  if (v === undefined) return;
  if (!int(v) || v < lo || v > hi) {
    throw new EncoderError(
      "INVALID_CONFIG",
      `SVT-AV1 ${name} must be an integer from ${lo} to ${hi}, got ${v}`,
      {
        library: "svt-av1",
      },
    );
  }
}

/**
 * Checks a configuration and turns it into `parse_parameter` pairs in the order SvtAv1EncApp applies
 * them, so that equal settings give equal bitstreams.
 */
export function svtAv1Params(config: SvtAv1Config, keyPictureNeedsFlag: boolean): [string, string][] {
  const chroma: ChromaSampling = config.chroma ?? "420";
  if (chroma !== "420") {
    throw new EncoderError(
      "INVALID_CONFIG",
      `SVT-AV1 encodes 4:2:0 only, got ${chroma}: convert the input to 4:2:0 or use the rav1e backend`,
      { library: "svt-av1" },
    );
  }
  const bitDepth = config.bitDepth ?? 8;
  if (bitDepth !== 8 && bitDepth !== 10) {
    throw new EncoderError("INVALID_CONFIG", `SVT-AV1 bit depth must be 8 or 10, got ${bitDepth}`, {
      library: "svt-av1",
    });
  }
  if (config.height > 8704) {
    throw new EncoderError(
      "INVALID_CONFIG",
      `SVT-AV1 takes at most 8704 lines, got a height of ${config.height}`,
      {
        library: "svt-av1",
      },
    );
  }
  if (config.width < 64 || config.height < 64) {
    throw new EncoderError(
      "INVALID_CONFIG",
      `SVT-AV1 needs at least 64x64 pixels, got ${config.width}x${config.height}: scale the input up or pad it`,
      { library: "svt-av1" },
    );
  }
  if (config.logLevel !== undefined && !(config.logLevel in SVT_LOG_LEVELS)) {
    throw new EncoderError(
      "INVALID_CONFIG",
      `SVT-AV1 logLevel must be one of ${Object.keys(SVT_LOG_LEVELS).join(", ")}`,
      {
        library: "svt-av1",
      },
    );
  }
  if (
    config.threadPriority !== undefined && config.threadPriority !== "batch"
    && config.threadPriority !== "normal" && config.threadPriority !== "realtime"
  ) {
    throw new EncoderError(
      "INVALID_CONFIG",
      `threadPriority must be "batch", "normal" or "realtime", got ${config.threadPriority}`,
      {
        library: "svt-av1",
      },
    );
  }
  range("preset", config.preset, -2, 13);
  range("crf", config.crf, 1, 63);
  range("qp", config.qp, 1, 63);
  range("bitrate (kbps)", config.bitrate, 1, 100_000);
  range("maxBitrate (kbps)", config.maxBitrate, 1, 100_000);
  range("keyint", config.keyint, -2, 65535);
  range("threads", config.threads, 0, 1024);
  const modes = [config.crf, config.qp, config.bitrate].filter((v) => v !== undefined).length;
  if (modes > 1) {
    throw new EncoderError("INVALID_CONFIG", "Choose one of crf, qp or bitrate, not several", {
      library: "svt-av1",
    });
  }
  if (config.rateControl === "cbr" && !config.lowDelay) {
    throw new EncoderError("INVALID_CONFIG", "SVT-AV1 CBR needs lowDelay: true (low-delay prediction)", {
      library: "svt-av1",
    });
  }
  if (config.perFrameQp && config.qp === undefined) {
    throw new EncoderError("INVALID_CONFIG", "perFrameQp needs qp (constant-QP rate control)", {
      library: "svt-av1",
    });
  }
  if (config.rateControl && config.bitrate === undefined) {
    throw new EncoderError("INVALID_CONFIG", `rateControl "${config.rateControl}" needs a bitrate`, {
      library: "svt-av1",
    });
  }
  if (config.forceKeyFrames && keyPictureNeedsFlag) {
    if (config.bitrate !== undefined || config.lowDelay) {
      throw new EncoderError(
        "INVALID_CONFIG",
        "SVT-AV1 1.4 can force key frames only with crf or qp and random access: drop bitrate/lowDelay or forceKeyFrames",
        { library: "svt-av1" },
      );
    }
    if (config.keyint === -1) {
      throw new EncoderError("INVALID_CONFIG", "SVT-AV1 1.4 cannot force key frames with keyint -1", {
        library: "svt-av1",
      });
    }
  }

  const p: [string, string][] = [
    ["width", String(config.width)],
    ["height", String(config.height)],
    ["input-depth", String(bitDepth)],
    ["fps-num", String((config.fps ?? DEFAULT_FPS).num)],
    ["fps-denom", String((config.fps ?? DEFAULT_FPS).den)],
  ];
  if (config.preset !== undefined) p.push(["preset", String(config.preset)]);
  if (config.lowDelay) p.push(["pred-struct", "1"]);
  if (config.crf !== undefined) p.push(["crf", String(config.crf)]);
  if (config.qp !== undefined) p.push(["rc", "0"], ["aq-mode", "0"], ["qp", String(config.qp)]);
  if (config.perFrameQp) p.push(["use-q-file", "1"]);
  if (config.bitrate !== undefined) {
    p.push(["rc", config.rateControl === "cbr" ? "2" : "1"], ["tbr", String(config.bitrate)]);
  }
  if (config.maxBitrate !== undefined) p.push(["mbr", String(config.maxBitrate)]);
  if (config.keyint !== undefined) p.push(["keyint", String(config.keyint)]);
  if (config.threads !== undefined) p.push(["lp", String(config.threads)]);
  if (config.forceKeyFrames && keyPictureNeedsFlag) {
    p.push(["enable-force-key-frames", "1"], ["irefresh-type", "2"]);
  }
  for (const [key, value] of Object.entries(config.params ?? {})) {
    if (!/^[a-z0-9][a-z0-9-]*$/i.test(key)) {
      throw new EncoderError(
        "UNKNOWN_PARAMETER",
        `Unknown SVT-AV1 parameter '${key}': use a long option name such as "film-grain"`,
        {
          library: "svt-av1",
        },
      );
    }
    const text = typeof value === "boolean" ? (value ? "1" : "0") : String(value);
    if (text.includes("\0")) {
      throw new EncoderError("INVALID_CONFIG", `SVT-AV1 parameter '${key}' has a NUL byte in its value`, {
        library: "svt-av1",
      });
    }
    p.push([key, text]);
  }
  return p;
}

/**
 * An AV1 encoder over SVT-AV1. `encode()` resolves when SVT-AV1 has accepted the frame, which is the
 * backpressure; `packets()` yields encoded temporal units; `flush()` ends the stream.
 *
 * @example
 * ```ts
 * import { SvtAv1Encoder, testSource } from "./mod.ts";
 * const input = testSource({ width: 320, height: 240, frames: 10 });
 * await using enc = await SvtAv1Encoder.create({ ...input.info, preset: 12, crf: 40 });
 * const pump = (async () => {
 *   for await (const frame of input.frames()) await enc.encode(frame);
 *   await enc.flush();
 * })();
 * let bytes = 0;
 * for await (const packet of enc.packets()) bytes += packet.data.byteLength;
 * await pump;
 * console.log(`${bytes} bytes`);
 * ```
 */
export class SvtAv1Encoder extends WorkerEncoder {
  private constructor(info: VideoInfo, frameSize: number, config: SvtAv1Config) {
    super({
      codec: "svt-av1",
      library: "svt-av1",
      info,
      frameSize,
      initConfig: undefined,
      options: config,
    });
  }

  /** Checks the configuration, loads SVT-AV1 and starts an encoder on a worker thread. */
  static async create(config: SvtAv1Config): Promise<SvtAv1Encoder> {
    const info = checkCommonConfig(config, "svt-av1");
    const location = await locateSvtAv1({ libraryPath: config.libraryPath });
    const needs = location.layout.keyPictureNeedsFlag;
    const compatible = config.bitrate === undefined && !config.lowDelay && config.keyint !== -1;
    const force = config.forceKeyFrames ?? (!needs || compatible);
    const params = svtAv1Params({ ...config, forceKeyFrames: force }, needs);
    const frameSize = frameByteLength(info);
    const enc = new SvtAv1Encoder(info, frameSize, config);
    const init: SvtAv1WorkerConfig = {
      location,
      params,
      width: info.width,
      height: info.height,
      bitDepth: info.bitDepth,
      chroma: info.chroma,
      frameBytes: frameSize,
      // Quiet by default: SVT-AV1 prints a banner per encoder at its default level, and a warning per
      // thread when it is kept from going real-time. SVT_LOG in the environment still wins over the default.
      logLevel: config.logLevel === undefined
        ? { level: SVT_LOG_LEVELS.error, override: false }
        : { level: SVT_LOG_LEVELS[config.logLevel], override: true },
      keepRealtime: config.threadPriority === "realtime",
      normalPriority: config.threadPriority === "normal",
      restartForKeyFrames: needs && !force,
      perFrameQp: config.perFrameQp ? config.qp : undefined,
    };
    enc.#perFrameQp = config.perFrameQp === true;
    await enc.start(init);
    return enc;
  }

  #perFrameQp = false;

  /** As {@linkcode WorkerEncoder.encode}; `options.qp` (1 to 63) needs `perFrameQp: true`. */
  override encode(frame: Frame, options: EncodeOptions & { transfer?: boolean } = {}): Promise<void> {
    const qp = options?.qp;
    if (qp !== undefined) {
      if (!this.#perFrameQp) {
        return Promise.reject(
          new EncoderError(
            "INVALID_STATE",
            "A per-frame qp needs an encoder created with qp and perFrameQp: true",
            {
              library: "svt-av1",
            },
          ),
        );
      }
      if (!Number.isInteger(qp) || qp < 1 || qp > 63) {
        return Promise.reject(
          new EncoderError("INVALID_FRAME", `SVT-AV1 qp must be an integer from 1 to 63, got ${qp}`, {
            library: "svt-av1",
          }),
        );
      }
    }
    return super.encode(frame, options);
  }
}

export type { Rational };
