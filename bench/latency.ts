/**
 * Glass-to-glass latency into Chromium: the test source paced in real time, each frame's index stamped
 * into its picture (bench/frame_stamp.ts), encoded with SVT-AV1 low delay or rav1e low latency and sent
 * along one of these paths:
 *
 * - `ws`: through `webSocketSink` to a relay in this process (Deno.serve / Bun.serve, the way
 *   examples/websocket_relay.ts serves viewers) and on to a page's WebSocket, decoded there by WebCodecs
 *   `VideoDecoder` (`optimizeForLatency`); the time is taken in the decoder's output callback;
 * - `whip`: through `whipSink` to a WHIP endpoint whose answerer is the page's `RTCPeerConnection`
 *   (tests/_helpers/chromium_whip.ts), decoded by libwebrtc; the time is taken when the decoded frame
 *   comes out of a `MediaStreamTrackProcessor` on the received track, and getStats() gives the jitter
 *   buffer's part;
 * - `whip-pd0`: the same with the sink's `playoutDelay: { min: 0, max: 0 }` (render at once).
 *
 * Each decoded frame's index is read back from its luma (VideoFrame.copyTo), so a frame is matched to the
 * moment it entered `encode()` whatever the path did to timestamps. Times on both sides are
 * `performance.timeOrigin + performance.now()`; the page's clock is checked against this process's over a
 * WebSocket (ping-pong, the offset of the round trip with the smallest delay) before and after each run,
 * and the measured offset is applied. Everything is on 127.0.0.1 (WebRTC too: loopback candidates only,
 * mDNS off).
 *
 * ```sh
 * deno run -A bench/latency.ts                     # every path, both backends, in Deno
 * bun bench/latency.ts --paths ws --backends rav1e # one of each, in Bun
 * deno run -A bench/latency.ts --runtimes deno,bun --write   # both runtimes, into bench/results.md
 * ```
 *
 * Options: `--frames N` (300 measured), `--warmup N` (30 before them, not counted), `--paths
 * ws,whip,whip-pd0`, `--backends svt-av1,rav1e` (each `name[@variant][:library file]`: `svt-av1@normal` for a
 * thread priority, `rav1e@tiles4`, `svt-av1:/usr/lib/x86_64-linux-gnu/libSvtAv1Enc.so.3` for another
 * library; a backend given twice runs twice, alternating with the others), `--runtimes deno,bun` (run each in a child process of that runtime and
 * combine), `--write` (the "Glass-to-glass latency" section of bench/results.md), `--json FILE` (every
 * frame's times), `--svt-preset N` (12), `--crf N` (35), `--rav1e-speed N` (10), `--quantizer N` (100),
 * `--rdo-lookahead N` (1), `--keyint N` (60), `--jitter-target MS` (the WebRTC receiver's
 * `jitterBufferTarget`; unset by default), `--no-optimize-for-latency` (the VideoDecoder without the hint).
 * @module
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import process from "node:process";
import { codecString } from "../lib/av1/codec_string.ts";
import { Rav1eEncoder } from "../lib/encoder/rav1e.ts";
import { SvtAv1Encoder } from "../lib/encoder/svt_av1.ts";
import { testSource } from "../lib/io/testsrc.ts";
import { createEncodeStream } from "../lib/stream/encode_stream.ts";
import { paceFrames } from "../lib/stream/pace.ts";
import type { PacketSink, SinkEvents } from "../lib/stream/packet_sink.ts";
import { webSocketSink } from "../lib/stream/sinks.ts";
import { whipSink } from "../lib/transport/whip.ts";
import type { Encoder, Frame, Packet } from "../lib/types.ts";
import { VERSION } from "../lib/version.ts";
import {
  CHROMIUM_PATH,
  CHROMIUM_WEBRTC_LOOPBACK_ARGS,
  launchChromium,
} from "../tests/_helpers/browser_chromium.ts";
import { ChromiumWhipEndpoint, inboundVideo, type Stat } from "../tests/_helpers/chromium_whip.ts";
import { READ_FRAME_INDEX_SOURCE, stampBlock, stampFrameIndex } from "./frame_stamp.ts";
import { writeResultsSection } from "./harness.ts";

/** `whip-pd0`: WHIP asking for playout delay 0 (the sink's `playoutDelay: { min: 0, max: 0 }`). */
type Path = "ws" | "whip" | "whip-pd0";
type Backend = "svt-av1" | "rav1e";
/** A backend, and the library file to load when not the one found by default. */
interface BackendSpec {
  backend: Backend;
  libraryPath?: string;
  /** SVT-AV1's `threadPriority` (matters only as root); the library's default when unset. */
  threadPriority?: "batch" | "normal" | "realtime";
  /** rav1e's `tiles`. */
  tiles?: number;
}

/**
 * `name[@variant][:library path]`: `svt-av1@normal` (a thread priority: batch, normal, realtime),
 * `rav1e@tiles4`, `svt-av1:/usr/lib/x86_64-linux-gnu/libSvtAv1Enc.so.3`.
 */
function backendSpecs(list: string): BackendSpec[] {
  return list.split(",").filter(Boolean).map((x) => {
    const [head, ...rest] = x.split(":");
    const [name, variant] = head.split("@");
    if (name !== "svt-av1" && name !== "rav1e") {
      throw new Error(`--backends: ${name} is not svt-av1 or rav1e`);
    }
    const spec: BackendSpec = { backend: name, libraryPath: rest.length ? rest.join(":") : undefined };
    if (variant === undefined) return spec;
    if (name === "svt-av1" && ["batch", "normal", "realtime"].includes(variant)) {
      spec.threadPriority = variant as BackendSpec["threadPriority"];
    } else if (name === "rav1e" && /^tiles\d+$/.test(variant)) {
      spec.tiles = Number(variant.slice(5));
    } else {
      throw new Error(`--backends: ${x}: svt-av1 takes @batch, @normal or @realtime, rav1e @tiles<N>`);
    }
    return spec;
  });
}

