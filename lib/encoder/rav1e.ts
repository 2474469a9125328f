/**
 * {@linkcode Rav1eEncoder}: AV1 encoding with rav1e, its encoding work on a Worker. rav1e has no input
 * bound, so a frame is handed over only when rav1e asks for one; `encode()` resolves then.
 * @module
 */
import {
  RaChromaSamplePosition,
  RaChromaSampling,
  RaColorPrimaries,
  RaMatrixCoefficients,
  RaPixelRange,
  RaTransferCharacteristics,
} from "../../ffi/layouts/rav1e.ts";
import { locateRav1e } from "../../ffi/load.ts";
import { EncoderError } from "../errors.ts";
import {
  chromaPlaneSize,
  type ChromaPosition,
  type EncodeOptions,
  type Frame,
  frameByteLength,
  type VideoInfo,
} from "../types.ts";
import { checkCommonConfig, type CommonConfig } from "./config.ts";
import type { Rav1eWorkerConfig } from "./rav1e_worker.ts";
import { type HostOptions, WorkerEncoder } from "./worker_encoder.ts";

export { rav1eConfigFromFlags, type Rav1eFlags } from "./rav1e_flags.ts";

/** Colour primaries by name (the `rav1e --primaries` values, lower case) or by their H.273 number. */
export type Rav1eColorPrimaries = keyof typeof RaColorPrimaries | number;
/** Transfer characteristics by name or H.273 number. */
export type Rav1eTransfer = keyof typeof RaTransferCharacteristics | number;
/** Matrix coefficients by name or H.273 number. */
export type Rav1eMatrix = keyof typeof RaMatrixCoefficients | number;

/** Settings of a rav1e encoder. Names shared with SVT-AV1 mean the same there. */
export interface Rav1eConfig extends CommonConfig, HostOptions {
  /** 0 (best quality) to 10 (fastest). Default 6, like the `rav1e` CLI. */
  speed?: number;
  /** Base quantizer 0 to 255, smaller is better; in bitrate mode the largest allowed. Default 100 (255 in bitrate mode, as the rav1e CLI). */
  quantizer?: number;
  /** Smallest quantizer 0 to 255 in bitrate mode. Default 0. */
  minQuantizer?: number;
  /** Target bitrate in kbit/s (1 to 2,000,000); unset means constant quantizer. */
  bitrate?: number;
  /** Maximum distance between key frames (`rav1e --keyint`); 0 disables periodic key frames. Default 240. */
  keyint?: number;
  /** Minimum distance between scene-cut key frames (`--min-keyint`). Default min(12, keyint) like the CLI. */
  minKeyint?: number;
  /** No frame reordering, for live streams: with `rdoLookahead: 1` the first packet comes after ~5 frames. */
  lowLatency?: boolean;
  /** Frames of RDO lookahead, 1 to 1000. Default from the speed like the CLI: 10, 20, 30 or 40. */
  rdoLookahead?: number;
  /** At least this many tiles, 0 (automatic) to 4096. Tiles change the bitstream. */
  tiles?: number;
  /**
   * Quality tuning, default "psychovisual" (the library's and the CLI's default). The CLI's
   * psychovisual mode also changes a setting no library key reaches, so bitstreams equal the CLI's
   * only with "psnr" on both sides (`rav1e --tune Psnr`).
   */
  tune?: "psnr" | "psychovisual";
  /** Chroma sample position of 4:2:0 input (from the Y4M tag); default "unknown". */
  chromaPosition?: ChromaPosition;
  /** Pixel range written to the sequence header; default "limited" (the CLI ignores Y4M `XCOLORRANGE`). */
  colorRange?: "limited" | "full";
  /** Colour primaries; with transfer and matrix, written to the sequence header. Unset ones are "unspecified". */
  primaries?: Rav1eColorPrimaries;
  /** Transfer characteristics. */
  transfer?: Rav1eTransfer;
  /** Matrix coefficients ("identity" needs 4:4:4). */
  matrix?: Rav1eMatrix;
  /**
   * Other keys of `rav1e_config_parse` (e.g. `tile_rows`, `tile_cols`, `reservoir_frame_delay`,
   * `switch_frame_interval`, `enable_timing_info`), applied after the others. Keys with an option
   * above must be set through that option.
   */
  params?: Record<string, string | number | boolean>;
  /** Use exactly this librav1e file (overrides RAV1E_LIB_PATH). */
  libraryPath?: string;
}

