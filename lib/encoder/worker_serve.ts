/**
 * The thread side of pooled encoders: one thread hosts one encoder at a time, from `init` to `closed`,
 * then the next. Messages are answered strictly in order; packets are batched per message and their
 * buffers transferred.
 * @module
 */
import { EncoderError } from "../errors.ts";
import { setNativeLock } from "./native_lock.ts";
import type { BackendName, FromWorker, ToWorker, WorkerBackend, WorkerPacket } from "./protocol.ts";

/** Where the encoders are served: a thread's global scope, or an object standing in for one. */
export interface WorkerScope {
  /**
   * `release`, where the thread gives one, frees the ring space of the message's frame bytes, which are
   * then read in place (ffi/runtime/node_thread_scope.ts); the scope calls it itself once the promise the
   * handler returns settles.
   */
  onmessage: ((e: { data: ToWorker; release?: () => void }) => unknown) | null;
  /** Asks for frame bytes as views into the shared ring, where the thread has one (see above). */
  inPlaceMessages?: boolean;
  postMessage(message: FromWorker, transfer?: Transferable[]): void;
  close(): void;
  /**
   * Messages are the caller's own objects, not copies or transfers (the caller's thread serving its own
   * encoders): a frame's buffer is then the caller's to free, not this side's.
   */
  sharesMemory?: boolean;
}

/** How often to collect packets while the caller is not sending (the encoder works on in its threads). */
const POLL_MS = 2;

/** Makes the backend an `init` message names (a promise where its module loads on first use). */
export type BackendFactories = Record<BackendName, () => WorkerBackend | Promise<WorkerBackend>>;

/** A native call that blocks the thread for a while, for tests of the pool's stall detection. */
export type BlockingCall = (ms: number) => Promise<void>;

/** What a thread can do besides hosting encoders. */
export interface ThreadServices {
  /** Blocks in a native call for `ms` (tests of the pool's stall detection). */
  block?: BlockingCall;
  /** Returns the native heap's free pages to the system (glibc's `malloc_trim`). */
  releaseMemory?: () => void | Promise<void>;
}

/**
 * Serves encoders, one after another, on this thread's message port (or on `scope`: encoders with
 * `host: "caller"` are served on the caller's own thread, see caller_thread.ts).
 */
