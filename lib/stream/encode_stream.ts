/**
 * {@linkcode createEncodeStream}: an encoder as a transform stream, frames in and packets out, with
 * backpressure end to end. Packets are pulled from the encoder only when the readable side wants them,
 * so a slow consumer fills the encoder's packet queue (`maxQueuedPackets`), which holds `encode()`, which
 * holds the writable side, which stops the source being read.
 * @module
 */

import type { CommonConfig } from "../encoder/config.ts";
import type { SvtAv1Config } from "../encoder/svt_av1.ts";
import type { HostOptions } from "../encoder/worker_encoder.ts";
import { EncoderError } from "../errors.ts";
import type { Encoder, Frame, Packet } from "../types.ts";

/** Settings of {@linkcode createEncodeStream}: a backend and its options, or an encoder to use. */
export type EncodeStreamConfig =
  | ({ codec?: "svt-av1" } & SvtAv1Config & EncodeStreamOptions)
  | ({ codec: "rav1e" } & CommonConfig & HostOptions & Record<string, unknown> & EncodeStreamOptions)
  | ({ encoder: Encoder | Promise<Encoder> | (() => Encoder | Promise<Encoder>) } & EncodeStreamOptions);

/** Options of the stream itself. */
export interface EncodeStreamOptions {
  /** Packets the readable side buffers before it stops pulling from the encoder. Default 1. */
  readableHighWaterMark?: number;
}

/**
 * A transform stream of frames to packets (a `{ writable, readable }` pair for `pipeThrough`), with the
 * encoder behind it.
 */
export interface EncodeStream extends TransformStream<Frame, Packet> {
  /** The encoder, once created. */
  readonly encoder: Promise<Encoder>;
  /** Asks for the next frame to be a key frame: give it to a sink as `onKeyFrameNeeded`. */
  requestKeyFrame(): void;
  /**
   * Replaces the encoder with a fresh one of the same configuration before the next frame, so that the
   * packets from there on are a stream of their own (a new sequence header, a key frame first) while
   * timestamps continue; give it to a sink as `onReinit` (the `reinit` policy). The old encoder is
   * closed without a flush: packets it still held are discarded. Resolves with the timestamp of the first
   * frame the fresh encoder gets (`Infinity` if the input ended first). Needs a backend config, or
   * `encoder` as a function that makes one.
   */
  reinit(): Promise<number>;
  /** Encoders replaced by `reinit()` so far. */
  readonly reinits: number;
  /** Frames given to the encoder so far. */
  readonly framesIn: number;
  /** Packets handed to the readable side so far. */
  readonly packetsOut: number;
}

async function createEncoder(config: EncodeStreamConfig): Promise<Encoder> {
  const given = (config as { encoder?: Encoder | Promise<Encoder> | (() => Encoder | Promise<Encoder>) })
    .encoder;
  if (typeof given === "function") return await given();
  if (given) return await given;
  const codec = (config as { codec?: string }).codec ?? "svt-av1";
  if (codec === "svt-av1") {
    const { SvtAv1Encoder } = await import("../encoder/svt_av1.ts");
    return await SvtAv1Encoder.create(config as SvtAv1Config);
  }
  if (codec === "rav1e") {
    let mod: { Rav1eEncoder?: { create(c: unknown): Promise<Encoder> } };
    try {
      mod = await import("../encoder/rav1e.ts");
    } catch (cause) {
      throw new EncoderError(
        "LIBRARY_NOT_FOUND",
        'The rav1e backend is not available in this build: use codec "svt-av1"',
        {
          cause,
          library: "rav1e",
        },
      );
    }
    if (!mod.Rav1eEncoder) {
      throw new EncoderError("LIBRARY_NOT_FOUND", "lib/encoder/rav1e.ts does not export Rav1eEncoder", {
        library: "rav1e",
      });
    }
    return await mod.Rav1eEncoder.create(config);
  }
  throw new EncoderError(
    "INVALID_CONFIG",
    `codec must be "svt-av1" or "rav1e", got ${JSON.stringify(codec)}`,
  );
}

/**
 * Encodes a stream of frames. Writing resolves when the encoder accepted the frame; closing the writable
 * side flushes the encoder and ends the readable side after the last packet; an error on either side
 * closes the encoder and errors the other; cancelling the readable side closes the encoder.
 *
 * @example
 * ```ts
 * import { createEncodeStream } from "./encode_stream.ts";
 * import { testSource } from "../io/testsrc.ts";
 * const source = testSource({ width: 64, height: 64, frames: 10 });
 * const frames = ReadableStream.from(source.frames());
 * const encode = createEncodeStream({ ...source.info, preset: 12, lowDelay: true });
 * let count = 0;
 * for await (const packet of frames.pipeThrough(encode)) count += packet.keyFrame ? 1 : 0;
 * console.log(`${count} key frame(s)`);
 * ```
 */
