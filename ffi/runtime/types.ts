/**
 * The one small interface the rest of the project sees of a JavaScript runtime's FFI. `deno.ts`, `bun.ts`
 * and `node.ts` implement it; nothing outside `ffi/` touches `Deno.dlopen`, `bun:ffi`, koffi or
 * `node:worker_threads`.
 *
 * Native addresses cross this interface as `bigint` (0n is NULL) so that Deno's pointer objects and Bun's
 * numbers never leak into the code above.
 * @module
 */

/** Neutral C types of a symbol table. `buffer` is a typed array passed by address for the call. */
export type NativeType =
  | "void"
  | "u8"
  | "i32"
  | "u32"
  | "i64"
  | "u64"
  | "usize"
  | "f64"
  | "pointer"
  | "buffer";

/** One C function: parameter and result types. */
export interface NativeFunction {
  readonly parameters: readonly NativeType[];
  readonly result: NativeType;
  /** A symbol only some library versions have. */
  readonly optional?: boolean;
  /**
   * Deno only: the call runs on one of Deno's blocking-call threads and returns a Promise of its result,
   * so that a call that blocks (SVT-AV1's `send_picture` while its input pool is full) does not hold the
   * caller's thread. Only tables opened where {@linkcode FfiRuntime.nonblockingCalls} is true may have it.
   */
  readonly nonblocking?: boolean;
}

/** A library's symbol table. */
export type SymbolTable = Readonly<Record<string, NativeFunction>>;

type JsArg<T extends NativeType> = T extends "buffer" ? ArrayBufferView | null
  : T extends "pointer" ? bigint
  : T extends "u64" | "i64" | "usize" ? bigint | number
  : number;

type JsResult<T extends NativeType> = T extends "void" ? void
  : T extends "pointer" | "u64" | "i64" | "usize" ? bigint
  : number;

type JsArgs<P extends readonly NativeType[]> = {
  [K in keyof P]: P[K] extends NativeType ? JsArg<P[K]> : never;
};

/** The callable functions of an opened library, typed from its table. */
export type BoundSymbols<S extends SymbolTable> = {
  [K in keyof S]: (
    ...args: JsArgs<S[K]["parameters"]>
  ) => S[K] extends { nonblocking: true } ? Promise<JsResult<S[K]["result"]>> : JsResult<S[K]["result"]>;
};

/** An opened shared library. */
export interface NativeLibrary<S extends SymbolTable> {
  readonly path: string;
  readonly symbols: BoundSymbols<S>;
  close(): void;
}

/**
 * A thread that runs a module and exchanges messages with its creator: the part of the web `Worker` that
 * the project uses (Deno and Bun give their own `Worker`; Node's `worker_threads` is adapted to it).
 * Inside the thread, the module sees the web worker scope: `onmessage`, `postMessage`, `close`.
 */
export interface NativeThread {
  onmessage: ((e: MessageEvent) => void) | null;
  onerror: ((e: ErrorEvent) => void) | null;
  postMessage(message: unknown, transfer?: Transferable[]): void;
  terminate(): void;
  /** Lets the process exit while this thread is alive (an idle pooled thread). */
  unref(): void;
  /** Keeps the process alive while this thread is alive (a thread with work). Threads start so. */
  ref(): void;
}

/** What the project needs of a runtime's FFI. */
export interface FfiRuntime {
  readonly name: "deno" | "bun" | "node";
  /** Whether symbols may be `nonblocking` (Deno's FFI runs them on its own threads; Bun's and koffi's do not). */
  readonly nonblockingCalls: boolean;
  /** dlopen `path` and bind the symbols of `table` (missing optional symbols are left out). */
  open<S extends SymbolTable>(path: string, table: S): NativeLibrary<S>;
  /** Address of a typed array's first byte; the caller keeps the array alive while native code uses it. */
  addressOf(view: ArrayBufferView): bigint;
  readU8(address: bigint, offset: number): number;
  readU32(address: bigint, offset: number): number;
  readI32(address: bigint, offset: number): number;
  readU64(address: bigint, offset: number): bigint;
  readF64(address: bigint, offset: number): number;
  /** A new Uint8Array holding a copy of `length` native bytes (its own ArrayBuffer, transferable). */
  copyOut(address: bigint, offset: number, length: number): Uint8Array;
  /** A NUL-terminated C string. */
  readCString(address: bigint): string;
  /** Starts the module at `url` on a thread of its own, where it may block in native calls. */
  startThread(url: URL): NativeThread;
  /** Lets the process exit while `timer` (from `setTimeout`/`setInterval`) is pending. */
  unrefTimer(timer: unknown): void;
  /** Cores this process may run on: the default size of the encoder thread pool. */
  cpuCount(): number;
}

/** Throws where a table has `nonblocking` symbols and the runtime cannot make such calls. */
export function refuseNonblocking(table: SymbolTable): void {
  const names = Object.entries(table).filter(([, fn]) => fn.nonblocking).map(([n]) => n);
  if (names.length > 0) {
    throw new Error(
      `Nonblocking FFI calls (${names.join(", ")}) need Deno; this runtime runs blocking calls on a thread`,
    );
  }
}
