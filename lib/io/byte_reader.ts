/**
 * Pulls exact byte counts and bounded lines out of a `ReadableStream<Uint8Array>` whose chunks may be cut
 * anywhere, holding at most one chunk besides what the caller asked for. Internal to `lib/io`.
 * @module
 */

import { EncoderError } from "../errors.ts";

/** Why a bounded read stopped early. */
export type ShortRead = { kind: "eof"; got: number } | { kind: "too-long"; got: number };

/** Size of the buffer a byte stream's lines are read through. */
const SCRATCH_BYTES = 4096;

/**
 * A pull reader over a byte stream: the Y4M and IVF readers build on it.
 *
 * @example
 * ```ts
 * import { ByteStreamReader } from "./byte_reader.ts";
 * const reader = new ByteStreamReader(new Blob(["FRAME\nabc"]).stream());
 * const line = await reader.readLine(64); // bytes of "FRAME", newline removed
 * const body = await reader.readExactly(3);
 * console.log(line, body);
 * ```
 */
export class ByteStreamReader {
  #reader: ReadableStreamDefaultReader<Uint8Array> | ReadableStreamBYOBReader | null;
  /**
   * Set when the stream is a byte stream: lines are read through a small buffer reused for every read,
   * and `readExactly` has the stream fill the caller's buffer itself, so no chunk is allocated per read.
   */
  #byob: ReadableStreamBYOBReader | null = null;
  #scratch: ArrayBuffer | null = null;
  #chunk: Uint8Array = new Uint8Array(0);
  #pos = 0;
  #done = false;
  /** Bytes consumed so far, for error messages. */
  #offset = 0;

  constructor(readable: ReadableStream<Uint8Array>) {
    let byob: ReadableStreamBYOBReader | null = null;
    try {
      byob = (readable as ReadableStream<Uint8Array<ArrayBuffer>>).getReader({ mode: "byob" });
    } catch {
      // Not a byte stream: chunks as the stream makes them.
    }
    this.#byob = byob;
    this.#reader = byob ?? readable.getReader();
  }

