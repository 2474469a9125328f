/**
 * The output formats by name: {@linkcode formatFromPath} picks one from a file extension and
 * {@linkcode parseContainerFormat} reads a `--format` value. Apart from the writers (lib/container/open.ts),
 * so that what only names a format loads none of them.
 * @module
 */

import { EncoderError } from "../errors.ts";

/** Output formats: `fmp4` is fragmented MP4; `obu` the Section 5 low-overhead bitstream. */
export type ContainerFormat = "ivf" | "obu" | "webm" | "mkv" | "mp4" | "fmp4";

/** Every {@linkcode ContainerFormat}, for option parsers and help text. */
export const CONTAINER_FORMATS: readonly ContainerFormat[] = ["ivf", "obu", "webm", "mkv", "mp4", "fmp4"];

/**
 * The output format a path's extension names (`.ivf .obu .webm .mkv .mp4`, any case), or `undefined`.
 * `.mp4` is the progressive file; fragmented MP4 is asked for by name (`fmp4`).
 *
 * @example
 * ```ts
 * import { formatFromPath } from "./format.ts";
 * console.log(formatFromPath("out/clip.WebM"), formatFromPath("x.y4m")); // "webm" undefined
 * ```
 */
export function formatFromPath(path: string): ContainerFormat | undefined {
  const ext = /\.([a-z0-9]+)$/i.exec(path)?.[1]?.toLowerCase();
  switch (ext) {
    case "ivf":
    case "obu":
    case "webm":
    case "mkv":
    case "mp4":
      return ext;
    case "m4s":
    case "cmfv":
      return "fmp4";
    default:
      return undefined;
  }
}

/**
 * Parses a `--format` value: one of {@linkcode CONTAINER_FORMATS}, or a clear error.
 *
 * @example
 * ```ts
 * import { parseContainerFormat } from "./format.ts";
 * console.log(parseContainerFormat("FMP4")); // "fmp4"
 * ```
 */
export function parseContainerFormat(value: string): ContainerFormat {
  const f = value.toLowerCase() as ContainerFormat;
  if (!CONTAINER_FORMATS.includes(f)) {
    throw new EncoderError(
      "INVALID_CONFIG",
      `Unknown format ${JSON.stringify(value)}: use one of ${CONTAINER_FORMATS.join(", ")}`,
    );
  }
  return f;
}
