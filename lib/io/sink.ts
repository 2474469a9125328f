/**
 * Byte sinks the IVF and OBU writers write to: a file that can patch its header at the end, or any
 * `WritableStream<Uint8Array>` (stdout, a socket, an HTTP body) that is written strictly forward.
 * @module
 */

import { type OpenFile, system } from "../../ffi/runtime/system.ts";
import { EncoderError } from "../errors.ts";

/**
 * Where a container writer puts its bytes. `seekWrite` is present only when earlier bytes can be
 * rewritten (a file), which lets writers patch counts into their headers at the end.
 */
export interface ByteSink {
  /** Appends bytes; resolves when the sink took them (that is the backpressure). */
  write(bytes: Uint8Array): Promise<void>;
  /** Overwrites bytes at an absolute position without moving the append position. */
  seekWrite?(position: number, bytes: Uint8Array): Promise<void>;
  /** Flushes and releases the sink; idempotent. */
  close(): Promise<void>;
}

function ioError(action: string, err: unknown): EncoderError {
  const detail = (err as { message?: string })?.message ?? String(err);
  return new EncoderError(
    "IO_ERROR",
    `${action}: ${detail}. Check the path exists, is writable and has space`,
    {
      cause: err,
    },
  );
}

/**
 * A seekable sink writing to a file (created or truncated), through the runtime's own file calls
 * (ffi/runtime/system.ts). Writes are positional, so they land in call order even if not awaited one by one.
 *
 * @example
 * ```ts
 * import { fileSink } from "./sink.ts";
 * const sink = await fileSink("/tmp/example.bin");
 * await sink.write(new Uint8Array([1, 2, 3]));
 * await sink.seekWrite!(0, new Uint8Array([9]));
 * await sink.close();
 * ```
 */
export async function fileSink(path: string): Promise<ByteSink> {
  let handle: OpenFile;
  try {
    handle = await system.openFile(path, "write");
  } catch (err) {
    throw ioError(`Could not create ${path}`, err);
  }
  let position = 0;
  let closed: Promise<void> | null = null;
  // Writes still running, so that close() never closes the handle under one.
  const inflight = new Set<Promise<void>>();
  const track = (write: Promise<void>) => {
    inflight.add(write);
    const forget = () => void inflight.delete(write);
    write.then(forget, forget);
    return write;
  };
  /** Settles once every write issued so far has. */
  const earlierWrites = () => Promise.allSettled([...inflight]);
  const writeAt = async (bytes: Uint8Array, at: number) => {
    if (closed) throw new EncoderError("CLOSED", `The file sink for ${path} is closed: open a new one`);
    let done = 0;
    try {
      while (done < bytes.length) {
        const bytesWritten = await handle.writeAt(bytes.subarray(done), at + done);
        if (bytesWritten <= 0) throw new Error("the write made no progress");
        done += bytesWritten;
      }
    } catch (err) {
      throw ioError(`Could not write to ${path}`, err);
    }
  };
  return {
    write(bytes) {
      const at = position;
      position += bytes.length;
      return track(writeAt(bytes, at));
    },
    seekWrite(at, bytes) {
      // Bytes rewritten over earlier ones land after every write issued before, as in a file written
      // in order: a write still in flight (an IVF header whose frame count this patches) must not
      // land over them afterwards.
      return track(earlierWrites().then(() => writeAt(bytes, at)));
    },
    close() {
      closed ??= earlierWrites().then(() => handle.close()).catch((err) => {
        throw ioError(`Could not close ${path}`, err);
      });
      return closed;
    },
  };
}

/**
 * The same as {@linkcode fileSink}, under the name the IVF writer's callers know.
 *
 * @example
 * ```ts
 * import { ivfFileSink, IvfWriter } from "./mod.ts";
 * const ivf = new IvfWriter(await ivfFileSink("/tmp/example.ivf"), { width: 64, height: 48, fps: { num: 30, den: 1 } });
 * await ivf.close();
 * ```
 */
export const ivfFileSink: (path: string) => Promise<ByteSink> = fileSink;

/**
 * A forward-only sink over a `WritableStream<Uint8Array>` such as stdout; it holds the stream's lock until
 * `close()`, which closes the stream. Each `write` resolves when the stream has taken the chunk.
 *
 * @example
 * ```ts
 * import { writableSink } from "./sink.ts";
 * const chunks: Uint8Array[] = [];
 * const sink = writableSink(new WritableStream({ write: (c) => void chunks.push(c) }));
 * await sink.write(new Uint8Array([1, 2]));
 * await sink.close();
 * ```
 */
export function writableSink(writable: WritableStream<Uint8Array>): ByteSink {
  const writer = writable.getWriter();
  let closed: Promise<void> | null = null;
  return {
    async write(bytes) {
      if (closed) throw new EncoderError("CLOSED", "The stream sink is closed: create a new one");
      try {
        await writer.write(bytes);
      } catch (err) {
        // A stream that already says what went wrong (standard output's EPIPE) keeps its sentence.
        if (err instanceof EncoderError) throw err;
        throw ioError("Could not write to the output stream", err);
      }
    },
    close() {
      closed ??= writer.close().catch((err) => {
        throw ioError("Could not close the output stream", err);
      });
      return closed;
    },
  };
}

/**
 * Accepts a sink or a `WritableStream`, for writers that take either.
 *
 * @example
 * ```ts
 * import { toByteSink } from "./sink.ts";
 * const sink = toByteSink(new WritableStream<Uint8Array>());
 * console.log(typeof sink.seekWrite); // "undefined": a stream cannot seek
 * ```
 */
export function toByteSink(target: ByteSink | WritableStream<Uint8Array>): ByteSink {
  return target instanceof WritableStream ? writableSink(target) : target;
}
