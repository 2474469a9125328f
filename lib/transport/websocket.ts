/**
 * WebSocket links over the global `WebSocket` of Deno and Bun: one binary message per chunk (the stream
 * header, then one per packet). The API has no drain event, so backpressure polls `bufferedAmount`.
 * @module
 */

import { EncoderError } from "../errors.ts";
import { asError, type Link, type LinkError, linkError, LinkState, sleep, type Transport } from "./link.ts";

/** Options of {@linkcode webSocketTransport}. */
export interface WebSocketTransportOptions {
  /** `write()` waits while more than this many bytes are queued in the socket. Default 1 MiB. */
  highWaterMark?: number;
  /** Subprotocols offered in the handshake. */
  protocols?: string | string[];
}

/** A transport opening a WebSocket to `url` (`ws://` or `wss://`). */
export function webSocketTransport(url: string, options: WebSocketTransportOptions = {}): Transport {
  if (typeof WebSocket !== "function") {
    throw new EncoderError(
      "INVALID_CONFIG",
      "This runtime has no WebSocket client: use Node.js 22 or later, or run Node 20 with --experimental-websocket",
    );
  }
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
  #state: LinkState;
  readonly lost: Promise<LinkError>;

  constructor(ws: WebSocket, highWaterMark: number) {
    this.#ws = ws;
    this.#highWaterMark = highWaterMark;
    this.#state = new LinkState(() => {
      try {
        ws.close();
      } catch { /* already closing */ }
    });
    this.lost = this.#state.lost;
    ws.onmessage = () => {};
    ws.onerror = (e) =>
      this.#state.fail(
        linkError("ECONNRESET", `WebSocket error: ${(e as ErrorEvent).message ?? "connection failed"}`),
      );
    ws.onclose = (e) => {
      // Only the peer's echo of our 1000 confirms the end. When the closes cross (the peer closed first,
      // dropping what we sent meanwhile) Deno reports 1005 and the tail must be resent.
      const clean = this.#state.ending && e.code === 1000;
      this.#state.closed(
        clean ? undefined : linkError(
          this.#state.ending ? "ECONNRESET" : "EOF",
          `The WebSocket closed (code ${e.code}${e.reason ? `: ${e.reason}` : ""})`,
        ),
      );
    };
  }

  async write(bytes: Uint8Array): Promise<void> {
    if (this.#state.cause) throw this.#state.cause;
    this.#ws.send(bytes as Uint8Array<ArrayBuffer>);
    this.#sent += bytes.length;
    // No drain event in the WebSocket API: poll until the queue is below the mark.
    for (let wait = 1; this.#ws.bufferedAmount > this.#highWaterMark; wait = Math.min(wait * 2, 20)) {
      if (this.#state.cause) throw this.#state.cause;
      await sleep(wait);
    }
    if (this.#state.cause) throw this.#state.cause;
  }

  progress(): { pending: number; flushed: number } {
    const pending = this.#ws.bufferedAmount;
    return { pending, flushed: this.#sent - pending };
  }

  end(): Promise<void> {
    return this.#state.end(() => this.#ws.close(1000, "end of stream"));
  }

  destroy(cause: Error): void {
    this.#state.fail(cause);
  }
}