function parseArgs(argv: string[]) {
  const flags: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith("--")) throw new Error(`unexpected argument ${a}`);
    const [k, v] = a.slice(2).split("=", 2);
    const boolean = ["write", "child", "no-optimize-for-latency"].includes(k);
    flags[k] = v ?? (boolean ? "true" : argv[++i] ?? "");
  }
  const num = (k: string, d: number) => {
    if (flags[k] === undefined) return d;
    const n = Number(flags[k]);
    if (!Number.isFinite(n)) throw new Error(`--${k} needs a number, got ${flags[k]}`);
    return n;
  };
  const list = <T extends string>(k: string, all: T[]): T[] => {
    const got = (flags[k] ?? all.join(",")).split(",").filter(Boolean) as T[];
    for (const x of got) {
      if (!all.includes(x)) throw new Error(`--${k}: ${x} is not one of ${all.join(", ")}`);
    }
    return got;
  };
  return {
    frames: num("frames", 300),
    warmup: num("warmup", 30),
    paths: list<Path>("paths", ["ws", "whip", "whip-pd0"]),
    backends: backendSpecs(flags.backends ?? "svt-av1,rav1e"),
    runtimes: flags.runtimes === undefined ? undefined : list("runtimes", ["deno", "bun"]),
    write: flags.write === "true",
    child: flags.child === "true",
    json: flags.json,
    from: flags.from,
    svtPreset: num("svt-preset", 12),
    crf: num("crf", 35),
    rav1eSpeed: num("rav1e-speed", 10),
    quantizer: num("quantizer", 100),
    rdoLookahead: num("rdo-lookahead", 1),
    keyint: num("keyint", 60),
    jitterTarget: flags["jitter-target"] === undefined ? undefined : num("jitter-target", 0),
    optimizeForLatency: flags["no-optimize-for-latency"] !== "true",
  };
}
type Options = ReturnType<typeof parseArgs>;

const WIDTH = 640, HEIGHT = 360, FPS = 30;
const HOST = "127.0.0.1";
/** One clock for everything: milliseconds since the epoch, at performance.now()'s resolution. */
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function runtimeName(): string {
  const g = globalThis as unknown as { Deno?: { version: { deno: string } }; Bun?: { version: string } };
  if (g.Deno) return `deno ${g.Deno.version.deno}`;
  if (g.Bun) return `bun ${g.Bun.version}`;
  return `node ${process.versions.node}`;
}

// ---- a WebSocket server on Deno.serve or Bun.serve ----

interface Peer {
  send(data: string | Uint8Array): void;
  close(): void;
}
interface ServerHandlers {
  page(path: string): string | undefined;
  open(path: string, peer: Peer): void;
  message(path: string, peer: Peer, data: string | Uint8Array): void;
  close(path: string, peer: Peer): void;
}

interface DenoServe {
  serve(
    o: { port: number; hostname: string; onListen(): void },
    h: (req: Request) => Response,
  ): { addr: { port: number }; shutdown(): Promise<void> };
  upgradeWebSocket(req: Request): { socket: WebSocket; response: Response };
}
interface BunWs {
  send(d: string | Uint8Array): number;
  close(): void;
  data: { path: string; peer?: Peer };
}
interface BunServe {
  serve(o: {
    port: number;
    hostname: string;
    fetch(
      req: Request,
      srv: { upgrade(req: Request, o: { data: BunWs["data"] }): boolean },
    ): Response | undefined;
    websocket: {
      open(ws: BunWs): void;
      message(ws: BunWs, m: string | Uint8Array): void;
      close(ws: BunWs): void;
    };
  }): { port: number; stop(force?: boolean): unknown };
}

function serve(h: ServerHandlers): { port: number; stop(): void } {
  const g = globalThis as unknown as { Deno?: DenoServe; Bun?: BunServe };
  const html = (path: string) => {
    const body = h.page(path);
    return body === undefined
      ? new Response("not found", { status: 404 })
      : new Response(body, { headers: { "content-type": "text/html; charset=utf-8" } });
  };
  if (g.Deno) {
    const Deno = g.Deno;
    const server = Deno.serve({ port: 0, hostname: HOST, onListen() {} }, (req) => {
      const path = new URL(req.url).pathname;
      if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") return html(path);
      const { socket, response } = Deno.upgradeWebSocket(req);
      socket.binaryType = "arraybuffer";
      const peer: Peer = {
        send: (d) => socket.send(d as string | Uint8Array<ArrayBuffer>),
        close: () => socket.close(),
      };
      socket.onopen = () => h.open(path, peer);
      socket.onmessage = (e) =>
        h.message(path, peer, typeof e.data === "string" ? e.data : new Uint8Array(e.data as ArrayBuffer));
      socket.onclose = () => h.close(path, peer);
      return response;
    });
    return { port: server.addr.port, stop: () => void server.shutdown() };
  }
  if (g.Bun) {
    const server = g.Bun.serve({
      port: 0,
      hostname: HOST,
      fetch(req, srv) {
        const path = new URL(req.url).pathname;
        if (
          req.headers.get("upgrade")?.toLowerCase() === "websocket" && srv.upgrade(req, { data: { path } })
        ) {
          return undefined;
        }
        return html(path);
      },
      websocket: {
        open(ws) {
          ws.data.peer = { send: (d) => void ws.send(d), close: () => ws.close() };
          h.open(ws.data.path, ws.data.peer);
        },
        message(ws, m) {
          h.message(ws.data.path, ws.data.peer!, m);
        },
        close(ws) {
          if (ws.data.peer) h.close(ws.data.path, ws.data.peer);
        },
      },
    });
    return { port: server.port, stop: () => void server.stop(true) };
  }
  throw new Error("bench/latency.ts runs in Deno or Bun");
}

// ---- the page's side ----

/**
 * Injected into both pages. `lat.frame(frame)` takes the time a decoded frame appeared and reads its
 * stamp; the clock socket answers this process's pings with the page's time.
 */
