/**
 * A fake {@linkcode Encoder} for fast, deterministic stream and sink tests: one packet per frame, key
 * frames every `keyint` frames or when requested, and packet bytes that say which frame they are and which
 * frame they reference, so a test can check that nothing references a dropped frame.
 * @module
 */

import type { EncodeOptions, Encoder, Frame, Packet, Rational, VideoInfo } from "../../lib/types.ts";

/** Options of {@linkcode FakeEncoder}. */
export interface FakeEncoderOptions {
  /** Frames between scheduled key frames. Default 10. */
  keyint?: number;
  /** Bytes per packet (at least 16). Default 200. */
  packetSize?: number;
  /** `encode()` waits while this many packets are unread, like the real encoders. Default 4. */
  maxQueuedPackets?: number;
  /** Frames held before their packet comes out (encoder latency). Default 0. */
  latency?: number;
  /** Make `encode()` of frame `n` fail. */
  failAt?: number;
}

/**
 * Packet layout: u32 timestamp, u8 key (1/0), i32 timestamp of the frame it references (-1 for a key
 * frame), then filler derived from the timestamp.
 */
export function fakePacketInfo(data: Uint8Array): { timestamp: number; keyFrame: boolean; ref: number } {
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  return { timestamp: v.getUint32(0, true), keyFrame: data[4] === 1, ref: v.getInt32(5, true) };
}

export const FAKE_INFO: VideoInfo = {
  width: 64,
  height: 64,
  fps: { num: 30, den: 1 },
  bitDepth: 8,
  chroma: "420",
};

/** A frame for the fake encoder: its bytes do not matter, only its timestamp. */
export function fakeFrame(timestamp: number): Frame {
  return { data: new Uint8Array(16), timestamp, duration: 1 };
}

/** A source of `count` fake frames that counts how many were pulled. */
export function fakeFrameSource(count: number): { readable: ReadableStream<Frame>; pulled(): number } {
  let n = 0;
  const readable = new ReadableStream<Frame>({
    pull(controller) {
      if (n >= count) return controller.close();
      controller.enqueue(fakeFrame(n++));
    },
  }, { highWaterMark: 0 });
  return { readable, pulled: () => n };
}

/** The frames of a source with `frames()` as a stream (`ReadableStream.from` is missing from the DOM types). */
export function framesOf(source: { frames(): AsyncIterableIterator<Frame> }): ReadableStream<Frame> {
  const it = source.frames();
  return new ReadableStream<Frame>({
    async pull(c) {
      const next = await it.next();
      if (next.done) c.close();
      else c.enqueue(next.value);
    },
  }, { highWaterMark: 0 });
}

export class FakeEncoder implements Encoder {
  readonly codec = "svt-av1" as const;
  readonly info: VideoInfo = FAKE_INFO;
  readonly frameSize = 16;
  keyFramesRequested = 0;
  framesEncoded = 0;
  #keyint: number;
  #size: number;
  #maxQueued: number;
  #latency: number;
  #failAt: number | undefined;
  #queue: Packet[] = [];
  #held: { timestamp: number; duration: number; key: boolean }[] = [];
  #sinceKey = 0;
  #lastTs = -1;
  #requested = false;
  #flushed = false;
  #closed = false;
  #error: Error | undefined;
  #wakeConsumer: (() => void) | undefined;
  #wakeProducer: (() => void) | undefined;

  constructor(options: FakeEncoderOptions = {}) {
    this.#keyint = options.keyint ?? 10;
    this.#size = Math.max(16, options.packetSize ?? 200);
    this.#maxQueued = options.maxQueuedPackets ?? 4;
    this.#latency = options.latency ?? 0;
    this.#failAt = options.failAt;
  }

  get fps(): Rational {
    return this.info.fps;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The packet this encoder makes for frame `timestamp` following frame `ref` (-1: a key frame). */
  static packet(timestamp: number, ref: number, size: number): Packet {
    const data = new Uint8Array(size);
    const v = new DataView(data.buffer);
    v.setUint32(0, timestamp, true);
    data[4] = ref < 0 ? 1 : 0;
    v.setInt32(5, ref, true);
    for (let i = 9; i < size; i++) data[i] = (timestamp * 31 + i) & 0xff;
    return { data, timestamp, duration: 1, keyFrame: ref < 0 };
  }

  async encode(frame: Frame, options: EncodeOptions = {}): Promise<void> {
    if (this.#closed) throw new Error("FakeEncoder is closed");
    if (this.#error) throw this.#error;
    if (this.framesEncoded === this.#failAt) {
      this.#error = new Error(`FakeEncoder failed at frame ${this.#failAt}`);
      this.#wake();
      throw this.#error;
    }
    const key = this.#sinceKey === 0 || this.#sinceKey >= this.#keyint || this.#requested
      || options.keyFrame === true;
    this.#requested = false;
    this.#sinceKey = key ? 1 : this.#sinceKey + 1;
    this.#held.push({ timestamp: frame.timestamp ?? this.framesEncoded, duration: frame.duration ?? 1, key });
    this.framesEncoded++;
    while (this.#held.length > this.#latency) this.#emit(this.#held.shift()!);
    while (this.#queue.length >= this.#maxQueued && !this.#closed) {
      await new Promise<void>((r) => (this.#wakeProducer = r));
    }
  }

  #emit(f: { timestamp: number; duration: number; key: boolean }) {
    const p = FakeEncoder.packet(f.timestamp, f.key ? -1 : this.#lastTs, this.#size);
    this.#lastTs = f.timestamp;
    this.#queue.push(p);
    this.#wake();
  }

  #wake() {
    const w = this.#wakeConsumer;
    this.#wakeConsumer = undefined;
    w?.();
  }

  requestKeyFrame(): void {
    this.keyFramesRequested++;
    this.#requested = true;
  }

  async *packets(): AsyncIterableIterator<Packet> {
    while (true) {
      const p = this.#queue.shift();
      if (p) {
        const w = this.#wakeProducer;
        this.#wakeProducer = undefined;
        w?.();
        yield p;
        continue;
      }
      if (this.#error) throw this.#error;
      if (this.#flushed || this.#closed) return;
      await new Promise<void>((r) => (this.#wakeConsumer = r));
    }
  }

  flush(): Promise<void> {
    for (const f of this.#held.splice(0)) this.#emit(f);
    this.#flushed = true;
    this.#wake();
    return Promise.resolve();
  }

  sequenceHeader(): Uint8Array {
    return new Uint8Array(0);
  }

  close(): Promise<void> {
    this.#closed = true;
    this.#wake();
    const w = this.#wakeProducer;
    this.#wakeProducer = undefined;
    w?.();
    return Promise.resolve();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  [Symbol.dispose](): void {
    void this.close();
  }
}
