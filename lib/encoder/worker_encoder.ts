/**
 * The caller's side of an encoder whose native calls run in a Worker: ordering, backpressure, timestamps,
 * the packet iterator and the life cycle shared by both backends.
 * @module
 */
import { ffiRuntime } from "../../ffi/runtime/mod.ts";
import { findSequenceHeader } from "../av1/obu.ts";
import { EncoderError } from "../errors.ts";
import type {
  EncodeOptions,
  Encoder,
  EncoderSetupTimes,
  Frame,
  LibraryImage,
  Packet,
  Rational,
  VideoInfo,
} from "../types.ts";
import type { FromWorker, ToWorker, WorkerPacket } from "./protocol.ts";
import { encoderThreads, type ThreadLease } from "./thread_pool.ts";

/** Options every backend shares for how it talks to its worker. */
export interface HostOptions {
  /**
   * How many encoded packets may wait for the `packets()` consumer before `encode()` stops resolving.
   * Default 32. This is what holds a producer back when nobody reads the output.
   */
  maxQueuedPackets?: number;
  /**
   * Where the encoder's native calls run. `"pool"` (default): on a pooled encoder thread. `"caller"`
   * (Deno only): on the caller's own thread, with the calls that block (SVT-AV1's `send_picture`, its
   * `init`, the end-of-stream wait and `deinit`; rav1e's `receive_packet`, which encodes) made as Deno's
   * nonblocking calls, which run on Deno's blocking-call threads. No second JavaScript isolate starts and
   * no frame is copied: about 150 MB less peak RSS for the command line at 720p (bench/results.md,
   * "Memory"). A frame's buffer is given away as with the pool (detached, and freed once the library
   * has its copy). Costs: as root, SVT-AV1's set-up runs on the caller's thread, holding its event loop
   * for that long (the effective user id that keeps the library's threads from real-time scheduling can
   * only be set for this thread); and a native call that never returns is reported (`STALLED`) but keeps
   * one of Deno's blocking-call threads. Bun and Node have no nonblocking calls: there it is an
   * `INVALID_CONFIG` error.
   */
  host?: "pool" | "caller";
}

/** Encoder start-ups in this thread, one after another. */
let startQueue: Promise<void> = Promise.resolve();

interface Pending {
  resolve(): void;
  reject(e: unknown): void;
}

type State = "open" | "flushing" | "flushed" | "closed" | "failed";

/** What a backend tells the host about itself. */
export interface HostSetup {
  /** The codec's name in packets and stats. */
  codec: "svt-av1" | "rav1e";
  /** Which native library the thread opens and which backend it runs; named in errors. */
  library: "svt-av1" | "rav1e";
  /** The frames the encoder takes. */
  info: VideoInfo;
  /** Bytes of one frame in that geometry; `encode()` refuses any other size. */
  frameSize: number;
  /** The backend's configuration, sent to its thread as it starts (structured-clonable). */
  initConfig: unknown;
  /** Queue depth and the other options the caller gave. */
  options: HostOptions;
}

/** Base of {@linkcode SvtAv1Encoder} and {@linkcode Rav1eEncoder}. */
export abstract class WorkerEncoder implements Encoder {
  readonly codec: "svt-av1" | "rav1e";
  readonly info: VideoInfo;
  readonly frameSize: number;
  #library: "svt-av1" | "rav1e";
  #lease: ThreadLease | undefined;
  /** The native calls run on this thread (`host: "caller"`). */
  #caller: boolean;
  #state: State = "open";
  #error: EncoderError | undefined;
  #sequenceHeader: Uint8Array = new Uint8Array(0);
  #version = "";
  #libraryImage: LibraryImage = { kind: "shared", isolated: true };
  #setupTimes: EncoderSetupTimes = { totalMs: 0, threadMs: 0, libraryMs: 0 };
  #nextId = 0;
  #accepted = new Map<number, Pending>();
  /** Timestamp and duration of each frame not yet out, by input position. */
  #timestamps = new Map<number, { timestamp: number; duration: number }>();
  #framesIn = 0;
  #packetsOut = 0;
  #queue: Packet[] = [];
  #maxQueued: number;
  #spaceWaiters: (() => void)[] = [];
  #packetWaiter: Pending | undefined;
  #iterating = false;
  #flushWaiter: Pending | undefined;
  #closeWaiter: Pending | undefined;
  #readyWaiter: Pending | undefined;
  #closing: Promise<void> | undefined;
  #keyFrameRequested = false;
  #inBandHeader = false;

