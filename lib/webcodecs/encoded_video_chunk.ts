/**
 * {@linkcode EncodedVideoChunk}: one encoded AV1 temporal unit, as WebCodecs hands it to `output`.
 * @module
 */

/** Bytes as WebCodecs' `AllowSharedBufferSource`: an ArrayBuffer, SharedArrayBuffer or any view of one. */
export type AllowSharedBufferSource = ArrayBufferLike | ArrayBufferView<ArrayBufferLike>;

/** "key" for a random access point, "delta" otherwise. */
export type EncodedVideoChunkType = "key" | "delta";

/** The argument of `new EncodedVideoChunk(init)`. */
export interface EncodedVideoChunkInit {
  /** `"key"` for a key frame, `"delta"` otherwise. */
  type: EncodedVideoChunkType;
  /** Presentation time in microseconds. */
  timestamp: number;
  /** Duration in microseconds. */
  duration?: number;
  /** The chunk's bytes, copied on construction. */
  data: AllowSharedBufferSource;
  /** Accepted for compatibility; the chunk copies `data` either way. */
  transfer?: ArrayBuffer[];
}

function bytesOf(data: unknown, what: string): Uint8Array {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (typeof SharedArrayBuffer !== "undefined" && data instanceof SharedArrayBuffer) {
    return new Uint8Array(data);
  }
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw new TypeError(`${what} must be an ArrayBuffer or an ArrayBufferView`);
}

/**
 * An encoded chunk: its bytes are copied in at construction and out with `copyTo()`.
 *
 * @example
 * ```ts
 * import { EncodedVideoChunk } from "./encoded_video_chunk.ts";
 * const chunk = new EncodedVideoChunk({ type: "key", timestamp: 0, data: new Uint8Array([0x12, 0x00]) });
 * const bytes = new Uint8Array(chunk.byteLength);
 * chunk.copyTo(bytes);
 * console.log(chunk.type, bytes); // "key" Uint8Array(2) [ 18, 0 ]
 * ```
 */
export class EncodedVideoChunk {
  /** `"key"` for a key frame, `"delta"` otherwise. */
  readonly type: EncodedVideoChunkType;
  /** Microseconds. */
  readonly timestamp: number;
  /** Microseconds, or null. */
  readonly duration: number | null;
  #data: Uint8Array;

  /** Copies the init's data; a missing type or timestamp throws TypeError. */
  constructor(init: EncodedVideoChunkInit) {
    if (init === null || typeof init !== "object") {
      throw new TypeError("EncodedVideoChunk needs an init object");
    }
    if (init.type !== "key" && init.type !== "delta") {
      throw new TypeError(
        `EncodedVideoChunk type must be "key" or "delta", got ${JSON.stringify(init.type)}`,
      );
    }
    if (typeof init.timestamp !== "number" || !Number.isFinite(init.timestamp)) {
      throw new TypeError(
        `EncodedVideoChunk timestamp must be a finite number, got ${String(init.timestamp)}`,
      );
    }
    if (init.duration !== undefined && (typeof init.duration !== "number" || !(init.duration >= 0))) {
      throw new TypeError(
        `EncodedVideoChunk duration must be a non-negative number, got ${String(init.duration)}`,
      );
    }
    this.type = init.type;
    this.timestamp = Math.trunc(init.timestamp);
    this.duration = init.duration === undefined ? null : Math.trunc(init.duration);
    this.#data = bytesOf(init.data, "EncodedVideoChunk data").slice();
  }

  /** The chunk's size in bytes. */
  get byteLength(): number {
    return this.#data.byteLength;
  }

  /** Copies the chunk's bytes into `destination`; TypeError when it is too small. */
  copyTo(destination: AllowSharedBufferSource): void {
    const out = bytesOf(destination, "The destination");
    if (out.byteLength < this.#data.byteLength) {
      throw new TypeError(
        `The destination has ${out.byteLength} bytes but the chunk has ${this.#data.byteLength}`,
      );
    }
    out.set(this.#data);
  }
}