export function createEncodeStream(config: EncodeStreamConfig): EncodeStream {
  const encoderPromise = createEncoder(config);
  encoderPromise.catch(() => {});
  let encoder: Encoder | undefined;
  let packets: AsyncIterator<Packet> | undefined;
  let framesIn = 0;
  let packetsOut = 0;
  let keyFrameRequested = false;
  let done = false;
  let reinits = 0;
  /** A pending `reinit()`: the next frame goes to a fresh encoder. */
  let pendingReinit:
    | { resolve(ts: number): void; reject(e: unknown): void; promise: Promise<number> }
    | undefined;
  let writableController: WritableStreamDefaultController | undefined;
  let readableController: ReadableStreamDefaultController<Packet> | undefined;

  const shutdown = async (reason: unknown, side: "readable" | "writable" | "both") => {
    if (done) return;
    done = true;
    if (side !== "readable") {
      try {
        readableController?.error(reason);
      } catch { /* already closed */ }
    }
    if (side !== "writable") writableController?.error(reason);
    // Cancelled before the encoder was up (a sink that failed at once): close it once it is, or its
    // thread outlives the stream (Node then never exits).
    const open = encoder ?? await encoderPromise.catch(() => undefined);
    await open?.close().catch(() => {});
  };

  const writable = new WritableStream<Frame>({
    async start(controller) {
      writableController = controller;
      try {
        encoder = await encoderPromise;
        if (keyFrameRequested) encoder.requestKeyFrame();
        packets = encoder.packets();
      } catch (e) {
        await shutdown(e, "both");
        throw e;
      }
    },
    async write(frame) {
      try {
        // Timestamps keep counting across encoders: a fresh one would start again from 0.
        if (frame.timestamp === undefined && (reinits || pendingReinit)) {
          frame = { ...frame, timestamp: framesIn };
        }
        if (pendingReinit) await replaceEncoder(frame.timestamp ?? framesIn);
        await encoder!.encode(frame);
        framesIn++;
      } catch (e) {
        await shutdown(e, "writable");
        throw e;
      }
    },
    async close() {
      try {
        pendingReinit?.resolve(Infinity);
        pendingReinit = undefined;
        await encoder!.flush();
      } catch (e) {
        await shutdown(e, "writable");
        throw e;
      }
    },
    async abort(reason) {
      await shutdown(reason, "writable");
    },
  }, { highWaterMark: 1 });

  const readable = new ReadableStream<Packet>({
    start(controller) {
      readableController = controller;
    },
    async pull(controller) {
      try {
        await encoderPromise;
        let next: IteratorResult<Packet>;
        while (true) {
          const it = packets!;
          try {
            next = await it.next();
          } catch (e) {
            if (it === packets) throw e;
            continue;
          }
          // The encoder was replaced while we waited: what the old one gave is dropped.
          if (it === packets) break;
        }
        if (next.done) {
          controller.close();
          done = true;
          await encoder?.close();
          return;
        }
        packetsOut++;
        controller.enqueue(next.value);
      } catch (e) {
        await shutdown(e, "readable");
        throw e;
      }
    },
    async cancel(reason) {
      await shutdown(
        new EncoderError("ABORTED", "The packet stream was cancelled, so the encoder was closed", {
          cause: reason,
        }),
        "readable",
      );
    },
  }, { highWaterMark: config.readableHighWaterMark ?? 1 });

  const replaceEncoder = async (timestamp: number) => {
    const request = pendingReinit!;
    pendingReinit = undefined;
    const old = encoder!;
    try {
      const fresh = await createEncoder(config);
      encoder = fresh;
      packets = fresh.packets();
      reinits++;
    } catch (e) {
      request.reject(e);
      throw e;
    }
    // Closing wakes the reader waiting on the old encoder, which then moves to the fresh one.
    await old.close().catch(() => {});
    request.resolve(timestamp);
  };

  return {
    writable,
    readable,
    get encoder() {
      return encoder && reinits ? Promise.resolve(encoder) : encoderPromise;
    },
    requestKeyFrame() {
      if (encoder) encoder.requestKeyFrame();
      else keyFrameRequested = true;
    },
    reinit() {
      const given = (config as { encoder?: unknown }).encoder;
      if (given !== undefined && typeof given !== "function") {
        return Promise.reject(
          new EncoderError(
            "INVALID_STATE",
            "reinit() needs a way to make a new encoder: pass a backend config, or encoder as a function",
          ),
        );
      }
      if (done) return Promise.resolve(Infinity);
      if (!pendingReinit) {
        let resolve!: (ts: number) => void, reject!: (e: unknown) => void;
        const promise = new Promise<number>((res, rej) => ((resolve = res), (reject = rej)));
        pendingReinit = { resolve, reject, promise };
      }
      return pendingReinit.promise;
    },
    get reinits() {
      return reinits;
    },
    get framesIn() {
      return framesIn;
    },
    get packetsOut() {
      return packetsOut;
    },
  };
}
