/**
 * The encoder threads: a small pool of long-lived threads on which encoders make their native calls.
 * Creating an encoder takes a thread from the pool (starting one only when none is free) and closing it
 * frees the native encoder and gives the thread back, with its libraries still open. Threads are never
 * started and stopped per encode: that churn was slow (the thread's modules and libraries loaded for
 * every encoder) and it was where Bun crashed under load (see docs/bun-crash.md).
 *
 * Idle threads do not keep the process alive. A thread whose native call answers nothing for
 * `stallTimeoutMs` (a hung library, an end of stream that never comes) is given up: its encoder fails with
 * a `STALLED` error, and the next encoder gets a new thread.
 * @module
 */
import { ffiRuntime, loadedRuntime, type NativeThread, startThread } from "../../ffi/runtime/mod.ts";
import { EncoderError } from "../errors.ts";
import type { FromWorker, ToWorker } from "./protocol.ts";

/** How the encoder threads are sized and watched. Set with {@linkcode configureEncoderThreads}. */
export interface EncoderThreadOptions {
  /** Threads kept ready between encodes. Default: one per core. */
  threads?: number;
  /**
   * Most threads at once. One thread hosts one encoder at a time: with more encoders open than `threads`,
   * more threads are started up to this bound, and encoders beyond it wait for one to be closed.
   * Default 64.
   */
  maxThreads?: number;
  /** A thread above `threads` ends after this long without an encoder. Default 10 000 ms. */
  idleTimeoutMs?: number;
  /**
   * A native call that gives no sign of progress for this long is stuck: its encoder fails with a
   * `STALLED` error and its thread is replaced. Default 60 000 ms; 0 turns the watch off.
   */
  stallTimeoutMs?: number;
  /**
   * Hands the free pages of the native heap back to the system after encoders are freed (glibc's
   * `malloc_trim`; nothing elsewhere): at most once a second while encoders come and go, and once more
   * when no encoder has been freed for a moment. Each encoder thread, and each of the library's own
   * threads, gets a malloc arena of its own, and freed encoder memory otherwise stays resident in those
   * arenas: an encode service's RSS grew to several times what its encoders use (bench/results.md,
   * "Encoder cycles" and "HTTP service memory"). Default true.
   */
  releaseMemory?: boolean;
}

/** What the encoder threads are doing, from {@linkcode encoderThreadStats}. */
export interface EncoderThreadStats {
  /** Threads alive now. */
  threads: number;
  /** Threads with no encoder. */
  idle: number;
  /** Threads hosting an encoder. */
  busy: number;
  /** Encoders waiting for a thread (all `maxThreads` busy). */
  waiting: number;
  /** Threads started since the process began. */
  started: number;
  /** Threads ended because they were idle above `threads` or on request. */
  ended: number;
  /** Threads given up because they failed or stalled. */
  lost: number;
  /** Encoders hosted since the process began. */
  leases: number;
  /**
   * Times the native heap's free memory was handed back to the system since the process began
   * (`EncoderThreadOptions.releaseMemory`).
   */
  memoryReleases: number;
}

const entry = new URL("./encoder_thread.ts", import.meta.url);

/** Messages that answer one message each: a native call that finished. */
const answers = new Set<FromWorker["t"]>(["ready", "accepted", "flushed", "closed", "unblocked"]);

/** Free native memory is released at most this often while encoders come and go. */
const MEMORY_RELEASE_INTERVAL_MS = 1000;
/** …and once no encoder has been freed for this long. */
const QUIET_MEMORY_RELEASE_MS = 200;

/** The lock SVT-AV1's set-up and tear-down share across this pool's threads (see native_lock.ts). */
const nativeLock = new SharedArrayBuffer(4);

class PooledThread {
  readonly thread: NativeThread;
  lease: ThreadLease | undefined;
  idleTimer: ReturnType<typeof setTimeout> | undefined;
  gone = false;
  /** The caller's own thread (`host: "caller"`): hosts one encoder and is never pooled. */
  readonly caller: boolean;

  constructor(pool: EncoderThreadPool, thread?: NativeThread) {
    this.caller = thread !== undefined;
    this.thread = thread ?? startThread(entry);
    this.thread.onmessage = (e: MessageEvent<FromWorker>) => this.lease?.deliver(e.data);
    this.thread.onerror = (e: ErrorEvent) => {
      e.preventDefault?.();
      pool.lose(this, new EncoderError("WORKER_ERROR", `An encoder thread failed: ${e.message}`));
    };
    this.thread.postMessage({ t: "setup", lock: nativeLock } satisfies ToWorker);
  }
}

