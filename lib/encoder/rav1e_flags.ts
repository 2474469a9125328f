/**
 * The rav1e backend's command-line flags read into its configuration, apart from the encoder
 * (lib/encoder/rav1e.ts) so that reading flags loads no encoder.
 * @module
 */
import { EncoderError } from "../errors.ts";
import type { Rav1eConfig } from "./rav1e.ts";

/** Command-line flags of the rav1e backend, as the CLI parses them (strings or booleans). */
export interface Rav1eFlags {
  /** `--speed`: 0 (slowest, best) to 10 (fastest). */
  speed?: string;
  /** `--quantizer`: the base quantiser, 0 to 255, for constant-quality encoding. */
  quantizer?: string;
  /** `--min-quantizer`: the lowest quantiser rate control may use, 0 to 255. */
  "min-quantizer"?: string;
  /** `--bitrate`: target bitrate in kbit/s; switches to rate-controlled encoding. */
  bitrate?: string;
  /** `--keyint`: the longest distance between key frames, in frames. */
  keyint?: string;
  /** `--min-keyint`: the shortest distance between key frames (scene cuts closer are ignored). */
  "min-keyint"?: string;
  /** `--tiles`: the number of tiles, a power of two. */
  tiles?: string;
  /** `--threads`: worker threads of rav1e's own pool (0: one per core). */
  threads?: string;
  /** `--low-latency`: no frame reordering, each frame's packet comes out before the next frame goes in. */
  "low-latency"?: boolean;
  /** `--rdo-lookahead-frames`: frames rate-distortion lookahead examines. */
  "rdo-lookahead"?: string;
  /** `--tune`: `Psnr` or `Psychovisual` (the default). */
  tune?: string;
}

/**
 * Maps CLI flags (`--speed 10 --quantizer 100 --min-quantizer --keyint --min-keyint --tiles --threads
 * --low-latency --rdo-lookahead --tune Psnr`) to {@linkcode Rav1eConfig} options; values are checked
 * by {@linkcode Rav1eEncoder.create}. `--tune` is case-insensitive like the `rav1e` CLI's.
 *
 * @example
 * ```ts
 * import { rav1eConfigFromFlags } from "./lib/encoder/rav1e_flags.ts";
 * console.log(rav1eConfigFromFlags({ speed: "10", tune: "Psnr", "low-latency": true }));
 * ```
 */
export function rav1eConfigFromFlags(flags: Rav1eFlags): Partial<Rav1eConfig> {
  const num = (name: string, v: string | undefined) => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (v.trim() === "" || !Number.isFinite(n)) {
      throw new EncoderError("INVALID_CONFIG", `--${name} must be a number, got ${JSON.stringify(v)}`, {
        library: "rav1e",
      });
    }
    return n;
  };
  const out: Partial<Rav1eConfig> = {};
  const set = <K extends keyof Rav1eConfig>(k: K, v: Rav1eConfig[K] | undefined) => {
    if (v !== undefined) out[k] = v;
  };
  set("speed", num("speed", flags.speed));
  set("quantizer", num("quantizer", flags.quantizer));
  set("minQuantizer", num("min-quantizer", flags["min-quantizer"]));
  set("bitrate", num("bitrate", flags.bitrate));
  set("keyint", num("keyint", flags.keyint));
  set("minKeyint", num("min-keyint", flags["min-keyint"]));
  set("tiles", num("tiles", flags.tiles));
  set("threads", num("threads", flags.threads));
  set("rdoLookahead", num("rdo-lookahead", flags["rdo-lookahead"]));
  if (flags["low-latency"]) out.lowLatency = true;
  if (flags.tune !== undefined) out.tune = flags.tune.toLowerCase() as Rav1eConfig["tune"];
  return out;
}
