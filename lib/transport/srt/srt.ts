/**
 * SRT links (caller mode, live transmission type) through libsrt over FFI. Each connection is one
 * Worker that owns the SRT socket, since `srt_connect` and `srt_sendmsg2` block; bytes go to it as
 * transferred messages and come out as live-mode messages of at most 1316 bytes. The stream's format
 * (IVF by default) starts again on every connection, so each connection decodes by itself.
 * @module
 */

import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { locateSrt, type SrtLocation } from "../../../ffi/load.ts";
import { type NativeThread, startThread } from "../../../ffi/runtime/mod.ts";
import { EncoderError } from "../../errors.ts";
import { PacketSink, type PacketSinkOptions } from "../../stream/packet_sink.ts";
import { asError, type Link, type LinkError, linkError, type Transport } from "../link.ts";

/** Options of an SRT connection; each may also come from the URL's query (`?latency=200&passphrase=…`). */
export interface SrtOptions {
  /** TSBPD latency in ms, set on both sides (SRTO_LATENCY). Default: the library's, 120. */
  latency?: number;
  /** Enables AES encryption: 10 to 79 characters, the same on the listener (SRTO_PASSPHRASE). */
  passphrase?: string;
  /** AES key length in bytes with a passphrase: 16 (default), 24 or 32 (SRTO_PBKEYLEN). */
  pbkeylen?: 16 | 24 | 32;
  /** Stream id the listener sees (SRTO_STREAMID), at most 512 characters. */
  streamId?: string;
  /** A peer silent this long (ms) is gone and the sink reconnects (SRTO_PEERIDLETIMEO). Default 5000. */
  peerIdleTimeout?: number;
  /** Path of libsrt to load (like `SRT_LIB_PATH`). */
  libraryPath?: string;
}

/** The transport's own figures, refreshed four times a second while connected. */
export interface SrtLinkStats {
  /** Smoothed round-trip time. */
  rttMs: number;
  /** SRT's sending rate, retransmissions included. */
  sendRateKbps: number;
  /** SRT's estimate of the link's bandwidth. */
  bandwidthKbps: number;
  bytesSent: number;
  packetsSent: number;
  packetsRetransmitted: number;
  /** Packets the receiver reported lost. */
  packetsLost: number;
  /** Packets the sender dropped as too late to play. */
  packetsDropped: number;
  /** Bytes sent and not yet acknowledged. */
  unackedBytes: number;
}

/** What {@linkcode SrtSink.transportStats} gives: the CLI's progress line shows `rttMs`. */
export interface SrtTransportStats extends Partial<SrtLinkStats> {
  /** Send rate, named as for the other transports (`sendRateKbps`). */
  sendBitrateKbps?: number;
}

/** A connect request to the worker. */
export interface SrtConnectRequest {
  t: "connect";
  location: SrtLocation;
  name: string;
  /** A `sockaddr_in` or `sockaddr_in6`. */
  sockaddr: Uint8Array;
  options: {
    latency?: number;
    passphrase?: string;
    pbkeylen?: number;
    streamId?: string;
    connectTimeout: number;
    peerIdleTimeout: number;
    sendTimeout: number;
  };
}

/** Messages to the SRT worker. */
export type ToSrtWorker =
  | SrtConnectRequest
  | { t: "write"; data: Uint8Array }
  | { t: "end"; timeout: number }
  | { t: "close" };

/** Messages from the SRT worker. */
export type FromSrtWorker =
  | { t: "connected" }
  | { t: "written"; bytes: number }
  | { t: "stats"; stats: SrtLinkStats }
  | { t: "ended" }
  | { t: "lost"; code: string; message: string; srtErrno: number }
  | { t: "error"; code: string; message: string }
  | { t: "closed" };

const HIGH_WATER_BYTES = 512 * 1024;

function invalid(message: string): EncoderError {
  return new EncoderError("INVALID_CONFIG", message, { library: "srt" });
}