const PAGE_SCRIPT = `
(() => {
  const readFrameIndex = (${READ_FRAME_INDEX_SOURCE});
  const now = () => performance.timeOrigin + performance.now();
  const lat = globalThis.lat = { frames: [], received: [], presented: [], errors: [], misses: 0,
    decodeQueueMax: 0, statsAtWarmup: null, pc: null, warmup: 0, meta: null };
  lat.clock = (url) => new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.onmessage = (e) => ws.send(JSON.stringify({ tb: JSON.parse(e.data).tb, tp: now() }));
    ws.onopen = () => resolve();
    ws.onerror = () => reject(new Error("the clock socket failed"));
    lat.clockSocket = ws;
  });
  // The stamp's rows only: the luma plane comes first in every 8-bit layout.
  async function readStamp(frame, rows) {
    const width = frame.visibleRect.width;
    if (frame.format) {
      const rect = { x: 0, y: 0, width, height: rows };
      const buf = new Uint8Array(frame.allocationSize({ rect }));
      const layout = await frame.copyTo(buf, { rect });
      return readFrameIndex(buf.subarray(layout[0].offset), layout[0].stride, width);
    }
    // A frame without CPU-side memory: through a canvas, red standing in for luma.
    const canvas = new OffscreenCanvas(width, rows);
    const ctx = canvas.getContext("2d");
    ctx.drawImage(frame, 0, 0);
    const rgba = ctx.getImageData(0, 0, width, rows).data;
    const red = new Uint8Array(width * rows);
    for (let i = 0; i < red.length; i++) red[i] = rgba[i * 4];
    return readFrameIndex(red, width, width);
  }
  lat.frame = (frame, extra) => {
    const decoded = now();
    const rows = lat.rows;
    readStamp(frame, rows).then((index) => {
      if (index === null) lat.misses++;
      else {
        lat.frames.push({ index, decoded, timestamp: frame.timestamp, ...extra });
        // At the first measured frame decoded (the one at the warm-up's end may be dropped).
        if (index >= lat.warmup && lat.pc && !lat.statsTaken) {
          lat.statsTaken = true;
          lat.pc.getStats().then((r) => {
            lat.statsAtWarmup = [...r.values()].map((s) => JSON.parse(JSON.stringify(s)));
          });
        }
      }
    }, (e) => lat.errors.push("copyTo: " + e)).finally(() => frame.close());
  };
  function isKey(data) {
    // A key frame of ours carries a sequence header OBU (type 1).
    let at = 0;
    while (at < data.length) {
      const h = data[at];
      const type = (h >> 3) & 15, ext = (h >> 2) & 1, sized = (h >> 1) & 1;
      if (type === 1) return true;
      if (!sized) return false;
      let p = at + 1 + ext, size = 0, shift = 0;
      for (let i = 0; i < 8; i++) {
        const b = data[p++];
        size += (b & 127) * 2 ** shift;
        shift += 7;
        if (!(b & 128)) break;
      }
      at = p + size;
    }
    return false;
  }
  lat.startWs = (cfg) => new Promise((resolve, reject) => {
    Object.assign(lat, { rows: cfg.rows, warmup: cfg.warmup });
    const decoder = new VideoDecoder({
      output: (f) => lat.frame(f, {}),
      error: (e) => lat.errors.push("decoder: " + e),
    });
    decoder.configure({ codec: cfg.codec, optimizeForLatency: cfg.optimizeForLatency,
      hardwareAcceleration: "prefer-software" });
    lat.decoder = decoder;
    const ws = new WebSocket(cfg.url);
    ws.binaryType = "arraybuffer";
    let header = true;
    ws.onopen = () => resolve();
    ws.onerror = () => reject(new Error("the viewer socket failed"));
    ws.onmessage = (e) => {
      const t = now();
      // The IVF file header first, then one IVF frame (12-byte header: size, timestamp) per message.
      if (header) return void (header = false);
      const view = new DataView(e.data);
      const size = view.getUint32(0, true);
      const pts = Number(view.getBigUint64(4, true));
      const data = new Uint8Array(e.data, 12, size);
      lat.received.push([pts, t]);
      try {
        decoder.decode(new EncodedVideoChunk({ type: isKey(data) ? "key" : "delta", timestamp: pts, data }));
      } catch (err) {
        lat.errors.push("decode: " + err);
      }
      lat.decodeQueueMax = Math.max(lat.decodeQueueMax, decoder.decodeQueueSize);
    };
  });
  lat.startWhip = (cfg) => {
    Object.assign(lat, { rows: cfg.rows, warmup: cfg.warmup });
    const answer = globalThis.whip.answer;
    globalThis.whip.answer = async (offer) => {
      const r = await answer(offer);
      const pc = lat.pc = globalThis.whip.pcs[r.index];
      const receiver = pc.getReceivers().find((x) => x.track.kind === "video");
      if (cfg.jitterTarget !== null) receiver.jitterBufferTarget = cfg.jitterTarget;
      // Room for frames that come while the page is busy: the default buffer of one drops them.
      const processor = new MediaStreamTrackProcessor({ track: receiver.track, maxBufferSize: 60 });
      const reader = processor.readable.getReader();
      (async () => {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          const m = value.metadata ? value.metadata() : {};
          lat.meta ??= Object.keys(m);
          const abs = (t) => (t === undefined ? undefined : performance.timeOrigin + t);
          lat.frame(value, { rtpTimestamp: m.rtpTimestamp, receiveTime: abs(m.receiveTime),
            captureTime: abs(m.captureTime) });
        }
      })().catch((e) => lat.errors.push("track processor: " + e));
      const view = document.getElementById("view");
      const presented = (t, md) => {
        lat.presented.push({ at: performance.timeOrigin + t, rtpTimestamp: md.rtpTimestamp,
          receiveTime: md.receiveTime === undefined ? undefined : performance.timeOrigin + md.receiveTime,
          expectedDisplayTime: performance.timeOrigin + md.expectedDisplayTime,
          processingDuration: md.processingDuration });
        view.requestVideoFrameCallback(presented);
      };
      view.requestVideoFrameCallback(presented);
      return r;
    };
  };
})();
`;

const WS_PAGE = `<!doctype html>
<meta charset="utf-8">
<title>latency: WebSocket → VideoDecoder</title>
<p>WebSocket viewer</p>
`;

// ---- this side ----