/**
 * @internal For a process whose event loop has nothing else to serve (the command line's file encode):
 * with `host: "caller"`, `receive_packet`, where rav1e encodes, is made as an ordinary call on the caller's
 * thread instead of a Deno nonblocking one, and the event loop turns between calls (signals and I/O wait
 * at most one call). Every call of the encoder then runs on that one thread: Deno's nonblocking calls run
 * on whichever of its blocking-call threads is free, each with a glibc malloc arena of its own, and what
 * one call freed stayed resident in its arena while the next call grew another (bench/results.md,
 * "Memory"). Never for a library user's loop, which this would hold for each frame's encode.
 */
export const ownEventLoop: unique symbol = Symbol("av1-stream.rav1e.ownEventLoop");

const fail = (message: string, code: "INVALID_CONFIG" | "UNKNOWN_PARAMETER" = "INVALID_CONFIG") =>
  new EncoderError(code, message, { library: "rav1e" });

function intIn(name: string, v: unknown, lo: number, hi: number): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== "number" || !Number.isInteger(v) || v < lo || v > hi) {
    throw fail(
      `rav1e ${name} must be ${Number.isInteger(v) ? "" : "an integer "}${lo} to ${hi}, got ${show(v)}`,
    );
  }
  return v;
}

function show(v: unknown): string {
  return typeof v === "string" ? JSON.stringify(v) : String(v);
}

function bool(name: string, v: unknown): boolean | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== "boolean") throw fail(`rav1e ${name} must be true or false, got ${show(v)}`);
  return v;
}

function named<T extends Record<string, number>>(what: string, table: T, v: unknown): number {
  if (typeof v === "string" && Object.hasOwn(table, v.toLowerCase())) return table[v.toLowerCase()];
  if (typeof v === "number" && Object.values(table).includes(v)) return v;
  throw fail(`rav1e ${what} must be one of ${Object.keys(table).join(", ")} (or its number), got ${show(v)}`);
}

/** The `rav1e` CLI's RDO lookahead for a speed (the library's `speed` key leaves it at 40). */
export function cliRdoLookahead(speed: number): number {
  return speed >= 9 ? 10 : speed >= 6 ? 20 : speed >= 3 ? 30 : 40;
}

/** Keys that have their own option, and its name. */
const TYPED_KEYS: Record<string, string> = {
  width: "width",
  height: "height",
  speed: "speed",
  threads: "threads",
  tune: "tune",
  quantizer: "quantizer",
  min_quantizer: "minQuantizer",
  bitrate: "bitrate",
  tiles: "tiles",
  key_frame_interval: "keyint",
  min_key_frame_interval: "minKeyint",
  rdo_lookahead_frames: "rdoLookahead",
  low_latency: "lowLatency",
};

/** Keys of `params` whose values we can check, and how. */
const PARAM_CHECKS: Record<string, (v: string | number | boolean, c: Rav1eConfig) => string> = {
  tile_rows: (v) => String(powerOfTwo("tile_rows", v)),
  tile_cols: (v) => String(powerOfTwo("tile_cols", v)),
  reservoir_frame_delay: (v) => String(intIn("reservoir_frame_delay", v, 12, 131072)),
  switch_frame_interval: (v, c) => {
    const n = intIn("switch_frame_interval", v, 0, 65535)!;
    if (n > 0 && !c.lowLatency) throw fail("rav1e switch_frame_interval needs lowLatency: true");
    return String(n);
  },
  enable_timing_info: (v) => String(bool("enable_timing_info", v)),
  still_picture: (v) => {
    if (bool("still_picture", v)) {
      throw fail("rav1e still_picture is not supported for streams: encode a one-frame stream instead");
    }
    return "false";
  },
};

function powerOfTwo(name: string, v: unknown): number {
  const n = intIn(name, v, 0, 64)!;
  if (n !== 0 && (n & (n - 1)) !== 0) {
    throw fail(`rav1e ${name} must be 0 or a power of two up to 64, got ${n}`);
  }
  return n;
}

/** Everything the worker needs, checked: the result of {@linkcode rav1eSettings}. */
export type Rav1eSettings = Omit<Rav1eWorkerConfig, "location">;

/**
 * Checks a configuration and turns it into the worker's settings: `rav1e_config_parse` pairs set the
 * way the `rav1e` CLI sets them, so that equal settings give equal bitstreams. Throws an
 * {@linkcode EncoderError} naming the first bad value; nothing that could make rav1e panic gets through.
 */
