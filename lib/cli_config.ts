/**
 * Command-line style flags (`--codec --preset --crf --speed …`, as strings) to an encoder configuration:
 * the one place that knows which flag belongs to which backend and how each is read. The CLI and the HTTP
 * service (whose query parameters are named like the flags) both use it.
 * @module
 */

import type { Rav1eConfig } from "./encoder/rav1e.ts";
import { rav1eConfigFromFlags } from "./encoder/rav1e_flags.ts";
import type { SvtAv1Config } from "./encoder/svt_av1.ts";
import { EncoderError } from "./errors.ts";
import type { Encoder, VideoInfo } from "./types.ts";

/** Encoder flags by their command-line names, values as typed (strings; switches as booleans). */
export interface EncoderFlags {
  codec?: string;
  bitrate?: string;
  keyint?: string;
  threads?: string;
  /** `key=value` entries passed to the library as they are. */
  param?: string[];
  preset?: string;
  crf?: string;
  qp?: string;
  "rate-control"?: string;
  "max-bitrate"?: string;
  "low-delay"?: boolean;
  speed?: string;
  quantizer?: string;
  "min-quantizer"?: string;
  "min-keyint"?: string;
  tiles?: string;
  "rdo-lookahead"?: string;
  "low-latency"?: boolean;
  tune?: string;
}

/** Flags every backend takes. */
export const COMMON_FLAGS = ["codec", "bitrate", "keyint", "threads", "param"] as const;
/** Flags only SVT-AV1 takes. */
export const SVT_AV1_FLAGS = ["preset", "crf", "qp", "rate-control", "max-bitrate", "low-delay"] as const;
/** Flags only rav1e takes. */
export const RAV1E_FLAGS = [
  "speed",
  "quantizer",
  "min-quantizer",
  "min-keyint",
  "tiles",
  "rdo-lookahead",
  "low-latency",
  "tune",
] as const;
/** Flags that are switches (no value). */
export const SWITCH_FLAGS = ["low-delay", "low-latency"] as const;

/** Encoder settings without the frame geometry, which comes from the input. */
export type EncoderSelection =
  | { codec: "svt-av1"; config: Omit<SvtAv1Config, "width" | "height"> }
  | { codec: "rav1e"; config: Omit<Rav1eConfig, "width" | "height"> };

/** Options of {@linkcode encoderConfigFromFlags}. */
export interface EncoderConfigOptions {
  /** Keep the library's own log (SVT-AV1); default false: errors only. */
  verbose?: boolean;
  /** Frames will be forced to key frames (SVT-AV1 must be told up front). Default false. */
  forceKeyFrames?: boolean;
}

function bad(message: string): EncoderError {
  return new EncoderError("INVALID_CONFIG", message);
}

function intFlag(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^-?\d+$/.test(v)) throw bad(`--${name} must be an integer, got ${JSON.stringify(v)}`);
  return Number(v);
}

/**
 * Reads encoder flags into a codec and its configuration. Throws an `EncoderError` with code
 * `INVALID_CONFIG` for an unknown codec, a flag of the other backend, a value that is not a number, or a
 * malformed `param`; ranges are checked when the encoder is created.
 *
 * @example
 * ```ts
 * import { encoderConfigFromFlags } from "./lib/cli_config.ts";
 * console.log(encoderConfigFromFlags({ codec: "svt-av1", preset: "12", crf: "40" }).config.preset); // 12
 * ```
 */
export function encoderConfigFromFlags(
  flags: EncoderFlags,
  options: EncoderConfigOptions = {},
): EncoderSelection {
  const codec = flags.codec ?? "svt-av1";
  if (codec !== "svt-av1" && codec !== "rav1e") {
    throw bad(`Unknown --codec ${JSON.stringify(codec)}: use svt-av1 or rav1e`);
  }
  const other = codec === "svt-av1" ? RAV1E_FLAGS : SVT_AV1_FLAGS;
  for (const flag of other) {
    if (flags[flag] !== undefined) {
      throw bad(
        `--${flag} is not a ${codec} option (see the ${codec === "svt-av1" ? "rav1e" : "SVT-AV1"} section)`,
      );
    }
  }
  const params: Record<string, string> = {};
  for (const p of flags.param ?? []) {
    const eq = p.indexOf("=");
    if (eq <= 0) throw bad(`--param takes key=value, got ${JSON.stringify(p)}`);
    params[p.slice(0, eq)] = p.slice(eq + 1);
  }
  const common = {
    keyint: intFlag("keyint", flags.keyint),
    threads: intFlag("threads", flags.threads),
    bitrate: intFlag("bitrate", flags.bitrate),
    params: Object.keys(params).length ? params : undefined,
  };
  if (codec === "rav1e") {
    const own = rav1eConfigFromFlags({
      speed: flags.speed,
      quantizer: flags.quantizer,
      "min-quantizer": flags["min-quantizer"],
      "min-keyint": flags["min-keyint"],
      tiles: flags.tiles,
      "rdo-lookahead": flags["rdo-lookahead"],
      "low-latency": flags["low-latency"],
      tune: flags.tune,
    });
    return { codec, config: { ...common, ...own } };
  }
  const rc = flags["rate-control"];
  if (rc !== undefined && rc !== "vbr" && rc !== "cbr") {
    throw bad(`--rate-control must be vbr or cbr, got ${JSON.stringify(rc)}`);
  }
  return {
    codec,
    config: {
      ...common,
      preset: intFlag("preset", flags.preset),
      crf: intFlag("crf", flags.crf),
      qp: intFlag("qp", flags.qp),
      rateControl: rc,
      maxBitrate: intFlag("max-bitrate", flags["max-bitrate"]),
      lowDelay: flags["low-delay"] || undefined,
      forceKeyFrames: options.forceKeyFrames || undefined,
      logLevel: options.verbose ? undefined : "error",
    },
  };
}

/**
 * Creates the encoder a selection names for input of the given geometry.
 *
 * @example
 * ```ts
 * import { createEncoderFromSelection, encoderConfigFromFlags } from "./lib/cli_config.ts";
 * import { testSource } from "./lib/io/testsrc.ts";
 * const source = testSource({ width: 64, height: 64, frames: 1 });
 * const enc = await createEncoderFromSelection(encoderConfigFromFlags({ preset: "12" }), source.info);
 * await enc.close();
 * ```
 */
export async function createEncoderFromSelection(
  selection: EncoderSelection,
  info: VideoInfo,
): Promise<Encoder> {
  // Only the backend asked for is loaded: reading flags (the CLI's --help) loads neither.
  if (selection.codec === "rav1e") {
    const { Rav1eEncoder } = await import("./encoder/rav1e.ts");
    return await Rav1eEncoder.create({ ...info, ...selection.config });
  }
  const { SvtAv1Encoder } = await import("./encoder/svt_av1.ts");
  return await SvtAv1Encoder.create({ ...info, ...selection.config });
}