/** One encoder's use of a pooled thread, from taking it to giving it back. */
export class ThreadLease {
  /** Receives every message of the thread while the lease holds it. */
  onmessage: (msg: FromWorker) => void = () => {};
  /** Called once if the thread is lost (failed or stalled) while the lease holds it. */
  onlost: (error: EncoderError) => void = () => {};
  #pool: EncoderThreadPool;
  #pooled: PooledThread;
  #pending = 0;
  #watch: ReturnType<typeof setTimeout> | undefined;
  #stallMs: number;
  #done = false;

  /** @internal */
  constructor(pool: EncoderThreadPool, pooled: PooledThread, stallMs: number) {
    this.#pool = pool;
    this.#pooled = pooled;
    this.#stallMs = stallMs;
  }

  /** False once the thread was lost or given back. */
  get usable(): boolean {
    return !this.#done && !this.#pooled.gone;
  }

  /** Sends a message to the thread; a message that starts a native call is watched until it answers. */
  post(msg: ToWorker, transfer: Transferable[] = []): void {
    if (!this.usable) return;
    if (msg.t !== "exit") {
      this.#pending++;
      this.#rearm();
    }
    this.#pooled.thread.postMessage(msg, transfer);
  }

  /** @internal */
  deliver(msg: FromWorker): void {
    if (this.#done) return;
    if (answers.has(msg.t)) this.#pending = Math.max(0, this.#pending - 1);
    // After an error the thread answers nothing until it is told to close.
    else if (msg.t === "error") this.#pending = 0;
    // Any message is progress: packets during a long flush keep the watch from firing.
    this.#rearm();
    this.onmessage(msg);
  }

  #rearm(): void {
    if (this.#watch !== undefined) clearTimeout(this.#watch);
    this.#watch = undefined;
    if (this.#pending === 0 || this.#stallMs <= 0 || this.#done) return;
    this.#watch = setTimeout(() => {
      this.#watch = undefined;
      this.#pool.lose(
        this.#pooled,
        new EncoderError(
          "STALLED",
          `A native call of the encoder gave no sign of progress for ${this.#stallMs} ms: the library is stuck. `
            + "Its thread was given up and this encoder cannot go on; create a new one "
            + "(configureEncoderThreads({ stallTimeoutMs }) sets the limit)",
        ),
      );
    }, this.#stallMs);
  }

  /** @internal The thread was lost: stop watching and tell the holder. */
  lost(error: EncoderError): void {
    if (this.#done) return;
    this.#done = true;
    this.#rearm();
    this.onlost(error);
  }

  /**
   * Whether the `close` about to be sent should release the native heap's free pages afterwards (see
   * `EncoderThreadOptions.releaseMemory`); asking counts as releasing.
   */
  claimMemoryRelease(): boolean {
    return this.#pool.claimMemoryRelease();
  }

  /** Gives the thread back to the pool. Call after the thread answered `close` (its encoder is freed). */
  release(): void {
    if (this.#done) return;
    this.#done = true;
    this.#rearm();
    this.#pool.release(this.#pooled);
  }
}

/** The pool behind every encoder of this thread (see the module's description). */
export class EncoderThreadPool {
  #options: Required<EncoderThreadOptions> | undefined;
  #given: EncoderThreadOptions = {};
  #all = new Set<PooledThread>();
  #idle: PooledThread[] = [];
  #waiting: ((t: PooledThread) => void)[] = [];
  #started = 0;
  #ended = 0;
  #lost = 0;
  #leases = 0;
  /** When free native memory was last released, and whether encoders were freed since. */
  #releasedAt = -Infinity;
  #unreleased = false;
  #memoryReleases = 0;
  #quietRelease: ReturnType<typeof setTimeout> | undefined;

  /** Changes how threads are sized and watched; applies from the next encoder on. */
  configure(options: EncoderThreadOptions): void {
    for (const [key, value] of Object.entries(options)) {
      if (key === "releaseMemory") {
        if (value !== undefined && typeof value !== "boolean") {
          throw new EncoderError(
            "INVALID_CONFIG",
            `Encoder thread option releaseMemory must be true or false, got ${String(value)}`,
          );
        }
        continue;
      }
      if (value !== undefined && (typeof value !== "number" || !(value >= 0) || !Number.isFinite(value))) {
        throw new EncoderError(
          "INVALID_CONFIG",
          `Encoder thread option ${key} must be a number of 0 or more, got ${String(value)}`,
        );
      }
    }
    if (options.maxThreads !== undefined && options.maxThreads < 1) {
      throw new EncoderError("INVALID_CONFIG", "Encoder thread option maxThreads must be at least 1");
    }
    this.#given = { ...this.#given, ...options };
    this.#options = undefined;
  }

  #opts(): Required<EncoderThreadOptions> {
    if (!this.#options) {
      const g = this.#given;
      const maxThreads = Math.floor(g.maxThreads ?? 64);
      this.#options = {
        threads: Math.min(maxThreads, Math.floor(g.threads ?? Math.max(1, loadedRuntime().cpuCount()))),
        maxThreads,
        idleTimeoutMs: g.idleTimeoutMs ?? 10_000,
        stallTimeoutMs: g.stallTimeoutMs ?? 60_000,
        releaseMemory: g.releaseMemory ?? true,
      };
    }
    return this.#options;
  }

