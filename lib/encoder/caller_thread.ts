/**
 * An encoder "thread" that is the caller's own (`host: "caller"`, Deno only): the encoder is served on
 * the caller's thread as a pooled thread would serve it, and the native calls that block are Deno's
 * nonblocking calls, which run on Deno's blocking-call threads (ffi/symbols: `svtAv1BlockingSymbols`,
 * `rav1eBlockingSymbols`). There is no second JavaScript isolate (about 20 MB resident in Deno), no
 * shared ring and no copy of a frame: the library reads each frame from the caller's buffer.
 * @module
 */
import { trimNativeHeap } from "../../ffi/libc.ts";
import { loadedRuntime } from "../../ffi/runtime/mod.ts";
import type { NativeThread } from "../../ffi/runtime/types.ts";
import type { FromWorker, ToWorker } from "./protocol.ts";
import { serveEncoders, type WorkerScope } from "./worker_serve.ts";

/** Stands in for a pooled thread; messages each way are delivered as microtasks, in order. */
export class CallerThread implements NativeThread {
  onmessage: ((e: MessageEvent) => void) | null = null;
  onerror: ((e: ErrorEvent) => void) | null = null;
  #scope: WorkerScope;

  constructor() {
    const scope: WorkerScope = {
      onmessage: null,
      postMessage: (message: FromWorker) =>
        queueMicrotask(() => this.onmessage?.({ data: message } as MessageEvent)),
      close: () => {},
      sharesMemory: true,
    };
    this.#scope = scope;
    serveEncoders(
      {
        // Only the backend of the encoder created is loaded.
        "svt-av1": async () => new (await import("./svt_av1_worker.ts")).SvtAv1Backend({ caller: true }),
        rav1e: async () => new (await import("./rav1e_worker.ts")).Rav1eBackend({ caller: true }),
      },
      // A nonblocking call: the trim takes 4-10 ms after a 720p encoder (tens under load), and this is
      // the caller's event loop. Off glibc (musl) there is no malloc_trim: nothing to do.
      { releaseMemory: () => trimNativeHeap(loadedRuntime()) },
      scope,
    );
  }

  /** Delivers `message` to the encoder; nothing is transferred or copied. */
  postMessage(message: unknown): void {
    queueMicrotask(() => void this.#scope.onmessage?.({ data: message as ToWorker }));
  }

  terminate(): void {}
  unref(): void {}
  ref(): void {}
}
