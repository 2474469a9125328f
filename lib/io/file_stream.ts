/**
 * Files and standard streams as WHATWG streams, through `node:` modules so they work in Deno and Bun.
 * @module
 */
import { open, stat } from "node:fs/promises";
import process from "node:process";
import { EncoderError } from "../errors.ts";

export { isBrokenPipe } from "../errors.ts";

/**
 * A `ReadableStream` over a file, read in chunks of up to `chunkSize` bytes (default 1 MiB); a byte
 * stream, so a BYOB reader reads into buffers of its own.
 *
 * @example
 * ```ts
 * import { fileReadable } from "./file_stream.ts";
 * await Deno.writeTextFile("/tmp/fr.txt", "hello");
 * const reader = (await fileReadable("/tmp/fr.txt")).getReader();
 * console.log((await reader.read()).value?.length);
 * ```
 */
export async function fileReadable(path: string, chunkSize = 1 << 20): Promise<ReadableStream<Uint8Array>> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, "r");
  } catch (err) {
    throw new EncoderError("IO_ERROR", `Could not open ${path}: ${(err as Error).message}`, { cause: err });
  }
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await handle.close();
  };
  // A byte stream: a reader in BYOB mode (the Y4M and IVF readers) has the file read straight into its
  // own buffer, a frame at a time, where a 1 MiB chunk per read otherwise became garbage after its bytes
  // were copied into the frame (35 MB of Deno's peak RSS at 720p, bench/results.md "Memory"). A default
  // reader gets chunks of `chunkSize` as before.
  return new ReadableStream({
    type: "bytes",
    autoAllocateChunkSize: chunkSize,
    async pull(controller) {
      const request = controller.byobRequest!;
      const view = request.view as Uint8Array<ArrayBuffer>;
      const { bytesRead } = await handle.read(view, 0, view.byteLength, null);
      if (bytesRead === 0) {
        await close();
        controller.close();
        request.respond(0);
      } else {
        request.respond(bytesRead);
      }
    },
    cancel: close,
  }, { highWaterMark: 0 }) as ReadableStream<Uint8Array>;
}

/** Size of a file in bytes, or undefined when it is not a regular file. */
export async function fileSize(path: string): Promise<number | undefined> {
  try {
    const s = await stat(path);
    return s.isFile() ? s.size : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Standard input as a `ReadableStream`.
 *
 * @example
 * ```ts
 * import { stdinReadable } from "./file_stream.ts";
 * const input = stdinReadable();
 * await input.cancel();
 * ```
 */
export function stdinReadable(): ReadableStream<Uint8Array> {
  const iterator = process.stdin[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { value, done } = await iterator.next();
      if (done) controller.close();
      else controller.enqueue(value instanceof Uint8Array ? value : new TextEncoder().encode(String(value)));
    },
    cancel() {
      // Destroyed, not only left: a read still waiting on a producer that stopped writing (but keeps the
      // pipe open) would otherwise hold the process open until that producer exits.
      process.stdin.destroy();
      void Promise.resolve(iterator.return?.()).catch(() => {});
    },
  }, { highWaterMark: 0 });
}

/**
 * Set once standard output has failed (its reader went away: EPIPE). Node, Deno and Bun report that as
 * an `error` event on `process.stdout`, which without a listener is an uncaught exception that ends the
 * process on the spot (in Deno, with encoder threads still running, in a segmentation fault); the one
 * listener turns it into a rejected write instead.
 */
let stdoutFailure: EncoderError | undefined;
let stdoutListening = false;

function stdoutError(err: unknown): EncoderError {
  const code = (err as { code?: string })?.code;
  return new EncoderError(
    "IO_ERROR",
    code === "EPIPE"
      ? "Standard output was closed by its reader (EPIPE): the program reading it stopped"
      : `Could not write to standard output: ${(err as Error)?.message ?? err}`,
    { cause: err },
  );
}

/**
 * Standard output as a `WritableStream`; each write resolves once the runtime has taken the bytes. A
 * reader that goes away (EPIPE) rejects the write with an `IO_ERROR` whose cause has `code: "EPIPE"`
 * (see {@linkcode isBrokenPipe}), and every later write with the same.
 *
 * @example
 * ```ts
 * import { stdoutWritable } from "./file_stream.ts";
 * const writer = stdoutWritable().getWriter();
 * await writer.write(new TextEncoder().encode("hi\n"));
 * ```
 */
export function stdoutWritable(): WritableStream<Uint8Array> {
  const out = process.stdout;
  if (!stdoutListening) {
    stdoutListening = true;
    out.on("error", (err: unknown) => void (stdoutFailure ??= stdoutError(err)));
  }
  return new WritableStream<Uint8Array>({
    write(chunk) {
      if (stdoutFailure) return Promise.reject(stdoutFailure);
      return new Promise<void>((resolve, reject) => {
        const fail = (err: unknown) => {
          out.off("error", fail);
          reject(stdoutFailure ??= stdoutError(err));
        };
        out.once("error", fail);
        try {
          out.write(chunk, (err) => {
            if (err) return fail(err);
            out.off("error", fail);
            resolve();
          });
        } catch (err) {
          fail(err);
        }
      });
    },
  });
}
