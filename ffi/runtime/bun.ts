/** FFI runtime adapter for Bun (`bun:ffi`). @module */
import { refuseNonblocking } from "./types.ts";
import type {
  BoundSymbols,
  FfiRuntime,
  NativeFunction,
  NativeLibrary,
  NativeThread,
  NativeType,
  SymbolTable,
} from "./types.ts";

// A variable specifier keeps Deno from ever resolving bun:ffi; this module is only imported under Bun.
const specifier = "bun:ffi";
const ffi: typeof import("bun:ffi") = await import(specifier);

/** Compiled to JavaScript (the npm package), the thread scope is a `.js` file beside this one. */
const threadScope = new URL(
  import.meta.url.endsWith(".js") ? "./bun_thread_scope.js" : "./bun_thread_scope.ts",
  import.meta.url,
).href;

const bunTypes: Record<NativeType, string> = {
  void: "void",
  u8: "u8",
  i32: "i32",
  u32: "u32",
  i64: "i64",
  u64: "u64",
  usize: "usize",
  f64: "f64",
  pointer: "ptr",
  buffer: "buffer",
};

/** Wraps a raw Bun symbol: pointers go in and out as bigint, u32 results are unsigned, 64-bit as bigint. */
function bind(raw: (...args: unknown[]) => unknown, fn: NativeFunction): (...args: unknown[]) => unknown {
  const pointerArgs = fn.parameters.flatMap((t, i) => (t === "pointer" ? [i] : []));
  const result = fn.result;
  return (...args: unknown[]) => {
    for (const i of pointerArgs) {
      const v = args[i] as bigint;
      args[i] = v === 0n ? null : Number(v);
    }
    const value = raw(...args);
    switch (result) {
      case "pointer":
        return value === null || value === undefined ? 0n : BigInt(value as number);
      case "u32":
        return (value as number) >>> 0;
      case "u64":
      case "i64":
      case "usize":
        return BigInt(value as number | bigint);
      default:
        return value;
    }
  };
}

/** Bun's implementation of {@linkcode FfiRuntime}. */
export const bunRuntime: FfiRuntime = {
  name: "bun",
  nonblockingCalls: false,
  open<S extends SymbolTable>(path: string, table: S): NativeLibrary<S> {
    refuseNonblocking(table);
    const defs: Record<string, { args: string[]; returns: string }> = {};
    for (const [name, fn] of Object.entries(table)) {
      defs[name] = { args: fn.parameters.map((t) => bunTypes[t]), returns: bunTypes[fn.result] };
    }
    // bun:ffi has no optional symbols: open with the required ones, then try each optional one alone.
    const required = Object.fromEntries(Object.entries(defs).filter(([n]) => !table[n].optional));
    const lib = ffi.dlopen(path, required as Parameters<typeof ffi.dlopen>[1]);
    const symbols: Record<string, unknown> = {};
    const extra: { close(): void }[] = [];
    for (const [name, fn] of Object.entries(table)) {
      let raw = (lib.symbols as Record<string, unknown>)[name];
      if (raw === undefined && fn.optional) {
        try {
          const one = ffi.dlopen(path, { [name]: defs[name] } as Parameters<typeof ffi.dlopen>[1]);
          extra.push(one);
          raw = (one.symbols as Record<string, unknown>)[name];
        } catch {
          continue;
        }
      }
      if (typeof raw === "function") symbols[name] = bind(raw as (...a: unknown[]) => unknown, fn);
    }
    return {
      path,
      symbols: symbols as BoundSymbols<S>,
      close: () => {
        for (const e of extra) e.close();
        lib.close();
      },
    };
  },
  addressOf: (view) => BigInt(ffi.ptr(view as Uint8Array)),
  readU8: (a, o) => ffi.read.u8(Number(a), o),
  readU32: (a, o) => ffi.read.u32(Number(a), o) >>> 0,
  readI32: (a, o) => ffi.read.i32(Number(a), o),
  readU64: (a, o) => BigInt(ffi.read.u64(Number(a), o)),
  readF64: (a, o) => ffi.read.f64(Number(a), o),
  copyOut(address, offset, length) {
    if (length === 0) return new Uint8Array(0);
    return new Uint8Array(ffi.toArrayBuffer(Number(address), offset, length)).slice();
  },
  readCString: (a) => new ffi.CString(Number(a)).toString(),
  startThread(url) {
    // The thread starts in bun_thread_scope.ts, which keeps the messages that come before `url` has loaded.
    const thread = new Worker(threadScope, { type: "module" });
    thread.postMessage({ entry: url.href });
    return thread as unknown as NativeThread;
  },
  unrefTimer: (timer) => (timer as { unref?(): void }).unref?.(),
  cpuCount: () => navigator.hardwareConcurrency || 1,
};
