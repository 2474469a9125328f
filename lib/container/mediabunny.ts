/**
 * Loads mediabunny on first use: importing it costs 45–70 ms, which an IVF encode should not pay.
 * @module
 */

import { EncoderError } from "../errors.ts";

/** The mediabunny module. */
export type Mediabunny = typeof import("mediabunny");

let loading: Promise<Mediabunny> | undefined;

/**
 * The mediabunny module, imported once and shared. The bare specifier resolves through package.json and
 * node_modules in both Deno (`nodeModulesDir: "manual"`) and Bun.
 *
 * @example
 * ```ts
 * import { loadMediabunny } from "./mediabunny.ts";
 * const { ALL_FORMATS } = await loadMediabunny();
 * console.log(ALL_FORMATS.length > 0); // true
 * ```
 */
export function loadMediabunny(): Promise<Mediabunny> {
  loading ??= import("mediabunny").catch((err) => {
    loading = undefined;
    throw new EncoderError(
      "LIBRARY_NOT_FOUND",
      `Could not load mediabunny, which writes and reads WebM and MP4: ${
        (err as Error)?.message ?? err
      }. Run npm install (or npm ci) in the project`,
      { cause: err },
    );
  });
  return loading;
}