/** What this process saw of one frame, by index (ms since the epoch). */
interface Sent {
  /** The pacer let the frame out (its capture time in a live source). */
  captured?: number;
  /** `encode()` was called with it. */
  encodeIn?: number;
  /** Its packet came out of the encoder's packet iterator. */
  packetOut?: number;
  /** The packet was handed to the sink. */
  sinkIn?: number;
  /** The relay received it from the sink (ws). */
  relayed?: number;
}

/** One frame as the page decoded it, in the page's clock. */
interface Decoded {
  index: number;
  decoded: number;
  timestamp: number;
  rtpTimestamp?: number;
  receiveTime?: number;
  captureTime?: number;
}

interface PageData {
  frames: Decoded[];
  received: [number, number][];
  presented: { at: number; rtpTimestamp?: number; receiveTime?: number; processingDuration?: number }[];
  errors: string[];
  misses: number;
  decodeQueueMax: number;
  statsAtWarmup: Stat[] | null;
  meta: string[] | null;
}

interface ClockCheck {
  /** Page clock minus this process's clock (ms), from the ping with the shortest round trip. */
  offset: number;
  /** That ping's round trip (ms): the offset is known to within half of it. */
  rtt: number;
}

/** An encoder that notes when each frame went in and each packet came out. */
function timedEncoder(inner: Encoder, sent: Map<number, Sent>): Encoder {
  const at = (ts: number) => {
    let s = sent.get(ts);
    if (!s) sent.set(ts, s = {});
    return s;
  };
  return {
    get codec() {
      return inner.codec;
    },
    get fps() {
      return inner.fps;
    },
    get info() {
      return inner.info;
    },
    get frameSize() {
      return inner.frameSize;
    },
    get closed() {
      return inner.closed;
    },
    encode(frame, options) {
      at(frame.timestamp!).encodeIn = now();
      return inner.encode(frame, options);
    },
    requestKeyFrame: () => inner.requestKeyFrame(),
    packets() {
      const it = inner.packets();
      return (async function*() {
        for await (const p of it) {
          at(p.timestamp).packetOut = now();
          yield p;
        }
      })();
    },
    flush: () => inner.flush(),
    sequenceHeader: () => inner.sequenceHeader(),
    close: () => inner.close(),
    [Symbol.asyncDispose]: () => inner.close(),
    [Symbol.dispose]: () => void inner.close(),
  };
}

async function createEncoder(
  { backend, libraryPath, threadPriority, tiles }: BackendSpec,
  o: Options,
): Promise<Encoder> {
  const info = {
    width: WIDTH,
    height: HEIGHT,
    fps: { num: FPS, den: 1 },
    bitDepth: 8,
    chroma: "420" as const,
  };
  return backend === "svt-av1"
    ? await SvtAv1Encoder.create({
      ...info,
      preset: o.svtPreset,
      lowDelay: true,
      crf: o.crf,
      keyint: o.keyint,
      logLevel: "error",
      libraryPath,
      threadPriority,
    })
    : await Rav1eEncoder.create({
      ...info,
      speed: o.rav1eSpeed,
      lowLatency: true,
      rdoLookahead: o.rdoLookahead,
      quantizer: o.quantizer,
      keyint: o.keyint,
      tiles,
      libraryPath,
    });
}

/** The paced, stamped source: `count` frames at 30 fps, each one's release time noted. */
function liveFrames(count: number, sent: Map<number, Sent>): ReadableStream<Frame> {
  const source = testSource({ width: WIDTH, height: HEIGHT, frames: count });
  const paced = paceFrames(source.frames(), source.info.fps);
  return new ReadableStream<Frame>({
    async pull(c) {
      const next = await paced.next();
      if (next.done) return c.close();
      const f = next.value;
      stampFrameIndex(f.data, WIDTH, HEIGHT, f.timestamp);
      sent.set(f.timestamp, { captured: now() });
      c.enqueue(f);
    },
  }, { highWaterMark: 0 });
}

/** Notes when each packet reaches the sink; before the end goes on, waits for `beforeClose`. */
function sinkTap(sent: Map<number, Sent>, beforeClose: () => Promise<void>): TransformStream<Packet, Packet> {
  return new TransformStream({
    transform(p, c) {
      const s = sent.get(p.timestamp);
      if (s) s.sinkIn = now();
      c.enqueue(p);
    },
    flush: () => beforeClose(),
  });
}

function connected(sink: PacketSink): Promise<void> {
  return new Promise((resolve, reject) => {
    const offs = [
      sink.on("connect", () => (offs.forEach((f) => f()), resolve())),
      sink.on("error", (e: SinkEvents["error"]) => (offs.forEach((f) => f()), reject(e.error))),
    ];
  });
}

/** The bench's server: pages, the publisher's WebSocket, viewers and clock sockets. */
class Bench {
  #server: { port: number; stop(): void };
  #viewers = new Set<Peer>();
  #clocks = new Set<Peer>();
  #pongs: ((m: { tb: number; tp: number }, t: number) => void) | undefined;
  /** Where the relay notes arrivals for the run in progress. */
  sent: Map<number, Sent> | undefined;

