/**
 * In-test peers for the sink tests: a TCP receiver that can be killed, restarted and stalled, a WebSocket
 * receiver on Deno.serve or Bun.serve, an HTTP receiver on node:http, and a tolerant IVF parser for what
 * each connection received.
 * @module
 */

import * as http from "node:http";
import * as net from "node:net";
import { TcpPeer } from "./tcp_peer.ts";

/** What one connection received. */
export interface Received {
  chunks: Uint8Array[];
  bytes: number;
  /** True once the peer saw the end of the stream (FIN, close frame or end of the request body). */
  ended: boolean;
}

export function joined(r: Received): Uint8Array {
  const out = new Uint8Array(r.bytes);
  let at = 0;
  for (const c of r.chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** IVF frames of a connection's bytes; a frame cut short by a lost connection is left out. */
export function parseIvfStream(
  bytes: Uint8Array,
): { valid: boolean; frames: { timestamp: number; data: Uint8Array }[] } {
  const frames: { timestamp: number; data: Uint8Array }[] = [];
  if (bytes.length < 32) return { valid: bytes.length === 0, frames };
  const magic = String.fromCharCode(...bytes.subarray(0, 4));
  if (magic !== "DKIF") return { valid: false, frames };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = view.getUint16(6, true);
  while (at + 12 <= bytes.length) {
    const size = view.getUint32(at, true);
    const timestamp = Number(view.getBigInt64(at + 4, true));
    if (at + 12 + size > bytes.length) break;
    frames.push({ timestamp, data: bytes.subarray(at + 12, at + 12 + size) });
    at += 12 + size;
  }
  return { valid: true, frames };
}

/** Frames of all connections deduplicated by timestamp; throws if two copies of a frame differ. */
export function dedupe(connections: Received[]): Map<number, Uint8Array> {
  const frames = new Map<number, Uint8Array>();
  for (const c of connections) {
    for (const f of parseIvfStream(joined(c)).frames) {
      const seen = frames.get(f.timestamp);
      if (seen && !sameBytes(seen, f.data)) {
        throw new Error(`Frame ${f.timestamp} arrived twice with different bytes`);
      }
      frames.set(f.timestamp, f.data);
    }
  }
  return frames;
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A TCP peer on 127.0.0.1 that records each connection, and can be killed, restarted and stalled. */
export class TcpReceiver extends TcpPeer {
  readonly connections: Received[] = [];
  /** Called with each connection's record and its socket after every chunk. */
  onData: ((conn: Received, socket: net.Socket, index: number) => void) | undefined;
  /** Connections with these indexes never read: a stalled peer. */
  stallConnections = new Set<number>();
  /** Connections with these indexes never answer the client's FIN. */
  silentConnections = new Set<number>();

  constructor() {
    super({ allowHalfOpen: true });
  }

  static async start(): Promise<TcpReceiver> {
    const r = new TcpReceiver();
    await r.listen();
    return r;
  }

  protected accept(socket: net.Socket): void {
    const index = this.connections.length;
    const conn: Received = { chunks: [], bytes: 0, ended: false };
    this.connections.push(conn);
    this.track(socket);
    socket.on("error", () => {});
    if (this.stallConnections.has(index)) {
      socket.pause();
      return;
    }
    socket.on("data", (chunk: Uint8Array) => {
      conn.chunks.push(new Uint8Array(chunk));
      conn.bytes += chunk.length;
      this.onData?.(conn, socket, index);
    });
    socket.on("end", () => {
      conn.ended = true;
      if (!this.silentConnections.has(index)) socket.end();
    });
  }
}

/** An HTTP peer on node:http recording each request body; `onData` may destroy the request's socket. */
export class HttpReceiver {
  readonly connections: (Received & { method: string; contentType: string })[] = [];
  port = 0;
  onData: ((conn: Received, req: http.IncomingMessage, index: number) => void) | undefined;
  #server: http.Server | undefined;

  static async start(): Promise<HttpReceiver> {
    const r = new HttpReceiver();
    const server = http.createServer((req, res) => {
      const index = r.connections.length;
      const conn = {
        chunks: [] as Uint8Array[],
        bytes: 0,
        ended: false,
        method: req.method ?? "",
        contentType: String(req.headers["content-type"]),
      };
      r.connections.push(conn);
      req.on("data", (chunk: Uint8Array) => {
        conn.chunks.push(new Uint8Array(chunk));
        conn.bytes += chunk.length;
        r.onData?.(conn, req, index);
      });
      req.on("end", () => {
        conn.ended = true;
        res.writeHead(201).end();
      });
      req.on("error", () => {});
    });
    r.#server = server;
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
    r.port = (server.address() as net.AddressInfo).port;
    return r;
  }

  async close(): Promise<void> {
    const server = this.#server!;
    (server as { closeAllConnections?: () => void }).closeAllConnections?.();
    await new Promise<void>((r) => server.close(() => r()));
  }
}

interface AnySocket {
  close(code?: number, reason?: string): void;
}

/** The part of the `ws` package's server that Node's WebSocketReceiver uses (the package has no types here). */
interface WsModule {
  WebSocketServer: new(o: { host: string; port: number }) => {
    once(event: "listening" | "error", fn: (e?: unknown) => void): void;
    on(
      event: "connection",
      fn: (
        socket: AnySocket & {
          on(event: "message", fn: (data: Uint8Array, isBinary: boolean) => void): void;
          on(event: "close", fn: (code: number) => void): void;
        },
      ) => void,
    ): void;
    address(): { port: number };
    clients: Set<{ terminate(): void }>;
    close(fn: () => void): void;
  };
}
/** A variable specifier: only Node loads `ws`. */
const wsSpecifier = "ws";

/**
 * A WebSocket peer on `Deno.serve` + `Deno.upgradeWebSocket` or `Bun.serve`, recording each connection's
 * binary messages; `onData` may return true to drop the connection abruptly.
 */
export class WebSocketReceiver {
  readonly connections: Received[] = [];
  port = 0;
  onData: ((conn: Received, index: number) => boolean | void) | undefined;
  #stop: () => Promise<void> = () => Promise.resolve();

  static async start(): Promise<WebSocketReceiver> {
    const r = new WebSocketReceiver();
    const g = globalThis as unknown as {
      Deno?: {
        serve(
          o: unknown,
          h: (req: Request) => Response,
        ): { addr: { port: number }; shutdown(): Promise<void> };
        upgradeWebSocket(req: Request): { socket: WebSocket; response: Response };
      };
      Bun?: {
        serve(
          o: unknown,
        ): {
          port: number;
          stop(force?: boolean): Promise<void> | void;
          upgrade(req: Request, o: unknown): boolean;
        };
      };
    };
    const onMessage = (
      conn: Received,
      index: number,
      data: ArrayBuffer | Uint8Array | string,
      socket: AnySocket,
    ) => {
      if (typeof data === "string") return;
      const bytes = new Uint8Array(data instanceof ArrayBuffer ? data : data.slice());
      conn.chunks.push(bytes);
      conn.bytes += bytes.length;
      if (r.onData?.(conn, index)) socket.close(4000, "test drops the connection");
    };
    if (g.Deno) {
      const server = g.Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, (req) => {
        const { socket, response } = g.Deno!.upgradeWebSocket(req);
        const index = r.connections.length;
        const conn: Received = { chunks: [], bytes: 0, ended: false };
        r.connections.push(conn);
        socket.binaryType = "arraybuffer";
        socket.onmessage = (e) => onMessage(conn, index, e.data, socket);
        socket.onclose = (e) => (conn.ended = e.code === 1000);
        return response;
      });
      r.port = server.addr.port;
      r.#stop = () => server.shutdown();
    } else if (g.Bun) {
      type Data = { conn: Received; index: number };
      const server = g.Bun.serve({
        port: 0,
        hostname: "127.0.0.1",
        fetch(req: Request, srv: { upgrade(req: Request, o: unknown): boolean }) {
          const index = r.connections.length;
          const conn: Received = { chunks: [], bytes: 0, ended: false };
          r.connections.push(conn);
          return srv.upgrade(req, { data: { conn, index } })
            ? undefined
            : new Response("no", { status: 400 });
        },
        websocket: {
          message(ws: AnySocket & { data: Data }, msg: string | Uint8Array) {
            onMessage(ws.data.conn, ws.data.index, msg, ws);
          },
          close(ws: { data: Data }, code: number) {
            ws.data.conn.ended = code === 1000;
          },
        },
      });
      r.port = server.port;
      r.#stop = async () => {
        await server.stop(true);
      };
    } else {
      // Node has a WebSocket client (22, or 20 with --experimental-websocket) but no server: `ws` serves.
      const { WebSocketServer } = await import(wsSpecifier) as WsModule;
      const server = new WebSocketServer({ host: "127.0.0.1", port: 0 });
      await new Promise<void>((resolve, reject) => {
        server.once("listening", () => resolve());
        server.once("error", reject);
      });
      server.on("connection", (socket) => {
        const index = r.connections.length;
        const conn: Received = { chunks: [], bytes: 0, ended: false };
        r.connections.push(conn);
        socket.on("message", (data, isBinary) => isBinary && onMessage(conn, index, data, socket));
        socket.on("close", (code) => (conn.ended = code === 1000));
      });
      r.port = server.address().port;
      r.#stop = () =>
        new Promise<void>((resolve) => {
          for (const c of server.clients) c.terminate();
          server.close(() => resolve());
        });
    }
    return r;
  }

  close(): Promise<void> {
    return this.#stop();
  }
}

/** Resolves when `predicate` holds, checked after each event of `on`; for coordinating with sink events. */
export function until<T>(
  subscribe: (cb: (e: T) => void) => () => void,
  predicate: (e: T) => boolean,
): Promise<T> {
  return new Promise((resolve) => {
    const off = subscribe((e) => {
      if (predicate(e)) {
        off();
        resolve(e);
      }
    });
  });
}
