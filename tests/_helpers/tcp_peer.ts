/**
 * What the in-test TCP peers share: a free port, and a server on 127.0.0.1 that a test can kill (every
 * open connection reset) and start again on the same port.
 * @module
 */

import * as net from "node:net";

/** A free TCP port on 127.0.0.1 (bound and released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/**
 * A TCP server on 127.0.0.1: `listen()` takes a free port the first time and the same port after a
 * `kill()`, which stops listening and resets (RST) every connection it tracks.
 */
export abstract class TcpPeer {
  port = 0;
  #options: net.ServerOpts;
  #server: net.Server | undefined;
  #sockets = new Set<net.Socket>();

  constructor(options: net.ServerOpts = {}) {
    this.#options = options;
  }

  get listening(): boolean {
    return this.#server !== undefined;
  }

  /** Handles a new connection; `track()` the sockets `kill()` is to reset. */
  protected abstract accept(socket: net.Socket): void;

  /** Holds `socket` for `kill()` until it closes. */
  protected track(socket: net.Socket): void {
    this.#sockets.add(socket);
    socket.on("close", () => this.#sockets.delete(socket));
  }

  /** Makes the server: a `node:net` one here, a `node:tls` one in a TLS peer. */
  protected createServer(options: net.ServerOpts, listener: (socket: net.Socket) => void): net.Server {
    return net.createServer(options, listener);
  }

  listen(): Promise<void> {
    const server = this.createServer(this.#options, (socket) => this.accept(socket));
    this.#server = server;
    return new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.port, "127.0.0.1", () => {
        this.port = (server.address() as net.AddressInfo).port;
        resolve();
      });
    });
  }

  /** Stops listening and resets (RST) every open connection. */
  async kill(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    for (const s of this.#sockets) {
      const r = s as net.Socket & { resetAndDestroy?: () => void };
      // Node cannot reset a TLS socket (ERR_INVALID_HANDLE_TYPE): that one gets a plain destroy.
      try {
        if (r.resetAndDestroy) r.resetAndDestroy();
        else s.destroy();
      } catch {
        s.destroy();
      }
    }
    this.#sockets.clear();
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }

  close(): Promise<void> {
    return this.kill();
  }
}