  constructor() {
    this.#server = serve({
      page: (path) => (path === "/" ? WS_PAGE : undefined),
      open: (path, peer) => {
        if (path === "/view") this.#viewers.add(peer);
        if (path === "/clock") this.#clocks.add(peer);
      },
      message: (path, peer, data) => {
        if (path === "/publish" && typeof data !== "string") this.#relay(data);
        if (path === "/clock" && typeof data === "string") this.#pongs?.(JSON.parse(data), now());
        void peer;
      },
      close: (_path, peer) => {
        this.#viewers.delete(peer);
        this.#clocks.delete(peer);
      },
    });
  }

  get port() {
    return this.#server.port;
  }
  get viewers() {
    return this.#viewers.size;
  }
  get clocks() {
    return this.#clocks.size;
  }

  /** Sends each message of the publisher on to every viewer at once, as examples/websocket_relay.ts. */
  #relay(data: Uint8Array) {
    if (data.length >= 12 && this.sent) {
      const pts = Number(new DataView(data.buffer, data.byteOffset, 12).getBigUint64(4, true));
      const s = this.sent.get(pts);
      if (s && data.length === 12 + new DataView(data.buffer, data.byteOffset, 4).getUint32(0, true)) {
        s.relayed = now();
      }
    }
    for (const v of this.#viewers) v.send(data);
  }

  /** Pings the page's clock socket `n` times; the offset from the ping with the shortest round trip. */
  async checkClock(n = 40): Promise<ClockCheck> {
    const peer = [...this.#clocks][0];
    if (!peer) throw new Error("the page has no clock socket open");
    let best: ClockCheck = { offset: NaN, rtt: Infinity };
    for (let i = 0; i < n; i++) {
      const got = new Promise<{ tb: number; tp: number; t: number }>((resolve) => {
        this.#pongs = (m, t) => resolve({ ...m, t });
      });
      peer.send(JSON.stringify({ tb: now() }));
      const m = await Promise.race([got, sleep(1000).then(() => undefined)]);
      if (m && m.t - m.tb < best.rtt) best = { offset: m.tp - (m.tb + m.t) / 2, rtt: m.t - m.tb };
      await sleep(5);
    }
    this.#pongs = undefined;
    if (!Number.isFinite(best.offset)) throw new Error("the page's clock socket did not answer");
    return best;
  }

  stop() {
    this.#server.stop();
  }
}

interface RunResult {
  runtime: string;
  path: Path;
  backend: Backend;
  library: string;
  settings: string;
  sent: Record<number, Sent>;
  page: PageData;
  clockBefore: ClockCheck;
  clockAfter: ClockCheck;
  /** getStats() of the inbound video at the first measured frame and at the end (whip). */
  statsAtWarmup?: Stat;
  statsAtEnd?: Stat;
  bytes: number;
  date: string;
  /** CPU time of this whole process (every thread: the encoder's, the sink's) per frame. */
  cpuMsPerFrame: number;
  loadAverage: number[];
  warmup: number;
  frames: number;
}

type Page = Awaited<ReturnType<typeof launchChromium>>["context"] extends { newPage(): Promise<infer P> } ? P
  : never;

async function waitFor(cond: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    if (await cond()) return true;
    await sleep(50);
  }
  return false;
}

function pageData(page: Page): Promise<PageData> {
  return page.evaluate(() => {
    const l = (globalThis as unknown as { lat: PageData }).lat;
    return {
      frames: l.frames,
      received: l.received,
      presented: l.presented,
      errors: l.errors,
      misses: l.misses,
      decodeQueueMax: l.decodeQueueMax,
      statsAtWarmup: l.statsAtWarmup,
      meta: l.meta,
    };
  });
}

const lastDecoded = (page: Page) =>
  page.evaluate(() =>
    Math.max(-1, ...(globalThis as unknown as { lat: PageData }).lat.frames.map((f) => f.index))
  );