  /** Sets the encoder up on the caller's side; subclasses then call {@linkcode start} from `create()`. */
  protected constructor(setup: HostSetup) {
    this.codec = setup.codec;
    this.#library = setup.library;
    this.info = setup.info;
    this.frameSize = setup.frameSize;
    this.#maxQueued = Math.max(1, setup.options.maxQueuedPackets ?? 32);
    const host = setup.options.host;
    if (host !== undefined && host !== "pool" && host !== "caller") {
      throw new EncoderError("INVALID_CONFIG", `host must be "pool" or "caller", got ${String(host)}`, {
        library: setup.library,
      });
    }
    this.#caller = host === "caller";
  }

  /**
   * Takes an encoder thread from the pool and opens the encoder there; resolves once it is ready or
   * rejects with its error (the thread then goes back to the pool).
   */
  protected async start(initConfig: unknown): Promise<void> {
    const began = performance.now();
    if (this.#caller && !(await ffiRuntime()).nonblockingCalls) {
      throw new EncoderError(
        "INVALID_CONFIG",
        `host "caller" needs Deno's nonblocking FFI calls; in ${(await ffiRuntime()).name} encoders run on `
          + "pooled threads: leave host out",
        { library: this.#library },
      );
    }
    const lease = this.#lease = this.#caller
      ? await encoderThreads.acquireCaller()
      : await encoderThreads.acquire();
    lease.onmessage = (msg) => this.#onMessage(msg);
    lease.onlost = (error) =>
      this.#fail(new EncoderError(error.code, error.message, { library: this.#library }));
    // One encoder starts at a time in this thread: SVT-AV1 fills tables shared by the whole process while
    // it initialises, and concurrent start-ups made it report "Pointer ... is set before" errors.
    const started = startQueue.then(() =>
      new Promise<void>((resolve, reject) => {
        this.#readyWaiter = { resolve, reject };
        this.#post({ t: "init", backend: this.#library, config: initConfig });
      })
    );
    startQueue = started.catch(() => {});
    try {
      await started;
      this.#setupTimes.totalMs = performance.now() - began;
    } catch (e) {
      // Frees what the backend made before it failed and gives the thread back.
      await this.close();
      throw e;
    }
  }

  get fps(): Rational {
    return this.info.fps;
  }

  /**
   * Where the time of `create()` went, in milliseconds: `totalMs` from the call to the encoder being ready
   * (waiting for a pooled thread and for another encoder's start-up included), `threadMs` on the encoder
   * thread (the library opened on first use, the settings applied), and `libraryMs` in the library's own
   * set-up calls alone (SVT-AV1 `init_handle` to `init` and the stream header, rav1e's configuration to
   * `rav1e_context_new` and the sequence header). `totalMs - libraryMs` is what this module adds.
   *
   * @example
   * ```ts
   * import { SvtAv1Encoder } from "av1-stream";
   * await using enc = await SvtAv1Encoder.create({ width: 64, height: 64, preset: 12 });
   * console.log(enc.setupTimes.totalMs - enc.setupTimes.libraryMs, "ms of ours");
   * ```
   */
  get setupTimes(): Readonly<EncoderSetupTimes> {
    return this.#setupTimes;
  }

  /** The library version string, e.g. "v1.4.1". */
  get version(): string {
    return this.#version;
  }

  /**
   * Which loaded image of the library the encoder runs on. SVT-AV1 keeps process-wide state that one
   * encoder's set-up overwrites while another encodes, so each SVT-AV1 encoder runs on a private copy of
   * the library that no other live encoder holds (`kind: "private"`); `isolated` is false, with the
   * `reason`, where no copy could be made. rav1e encoders share the one image.
   */
  get libraryImage(): Readonly<LibraryImage> {
    return this.#libraryImage;
  }

  get closed(): boolean {
    return this.#state === "closed";
  }

  /** Frames accepted so far. */
  get framesEncoded(): number {
    return this.#framesIn;
  }

  /**
   * The sequence header OBU: the library's stream header until the first key frame is out, then the one
   * that key frame carries (what decoders and containers must see).
   */
  sequenceHeader(): Uint8Array {
    return this.#sequenceHeader.slice();
  }

  requestKeyFrame(): void {
    this.#keyFrameRequested = true;
  }

  #post(msg: ToWorker, transfer: Transferable[] = []) {
    this.#lease?.post(msg, transfer);
  }