export function rav1eSettings(config: Rav1eConfig): { info: VideoInfo; settings: Rav1eSettings } {
  const info = checkCommonConfig(config, "rav1e");
  const c = config;
  const speed = intIn("speed", c.speed, 0, 10);
  const quantizer = intIn("quantizer", c.quantizer, 0, 255);
  const minQuantizer = intIn("minQuantizer", c.minQuantizer, 0, 255);
  const bitrate = intIn("bitrate (kbps)", c.bitrate, 1, 2_000_000);
  const keyint = intIn("keyint", c.keyint, 0, 65535);
  const minKeyint = intIn("minKeyint", c.minKeyint, 0, 65535);
  const lowLatency = bool("lowLatency", c.lowLatency);
  const rdoLookahead = intIn("rdoLookahead", c.rdoLookahead, 1, 1000);
  const tiles = intIn("tiles", c.tiles, 0, 4096);
  const threads = intIn("threads", c.threads, 0, 256);
  if (c.tune !== undefined && c.tune !== "psnr" && c.tune !== "psychovisual") {
    throw fail(`rav1e tune must be "psnr" or "psychovisual", got ${show(c.tune)}`);
  }
  if (minQuantizer !== undefined && minQuantizer > (quantizer ?? 255)) {
    throw fail(`rav1e minQuantizer (${minQuantizer}) must not exceed quantizer (${quantizer})`);
  }
  if (info.width < 16 || info.height < 16) {
    throw fail(`rav1e needs at least 16x16 pixels, got ${info.width}x${info.height}: pad the input`);
  }
  if (info.width > 65535 || info.height > 65535) throw fail("rav1e takes at most 65535 pixels a side");

  const position = c.chromaPosition ?? info.chromaPosition ?? "unknown";
  if (!Object.hasOwn(RaChromaSamplePosition, position)) {
    throw fail(`rav1e chromaPosition must be "unknown", "vertical" or "colocated", got ${show(position)}`);
  }
  if (position !== "unknown" && info.chroma !== "420") {
    throw fail(`rav1e chromaPosition applies to 4:2:0 only, got ${show(position)} for ${info.chroma}`);
  }
  const range = c.colorRange ?? "limited";
  if (range !== "limited" && range !== "full") {
    throw fail(`rav1e colorRange must be "limited" or "full", got ${show(range)}`);
  }
  let colorDescription: Rav1eSettings["colorDescription"];
  if (c.primaries !== undefined || c.transfer !== undefined || c.matrix !== undefined) {
    colorDescription = {
      primaries: named("primaries", RaColorPrimaries, c.primaries ?? "unspecified"),
      transfer: named("transfer", RaTransferCharacteristics, c.transfer ?? "unspecified"),
      matrix: named("matrix", RaMatrixCoefficients, c.matrix ?? "unspecified"),
    };
    if (colorDescription.matrix === RaMatrixCoefficients.identity && info.chroma !== "444") {
      throw fail(`rav1e matrix "identity" (RGB) needs 4:4:4 input, got ${info.chroma}`);
    }
  }

  // Set the way the rav1e CLI does: speed, then what the CLI derives from it and from keyint.
  const p: [string, string][] = [["width", String(info.width)], ["height", String(info.height)]];
  const effectiveSpeed = speed ?? 6;
  p.push(["speed", String(effectiveSpeed)]);
  p.push(["rdo_lookahead_frames", String(rdoLookahead ?? cliRdoLookahead(effectiveSpeed))]);
  // In bitrate mode the quantizer is the highest the rate control may pick. The CLI leaves it at 255
  // (unconstrained) when not given; the C API's default, 100, caps it, which changed the bytes whenever
  // the rate control wanted more (a reservoir under 240 frames, i.e. keyint below 160).
  if (quantizer !== undefined) p.push(["quantizer", String(quantizer)]);
  else if (bitrate !== undefined) p.push(["quantizer", "255"]);
  if (minQuantizer !== undefined) p.push(["min_quantizer", String(minQuantizer)]);
  if (bitrate !== undefined) p.push(["bitrate", String(bitrate * 1000)]);
  const maxInterval = keyint ?? 240;
  p.push(["key_frame_interval", String(maxInterval)]);
  p.push(["min_key_frame_interval", String(Math.min(minKeyint ?? 12, maxInterval))]);
  if (lowLatency !== undefined) p.push(["low_latency", String(lowLatency)]);
  if (tiles !== undefined) p.push(["tiles", String(tiles)]);
  if (threads !== undefined) p.push(["threads", String(threads)]);
  if (c.tune !== undefined) p.push(["tune", c.tune === "psnr" ? "Psnr" : "Psychovisual"]);

  if (c.params !== undefined && (c.params === null || typeof c.params !== "object")) {
    throw fail("rav1e params must be an object of key: value pairs");
  }
  for (const [key, value] of Object.entries(c.params ?? {})) {
    if (Object.hasOwn(TYPED_KEYS, key)) {
      throw fail(`Set rav1e ${key} with the ${TYPED_KEYS[key]} option, not params: it is checked there`);
    }
    if (!["string", "number", "boolean"].includes(typeof value)) {
      throw fail(`rav1e parameter '${key}' must be a string, number or boolean, got ${show(value)}`);
    }
    const check = Object.hasOwn(PARAM_CHECKS, key) ? PARAM_CHECKS[key] : undefined;
    if (check) {
      p.push([key, check(value, c)]);
      continue;
    }
    if (!/^[a-z][a-z0-9_]*$/.test(key)) {
      throw fail(
        `Unknown rav1e parameter '${key}': keys are lower case with underscores, like "tile_cols"`,
        "UNKNOWN_PARAMETER",
      );
    }
    const text = String(value);
    if (text.includes("\0")) throw fail(`rav1e parameter '${key}' has a NUL byte in its value`);
    p.push([key, text]);
  }

  const bps = info.bitDepth > 8 ? 2 : 1;
  const [cw, ch] = chromaPlaneSize(info);
  const luma = info.width * info.height * bps;
  const planes = [{ offset: 0, length: luma, stride: info.width * bps }];
  if (info.chroma !== "mono") {
    const len = cw * ch * bps;
    planes.push({ offset: luma, length: len, stride: cw * bps }, {
      offset: luma + len,
      length: len,
      stride: cw * bps,
    });
  }
  const sampling = {
    "420": RaChromaSampling.cs420,
    "422": RaChromaSampling.cs422,
    "444": RaChromaSampling.cs444,
    mono: RaChromaSampling.cs400,
  };
  return {
    info: { ...info, chromaPosition: position as ChromaPosition, colorRange: range },
    settings: {
      params: p,
      // rav1e's time base is the duration of a frame.
      timeBase: { num: info.fps.den, den: info.fps.num },
      bitDepth: info.bitDepth,
      chromaSampling: sampling[info.chroma],
      chromaPosition: RaChromaSamplePosition[position as keyof typeof RaChromaSamplePosition],
      pixelRange: range === "full" ? RaPixelRange.full : RaPixelRange.limited,
      colorDescription,
      planes,
      bytesPerSample: bps,
    },
  };
}