async function runOne(
  bench: Bench,
  context: Awaited<ReturnType<typeof launchChromium>>["context"],
  path: Path,
  spec: BackendSpec,
  o: Options,
): Promise<RunResult> {
  const { backend } = spec;
  const total = o.warmup + o.frames;
  const sent = new Map<number, Sent>();
  const page = await context.newPage();
  const logs: string[] = [];
  page.on("console", (m) => logs.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => logs.push(`pageerror: ${e.message}`));
  let ep: ChromiumWhipEndpoint | undefined;
  const inner = await createEncoder(spec, o);
  const version = (inner as { version?: string }).version ?? "";
  const library = `${backend === "svt-av1" ? "SVT-AV1" : "rav1e"} ${version.replace(/ \(.*\)$/, "")}${
    spec.threadPriority ? `, threads ${spec.threadPriority}` : ""
  }${spec.tiles !== undefined ? `, ${spec.tiles} tiles` : ""}`;
  const encoder = timedEncoder(inner, sent);
  const encode = createEncodeStream({ encoder });
  const rows = 2 * stampBlock(WIDTH);
  try {
    if (path === "ws") {
      await page.goto(`http://${HOST}:${bench.port}/`);
    } else {
      ep = await ChromiumWhipEndpoint.start(page);
    }
    await page.addScriptTag({ content: PAGE_SCRIPT });
    const clocksBefore = bench.clocks;
    await page.evaluate(
      (url) => (globalThis as unknown as { lat: { clock(u: string): Promise<void> } }).lat.clock(url),
      `ws://${HOST}:${bench.port}/clock`,
    );
    if (!await waitFor(() => Promise.resolve(bench.clocks > clocksBefore), 5000)) {
      throw new Error("no clock socket");
    }
    const clockBefore = await bench.checkClock();
    let sink: PacketSink;
    const info = { width: WIDTH, height: HEIGHT, fps: { num: FPS, den: 1 } };
    if (path === "ws") {
      const cfg = {
        url: `ws://${HOST}:${bench.port}/view`,
        // rav1e has no sequence header before its first packet; the decoder takes any level of profile 0.
        codec: inner.sequenceHeader().length ? codecString(inner.sequenceHeader()) : "av01.0.04M.08",
        optimizeForLatency: o.optimizeForLatency,
        rows,
        warmup: o.warmup,
      };
      await page.evaluate(
        (c) => (globalThis as unknown as { lat: { startWs(c: unknown): Promise<void> } }).lat.startWs(c),
        cfg,
      );
      if (!await waitFor(() => Promise.resolve(bench.viewers > 0), 5000)) throw new Error("no viewer");
      bench.sent = sent;
      sink = webSocketSink(`ws://${HOST}:${bench.port}/publish`, {
        info,
        onKeyFrameNeeded: () => encode.requestKeyFrame(),
      });
      await connected(sink);
    } else {
      await page.evaluate(
        (c) => (globalThis as unknown as { lat: { startWhip(c: unknown): void } }).lat.startWhip(c),
        { rows, warmup: o.warmup, jitterTarget: o.jitterTarget ?? null },
      );
      sink = whipSink(ep!.url, {
        info,
        onKeyFrameNeeded: () => encode.requestKeyFrame(),
        connectTimeout: 15_000,
        iceHostAddresses: [HOST],
        iceRemoteFilter: (ip) => ip === HOST,
        playoutDelay: path === "whip-pd0" ? { min: 0, max: 0 } : undefined,
      });
      await connected(sink);
      // RTP before chromium's DTLS is up would be lost, and the stream would start at the next key frame.
      await ep!.receiverConnected(0, 30_000).catch(async (e) => {
        const state = await page.evaluate(async () => {
          const pc = (globalThis as unknown as { lat: { pc: RTCPeerConnection | null } }).lat.pc;
          if (!pc) return "no peer connection";
          const stats = [...(await pc.getStats()).values()].filter((x) =>
            ["transport", "candidate-pair", "local-candidate", "remote-candidate"].includes(x.type)
          );
          return `${pc.connectionState} ice ${pc.iceConnectionState} ${JSON.stringify(stats)}`;
        });
        throw new Error(`${(e as Error).message}: ${state}`);
      });
    }
    let statsAtEnd: Stat | undefined;
    let pairAddresses: string[] = [];
    let bytes = 0;
    const cpuBefore = process.cpuUsage();
    await liveFrames(total, sent)
      .pipeThrough(encode)
      .pipeThrough(
        new TransformStream<Packet, Packet>({
          transform(p, c) {
            bytes += p.data.length;
            c.enqueue(p);
          },
        }),
      )
      .pipeThrough(sinkTap(sent, async () => {
        // Everything decoded (or 5 s without), then the receiver's figures, before the sink ends the stream.
        await waitFor(async () => (await lastDecoded(page)) >= total - 1, 5000);
        if (ep) {
          const report = inboundVideo(await ep.stats());
          statsAtEnd = report.inbound;
          // The sink gathers and accepts 127.0.0.1 alone; chromium's end of the pair is checked here.
          pairAddresses = [report.local?.address, report.remote?.address].map(String);
        }
      }))
      .pipeTo(sink);
    const cpu = process.cpuUsage(cpuBefore);
    bench.sent = undefined;
    const clockAfter = await bench.checkClock();
    const data = await pageData(page);
    const answer = ep?.sessions[0]?.answer ?? "";
    if (ep && !pairAddresses.every((a) => a === HOST)) {
      throw new Error(`WebRTC left loopback: the selected candidate pair is ${pairAddresses.join(" ↔ ")}`);
    }
    if (path === "whip-pd0" && !answer.includes("rtp-hdrext/playout-delay")) {
      data.errors.push("the answer did not accept the playout-delay extension");
    }
    if (data.errors.length) {
      console.error(`${path} ${backend}: page errors: ${data.errors.slice(0, 5).join("; ")}`);
    }
    return {
      runtime: runtimeName(),
      path,
      backend,
      library,
      settings: backend === "svt-av1"
        ? `preset ${o.svtPreset}, crf ${o.crf}, pred-struct 1 (low delay), keyint ${o.keyint}`
        : `speed ${o.rav1eSpeed}, quantizer ${o.quantizer}, low_latency, rdo_lookahead_frames ${o.rdoLookahead}, keyint ${o.keyint}`,
      sent: Object.fromEntries(sent),
      page: data,
      clockBefore,
      clockAfter,
      statsAtWarmup: data.statsAtWarmup ? inboundVideo(data.statsAtWarmup).inbound : undefined,
      statsAtEnd,
      bytes,
      date: new Date().toISOString(),
      cpuMsPerFrame: (cpu.user + cpu.system) / 1000 / total,
      loadAverage: loadavg(),
      warmup: o.warmup,
      frames: o.frames,
    };
  } catch (e) {
    if (logs.length) (e as Error).message += `\npage console:\n${logs.join("\n")}`;
    throw e;
  } finally {
    bench.sent = undefined;
    await encoder.close().catch(() => {});
    await ep?.close();
    await page.close().catch(() => {});
  }
}

// ---- figures ----

function quantile(xs: number[], q: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}
const median = (xs: number[]) => quantile(xs, 0.5);
const p95 = (xs: number[]) => quantile(xs, 0.95);

interface Summary {
  runtime: string;
  path: Path;
  backend: Backend;
  library: string;
  settings: string;
  measured: number;
  missing: number;
  g2g: [number, number];
  g2gMean: number;
  /** When the run ended. */
  date: string;
  /** Named stages, each [median, p95] in ms. */
  stages: Record<string, [number, number]>;
  jitterBufferMs?: number;
  /** libwebrtc's jitter buffer target, averaged over the frames. */
  jitterTargetMs?: number;
  decodeMs?: number;
  processingMs?: number;
  clock: { before: ClockCheck; after: ClockCheck };
  kbps: number;
  cpuMsPerFrame: number;
  loadAverage: number[];
  notes: string[];
}

