/**
 * TCP links over `node:net`, which Deno and Bun both provide. See docs/transport.md for what the
 * runtimes report: a successful write is not a delivery, and the end of a stream is delivered only when
 * the peer's FIN answers ours.
 * @module
 */

import * as net from "node:net";
import { EncoderError } from "../errors.ts";
import { type Link, type LinkError, linkError, LinkState, type Transport } from "./link.ts";

/** Parses `tcp://host:port` (or `host:port`). */
export function parseTcpUrl(url: string): { host: string; port: number } {
  const m = /^(?:tcp:\/\/)?(\[[^\]]+\]|[^:/]+):(\d+)\/?$/.exec(url);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !(port > 0 && port < 65536)) {
    throw new EncoderError(
      "INVALID_CONFIG",
      `TCP address must look like tcp://host:port, got ${JSON.stringify(url)}`,
    );
  }
  return { host: m[1].replace(/^\[|\]$/g, ""), port };
}

/** A transport connecting to `host:port` over TCP. */
export function tcpTransport(host: string, port: number): Transport {
  return {
    name: `tcp://${host.includes(":") ? `[${host}]` : host}:${port}`,
    reconnects: true,
    connect: ({ timeout }) => connectTcp(host, port, timeout),
  };
}

function connectTcp(host: string, port: number, timeout: number): Promise<Link> {
  return new Promise<Link>((resolve, reject) => {
    const socket = net.connect({ host, port });
    socket.setNoDelay(true);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(linkError("ETIMEDOUT", `Connecting to ${host}:${port} timed out after ${timeout} ms`));
    }, timeout);
    const onError = (err: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    socket.once("error", onError);
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.off("error", onError);
      // Read and discard what the peer sends: without a reader its FIN would never show as 'end'.
      socket.on("data", () => {});
      resolve(new SocketLink(socket, "The peer"));
    });
  });
}

/**
 * A {@linkcode Link} over a connected `node:net` socket: TCP's, and the base of RTMP's. The peer's FIN
 * or a close before `end()` fails it; `end()` resolves once the peer's FIN answered ours and the socket
 * closed.
 */
export class SocketLink implements Link {
  protected readonly socket: net.Socket;
  protected readonly state: LinkState;
  readonly lost: Promise<LinkError>;
  #accepted = 0;

  /** `peer` names the other side in the message of an early close: `"The peer"`, `"The RTMP server"`. */
  constructor(socket: net.Socket, peer: string) {
    this.socket = socket;
    this.state = new LinkState(() => socket.destroy());
    this.lost = this.state.lost;
    socket.on("error", (err) => this.state.fail(err));
    socket.on("end", () => {
      if (!this.state.ending) this.state.fail(linkError("EOF", `${peer} closed the connection`));
    });
    socket.on("close", () => {
      this.state.closed(this.state.ending ? undefined : linkError("ECONNRESET", "The connection closed"));
    });
  }

  write(bytes: Uint8Array): Promise<void> {
    if (this.state.cause) return Promise.reject(this.state.cause);
    return this.send([bytes]);
  }

  /** Writes `chunks` to the socket; resolves at once if it took them, else once it drained. */
  protected send(chunks: Uint8Array[]): Promise<void> {
    let ok = true;
    for (const chunk of chunks) {
      this.#accepted += chunk.length;
      ok = this.socket.write(chunk);
    }
    if (ok) return Promise.resolve();
    return this.state.drain(this.socket);
  }

  progress(): { pending: number; flushed: number } {
    const pending = this.socket.writableLength;
    return { pending, flushed: this.#accepted - pending };
  }

  end(): Promise<void> {
    return this.state.end(() => this.socket.end());
  }

  destroy(cause: Error): void {
    this.state.fail(cause);
  }
}
