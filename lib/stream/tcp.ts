/**
 * TCP links over `node:net`, which Deno and Bun both provide. See docs/transport.md for what the
 * runtimes report: a successful write is not a delivery, and the end of a stream is delivered only when
 * the peer's FIN answers ours.
 * @module
 */

import * as net from "node:net";
import { EncoderError } from "../errors.ts";
import { asError, type Link, type LinkError, linkError, type Transport } from "./link.ts";

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
      resolve(new TcpLink(socket));
    });
  });
}

class TcpLink implements Link {
  #socket: net.Socket;
  #cause: LinkError | undefined;
  #ending = false;
  #accepted = 0;
  #resolveLost!: (e: LinkError) => void;
  #closeWaiters: (() => void)[] = [];
  #closed = false;
  readonly lost: Promise<LinkError>;

  constructor(socket: net.Socket) {
    this.#socket = socket;
    this.lost = new Promise((r) => (this.#resolveLost = r));
    // Read and discard what the peer sends: without a reader its FIN would never show as 'end'.
    socket.on("data", () => {});
    socket.on("error", (err) => this.#fail(err));
    socket.on("end", () => {
      if (!this.#ending) this.#fail(linkError("EOF", "The peer closed the connection"));
    });
    socket.on("close", () => {
      this.#closed = true;
      if (!this.#ending) this.#fail(linkError("ECONNRESET", "The connection closed"));
      for (const w of this.#closeWaiters.splice(0)) w();
    });
  }

  #fail(err: unknown) {
    if (this.#cause) return;
    this.#cause = asError(err);
    this.#resolveLost(this.#cause);
    this.#socket.destroy();
    for (const w of this.#closeWaiters.splice(0)) w();
  }

  write(bytes: Uint8Array): Promise<void> {
    if (this.#cause) return Promise.reject(this.#cause);
    this.#accepted += bytes.length;
    if (this.#socket.write(bytes)) return Promise.resolve();
    // After a destroy 'drain' never comes: wait for 'close' too.
    return new Promise<void>((resolve, reject) => {
      const done = () => {
        this.#socket.off("drain", done);
        if (this.#cause) reject(this.#cause);
        else resolve();
      };
      this.#socket.once("drain", done);
      this.#closeWaiters.push(done);
    });
  }

  progress() {
    const pending = this.#socket.writableLength;
    return { pending, flushed: this.#accepted - pending };
  }

  end(): Promise<void> {
    if (this.#cause) return Promise.reject(this.#cause);
    this.#ending = true;
    return new Promise<void>((resolve, reject) => {
      const done = () => (this.#cause ? reject(this.#cause) : resolve());
      if (this.#closed) return done();
      this.#closeWaiters.push(done);
      this.#socket.end();
    });
  }

  destroy(cause: Error): void {
    this.#fail(cause);
  }
}
