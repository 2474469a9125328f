/**
 * WebSocket links over the global `WebSocket` of Deno and Bun: one binary message per chunk (the stream
 * header, then one per packet). The API has no drain event, so backpressure polls `bufferedAmount`.
 * @module
 */

import { asError, type Link, type LinkError, linkError, sleep, type Transport } from "./link.ts";

/** Options of {@linkcode webSocketTransport}. */
export interface WebSocketTransportOptions {
  /** `write()` waits while more than this many bytes are queued in the socket. Default 1 MiB. */
  highWaterMark?: number;
  /** Subprotocols offered in the handshake. */
  protocols?: string | string[];
}

/** A transport opening a WebSocket to `url` (`ws://` or `wss://`). */
export function webSocketTransport(url: string, options: WebSocketTransportOptions = {}): Transport {
  const highWaterMark = options.highWaterMark ?? 1 << 20;
  return {
    name: url,
    reconnects: true,
    connect: ({ timeout }) =>
      new Promise<Link>((resolve, reject) => {
        let ws: WebSocket;
        try {
          ws = new WebSocket(url, options.protocols);
        } catch (e) {
          return reject(asError(e));
        }
        ws.binaryType = "arraybuffer";
        const timer = setTimeout(() => {
          ws.close();
          reject(linkError("ETIMEDOUT", `Connecting to ${url} timed out after ${timeout} ms`));
        }, timeout);
        ws.onerror = () => {};
        ws.onclose = (e) => {
          clearTimeout(timer);
          reject(linkError("ECONNREFUSED", `Could not open a WebSocket to ${url} (close code ${e.code})`));
        };
        ws.onopen = () => {
          clearTimeout(timer);
          resolve(new WebSocketLink(ws, highWaterMark));
        };
      }),
  };
}

class WebSocketLink implements Link {
  #ws: WebSocket;
  #highWaterMark: number;
  #sent = 0;
  #cause: LinkError | undefined;
  #ending = false;
  #resolveLost!: (e: LinkError) => void;
  #closeWaiters: (() => void)[] = [];
  #closed = false;
  readonly lost: Promise<LinkError>;

  constructor(ws: WebSocket, highWaterMark: number) {
    this.#ws = ws;
    this.#highWaterMark = highWaterMark;
    this.lost = new Promise((r) => (this.#resolveLost = r));
    ws.onmessage = () => {};
    ws.onerror = (e) =>
      this.#fail(
        linkError("ECONNRESET", `WebSocket error: ${(e as ErrorEvent).message ?? "connection failed"}`),
      );
    ws.onclose = (e) => {
      this.#closed = true;
      // Only the peer's echo of our 1000 confirms the end. When the closes cross (the peer closed first,
      // dropping what we sent meanwhile) Deno reports 1005 and the tail must be resent.
      const clean = this.#ending && e.code === 1000;
      if (!clean) {
        this.#fail(
          linkError(
            this.#ending ? "ECONNRESET" : "EOF",
            `The WebSocket closed (code ${e.code}${e.reason ? `: ${e.reason}` : ""})`,
          ),
        );
      }
      for (const w of this.#closeWaiters.splice(0)) w();
    };
  }

  #fail(err: LinkError) {
    if (this.#cause) return;
    this.#cause = err;
    this.#resolveLost(err);
    try {
      this.#ws.close();
    } catch { /* already closing */ }
    for (const w of this.#closeWaiters.splice(0)) w();
  }

  async write(bytes: Uint8Array): Promise<void> {
    if (this.#cause) throw this.#cause;
    this.#ws.send(bytes as Uint8Array<ArrayBuffer>);
    this.#sent += bytes.length;
    // No drain event in the WebSocket API: poll until the queue is below the mark.
    for (let wait = 1; this.#ws.bufferedAmount > this.#highWaterMark; wait = Math.min(wait * 2, 20)) {
      if (this.#cause) throw this.#cause;
      await sleep(wait);
    }
    if (this.#cause) throw this.#cause;
  }

  progress() {
    const pending = this.#ws.bufferedAmount;
    return { pending, flushed: this.#sent - pending };
  }

  end(): Promise<void> {
    if (this.#cause) return Promise.reject(this.#cause);
    this.#ending = true;
    return new Promise<void>((resolve, reject) => {
      const done = () => (this.#cause ? reject(this.#cause) : resolve());
      if (this.#closed) return done();
      this.#closeWaiters.push(done);
      this.#ws.close(1000, "end of stream");
    });
  }

  destroy(cause: Error): void {
    this.#fail(cause);
  }
}