  #usable(what: string) {
    if (this.#state === "closed") {
      throw new EncoderError(
        "CLOSED",
        `Cannot ${what}: the ${this.codec} encoder is closed; create a new one`,
        {
          library: this.#library,
        },
      );
    }
    if (this.#state === "failed") throw this.#error!;
  }

  async encode(frame: Frame, options: EncodeOptions & { transfer?: boolean } = {}): Promise<void> {
    this.#usable("encode");
    if (this.#state !== "open") {
      throw new EncoderError(
        "INVALID_STATE",
        `Cannot encode after flush(): the ${this.codec} stream has ended; create a new encoder for more frames`,
        { library: this.#library },
      );
    }
    const data = frame?.data;
    if (!(data instanceof Uint8Array)) {
      throw new EncoderError("INVALID_FRAME", "Frame data must be a Uint8Array of planar YUV samples", {
        library: this.#library,
      });
    }
    if (data.byteLength !== this.frameSize) {
      const { width, height, bitDepth, chroma } = this.info;
      throw new EncoderError(
        "INVALID_FRAME",
        `Frame has ${data.byteLength} bytes but ${width}x${height} ${chroma} at ${bitDepth} bits needs ${this.frameSize}: `
          + "pass planar Y, U, V planes without padding (16-bit little-endian samples above 8 bits)",
        { library: this.#library },
      );
    }
    // Both backends make every requested key frame (SVT-AV1 1.4 by starting a new session if it must).
    const keyFrame = options.keyFrame === true || this.#keyFrameRequested;
    this.#keyFrameRequested = false;
    // The buffer is transferred to the worker when the frame owns all of it; otherwise it is copied.
    const owns = data.byteOffset === 0 && data.buffer.byteLength === data.byteLength
      && !(typeof SharedArrayBuffer !== "undefined" && data.buffer instanceof SharedArrayBuffer);
    const transfer = options.transfer !== false && owns;
    // On the caller's thread the library reads the frame where it is: a frame given away moves into a
    // buffer of the encoder's (detaching the caller's, as a transfer does, without a copy) and is freed
    // as soon as the library has its own copy; a frame kept by the caller is read in place, since
    // encode() resolves only after that.
    const moved = this.#caller && transfer
      ? (data.buffer as ArrayBuffer & { transfer(): ArrayBuffer }).transfer()
      : undefined;
    const payload = moved ? new Uint8Array(moved) : this.#caller ? data : transfer ? data : data.slice();
    const id = this.#nextId++;
    this.#timestamps.set(this.#framesIn, {
      timestamp: frame.timestamp ?? this.#framesIn,
      duration: frame.duration ?? 1,
    });
    this.#framesIn++;
    const accepted = new Promise<void>((resolve, reject) => this.#accepted.set(id, { resolve, reject }));
    const qp = options.qp;
    this.#post({ t: "frame", id, data: payload, keyFrame, ...(qp === undefined ? {} : { qp }) }, [
      payload.buffer as ArrayBuffer,
    ]);
    await accepted;
    // The library has its copy: the memory goes back now, not at the next GC. (Not on failure: a call
    // may still be reading it; the backend keeps it referenced until the call returns.)
    (moved as (ArrayBuffer & { transfer(length: number): ArrayBuffer }) | undefined)?.transfer(0);
    // Backpressure from the output side: wait while the consumer is behind.
    while (this.#queue.length >= this.#maxQueued && !this.#stopped()) {
      await new Promise<void>((r) => this.#spaceWaiters.push(r));
    }
    if (this.#error) throw this.#error;
  }

  async flush(): Promise<void> {
    this.#usable("flush");
    if (this.#state === "flushed") return;
    if (this.#state === "flushing") return this.#flushedPromise;
    this.#state = "flushing";
    this.#flushedPromise = new Promise<void>((resolve, reject) => (this.#flushWaiter = { resolve, reject }));
    this.#post({ t: "flush" });
    return this.#flushedPromise;
  }
  #flushedPromise: Promise<void> | undefined;

  async *packets(): AsyncIterableIterator<Packet> {
    if (this.#iterating) {
      throw new EncoderError("INVALID_STATE", "packets() is already being iterated: use one consumer", {
        library: this.#library,
      });
    }
    this.#iterating = true;
    try {
      while (true) {
        const p = this.#queue.shift();
        if (p) {
          this.#wakeProducers();
          yield p;
          continue;
        }
        if (this.#state === "failed") throw this.#error!;
        if (this.#state === "flushed" || this.#state === "closed") return;
        await new Promise<void>((resolve, reject) => (this.#packetWaiter = { resolve, reject }));
      }
    } finally {
      this.#iterating = false;
    }
  }

  /** State read through a method so that checks after an await are not narrowed away. */
  #stopped(): boolean {
    return this.#state === "failed" || this.#state === "closed";
  }

  #wakeProducers() {
    if (this.#queue.length >= this.#maxQueued) return;
    const waiters = this.#spaceWaiters;
    this.#spaceWaiters = [];
    for (const w of waiters) w();
  }

  #wakeConsumer() {
    const w = this.#packetWaiter;
    this.#packetWaiter = undefined;
    w?.resolve();
  }

  #onPackets(packets: WorkerPacket[]) {
    for (const p of packets) {
      if (!this.#inBandHeader && p.keyFrame) {
        // The library's stream header can differ from what the encoder then writes (SVT-AV1 1.4 flags
        // coding tools differently at fast presets): the first key frame's header is the real one.
        const header = findSequenceHeader(p.data);
        if (header) this.#sequenceHeader = header.slice();
        this.#inBandHeader = true;
      }
      const index = p.frameIndex ?? this.#packetsOut;
      const t = this.#timestamps.get(index) ?? { timestamp: index, duration: 1 };
      this.#timestamps.delete(index);
      this.#packetsOut++;
      this.#queue.push({ data: p.data, timestamp: t.timestamp, duration: t.duration, keyFrame: p.keyFrame });
    }
    this.#wakeConsumer();
  }

  #onMessage(msg: FromWorker) {
    switch (msg.t) {
      case "ready":
        this.#sequenceHeader = msg.sequenceHeader;
        this.#version = msg.version;
        if (msg.libraryImage) this.#libraryImage = msg.libraryImage;
        this.#setupTimes.threadMs = msg.threadMs;
        this.#setupTimes.libraryMs = msg.nativeMs;
        this.#readyWaiter?.resolve();
        this.#readyWaiter = undefined;
        return;
      case "accepted": {
        const p = this.#accepted.get(msg.id);
        this.#accepted.delete(msg.id);
        p?.resolve();
        return;
      }
      case "packets":
        this.#onPackets(msg.packets);
        return;
      case "flushed":
        if (this.#state === "flushing") this.#state = "flushed";
        this.#flushWaiter?.resolve();
        this.#flushWaiter = undefined;
        this.#wakeConsumer();
        return;
      case "closed":
        this.#closeWaiter?.resolve();
        this.#closeWaiter = undefined;
        return;
      case "error":
        this.#fail(new EncoderError(msg.code, msg.message, { library: this.#library }));
        return;
    }
  }

  #fail(error: EncoderError) {
    if (this.#state === "closed") return;
    this.#error = error;
    this.#state = "failed";
    this.#rejectAll(error);
  }

  #rejectAll(error: EncoderError) {
    for (const p of this.#accepted.values()) p.reject(error);
    this.#accepted.clear();
    this.#readyWaiter?.reject(error);
    this.#readyWaiter = undefined;
    this.#flushWaiter?.reject(error);
    this.#flushWaiter = undefined;
    this.#closeWaiter?.resolve();
    this.#closeWaiter = undefined;
    this.#packetWaiter?.reject(error);
    this.#packetWaiter = undefined;
    const waiters = this.#spaceWaiters;
    this.#spaceWaiters = [];
    for (const w of waiters) w();
  }

  /**
   * Stops the encoder and frees it. Frames not yet flushed are dropped; call `flush()` first to keep
   * them. Idempotent; pending `encode()` calls reject with a CLOSED error.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const lease = this.#lease;
      const closedError = new EncoderError("CLOSED", `The ${this.codec} encoder was closed`, {
        library: this.#library,
      });
      this.#state = "closed";
      for (const p of this.#accepted.values()) p.reject(closedError);
      this.#accepted.clear();
      this.#flushWaiter?.reject(closedError);
      this.#flushWaiter = undefined;
      this.#wakeConsumer();
      for (const w of this.#spaceWaiters.splice(0)) w();
      if (lease?.usable) {
        // The thread frees the native encoder, then it is free for the next one. If the thread is lost
        // meanwhile, the wait ends too (see #rejectAll).
        await new Promise<void>((resolve, reject) => {
          this.#closeWaiter = { resolve, reject };
          this.#post({ t: "close", releaseMemory: lease.claimMemoryRelease() });
        });
        lease.release();
      }
    })();
    return this.#closing;
  }

  /** Closes the encoder, as {@linkcode close} does, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Starts closing the encoder without waiting, for `using`. */
  [Symbol.dispose](): void {
    void this.close();
  }
}