  /** One read into `view` (BYOB mode); the bytes come back in a view over the same memory, or null at the end. */
  async #readInto(view: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer> | null> {
    const { value, done } = await this.#byob!.read(view);
    if (done) {
      this.#done = true;
      this.#release();
      return null;
    }
    return value as Uint8Array<ArrayBuffer>;
  }

  /** Bytes handed out so far. */
  get offset(): number {
    return this.#offset;
  }

  /** Pulls the next non-empty chunk; false at end of stream. */
  async #fill(): Promise<boolean> {
    while (this.#pos >= this.#chunk.length) {
      if (this.#done || !this.#reader) return false;
      if (this.#byob) {
        // The chunk's bytes are always copied out before the next read, so one buffer serves every read.
        const got = await this.#readInto(new Uint8Array(this.#scratch ?? new ArrayBuffer(SCRATCH_BYTES)));
        if (!got) return false;
        this.#scratch = got.buffer;
        this.#chunk = got;
        this.#pos = 0;
        continue;
      }
      const { value, done } = await (this.#reader as ReadableStreamDefaultReader<Uint8Array>).read();
      if (done) {
        this.#done = true;
        this.#release();
        return false;
      }
      if (!(value instanceof Uint8Array)) {
        throw new TypeError(`Expected Uint8Array chunks, got ${Object.prototype.toString.call(value)}`);
      }
      this.#chunk = value;
      this.#pos = 0;
    }
    return true;
  }

  /** True when no byte is left. */
  async atEnd(): Promise<boolean> {
    return !(await this.#fill());
  }

  /**
   * Reads up to (not including) the next `\n`, consuming the newline. Returns the line bytes, or a
   * {@linkcode ShortRead} if the stream ends first or the line exceeds `max` bytes.
   * `peekCheck` sees the bytes gathered so far after every chunk while there are at most 16 of them, and
   * may throw to reject the input early (a binary file has no newline to wait for).
   */
  async readLine(max: number, peekCheck?: (soFar: Uint8Array) => void): Promise<Uint8Array | ShortRead> {
    const parts: Uint8Array[] = [];
    let length = 0;
    const joined = () => concat(parts, length);
    while (true) {
      if (!(await this.#fill())) {
        return { kind: "eof", got: length };
      }
      const nl = this.#chunk.indexOf(0x0a, this.#pos);
      const end = nl === -1 ? this.#chunk.length : nl;
      const take = Math.min(end - this.#pos, max + 1 - length);
      parts.push(this.#chunk.slice(this.#pos, this.#pos + take));
      length += take;
      this.#pos += take;
      this.#offset += take;
      if (peekCheck && length - take < 16) peekCheck(joined());
      if (length > max) return { kind: "too-long", got: length };
      if (nl !== -1 && this.#pos === nl) {
        this.#pos++;
        this.#offset++;
        return joined();
      }
    }
  }

  /**
   * Reads exactly `n` bytes into a fresh buffer (its own `ArrayBuffer`), or returns a
   * {@linkcode ShortRead} with how many bytes there were if the stream ends first.
   */
  async readExactly(n: number): Promise<Uint8Array<ArrayBuffer> | ShortRead> {
    let out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      if (this.#byob && this.#pos >= this.#chunk.length) {
        if (this.#done || !this.#reader) return { kind: "eof", got: filled };
        // Straight into the result: the read hands its buffer back in a new view over the same memory.
        const got = await this.#readInto(out.subarray(filled));
        if (!got) return { kind: "eof", got: filled };
        out = new Uint8Array(got.buffer);
        filled += got.byteLength;
        this.#offset += got.byteLength;
        continue;
      }
      if (!(await this.#fill())) return { kind: "eof", got: filled };
      const take = Math.min(n - filled, this.#chunk.length - this.#pos);
      out.set(this.#chunk.subarray(this.#pos, this.#pos + take), filled);
      filled += take;
      this.#pos += take;
      this.#offset += take;
    }
    return out;
  }

  #release(): void {
    const reader = this.#reader;
    this.#reader = null;
    this.#chunk = new Uint8Array(0);
    this.#pos = 0;
    reader?.releaseLock();
  }

  /** Cancels the source stream and releases its lock; idempotent. */
  async cancel(reason?: unknown): Promise<void> {
    const reader = this.#reader;
    if (!reader) return;
    this.#done = true;
    // Cancel before releasing: a released reader can no longer cancel its stream.
    await reader.cancel(reason).catch(() => {});
    this.#release();
  }
}

function concat(parts: Uint8Array[], length: number): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(length);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  if (parts.length > 1) {
    parts.length = 0;
    parts.push(out);
  }
  return out;
}

/** True when a read came back short. */
export function isShort<T extends Uint8Array>(r: T | ShortRead): r is ShortRead {
  return !(r instanceof Uint8Array);
}

/**
 * What the Y4M and IVF readers share around their frame parsing: `frames()` may be called once and not
 * after `close()`; the iteration ends at a clean end of input, when the reader is closed, or on an
 * error, and closes the reader whichever way it ends; `close()` cancels the input once.
 */
export class FrameIteration<T> {
  #bytes: ByteStreamReader;
  #reader: string;
  #iterating = false;
  #closed = false;

  /** `reader` names the reader in errors: `"Y4mReader"`, `"IvfReader"`. */
  constructor(bytes: ByteStreamReader, reader: string) {
    this.#bytes = bytes;
    this.#reader = reader;
  }

  /** True once closed or read to the end. */
  get closed(): boolean {
    return this.#closed;
  }

  /** The reader's `frames()`: `read(index)` gives frame `index`, or `undefined` at a clean end of input. */
  frames(read: (index: number) => Promise<T | undefined>): AsyncIterableIterator<T> {
    if (this.#iterating) {
      throw new EncoderError(
        "INVALID_STATE",
        `${this.#reader}.frames() was already called: open a new reader to read again`,
      );
    }
    if (this.#closed) throw new EncoderError("CLOSED", `${this.#reader} is closed: open a new reader`);
    this.#iterating = true;
    return this.#generate(read);
  }

  async *#generate(read: (index: number) => Promise<T | undefined>): AsyncGenerator<T> {
    try {
      for (let index = 0;; index++) {
        if (this.#closed) return;
        const frame = await read(index);
        if (frame === undefined) return;
        yield frame;
      }
    } finally {
      await this.close();
    }
  }

  /** Stops reading and cancels the input with `reason`, releasing its lock; idempotent. */
  async close(reason?: unknown): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#bytes.cancel(reason);
  }
}
