/** FFI runtime adapter for Deno (`Deno.dlopen`). @module */
import { startNodeThread } from "./node_thread.ts";
import type { BoundSymbols, FfiRuntime, NativeFunction, NativeLibrary, SymbolTable } from "./types.ts";

type DenoPointer = Deno.PointerValue;

function toDeno(fn: NativeFunction): Deno.ForeignFunction {
  return {
    parameters: fn.parameters as Deno.NativeType[],
    result: fn.result as Deno.NativeResultType,
    optional: fn.optional,
    nonblocking: fn.nonblocking,
  };
}

function toPointer(address: bigint): DenoPointer {
  return address === 0n ? null : Deno.UnsafePointer.create(address);
}

function fromPointer(pointer: DenoPointer): bigint {
  return pointer === null ? 0n : Deno.UnsafePointer.value(pointer);
}

/** Wraps a raw Deno symbol so that pointers go in and out as bigint and 64-bit results as bigint. */
function bind(raw: (...args: unknown[]) => unknown, fn: NativeFunction): (...args: unknown[]) => unknown {
  const pointerArgs = fn.parameters.flatMap((t, i) => (t === "pointer" ? [i] : []));
  const result = fn.result;
  const convertArgs = pointerArgs.length > 0;
  const convert = (value: unknown) => {
    if (result === "pointer") return fromPointer(value as DenoPointer);
    if (result === "u64" || result === "i64" || result === "usize") return BigInt(value as number | bigint);
    return value;
  };
  return (...args: unknown[]) => {
    if (convertArgs) { for (const i of pointerArgs) args[i] = toPointer(args[i] as bigint); }
    const value = raw(...args);
    return fn.nonblocking ? (value as Promise<unknown>).then(convert) : convert(value);
  };
}

/** Deno's implementation of {@linkcode FfiRuntime}. */
export const denoRuntime: FfiRuntime = {
  name: "deno",
  nonblockingCalls: true,
  open<S extends SymbolTable>(path: string, table: S): NativeLibrary<S> {
    const defs: Record<string, Deno.ForeignFunction> = {};
    for (const [name, fn] of Object.entries(table)) defs[name] = toDeno(fn);
    const lib = Deno.dlopen(path, defs);
    const symbols: Record<string, unknown> = {};
    for (const [name, fn] of Object.entries(table)) {
      const raw = (lib.symbols as Record<string, unknown>)[name];
      if (typeof raw === "function") symbols[name] = bind(raw as (...a: unknown[]) => unknown, fn);
    }
    return { path, symbols: symbols as BoundSymbols<S>, close: () => lib.close() };
  },
  addressOf(view) {
    return fromPointer(Deno.UnsafePointer.of(view as Uint8Array<ArrayBuffer>));
  },
  readU8: (a, o) => new Deno.UnsafePointerView(toPointer(a)!).getUint8(o),
  readU32: (a, o) => new Deno.UnsafePointerView(toPointer(a)!).getUint32(o),
  readI32: (a, o) => new Deno.UnsafePointerView(toPointer(a)!).getInt32(o),
  readU64: (a, o) => BigInt(new Deno.UnsafePointerView(toPointer(a)!).getBigUint64(o)),
  readF64: (a, o) => new Deno.UnsafePointerView(toPointer(a)!).getFloat64(o),
  copyOut(address, offset, length) {
    const out = new Uint8Array(length);
    if (length > 0) Deno.UnsafePointerView.copyInto(toPointer(address)!, out, offset);
    return out;
  },
  readCString: (a) => Deno.UnsafePointerView.getCString(toPointer(a)!),
  // node:worker_threads rather than the web Worker: only its threads can be unref'd, so that idle pooled
  // encoder threads do not keep the process alive.
  startThread: (url) => startNodeThread(url),
  unrefTimer: (timer) => Deno.unrefTimer(timer as number),
  cpuCount: () => navigator.hardwareConcurrency || 1,
};
