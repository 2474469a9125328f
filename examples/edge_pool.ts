/**
 * The main side of the edge encode worker (`edge_worker.ts`): {@linkcode EdgeEncoder} drives one worker
 * with backpressure across the boundary, and {@linkcode EdgeEncoderPool} runs N independent streams on N
 * workers, so a stream whose reader stalls holds back only its own worker.
 *
 * ```sh
 * deno run -A examples/edge_pool.ts     # three streams on three workers
 * bun examples/edge_pool.ts
 * ```
 * @module
 */
import process from "node:process";
import { fileURLToPath } from "node:url";
import { EncoderError, type Frame, type Packet, testSource, type VideoInfo } from "../mod.ts";
import type { FromEdgeWorker, ToEdgeWorker } from "./edge_worker.ts";

/** What an edge stream encodes: the frame geometry plus backend settings (`codec` picks the backend). */
export type EdgeEncoderConfig =
  & Pick<VideoInfo, "width" | "height" | "fps">
  & Partial<VideoInfo>
  & { codec?: "svt-av1" | "rav1e" }
  & Record<string, unknown>;

/** Options of {@linkcode EdgeEncoder.create}. */
export interface EdgeEncoderOptions {
  /** Frames posted to the worker and not yet accepted by its encoder. Default 2. */
  maxInFlight?: number;
  /** Chunks the worker may post ahead of the reader of `chunks()`. Default 4. */
  maxQueuedChunks?: number;
  /** A worker to use (from a pool); default a new one, terminated on `close()`. */
  worker?: Worker;
}

interface Waiter {
  resolve(): void;
  reject(e: unknown): void;
}

/** Starts a new edge worker. */
export function startEdgeWorker(): Worker {
  return new Worker(new URL("./edge_worker.ts", import.meta.url), { type: "module" });
}

/**
 * One encoder in a Worker. `encode(frame)` transfers the frame's buffer (the frame is unusable after it)
 * and resolves when the worker's encoder accepted the frame; at most `maxInFlight` frames are on their way.
 * `chunks()` yields the encoded packets; the worker posts a chunk only when this side has room for it.
 *
 * @example
 * ```ts
 * import { EdgeEncoder } from "./edge_pool.ts";
 * import { testSource } from "../mod.ts";
 * const source = testSource({ width: 160, height: 120, frames: 10 });
 * const enc = await EdgeEncoder.create({ ...source.info, preset: 12 });
 * const pump = (async () => {
 *   for await (const frame of source.frames()) await enc.encode(frame);
 *   await enc.flush();
 * })();
 * let n = 0;
 * for await (const _chunk of enc.chunks()) n++;
 * await pump;
 * await enc.close();
 * console.log(`${n} chunks`);
 * ```
 */
export class EdgeEncoder {
  #worker: Worker;
  #ownsWorker: boolean;
  #maxInFlight: number;
  #maxQueued: number;
  #nextId = 0;
  #accepted = new Map<number, Waiter>();
  #slotWaiters: (() => void)[] = [];
  #queue: Packet[] = [];
  #chunkWaiter: Waiter | undefined;
  #ended = false;
  #error: Error | undefined;
  #flushWaiter: Waiter | undefined;
  #closeWaiter: (() => void) | undefined;
  #closing: Promise<void> | undefined;
  #iterating = false;
  #sequenceHeader: Uint8Array = new Uint8Array(0);
  #version = "";
  #codec: "svt-av1" | "rav1e" = "svt-av1";
  #framesIn = 0;
  #onRelease: (() => void) | undefined;

  private constructor(worker: Worker, owns: boolean, options: EdgeEncoderOptions) {
    this.#worker = worker;
    this.#ownsWorker = owns;
    this.#maxInFlight = Math.max(1, options.maxInFlight ?? 2);
    this.#maxQueued = Math.max(1, options.maxQueuedChunks ?? 4);
  }

