/**
 * Transports for local outputs: a file, stdout, any `WritableStream<Uint8Array>`. They connect once and
 * never reconnect: their errors end the sink.
 * @module
 */

import { open } from "node:fs/promises";
import process from "node:process";
import { EncoderError } from "../errors.ts";
import { asError, type Link, type LinkError, type Transport } from "./link.ts";

/** One opened output written forward, with `patch` when it can seek. */
class LocalLink implements Link {
  #write: (bytes: Uint8Array) => Promise<void>;
  #end: () => Promise<void>;
  #pending = 0;
  #flushed = 0;
  #cause: LinkError | undefined;
  #resolveLost!: (e: LinkError) => void;
  readonly lost: Promise<LinkError>;
  patch?: (offset: number, bytes: Uint8Array) => Promise<void>;

  constructor(
    write: (bytes: Uint8Array) => Promise<void>,
    end: () => Promise<void>,
    patch?: (offset: number, bytes: Uint8Array) => Promise<void>,
  ) {
    this.#write = write;
    this.#end = end;
    this.patch = patch;
    this.lost = new Promise((r) => (this.#resolveLost = r));
  }

  async write(bytes: Uint8Array): Promise<void> {
    if (this.#cause) throw this.#cause;
    this.#pending += bytes.length;
    try {
      await this.#write(bytes);
    } catch (e) {
      this.destroy(asError(e));
      throw this.#cause;
    } finally {
      this.#pending -= bytes.length;
    }
    this.#flushed += bytes.length;
  }

  progress() {
    return { pending: this.#pending, flushed: this.#flushed };
  }

  end(): Promise<void> {
    if (this.#cause) return Promise.reject(this.#cause);
    return this.#end();
  }

  destroy(cause: Error): void {
    if (this.#cause) return;
    this.#cause = cause;
    this.#resolveLost(cause);
  }
}

/** A transport writing a file (created or truncated); IVF gets its frame count patched at the end. */
export function fileTransport(path: string): Transport {
  return {
    name: path,
    reconnects: false,
    async connect() {
      let handle: Awaited<ReturnType<typeof open>>;
      try {
        handle = await open(path, "w");
      } catch (err) {
        throw new EncoderError("IO_ERROR", `Could not create ${path}: ${(err as Error).message}`, {
          cause: err,
        });
      }
      let position = 0;
      const writeAt = async (bytes: Uint8Array, at: number) => {
        for (let done = 0; done < bytes.length;) {
          const { bytesWritten } = await handle.write(bytes, done, bytes.length - done, at + done);
          if (bytesWritten <= 0) throw new Error(`writing ${path} made no progress`);
          done += bytesWritten;
        }
      };
      return new LocalLink(
        (bytes) => {
          const at = position;
          position += bytes.length;
          return writeAt(bytes, at);
        },
        () => handle.close(),
        (offset, bytes) => writeAt(bytes, offset),
      );
    },
  };
}

/** A transport writing to the process's standard output, waiting for 'drain' when the pipe is full. */
export function stdoutTransport(): Transport {
  return {
    name: "stdout",
    reconnects: false,
    connect() {
      const out = process.stdout;
      return Promise.resolve(
        new LocalLink(
          (bytes) =>
            new Promise<void>((resolve, reject) => {
              const onError = (e: Error) => reject(e);
              out.once("error", onError);
              const ok = out.write(bytes, (err) => {
                out.off("error", onError);
                if (err) reject(err);
                else if (ok) resolve();
              });
              if (!ok) out.once("drain", () => resolve());
            }),
          () => Promise.resolve(),
        ),
      );
    },
  };
}

/** A transport writing to a `WritableStream<Uint8Array>`, which it closes at the end. */
export function writableTransport(writable: WritableStream<Uint8Array>, name = "stream"): Transport {
  return {
    name,
    reconnects: false,
    connect() {
      const writer = writable.getWriter();
      return Promise.resolve(new LocalLink((bytes) => writer.write(bytes), () => writer.close()));
    },
  };
}
