/**
 * The process's libc, opened once per thread and kept: opening and closing libraries for every encoder is
 * needless work, and Bun's FFI has crashed (double free) with workers that did it concurrently.
 * @module
 */
import type { FfiRuntime, NativeLibrary } from "./runtime/types.ts";
import { libcSymbols } from "./symbols/libc.ts";

/** libc's calls as opened by {@linkcode libc}. */
export type Libc = NativeLibrary<typeof libcSymbols>;

let handle: Libc | null | undefined;

/** This thread's handle on libc; null where it cannot be opened (not glibc: musl's has another name). */
export function libc(rt: FfiRuntime): Libc | null {
  if (handle === undefined) {
    try {
      handle = rt.open("libc.so.6", libcSymbols);
    } catch {
      handle = null;
    }
  }
  return handle;
}