function summarise(r: RunResult): Summary {
  // The page's times into this process's clock: the mean of the offsets before and after.
  const offset = (r.clockBefore.offset + r.clockAfter.offset) / 2;
  const toBench = (t: number) => t - offset;
  const first = r.warmup, last = r.warmup + r.frames - 1;
  const decoded = new Map<number, Decoded>();
  for (const f of r.page.frames) if (!decoded.has(f.index)) decoded.set(f.index, f);
  const received = new Map(r.page.received);
  const g2g: number[] = [];
  const stage: Record<string, number[]> = {};
  const add = (name: string, a: number | undefined, b: number | undefined) => {
    if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b)) return;
    (stage[name] ??= []).push(b - a);
  };
  // By RTP timestamp, from requestVideoFrameCallback: when the frame was shown, and when its last packet
  // was received (VideoFrame.metadata() of the track's frames has only rtpTimestamp in Chromium 156).
  const presented = new Map<number, PageData["presented"][number]>();
  for (const p of r.page.presented) {
    if (p.rtpTimestamp !== undefined && !presented.has(p.rtpTimestamp)) presented.set(p.rtpTimestamp, p);
  }
  let missing = 0;
  for (let i = first; i <= last; i++) {
    const s = r.sent[i];
    const d = decoded.get(i);
    if (!s?.encodeIn || !d) {
      missing++;
      continue;
    }
    const dec = toBench(d.decoded);
    g2g.push(dec - s.encodeIn);
    add("pacer → encode()", s.captured, s.encodeIn);
    add("encoder (encode() → packet)", s.encodeIn, s.packetOut);
    add("packet → sink", s.packetOut, s.sinkIn);
    // "received": the WebSocket message event (ws), or rVFC's receiveTime, the frame's last RTP packet (whip).
    const shown = d.rtpTimestamp === undefined ? undefined : presented.get(d.rtpTimestamp);
    const pageReceived = r.path === "ws" ? received.get(i) : shown?.receiveTime;
    const recv = pageReceived === undefined ? undefined : toBench(pageReceived);
    add("sink → page received", s.sinkIn, recv);
    add("received → decoded", recv, dec);
    if (r.path === "ws") add("of which sink → relay", s.sinkIn, s.relayed);
    add("decoded → presented (rVFC)", dec, shown === undefined ? undefined : toBench(shown.at));
  }
  const stages: Record<string, [number, number]> = {};
  for (const [k, v] of Object.entries(stage)) stages[k] = [median(v), p95(v)];
  const notes: string[] = [];
  if (r.page.misses) notes.push(`${r.page.misses} decoded frames without a readable stamp`);
  if (r.page.errors.length) notes.push(`page errors: ${r.page.errors.slice(0, 3).join("; ")}`);
  const out: Summary = {
    runtime: r.runtime,
    path: r.path,
    backend: r.backend,
    library: r.library,
    settings: r.settings,
    measured: g2g.length,
    missing,
    g2g: [median(g2g), p95(g2g)],
    g2gMean: g2g.reduce((a, b) => a + b, 0) / g2g.length,
    date: r.date,
    stages,
    clock: { before: r.clockBefore, after: r.clockAfter },
    kbps: (r.bytes * 8 / ((r.warmup + r.frames) / FPS)) / 1000,
    cpuMsPerFrame: r.cpuMsPerFrame,
    loadAverage: r.loadAverage,
    notes,
  };
  const a = r.statsAtWarmup, b = r.statsAtEnd;
  if (a && b) {
    const d = (k: string) => Number(b[k] ?? 0) - Number(a[k] ?? 0);
    const emitted = d("jitterBufferEmittedCount"), frames = d("framesDecoded");
    if (emitted > 0) {
      out.jitterBufferMs = d("jitterBufferDelay") / emitted * 1000;
      out.jitterTargetMs = d("jitterBufferTargetDelay") / emitted * 1000;
    }
    if (frames > 0) {
      out.decodeMs = d("totalDecodeTime") / frames * 1000;
      out.processingMs = d("totalProcessingDelay") / frames * 1000;
    }
    if (d("framesDropped")) notes.push(`${d("framesDropped")} frames dropped by libwebrtc`);
    if (d("freezeCount")) notes.push(`${d("freezeCount")} freezes`);
  }
  return out;
}

const ms = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? "–" : x.toFixed(1));
const pair = (x: [number, number] | undefined) => (x ? `${ms(x[0])} / ${ms(x[1])}` : "–");

function table(rows: Summary[]): string {
  const order = [
    "pacer → encode()",
    "encoder (encode() → packet)",
    "packet → sink",
    "sink → page received",
    "of which sink → relay",
    "received → decoded",
    "decoded → presented (rVFC)",
  ];
  const seen = new Set(rows.flatMap((r) => Object.keys(r.stages)));
  const stageNames = [...order.filter((x) => seen.has(x)), ...[...seen].filter((x) => !order.includes(x))];
  const head = [
    "runtime",
    "path",
    "backend",
    "frames",
    "glass-to-glass median / p95 ms",
    ...stageNames.map((s) => `${s} ms`),
    "jitter buffer mean ms (share of mean glass-to-glass) / target ms",
    "decode ms (getStats)",
    "kbit/s",
    "bench CPU ms/frame",
    "clock offset ms (± rtt/2)",
    "load",
  ];
  const lines = [
    `| ${head.join(" | ")} |`,
    `| ${head.map((_, i) => (i < 3 ? "---" : "---:")).join(" | ")} |`,
  ];
  for (const r of rows) {
    const jb = r.jitterBufferMs === undefined
      ? "–"
      : `${ms(r.jitterBufferMs)} (${(r.jitterBufferMs / r.g2gMean * 100).toFixed(0)} %) / ${
        ms(r.jitterTargetMs)
      }`;
    lines.push(
      `| ${
        [
          r.runtime,
          r.path === "ws"
            ? "WebSocket → VideoDecoder"
            : r.path === "whip"
            ? "WHIP → WebRTC"
            : "WHIP → WebRTC, playout delay 0",
          r.library,
          `${r.measured}${r.missing ? ` (${r.missing} missing)` : ""}`,
          pair(r.g2g),
          ...stageNames.map((s) => pair(r.stages[s])),
          jb,
          ms(r.decodeMs),
          r.kbps.toFixed(0),
          ms(r.cpuMsPerFrame),
          `${r.clock.before.offset.toFixed(2)} (±${(r.clock.before.rtt / 2).toFixed(2)}) → ${
            r.clock.after.offset.toFixed(2)
          }`,
          r.loadAverage.map((x) => x.toFixed(2)).join(" "),
        ].join(" | ")
      } |`,
    );
  }
  return lines.join("\n");
}

async function measureHere(o: Options): Promise<{ summaries: Summary[]; runs: RunResult[] }> {
  const bench = new Bench();
  const browser = await launchChromium({ args: CHROMIUM_WEBRTC_LOOPBACK_ARGS });
  const runs: RunResult[] = [];
  const summaries: Summary[] = [];
  try {
    for (const path of o.paths) {
      for (const spec of o.backends) {
        process.stderr.write(
          `${runtimeName()} ${path} ${spec.backend}${
            spec.libraryPath ? ` (${spec.libraryPath})` : ""
          }: ${o.warmup} + ${o.frames} frames...\n`,
        );
        const r = await runOne(bench, browser.context, path, spec, o);
        const s = summarise(r);
        runs.push(r);
        summaries.push(s);
        process.stderr.write(
          `  glass-to-glass median ${ms(s.g2g[0])} ms, p95 ${ms(s.g2g[1])} ms; encoder ${
            pair(s.stages["encoder (encode() → packet)"])
          } ms${s.jitterBufferMs === undefined ? "" : `; jitter buffer ${ms(s.jitterBufferMs)} ms`}${
            s.notes.length ? `; ${s.notes.join("; ")}` : ""
          }\n`,
        );
      }
    }
  } finally {
    await browser.close();
    bench.stop();
  }
  return { summaries, runs };
}