/**
 * An AV1 encoder over rav1e. `encode()` resolves when rav1e asks for the next frame, which is the
 * backpressure; `packets()` yields encoded temporal units; `flush()` ends the stream.
 *
 * @example
 * ```ts
 * import { Rav1eEncoder, testSource } from "./mod.ts";
 * const input = testSource({ width: 160, height: 120, frames: 10 });
 * await using enc = await Rav1eEncoder.create({ ...input.info, speed: 10, lowLatency: true });
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
export class Rav1eEncoder extends WorkerEncoder {
  private constructor(info: VideoInfo, frameSize: number, config: Rav1eConfig) {
    super({
      codec: "rav1e",
      library: "rav1e",
      info,
      frameSize,
      initConfig: undefined,
      options: config,
    });
  }

  /** Checks the configuration, loads rav1e and starts an encoder on a worker thread. */
  static async create(config: Rav1eConfig & { [ownEventLoop]?: boolean }): Promise<Rav1eEncoder> {
    const { info, settings } = rav1eSettings(config);
    const location = await locateRav1e({ libraryPath: config.libraryPath });
    const frameSize = frameByteLength(info);
    const enc = new Rav1eEncoder(info, frameSize, config);
    const init: Rav1eWorkerConfig = {
      location,
      ...settings,
      ...(config[ownEventLoop] === true && config.host === "caller" ? { blockOnCaller: true } : {}),
    };
    await enc.start(init);
    return enc;
  }

  /** As {@linkcode WorkerEncoder.encode}; rav1e's C API has no per-frame quantizer, so `options.qp` is refused. */
  override encode(frame: Frame, options: EncodeOptions & { transfer?: boolean } = {}): Promise<void> {
    if (options?.qp !== undefined) {
      return Promise.reject(
        new EncoderError(
          "INVALID_CONFIG",
          "rav1e takes no per-frame quantizer: set quantizer when creating the encoder, or use SVT-AV1",
          { library: "rav1e" },
        ),
      );
    }
    return super.encode(frame, options);
  }
}
