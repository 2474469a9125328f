/**
 * The process's libc, opened once per thread and kept: opening and closing libraries for every encoder is
 * needless work, and Bun's FFI has crashed (double free) with workers that did it concurrently.
 * @module
 */
import type { FfiRuntime, NativeLibrary, SymbolTable } from "./runtime/types.ts";
import { libcNonblockingSymbols, libcSymbols } from "./symbols/libc.ts";

/** libc's calls as opened by {@linkcode libc}. */
export type Libc = NativeLibrary<typeof libcSymbols>;

/** libc with `table`; null where it cannot be opened (not glibc: musl's has another name). */
function openLibc<S extends SymbolTable>(rt: FfiRuntime, table: S): NativeLibrary<S> | null {
  try {
    return rt.open("libc.so.6", table);
  } catch {
    return null;
  }
}

let handle: Libc | null | undefined;

/** This thread's handle on libc; null where it cannot be opened. */
export function libc(rt: FfiRuntime): Libc | null {
  if (handle === undefined) handle = openLibc(rt, libcSymbols);
  return handle;
}

let nonblockingHandle: NativeLibrary<typeof libcNonblockingSymbols> | null | undefined;

/**
 * Hands the native heap's free pages back to the system (glibc's `malloc_trim`) without blocking this
 * thread where the runtime has nonblocking calls (Deno: the call runs on one of its blocking-call
 * threads); elsewhere the call blocks this thread while it runs. Resolves when done; off glibc it does
 * nothing.
 */
export async function trimNativeHeap(rt: FfiRuntime): Promise<void> {
  if (rt.nonblockingCalls) {
    if (nonblockingHandle === undefined) nonblockingHandle = openLibc(rt, libcNonblockingSymbols);
    await nonblockingHandle?.symbols.malloc_trim?.(0);
    return;
  }
  libc(rt)?.symbols.malloc_trim?.(0);
}