function chromiumVersion(): string {
  const r = spawnSync(CHROMIUM_PATH, ["--version"], { encoding: "utf8" });
  return /(\d+\.\d+\.\d+\.\d+)/.exec(r.stdout ?? "")?.[1] ?? "unknown";
}

function section(rows: Summary[], o: Options): string {
  const libs = [...new Set(rows.map((r) => `${r.library} (${r.settings})`))].join("; ");
  const dates = rows.map((r) => r.date).filter(Boolean).sort();
  const when = dates.length ? `${dates[0]} to ${dates.at(-1)}` : new Date().toISOString();
  return `Written by \`bench/latency.ts\` (runs from ${when}, av1-stream ${VERSION}, Chromium ${chromiumVersion()}
headless, ${cpus().length} cores, load average at the end of each run in the last column). 640x360 at 30 fps, the
test source paced in real time, ${o.warmup} frames of warm-up and then ${o.frames} measured; ${libs}.
Glass-to-glass is from the frame entering \`encode()\` to the page having it decoded: the VideoDecoder's output
callback (WebSocket), or the frame coming out of a \`MediaStreamTrackProcessor\` on the received track (WHIP: its
delivery to the page's main thread, so "decoded → presented" can be below 0 when the compositor showed it first); each
decoded frame is matched by the index stamped into its picture (bench/frame_stamp.ts) and read back with
\`VideoFrame.copyTo\`. Both sides take \`performance.timeOrigin + performance.now()\`; the page's clock was checked
against the bench's over a WebSocket ping-pong before and after each run (offset column: page minus bench, from
the ping with the shortest round trip) and the offset applied. Each stage is median / p95 of its own frames.
The WebSocket path is \`webSocketSink\` → a relay in the bench process (Deno.serve / Bun.serve) → the page's
WebSocket → \`VideoDecoder\` (\`optimizeForLatency: ${o.optimizeForLatency}\`); the WHIP path is \`whipSink\` (werift) →
the page's \`RTCPeerConnection\` (libwebrtc), its jitter buffer from getStats() (jitterBufferDelay /
jitterBufferEmittedCount over the measured frames), and again with the sink's \`playoutDelay: { min: 0, max: 0 }\`
("playout delay 0"). "Missing" frames are measured frames the page never had decoded (dropped by libwebrtc, or
by the track processor when the page fell behind). All traffic on 127.0.0.1 (ICE candidates too, mDNS off: the
sink gathers and accepts 127.0.0.1 alone, and the bench checks chromium's selected candidate pair).
Target (issue 16): WebSocket median ≤ 100 ms, p95 ≤ 150 ms.

${table(rows)}
`;
}

// ---- main ----

const o = parseArgs(process.argv.slice(2));
let summaries: Summary[];
if (o.runtimes) {
  summaries = [];
  const here = new URL(".", import.meta.url).pathname;
  const root = new URL("..", import.meta.url).pathname;
  const pass = process.argv.slice(2).filter((_, i, a) => {
    const prev = a[i - 1];
    return !["--runtimes", "--write", "--json"].includes(a[i]) && prev !== "--runtimes" && prev !== "--json";
  });
  for (const rt of o.runtimes) {
    mkdirSync(`${here}tmp`, { recursive: true });
    const out = `${here}tmp/latency_${rt}.json`;
    const cmd = rt === "deno"
      ? [`${root}node_modules/.bin/deno`, [
        "run",
        "-A",
        `${here}latency.ts`,
        ...pass,
        "--child",
        "--json",
        out,
      ]]
      : [`${root}node_modules/.bin/bun`, [`${here}latency.ts`, ...pass, "--child", "--json", out]];
    const r = spawnSync(cmd[0] as string, cmd[1] as string[], { stdio: "inherit" });
    if (r.status !== 0) throw new Error(`${rt}: bench/latency.ts exited ${r.status}`);
    summaries.push(...(JSON.parse(readFileSync(out, "utf8")) as { runs: RunResult[] }).runs.map(summarise));
  }
} else if (o.from) {
  // Figures again from the frames of earlier runs (their --json files), e.g. after changing what is summed up.
  summaries = o.from.split(",").flatMap((file) => {
    const { runs } = JSON.parse(readFileSync(file, "utf8")) as { runs: RunResult[] };
    return runs.map((r) => summarise({ ...r, date: r.date ?? statSync(file).mtime.toISOString() }));
  });
} else {
  const got = await measureHere(o);
  summaries = got.summaries;
  if (o.json) writeFileSync(o.json, JSON.stringify(got));
}
if (!o.child) {
  console.log(table(summaries));
  for (const s of summaries) {
    if (s.notes.length) console.log(`${s.runtime} ${s.path} ${s.backend}: ${s.notes.join("; ")}`);
  }
}
if (o.write) {
  const path = new URL("./results.md", import.meta.url).pathname;
  // The hand-written analysis under the table ("### Where the time goes") stays.
  const old = existsSync(path) ? readFileSync(path, "utf8") : "";
  const start = old.indexOf("\n## Glass-to-glass latency\n");
  const end = start < 0 ? -1 : old.indexOf("\n## ", start + 1);
  const body = start < 0 ? "" : old.slice(start, end < 0 ? undefined : end);
  const kept = body.indexOf("\n### Where the time goes");
  writeResultsSection(
    path,
    "Glass-to-glass latency",
    section(summaries, o) + (kept < 0 ? "" : body.slice(kept)),
  );
}
process.exit(0);
