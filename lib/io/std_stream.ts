/**
 * Standard input and output as WHATWG streams, through `node:process` so they work in Deno, Bun and Node.
 * Apart from file_stream.ts: only a run that reads stdin or writes stdout loads them.
 * @module
 */
import process from "node:process";
import { EncoderError } from "../errors.ts";

/**
 * Standard input as a `ReadableStream`.
 *
 * @example
 * ```ts
 * import { stdinReadable } from "./std_stream.ts";
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
 * (see `isBrokenPipe` in lib/errors.ts), and every later write with the same.
 *
 * @example
 * ```ts
 * import { stdoutWritable } from "./std_stream.ts";
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