/** Checks SRT options in TypeScript before libsrt sees them. */
export function validateSrtOptions(o: SrtOptions): void {
  if (o.latency !== undefined && !(Number.isInteger(o.latency) && o.latency >= 0 && o.latency <= 60_000)) {
    throw invalid(`SRT latency must be a whole number of ms from 0 to 60000, got ${o.latency}`);
  }
  if (o.passphrase !== undefined && o.passphrase !== "") {
    const n = [...o.passphrase].length;
    if (n < 10 || n > 79) {
      throw invalid(`SRT passphrase must have 10 to 79 characters, got ${n}`);
    }
  }
  if (o.pbkeylen !== undefined && ![16, 24, 32].includes(o.pbkeylen)) {
    throw invalid(`SRT pbkeylen must be 16, 24 or 32, got ${o.pbkeylen}`);
  }
  if (o.streamId !== undefined && o.streamId.length > 512) {
    throw invalid(`SRT stream id must have at most 512 characters, got ${o.streamId.length}`);
  }
  if (
    o.peerIdleTimeout !== undefined
    && !(Number.isInteger(o.peerIdleTimeout) && o.peerIdleTimeout >= 100)
  ) {
    throw invalid(
      `SRT peerIdleTimeout must be a whole number of ms of at least 100, got ${o.peerIdleTimeout}`,
    );
  }
}

/**
 * Parses `srt://host:port[?latency=ms&passphrase=…&pbkeylen=16&streamid=…&mode=caller]`. Only caller mode
 * is supported: the sink connects to a listener.
 *
 * @example
 * ```ts
 * import { parseSrtUrl } from "./srt.ts";
 * console.log(parseSrtUrl("srt://127.0.0.1:9000?latency=200")); // { host: "127.0.0.1", port: 9000, options: { latency: 200 } }
 * ```
 */
export function parseSrtUrl(url: string): { host: string; port: number; options: SrtOptions } {
  const m = /^srt:\/\/(\[[^\]]+\]|[^:/?]+):(\d+)\/?(?:\?(.*))?$/i.exec(url);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !(port > 0 && port < 65536)) {
    throw invalid(
      `SRT address must look like srt://host:port[?latency=ms&passphrase=…], got ${JSON.stringify(url)}`,
    );
  }
  const options: SrtOptions = {};
  for (const [key, value] of new URLSearchParams(m[3] ?? "")) {
    switch (key.toLowerCase()) {
      case "latency":
        options.latency = Number(value);
        break;
      case "passphrase":
        options.passphrase = value;
        break;
      case "pbkeylen":
        options.pbkeylen = Number(value) as 16 | 24 | 32;
        break;
      case "streamid":
        options.streamId = value;
        break;
      case "peeridletimeo":
        options.peerIdleTimeout = Number(value);
        break;
      case "mode":
        if (value !== "caller") {
          throw invalid(`The SRT sink connects as a caller; mode=${value} is not supported`);
        }
        break;
      default:
        throw invalid(
          `Unknown SRT URL parameter ${
            JSON.stringify(key)
          }: use latency, passphrase, pbkeylen, streamid, peeridletimeo or mode=caller`,
        );
    }
  }
  validateSrtOptions(options);
  return { host: m[1].replace(/^\[|\]$/g, ""), port, options };
}

/** A `sockaddr_in` (16 bytes) or `sockaddr_in6` (28 bytes) for a numeric address, as Linux lays it out. */
export function sockaddr(ip: string, port: number): Uint8Array {
  const family = isIP(ip);
  if (family === 4) {
    const b = new Uint8Array(16);
    const v = new DataView(b.buffer);
    v.setUint16(0, 2, true); // AF_INET, host order
    v.setUint16(2, port, false); // network order
    ip.split(".").forEach((part, i) => (b[4 + i] = Number(part)));
    return b;
  }
  if (family === 6) {
    const b = new Uint8Array(28);
    const v = new DataView(b.buffer);
    v.setUint16(0, 10, true); // AF_INET6
    v.setUint16(2, port, false);
    // Expand "::" and write the eight groups at offset 8 (after flowinfo).
    const [head, tail] = ip.includes("::") ? ip.split("::") : [ip, undefined];
    const h = head ? head.split(":") : [];
    const t = tail !== undefined && tail !== "" ? tail.split(":") : [];
    const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill("0"), ...t];
    groups.forEach((g, i) => v.setUint16(8 + 2 * i, parseInt(g, 16), false));
    return b;
  }
  throw invalid(`Not a numeric IP address: ${JSON.stringify(ip)}`);
}

