/**
 * Picks the FFI adapter of the runtime we are in, once. Only the chosen adapter's module is loaded, so
 * Deno never resolves `bun:ffi` and Bun never touches `Deno.*`.
 * @module
 */
import type { FfiRuntime } from "./types.ts";
export type * from "./types.ts";

/** Name of the JavaScript runtime, or undefined when it has no FFI we support (Node.js). */
export function runtimeName(): "deno" | "bun" | undefined {
  if ("Bun" in globalThis) return "bun";
  if ("Deno" in globalThis) return "deno";
  return undefined;
}

let cached: Promise<FfiRuntime> | undefined;

/** The FFI adapter of the current runtime. */
export function ffiRuntime(): Promise<FfiRuntime> {
  cached ??= (async () => {
    const name = runtimeName();
    if (name === "bun") {
      // Variable specifiers keep each runtime from resolving the other's adapter at type-check time.
      const path = new URL("./bun.ts", import.meta.url).href;
      return (await import(path)).bunRuntime as FfiRuntime;
    }
    if (name === "deno") {
      const path = new URL("./deno.ts", import.meta.url).href;
      return (await import(path)).denoRuntime as FfiRuntime;
    }
    throw new Error("av1-stream needs Deno or Bun: this runtime has no FFI it can use");
  })();
  return cached;
}
