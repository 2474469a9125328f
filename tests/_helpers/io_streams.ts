/**
 * Byte-stream helpers for the lib/io tests: chunked sources, collecting sinks.
 * @module
 */

/** A stream that hands out `bytes` in chunks of `size` bytes (the last one shorter). */
export function chunked(bytes: Uint8Array, size: number): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (at >= bytes.length) {
        controller.close();
        return;
      }
      controller.enqueue(bytes.slice(at, at + size));
      at += size;
    },
  }, { highWaterMark: 0 });
}

/** Every byte of a stream, joined. */
export async function collect(readable: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(readable).arrayBuffer());
}

/** Joins byte arrays. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A `WritableStream` that keeps every chunk it gets, and whether it was closed. */
export function memoryWritable(): {
  writable: WritableStream<Uint8Array>;
  chunks: Uint8Array[];
  bytes(): Uint8Array;
  closed(): boolean;
} {
  const chunks: Uint8Array[] = [];
  let closed = false;
  const writable = new WritableStream<Uint8Array>({
    write(chunk) {
      chunks.push(chunk.slice());
    },
    close() {
      closed = true;
    },
  });
  return { writable, chunks, bytes: () => concat(...chunks), closed: () => closed };
}

/** A temporary file path that does not exist yet. */
export async function tempPath(name: string): Promise<string> {
  const { mkdtemp } = await import("node:fs/promises");
  const { tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  return join(await mkdtemp(join(tmpdir(), "av1-stream-io-")), name);
}

/** Text as bytes. */
export const text = (s: string): Uint8Array => new TextEncoder().encode(s);