export function serveEncoders(
  factories: BackendFactories,
  services: ThreadServices = {},
  scope: WorkerScope = globalThis as unknown as WorkerScope,
): void {
  let backend: WorkerBackend | undefined;
  let batch: WorkerPacket[] = [];
  let timer: ReturnType<typeof setInterval> | undefined;
  let failed = false;
  /** A message is being handled, or a timed poll is still waiting for its calls. */
  let handling = false;
  let polling: Promise<void> | undefined;

  const emit = (p: WorkerPacket) => void batch.push(p);
  const post = () => {
    if (batch.length === 0) return;
    const packets = batch;
    batch = [];
    scope.postMessage({ t: "packets", packets }, packets.map((p) => p.data.buffer as ArrayBuffer));
  };
  const stopPolling = () => {
    if (timer !== undefined) clearInterval(timer);
    timer = undefined;
  };
  const fail = (e: unknown) => {
    failed = true;
    stopPolling();
    post();
    const code = e instanceof EncoderError ? e.code : "NATIVE_ERROR";
    const message = e instanceof Error ? e.message : String(e);
    scope.postMessage({ t: "error", code, message });
  };

  // Messages are handled strictly one after another, even though init is async.
  let chain: Promise<void> = Promise.resolve();
  // Frames are read in place: each message's handling is chained and the promise returned, and a frame's
  // space is released as soon as the library has copied it.
  scope.inPlaceMessages = true;
  scope.onmessage = (e) => {
    const msg = e.data;
    // Frames not yet flushed are dropped at a close: a flush or send still under way need not go on.
    if (msg.t === "close") backend?.abandon?.();
    chain = chain.then(async () => {
      // A timed poll's calls may still be out (on the caller's thread they are awaited): the backend
      // takes one call sequence at a time.
      if (polling) await polling;
      handling = true;
      try {
        await handle(msg, e.release);
      } finally {
        handling = false;
      }
    }).catch(fail);
    return chain;
  };

  /** Collects ready packets between messages; skipped while a message or an earlier poll is under way. */
  const timedPoll = (b: WorkerBackend) => {
    if (handling || polling || failed || backend !== b) return;
    polling = (async () => {
      try {
        await b.poll(emit);
        post();
      } catch (e) {
        fail(e);
      } finally {
        polling = undefined;
      }
    })();
  };

  /**
   * Releases free native memory, best effort: it belongs to no encoder, so a failure must not fail the
   * thread (a failed thread ignores everything up to its next close, and the next encoder's set-up then
   * went unanswered until its stall deadline).
   */
  async function releaseMemory(): Promise<void> {
    try {
      await services.releaseMemory?.();
    } catch {
      // Nothing was released; the next release tries again.
    }
  }

  async function handle(msg: ToWorker, release?: () => void): Promise<void> {
    if (failed && msg.t !== "close") return;
    switch (msg.t) {
      case "setup": {
        setNativeLock(msg.lock);
        return;
      }
      case "init": {
        const started = performance.now();
        backend = await factories[msg.backend]();
        const { sequenceHeader, version, nativeMs, libraryImage } = await backend.init(msg.config);
        const threadMs = performance.now() - started;
        scope.postMessage({ t: "ready", sequenceHeader, version, nativeMs, threadMs, libraryImage }, [
          sequenceHeader.buffer as ArrayBuffer,
        ]);
        return;
      }
      case "frame": {
        const b = backend!;
        await b.send(msg.data, msg.keyFrame, emit, msg.qp);
        // The library has its own copy of the frame now: its bytes' space goes back to the caller before
        // the caller hears of it, so that its next frame goes where this one was.
        release?.();
        // A frame that came in a buffer of its own (transferred) is freed now rather than at this thread's
        // next garbage collection (Bun: a few MB of peak RSS at 720p).
        const buffer = msg.data.buffer;
        if (!scope.sharesMemory && !(buffer instanceof SharedArrayBuffer)) {
          (buffer as ArrayBuffer & { transfer?: (length: number) => ArrayBuffer }).transfer?.(0);
        }
        // Packets made while sending go out before the acceptance, so that the caller's output-side
        // backpressure already counts them when its encode() resolves.
        post();
        scope.postMessage({ t: "accepted", id: msg.id });
        await b.poll(emit);
        post();
        timer ??= setInterval(() => timedPoll(b), POLL_MS);
        return;
      }
      case "flush": {
        stopPolling();
        // Hand packets over as they come so that a long drain streams instead of arriving at once: the
        // first at once (with a short clip every packet comes out in the drain, and the first one is what
        // a response waits for), then at most one message per poll interval or per 8 packets.
        let postedAt = -Infinity;
        await backend!.finish((p) => {
          emit(p);
          const now = performance.now();
          if (batch.length >= 8 || now - postedAt >= POLL_MS) {
            post();
            postedAt = now;
          }
        });
        post();
        scope.postMessage({ t: "flushed" });
        return;
      }
      case "close": {
        stopPolling();
        try {
          await backend?.close();
        } finally {
          // The thread is free for the next encoder.
          backend = undefined;
          batch = [];
          failed = false;
          scope.postMessage({ t: "closed" });
        }
        // After the answer: the caller need not wait for it, and the next message waits its turn anyway.
        if (msg.releaseMemory) await releaseMemory();
        return;
      }
      case "release-memory": {
        await releaseMemory();
        return;
      }
      case "block": {
        await services.block?.(msg.ms);
        scope.postMessage({ t: "unblocked" });
        return;
      }
      case "exit": {
        scope.onmessage = null;
        scope.close();
        return;
      }
    }
  }
}
