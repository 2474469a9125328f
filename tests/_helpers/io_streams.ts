/**
 * Byte-stream helpers for the lib/io tests: chunked sources, collecting sinks.
 * @module
 */

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";

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

let tempDir: string | undefined;

/** A path that does not exist yet, in one temporary directory removed when the process exits. */
export function tempPath(name: string): string {
  if (!tempDir) {
    const dir = mkdtempSync(join(tmpdir(), "av1-stream-io-"));
    tempDir = dir;
    const cleanup = () => rmSync(dir, { recursive: true, force: true });
    // Bun runs "exit" handlers at the end of `bun test`; `deno test` fires "unload" instead.
    process.once("exit", cleanup);
    globalThis.addEventListener?.("unload", cleanup);
  }
  return join(tempDir, `${++tempCount}-${name}`);
}
let tempCount = 0;

/** Text as bytes. */
export const text = (s: string): Uint8Array => new TextEncoder().encode(s);