  /** Starts an encoder in a worker (a new one unless `options.worker` is given). */
  static async create(config: EdgeEncoderConfig, options: EdgeEncoderOptions = {}): Promise<EdgeEncoder> {
    const worker = options.worker ?? startEdgeWorker();
    const enc = new EdgeEncoder(worker, !options.worker, options);
    try {
      await enc.#start(config);
    } catch (e) {
      if (!options.worker) worker.terminate();
      throw e;
    }
    return enc;
  }

  /** @internal Called by the pool to get its worker back after `close()`. */
  set onRelease(f: (() => void) | undefined) {
    this.#onRelease = f;
  }

  #start(config: EdgeEncoderConfig): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#worker.onmessage = (e: MessageEvent<FromEdgeWorker>) => {
        const msg = e.data;
        if (msg.t === "ready") {
          this.#sequenceHeader = msg.sequenceHeader;
          this.#version = msg.version;
          this.#codec = msg.codec;
          this.#worker.onmessage = (e: MessageEvent<FromEdgeWorker>) => this.#onMessage(e.data);
          this.#post({ t: "credit", n: this.#maxQueued });
          resolve();
        } else if (msg.t === "error") {
          reject(new EncoderError(msg.code as EncoderError["code"], msg.message));
        }
      };
      this.#worker.onerror = (e: ErrorEvent) => {
        e.preventDefault?.();
        const err = new EncoderError("WORKER_ERROR", `The edge worker failed: ${e.message}`);
        reject(err);
        this.#fail(err);
      };
      this.#post({ t: "init", config });
    });
  }

  /** Which backend encodes. */
  get codec(): "svt-av1" | "rav1e" {
    return this.#codec;
  }

  /** The library version, such as "v1.4.1". */
  get version(): string {
    return this.#version;
  }

  /** The encoder's sequence header OBU at start (for containers). */
  sequenceHeader(): Uint8Array {
    return this.#sequenceHeader.slice();
  }

  /** Frames posted and not yet accepted. */
  get inFlight(): number {
    return this.#accepted.size;
  }

  /** Chunks received and not yet read from `chunks()`. */
  get queuedChunks(): number {
    return this.#queue.length;
  }

  /** Frames accepted by the worker's encoder. */
  get framesEncoded(): number {
    return this.#framesIn;
  }

  #post(msg: ToEdgeWorker, transfer: Transferable[] = []) {
    this.#worker.postMessage(msg, transfer);
  }

  #usable() {
    if (this.#error) throw this.#error;
    if (this.#closing) throw new EncoderError("CLOSED", "The edge encoder is closed: create a new one");
  }

  /**
   * Sends a frame to the worker, transferring its buffer (copied first when the frame does not own all
   * of it). Resolves when the worker's encoder accepted it.
   */
  async encode(frame: Frame, options: { keyFrame?: boolean } = {}): Promise<void> {
    this.#usable();
    while (this.#accepted.size >= this.#maxInFlight) {
      await new Promise<void>((r) => this.#slotWaiters.push(r));
      this.#usable();
    }
    const d = frame.data;
    const owns = d.byteOffset === 0 && d.byteLength === d.buffer.byteLength
      && !(typeof SharedArrayBuffer !== "undefined" && d.buffer instanceof SharedArrayBuffer);
    const data = owns ? d : d.slice();
    const id = this.#nextId++;
    const accepted = new Promise<void>((resolve, reject) => this.#accepted.set(id, { resolve, reject }));
    this.#post({
      t: "frame",
      id,
      data,
      timestamp: frame.timestamp ?? id,
      duration: frame.duration ?? 1,
      keyFrame: options.keyFrame === true,
    }, [data.buffer as ArrayBuffer]);
    await accepted;
    this.#framesIn++;
  }

  /** End of stream: resolves when the encoder produced every packet; `chunks()` ends after the last. */
  flush(): Promise<void> {
    this.#usable();
    return new Promise<void>((resolve, reject) => {
      this.#flushWaiter = { resolve, reject };
      this.#post({ t: "flush" });
    });
  }

  /** The encoded packets in decode order; one reader. Ends after `flush()` and the last packet. */
  async *chunks(): AsyncIterableIterator<Packet> {
    if (this.#iterating) throw new EncoderError("INVALID_STATE", "chunks() is already being read");
    this.#iterating = true;
    try {
      while (true) {
        const p = this.#queue.shift();
        if (p) {
          this.#post({ t: "credit", n: 1 });
          yield p;
          continue;
        }
        if (this.#error) throw this.#error;
        if (this.#ended || this.#closing) return;
        await new Promise<void>((resolve, reject) => (this.#chunkWaiter = { resolve, reject }));
      }
    } finally {
      this.#iterating = false;
    }
  }

  #wakeReader() {
    const w = this.#chunkWaiter;
    this.#chunkWaiter = undefined;
    w?.resolve();
  }

  #onMessage(msg: FromEdgeWorker) {
    switch (msg.t) {
      case "accepted": {
        const w = this.#accepted.get(msg.id);
        this.#accepted.delete(msg.id);
        w?.resolve();
        this.#slotWaiters.shift()?.();
        return;
      }
      case "chunk":
        this.#queue.push({
          data: msg.data,
          timestamp: msg.timestamp,
          duration: msg.duration,
          keyFrame: msg.keyFrame,
        });
        this.#wakeReader();
        return;
      case "flushed":
        this.#flushWaiter?.resolve();
        this.#flushWaiter = undefined;
        return;
      case "end":
        this.#ended = true;
        this.#wakeReader();
        return;
      case "closed":
        this.#closeWaiter?.();
        this.#closeWaiter = undefined;
        return;
      case "error": {
        const err = new EncoderError(msg.code as EncoderError["code"], msg.message);
        if (msg.id !== undefined && this.#accepted.has(msg.id)) {
          this.#accepted.get(msg.id)!.reject(err);
          this.#accepted.delete(msg.id);
        }
        this.#fail(err);
        return;
      }
    }
  }

  #fail(err: Error) {
    if (this.#error || this.#closing) return;
    this.#error = err;
    for (const w of this.#accepted.values()) w.reject(err);
    this.#accepted.clear();
    for (const w of this.#slotWaiters.splice(0)) w();
    this.#flushWaiter?.reject(err);
    this.#flushWaiter = undefined;
    const r = this.#chunkWaiter;
    this.#chunkWaiter = undefined;
    r?.reject(err);
  }

  /**
   * Closes the worker's encoder (frames not flushed are dropped) and, unless the worker came from a pool,
   * terminates it. Works while a reader is stalled. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const closed = new EncoderError("CLOSED", "The edge encoder was closed");
      for (const w of this.#accepted.values()) w.reject(closed);
      this.#accepted.clear();
      for (const w of this.#slotWaiters.splice(0)) w();
      this.#flushWaiter?.reject(closed);
      this.#flushWaiter = undefined;
      this.#wakeReader();
      this.#queue.length = 0;
      await new Promise<void>((resolve) => {
        this.#closeWaiter = resolve;
        this.#worker.onerror = () => resolve();
        this.#post({ t: "close" });
      });
      this.#worker.onmessage = null;
      if (this.#ownsWorker) this.#worker.terminate();
      this.#onRelease?.();
    })();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** Options of {@linkcode EdgeEncoderPool}. */
export interface EdgeEncoderPoolOptions extends Omit<EdgeEncoderOptions, "worker"> {
  /** Workers, and so streams encoding at once. Default 2. */
  size?: number;
}

/**
 * N workers, one stream each at a time. `open(config)` waits for an idle worker; closing the stream's
 * encoder gives the worker back. Each worker has its own encoder, queues and credit, so one stream's slow
 * reader never slows another.
 *
 * @example
 * ```ts
 * import { EdgeEncoderPool } from "./edge_pool.ts";
 * import { testSource } from "../mod.ts";
 * await using pool = new EdgeEncoderPool({ size: 2 });
 * const source = testSource({ width: 160, height: 120, frames: 5 });
 * const chunks = await pool.encodeAll(source.frames(), { ...source.info, preset: 12 });
 * console.log(chunks.length);
 * ```
 */
export class EdgeEncoderPool {
  #size: number;
  #options: EdgeEncoderPoolOptions;
  #idle: Worker[] = [];
  #all: Worker[] = [];
  #waiters: ((w: Worker) => void)[] = [];
  #open = new Set<EdgeEncoder>();
  #closed = false;

  constructor(options: EdgeEncoderPoolOptions = {}) {
    this.#size = Math.max(1, options.size ?? 2);
    this.#options = options;
  }

  /** Workers started so far. */
  get workers(): number {
    return this.#all.length;
  }

  /** Streams open now. */
  get active(): number {
    return this.#open.size;
  }

  async #acquire(): Promise<Worker> {
    const idle = this.#idle.pop();
    if (idle) return idle;
    if (this.#all.length < this.#size) {
      const w = startEdgeWorker();
      this.#all.push(w);
      return w;
    }
    return await new Promise<Worker>((r) => this.#waiters.push(r));
  }

  #release(w: Worker) {
    if (this.#closed) return;
    const next = this.#waiters.shift();
    if (next) next(w);
    else this.#idle.push(w);
  }

  /** An encoder on a worker of its own; waits while every worker is busy. Close it to free the worker. */
  async open(config: EdgeEncoderConfig): Promise<EdgeEncoder> {
    if (this.#closed) throw new EncoderError("CLOSED", "The pool is closed");
    const worker = await this.#acquire();
    let enc: EdgeEncoder;
    try {
      enc = await EdgeEncoder.create(config, { ...this.#options, worker });
    } catch (e) {
      this.#release(worker);
      throw e;
    }
    this.#open.add(enc);
    enc.onRelease = () => {
      this.#open.delete(enc);
      this.#release(worker);
    };
    return enc;
  }

  /** Encodes every frame on one worker and returns the packets. */
  async encodeAll(frames: AsyncIterable<Frame>, config: EdgeEncoderConfig): Promise<Packet[]> {
    const enc = await this.open(config);
    try {
      const pump = (async () => {
        for await (const frame of frames) await enc.encode(frame);
        await enc.flush();
      })();
      pump.catch(() => enc.close());
      const out: Packet[] = [];
      for await (const chunk of enc.chunks()) out.push(chunk);
      await pump;
      return out;
    } finally {
      await enc.close();
    }
  }

  /** Closes every open stream and terminates the workers. */
  async close(): Promise<void> {
    if (this.#closed) return;
    await Promise.all([...this.#open].map((e) => e.close()));
    this.#closed = true;
    for (const w of this.#all) w.terminate();
    this.#all = [];
    this.#idle = [];
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

// Node 20 has no import.meta.main: there the entry is the script named on the command line.
if (import.meta.main ?? process.argv[1] === fileURLToPath(import.meta.url)) {
  const streams = Number(process.argv[2] ?? 3);
  await using pool = new EdgeEncoderPool({ size: streams });
  const started = performance.now();
  const results = await Promise.all(
    Array.from({ length: streams }, (_, i) => {
      const source = testSource({ width: 320, height: 240, frames: 60, seed: i + 1 });
      return pool.encodeAll(source.frames(), { ...source.info, preset: 12, logLevel: "error" });
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  for (const [i, chunks] of results.entries()) {
    const bytes = chunks.reduce((n, c) => n + c.data.byteLength, 0);
    console.log(`stream ${i}: ${chunks.length} chunks, ${bytes} bytes`);
  }
  console.log(`${streams} streams on ${pool.workers} workers in ${seconds.toFixed(2)} s`);
}