/** An SRT {@linkcode Transport} that also reports the current connection's figures. */
export interface SrtTransport extends Transport {
  /** The figures of the current (or last) connection, or undefined before the first. */
  stats(): SrtLinkStats | undefined;
}

/** A transport connecting to an SRT listener at `host:port` as a caller, in live mode. */
export function srtTransport(host: string, port: number, options: SrtOptions = {}): SrtTransport {
  validateSrtOptions(options);
  let last: SrtLinkStats | undefined;
  let libraryMissing = false;
  const name = `srt://${host.includes(":") ? `[${host}]` : host}:${port}`;
  return {
    name,
    // A missing libsrt is not worth retrying: the sink reads this after a failed connect and gives up.
    get reconnects() {
      return !libraryMissing;
    },
    stats: () => last,
    async connect({ timeout }) {
      const location = await locateSrt({ libraryPath: options.libraryPath }).catch((e) => {
        libraryMissing = true;
        throw e;
      });
      const ip = isIP(host) ? host : (await lookup(host)).address;
      return await SrtLink.open({
        t: "connect",
        location,
        name,
        sockaddr: sockaddr(ip, port),
        options: {
          latency: options.latency,
          passphrase: options.passphrase || undefined,
          pbkeylen: options.pbkeylen,
          streamId: options.streamId,
          connectTimeout: Math.max(100, Math.round(timeout)),
          peerIdleTimeout: options.peerIdleTimeout ?? 5000,
          sendTimeout: 250,
        },
      }, (s) => (last = s));
    },
  };
}

class SrtLink implements Link {
  #worker: NativeThread;
  #cause: LinkError | undefined;
  #resolveLost!: (e: LinkError) => void;
  #posted = 0;
  #flushed = 0;
  #roomWaiters: { resolve(): void; reject(e: unknown): void }[] = [];
  #endWaiter: { resolve(): void; reject(e: unknown): void } | undefined;
  #onStats: (s: SrtLinkStats) => void;
  #terminated = false;
  readonly lost: Promise<LinkError>;

  private constructor(worker: NativeThread, onStats: (s: SrtLinkStats) => void) {
    this.#worker = worker;
    this.#onStats = onStats;
    this.lost = new Promise((r) => (this.#resolveLost = r));
  }

  /** Starts a worker, connects it and resolves with the link, or rejects with the connection's error. */
  static open(request: SrtConnectRequest, onStats: (s: SrtLinkStats) => void): Promise<SrtLink> {
    const worker = startThread(new URL("./worker.ts", import.meta.url));
    const link = new SrtLink(worker, onStats);
    return new Promise<SrtLink>((resolve, reject) => {
      let connected = false;
      worker.onmessage = (e: MessageEvent<FromSrtWorker>) => {
        const m = e.data;
        if (!connected) {
          if (m.t === "connected") {
            connected = true;
            resolve(link);
          } else if (m.t === "error") {
            link.#terminate();
            reject(linkError(m.code, m.message));
          }
          return;
        }
        link.#onMessage(m);
      };
      worker.onerror = (e: ErrorEvent) => {
        e.preventDefault?.();
        const err = linkError("EIO", `The SRT worker failed: ${e.message}`);
        link.#terminate();
        if (connected) link.#fail(err);
        else reject(err);
      };
      worker.postMessage(request);
    });
  }

  #onMessage(m: FromSrtWorker) {
    switch (m.t) {
      case "written":
        this.#flushed += m.bytes;
        this.#wakeWriters();
        return;
      case "stats":
        this.#onStats(m.stats);
        return;
      case "ended":
        this.#terminate();
        this.#endWaiter?.resolve();
        this.#endWaiter = undefined;
        return;
      case "lost":
        this.#fail(linkError(m.code, m.message));
        return;
      case "closed":
        this.#terminate();
        return;
    }
  }

  #wakeWriters() {
    while (this.#roomWaiters.length && this.#posted - this.#flushed <= HIGH_WATER_BYTES) {
      this.#roomWaiters.shift()!.resolve();
    }
  }

