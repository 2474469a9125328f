/**
 * Files as WHATWG streams, through the runtime's own file calls (ffi/runtime/system.ts); standard input
 * and output are in std_stream.ts.
 * @module
 */
import { type OpenFile, system } from "../../ffi/runtime/system.ts";
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
  let handle: OpenFile;
  try {
    handle = await system.openFile(path, "read");
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
      const bytesRead = await handle.read(view);
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
export function fileSize(path: string): Promise<number | undefined> {
  return system.fileSize(path);
}