  /** Numbers of threads by state, and totals since the process began. */
  stats(): EncoderThreadStats {
    const idle = this.#idle.length;
    return {
      threads: this.#all.size,
      idle,
      busy: this.#all.size - idle,
      waiting: this.#waiting.length,
      started: this.#started,
      ended: this.#ended,
      lost: this.#lost,
      leases: this.#leases,
      memoryReleases: this.#memoryReleases,
    };
  }

  /** Takes a thread for one encoder, starting one if none is free and the bound allows. */
  async acquire(): Promise<ThreadLease> {
    const opts = this.#opts();
    let pooled = this.#idle.pop();
    if (!pooled && this.#all.size < opts.maxThreads) pooled = this.#start();
    if (!pooled) pooled = await new Promise<PooledThread>((resolve) => this.#waiting.push(resolve));
    return this.#lease(pooled);
  }

  /**
   * Starts threads until `threads` are ready and waits until each has loaded its modules, so that the
   * next encoders start without that cost (an encode service calls this at start-up).
   */
  async warm(): Promise<void> {
    const opts = this.#opts();
    const leases: ThreadLease[] = [];
    while (this.#all.size < opts.threads) leases.push(this.#lease(this.#start()));
    await Promise.all(leases.map((lease) =>
      new Promise<void>((resolve) => {
        lease.onmessage = (m) => {
          if (m.t === "unblocked") resolve();
        };
        lease.onlost = () => resolve();
        lease.post({ t: "block", ms: 0 });
      })
    ));
    for (const lease of leases) lease.release();
  }

  /**
   * Starts threads until `count` are alive, without waiting for them to load: the next encoders take them
   * as they are, and their `init` waits in the thread's queue until it has loaded.
   */
  prestart(count?: number): void {
    const opts = this.#opts();
    const target = Math.min(count ?? opts.threads, opts.maxThreads);
    while (this.#all.size < target) {
      const pooled = this.#start();
      pooled.thread.unref();
      this.#idle.push(pooled);
    }
  }

  /**
   * A lease on the caller's own thread for one encoder (`host: "caller"`, Deno only): its native calls
   * that block are Deno's nonblocking calls, watched for stalls like a pooled thread's.
   */
  async acquireCaller(): Promise<ThreadLease> {
    const { CallerThread } = await import("./caller_thread.ts");
    const pooled = new PooledThread(this, new CallerThread());
    this.#leases++;
    const lease = new ThreadLease(this, pooled, this.#opts().stallTimeoutMs);
    pooled.lease = lease;
    return lease;
  }

  #lease(pooled: PooledThread): ThreadLease {
    if (pooled.idleTimer !== undefined) clearTimeout(pooled.idleTimer);
    pooled.idleTimer = undefined;
    pooled.thread.ref();
    this.#leases++;
    const lease = new ThreadLease(this, pooled, this.#opts().stallTimeoutMs);
    pooled.lease = lease;
    return lease;
  }

  #start(): PooledThread {
    const pooled = new PooledThread(this);
    this.#all.add(pooled);
    this.#started++;
    return pooled;
  }

  /** @internal See {@linkcode ThreadLease.claimMemoryRelease}. */
  claimMemoryRelease(): boolean {
    if (!this.#opts().releaseMemory) return false;
    const now = Date.now();
    // One release is for the whole process (every arena): more often than this only costs time, as each
    // next encoder then faults its pages in again.
    if (now - this.#releasedAt < MEMORY_RELEASE_INTERVAL_MS) {
      this.#unreleased = true;
      return false;
    }
    this.#noteRelease(now);
    return true;
  }

  /** A release of the native heap's free memory is on its way: none is owed until encoders are freed again. */
  #noteRelease(at: number): void {
    this.#releasedAt = at;
    this.#unreleased = false;
    this.#memoryReleases++;
  }

  /**
   * Once no encoder has been given back for a moment, releases what the last ones left, whether or not
   * other threads are busy: an encode service keeps a spare encoder open (and live streams run for hours),
   * so waiting for every thread to be idle left the frees of the last second of a burst resident.
   */
  #releaseWhenQuiet(): void {
    if (!this.#unreleased) return;
    if (this.#quietRelease !== undefined) clearTimeout(this.#quietRelease);
    this.#quietRelease = setTimeout(() => {
      this.#quietRelease = undefined;
      const pooled = this.#idle[this.#idle.length - 1];
      // With no idle thread the next encoder given back arms this again.
      if (!this.#unreleased || !pooled) return;
      this.#noteRelease(Date.now());
      pooled.thread.postMessage({ t: "release-memory" } satisfies ToWorker);
    }, QUIET_MEMORY_RELEASE_MS);
    loadedRuntime().unrefTimer(this.#quietRelease);
  }

  /** @internal A lease gives its thread back. */
  release(pooled: PooledThread): void {
    pooled.lease = undefined;
    if (pooled.caller) pooled.gone = true;
    if (pooled.gone) return;
    const waiter = this.#waiting.shift();
    if (waiter) {
      waiter(pooled);
      return;
    }
    pooled.thread.unref();
    this.#idle.push(pooled);
    this.#releaseWhenQuiet();
    const opts = this.#opts();
    if (this.#all.size > opts.threads) {
      pooled.idleTimer = setTimeout(() => {
        pooled.idleTimer = undefined;
        if (!pooled.lease && this.#all.size > this.#opts().threads) this.#end(pooled);
      }, opts.idleTimeoutMs);
      loadedRuntime().unrefTimer(pooled.idleTimer);
    }
  }

  /** Ends an idle thread: it closes itself once its message port has nothing more to do. */
  #end(pooled: PooledThread): void {
    this.#forget(pooled);
    this.#ended++;
    pooled.thread.postMessage({ t: "exit" } satisfies ToWorker);
  }

  #forget(pooled: PooledThread): void {
    pooled.gone = true;
    this.#all.delete(pooled);
    const i = this.#idle.indexOf(pooled);
    if (i >= 0) this.#idle.splice(i, 1);
    if (pooled.idleTimer !== undefined) clearTimeout(pooled.idleTimer);
    pooled.idleTimer = undefined;
  }

  /**
   * @internal A thread failed or stalled: it leaves the pool at once, its encoder is told, and a waiting
   * encoder gets a new thread.
   */
  lose(pooled: PooledThread, error: EncoderError): void {
    if (pooled.gone) return;
    if (pooled.caller) {
      // Nothing to replace: a call stuck on one of Deno's blocking-call threads stays there.
      pooled.gone = true;
      pooled.thread.onmessage = null;
      const lease = pooled.lease;
      pooled.lease = undefined;
      lease?.lost(error);
      return;
    }
    this.#forget(pooled);
    this.#lost++;
    const lease = pooled.lease;
    pooled.lease = undefined;
    // A thread inside a native call cannot be stopped; terminating it would wait for the call (Deno) or
    // free memory under it. It is left to finish on its own, and it no longer keeps the process alive.
    pooled.thread.unref();
    pooled.thread.onmessage = null;
    if (error.code === "WORKER_ERROR") pooled.thread.terminate();
    lease?.lost(error);
    const waiter = this.#waiting.length > 0 && this.#all.size < this.#opts().maxThreads
      ? this.#waiting.shift()
      : undefined;
    if (waiter) waiter(this.#start());
  }

  /** Ends every idle thread now (threads with an encoder end when it closes, if above `threads`). */
  endIdle(): void {
    for (const pooled of [...this.#idle]) this.#end(pooled);
  }
}

/** The encoder threads of this JavaScript thread. */
export const encoderThreads: EncoderThreadPool = new EncoderThreadPool();

/**
 * Sets how many encoder threads are kept, how many may run at once and when a native call counts as
 * stuck. Applies from the next encoder on.
 *
 * @example
 * ```ts
 * import { configureEncoderThreads } from "./mod.ts";
 * configureEncoderThreads({ threads: 4, stallTimeoutMs: 120_000 });
 * ```
 */
export function configureEncoderThreads(options: EncoderThreadOptions): void {
  encoderThreads.configure(options);
}

/** What the encoder threads are doing: for a service's `/stats` and for leak checks. */
export function encoderThreadStats(): EncoderThreadStats {
  return encoderThreads.stats();
}

/**
 * Starts the encoder threads ahead of the first encoder (one per core unless configured) and waits until
 * they are ready, so that creating an encoder then costs only the library's own set-up.
 */
export async function warmEncoderThreads(): Promise<void> {
  await ffiRuntime();
  await encoderThreads.warm();
}

/**
 * Starts `count` encoder threads (one per core unless configured) and returns without waiting for them
 * to load, so that they load while the caller does other start-up work; the first encoders take them.
 */
export async function prestartEncoderThreads(count?: number): Promise<void> {
  await ffiRuntime();
  encoderThreads.prestart(count);
}