  #fail(err: unknown) {
    if (this.#cause) return;
    this.#cause = asError(err);
    this.#resolveLost(this.#cause);
    for (const w of this.#roomWaiters.splice(0)) w.reject(this.#cause);
    this.#endWaiter?.reject(this.#cause);
    this.#endWaiter = undefined;
    this.#close();
  }

  /** Asks the worker to close its socket, then ends the worker (at the latest after a grace period). */
  #close() {
    if (this.#terminated || this.#closeTimer !== undefined) return;
    try {
      this.#worker.postMessage({ t: "close" } satisfies ToSrtWorker);
    } catch {
      return this.#terminate();
    }
    // A worker in a blocking call answers within SRTO_SNDTIMEO (or SRTO_CONNTIMEO while connecting).
    this.#closeTimer = setTimeout(() => this.#terminate(), 15_000);
  }
  #closeTimer: ReturnType<typeof setTimeout> | undefined;

  #terminate() {
    clearTimeout(this.#closeTimer);
    if (this.#terminated) return;
    this.#terminated = true;
    this.#worker.terminate();
  }

  write(bytes: Uint8Array): Promise<void> {
    if (this.#cause) return Promise.reject(this.#cause);
    // A copy is transferred: the sink may still hold the caller's bytes for resending.
    const data = bytes.slice();
    this.#posted += data.length;
    this.#worker.postMessage({ t: "write", data } satisfies ToSrtWorker, [data.buffer]);
    if (this.#posted - this.#flushed <= HIGH_WATER_BYTES) return Promise.resolve();
    return new Promise((resolve, reject) => this.#roomWaiters.push({ resolve, reject }));
  }

  progress() {
    const pending = this.#posted - this.#flushed;
    return { pending, flushed: this.#flushed };
  }

  end(): Promise<void> {
    if (this.#cause) return Promise.reject(this.#cause);
    return new Promise<void>((resolve, reject) => {
      this.#endWaiter = { resolve, reject };
      this.#worker.postMessage({ t: "end", timeout: 10_000 } satisfies ToSrtWorker);
    });
  }

  destroy(cause: Error): void {
    this.#fail(cause);
  }
}

/**
 * A {@linkcode PacketSink} over SRT with the transport's own figures: `transportStats()` gives the
 * current connection's RTT and send rate.
 */
export class SrtSink extends PacketSink {
  #transport: SrtTransport;

  constructor(transport: SrtTransport, options: PacketSinkOptions = {}) {
    super(transport, options);
    this.#transport = transport;
  }

  /** RTT and send rate of the current (or last) connection; empty before the first one. */
  transportStats(): SrtTransportStats {
    const s = this.#transport.stats();
    return s ? { ...s, sendBitrateKbps: s.sendRateKbps } : {};
  }
}

/**
 * A sink sending the stream to an SRT listener (`srt://host:port`, caller mode, live transmission type),
 * reconnecting when the link is lost. Options in the URL's query and in `options` are merged (options
 * win). Packets are framed by the sink's format (IVF by default) and cut into messages of 1316 bytes.
 *
 * @example
 * ```ts
 * import { srtSink } from "./srt.ts";
 * const sink = srtSink("srt://127.0.0.1:9000?latency=200", {
 *   info: { width: 64, height: 64, fps: { num: 30, den: 1 } },
 *   connectTimeout: 500,
 *   maxAttempts: 0,
 * });
 * await sink.close().catch((e) => console.log(e.message)); // nobody listens on port 9000 here
 * ```
 */
export function srtSink(
  url: string | { host: string; port: number },
  options: PacketSinkOptions & SrtOptions = {},
): SrtSink {
  const parsed = typeof url === "string" ? parseSrtUrl(url) : { ...url, options: {} };
  const merged: SrtOptions = {
    ...parsed.options,
    ...Object.fromEntries(
      (["latency", "passphrase", "pbkeylen", "streamId", "peerIdleTimeout", "libraryPath"] as const)
        .filter((k) => options[k] !== undefined).map((k) => [k, options[k]]),
    ),
  };
  return new SrtSink(srtTransport(parsed.host, parsed.port, merged), options);
}
