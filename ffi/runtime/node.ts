/**
 * FFI runtime adapter for Node.js, over koffi (a prebuilt N-API module from npm). Pointers are declared to
 * koffi as `uintptr_t`, so addresses cross as plain integers and koffi's pointer objects never leave this
 * file; `buffer` parameters are `void *` and get the typed array's own memory for the call.
 * @module
 */
import koffi from "koffi";
import { availableParallelism } from "node:os";
import { startNodeThread } from "./node_thread.ts";
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

const koffiTypes: Record<NativeType, string> = {
  void: "void",
  u8: "uint8_t",
  i32: "int32_t",
  u32: "uint32_t",
  i64: "int64_t",
  u64: "uint64_t",
  usize: "size_t",
  f64: "double",
  pointer: "uintptr_t",
  buffer: "void *",
};

/** Wraps a koffi function: pointers and 64-bit results come back as bigint (koffi gives small ones as numbers). */
function bind(raw: (...args: unknown[]) => unknown, fn: NativeFunction): (...args: unknown[]) => unknown {
  switch (fn.result) {
    case "pointer":
    case "u64":
    case "i64":
    case "usize":
      return (...args: unknown[]) => BigInt(raw(...args) as number | bigint);
    default:
      return raw;
  }
}

/** The first line of a koffi error, which already names the library or symbol. */
function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Node's implementation of {@linkcode FfiRuntime}. */
export const nodeRuntime: FfiRuntime = {
  name: "node",
  nonblockingCalls: false,
  open<S extends SymbolTable>(path: string, table: S): NativeLibrary<S> {
    refuseNonblocking(table);
    let lib: ReturnType<typeof koffi.load>;
    try {
      lib = koffi.load(path);
    } catch (e) {
      throw new Error(`${path}: ${message(e)}`);
    }
    const symbols: Record<string, unknown> = {};
    try {
      for (const [name, fn] of Object.entries(table)) {
        let raw: (...args: unknown[]) => unknown;
        try {
          raw = lib.func(name, koffiTypes[fn.result], fn.parameters.map((t) => koffiTypes[t]));
        } catch (e) {
          if (fn.optional) continue;
          throw new Error(`${path}: ${message(e)}`);
        }
        symbols[name] = bind(raw, fn);
      }
    } catch (e) {
      lib.unload();
      throw e;
    }
    return { path, symbols: symbols as BoundSymbols<S>, close: () => lib.unload() };
  },
  addressOf: (view) => koffi.address(view),
  readU8: (a, o) => koffi.decode(a, o, "uint8_t") as number,
  readU32: (a, o) => koffi.decode(a, o, "uint32_t") as number,
  readI32: (a, o) => koffi.decode(a, o, "int32_t") as number,
  readU64: (a, o) => BigInt(koffi.decode(a, o, "uint64_t") as number | bigint),
  readF64: (a, o) => koffi.decode(a, o, "double") as number,
  copyOut(address, offset, length) {
    if (length === 0) return new Uint8Array(0);
    return new Uint8Array(koffi.view(address + BigInt(offset), length)).slice();
  },
  readCString: (a) => koffi.decode.string(a),
  startThread: (url: URL): NativeThread => startNodeThread(url),
  unrefTimer: (timer) => (timer as { unref?(): void }).unref?.(),
  cpuCount: () => availableParallelism(),
};
