/**
 * Picks the FFI adapter of the runtime we are in, once. Only the chosen adapter's module is loaded, so
 * Deno never resolves `bun:ffi`, Bun never touches `Deno.*`, and neither loads koffi.
 * @module
 */
import type { FfiRuntime, NativeThread } from "./types.ts";
export type * from "./types.ts";

/** Name of the JavaScript runtime, or undefined when it has no FFI we support. */
export function runtimeName(): "deno" | "bun" | "node" | undefined {
  if ("Bun" in globalThis) return "bun";
  if ("Deno" in globalThis) return "deno";
  const versions = (globalThis as { process?: { versions?: { node?: string } } }).process?.versions;
  if (versions?.node) return "node";
  return undefined;
}

/** Run from compiled JavaScript (Node's way), the adapters are `.js` files beside this one. */
const extension = import.meta.url.endsWith(".js") ? ".js" : ".ts";

/** A thread's module as this copy can run it: compiled, `x.ts` beside a module is `x.js`. */
function runnable(url: URL): URL {
  if (extension === ".ts" || !url.pathname.endsWith(".ts")) return url;
  const out = new URL(url.href);
  out.pathname = url.pathname.slice(0, -3) + ".js";
  return out;
}

let cached: Promise<FfiRuntime> | undefined;
let loaded: FfiRuntime | undefined;

/** The FFI adapter of the current runtime. */
export function ffiRuntime(): Promise<FfiRuntime> {
  cached ??= (async () => {
    const name = runtimeName();
    if (name === undefined) {
      throw new Error("av1-stream needs Deno, Bun or Node.js: this runtime has no FFI it can use");
    }
    // Variable specifiers keep each runtime from resolving the others' adapters at type-check time.
    const path = new URL(`./${name}${extension}`, import.meta.url).href;
    const mod = await import(path);
    loaded = mod[`${name}Runtime`] as FfiRuntime;
    return loaded;
  })();
  return cached;
}

/** The adapter {@linkcode ffiRuntime} loaded; throws before it has. */
export function loadedRuntime(): FfiRuntime {
  if (!loaded) throw new Error("loadedRuntime() before ffiRuntime(): load a library first");
  return loaded;
}

/**
 * Starts the module at `url` on a thread of its own (a `Worker`), for native calls that block. The
 * runtime must have been loaded with {@linkcode ffiRuntime} first, as every library lookup does.
 */
export function startThread(url: URL): NativeThread {
  if (!loaded) throw new Error("startThread() before ffiRuntime(): load a library first");
  return loaded.startThread(runnable(url));
}
