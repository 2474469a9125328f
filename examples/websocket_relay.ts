/**
 * Encode once, serve many: the test source at real time, encoded once with SVT-AV1 (low delay), relayed
 * to every WebSocket viewer on `Deno.serve` or `Bun.serve` (whichever runtime runs it).
 *
 * - A viewer gets the IVF header as its first message, then one IVF frame per message, starting at a key
 *   frame: a new viewer makes the encoder produce one at once (`requestKeyFrame()`), so nobody waits for
 *   the next scheduled one. (SVT-AV1 1.4 ignores such requests in low-delay mode: there a new viewer
 *   starts at the next scheduled key frame, so keep `--keyint` short.)
 * - A slow viewer cannot slow the others: sending never waits. Each viewer has a bounded queue (what its
 *   socket has not sent yet, `--max-queue` bytes); a frame that would go over it is discarded and so is
 *   everything up to the next key frame, where the viewer resumes with a stream that still decodes.
 *
 * ```sh
 * deno run -A examples/websocket_relay.ts --port 8080
 * bun examples/websocket_relay.ts --port 8080 --size 640x360 --fps 30
 * # a viewer: new WebSocket("ws://127.0.0.1:8080/"), binaryType "arraybuffer", concatenate messages → .ivf
 * ```
 *
 * Options: `--port N` (8080; 0 picks one; the address is printed), `--frames N` (default endless),
 * `--fps N` (30), `--size WxH` (320x240), `--crf N` (35), `--preset N` (12), `--keyint N` (1 s of frames),
 * `--max-queue BYTES` (1 MiB), `--wait-viewers N` (start the source once N viewers are connected; 0).
 * Events and, at the end, a summary are printed as JSON lines.
 * @module
 */
import process from "node:process";
import { createEncodeStream, type Frame, ivfFormat, paceFrames, testSource } from "../mod.ts";

function parseArgs(argv: string[]) {
  const flags: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith("--")) continue;
    const [k, v] = a.slice(2).split("=", 2);
    flags[k] = v ?? argv[++i] ?? "";
  }
  const num = (k: string, d: number) => (flags[k] === undefined ? d : Number(flags[k]));
  const [width, height] = (flags.size ?? "320x240").split("x").map(Number);
  const fps = num("fps", 30);
  return {
    port: num("port", 8080),
    frames: num("frames", Infinity),
    fps,
    width,
    height,
    crf: num("crf", 35),
    preset: num("preset", 12),
    keyint: num("keyint", Math.max(1, Math.round(fps))),
    maxQueue: num("max-queue", 1 << 20),
    waitViewers: num("wait-viewers", 0),
  };
}

/** What the relay needs of a viewer's socket, on either runtime. */
interface ViewerSocket {
  send(bytes: Uint8Array): void;
  /** Bytes handed to the socket and not sent yet. */
  buffered(): number;
  close(code: number, reason: string): void;
}

interface Viewer {
  id: number;
  socket: ViewerSocket;
  /** Discarding until the next key frame (new, or fell behind). */
  waitingKey: boolean;
  sent: number;
  dropped: number;
  /** Times it fell behind and was dropped to the next key frame. */
  resyncs: number;
  peakQueued: number;
  closed: boolean;
}

const args = parseArgs(process.argv.slice(2));
const fps = { num: args.fps, den: 1 };
const source = testSource({ width: args.width, height: args.height, fps, frames: args.frames });
const ivf = ivfFormat(source.info);
const header = ivf.header() as Uint8Array;
const encode = createEncodeStream({
  ...source.info,
  preset: args.preset,
  crf: args.crf,
  lowDelay: true,
  keyint: args.keyint,
  logLevel: "error",
});
const emit = (event: Record<string, unknown>) => console.log(JSON.stringify(event));

const viewers = new Set<Viewer>();
const everyone: Viewer[] = [];
let nextId = 1;
let viewersChanged: (() => void) | undefined;

function join(socket: ViewerSocket): Viewer {
  const v: Viewer = {
    id: nextId++,
    socket,
    waitingKey: true,
    sent: 0,
    dropped: 0,
    resyncs: 0,
    peakQueued: 0,
    closed: false,
  };
  viewers.add(v);
  everyone.push(v);
  socket.send(header);
  // Join at a key frame made now rather than at the next scheduled one.
  encode.requestKeyFrame();
  emit({ event: "join", viewer: v.id, viewers: viewers.size });
  viewersChanged?.();
  return v;
}

function leave(v: Viewer) {
  if (v.closed) return;
  v.closed = true;
  viewers.delete(v);
  emit({ event: "leave", viewer: v.id, sent: v.sent, dropped: v.dropped, viewers: viewers.size });
  viewersChanged?.();
}

/** Sends one frame to every viewer that can take it; never waits for any of them. */
function relay(packet: { keyFrame: boolean }, bytes: Uint8Array) {
  for (const v of viewers) {
    const queued = v.socket.buffered();
    if (v.waitingKey && !packet.keyFrame) {
      v.dropped++;
      continue;
    }
    if (queued + bytes.length > args.maxQueue) {
      // Over its bound: discard this frame and everything up to the next key frame it has room for.
      if (!v.waitingKey) {
        v.resyncs++;
        emit({ event: "behind", viewer: v.id, queued, maxQueue: args.maxQueue });
      }
      v.waitingKey = true;
      v.dropped++;
      continue;
    }
    v.waitingKey = false;
    try {
      v.socket.send(bytes);
    } catch {
      leave(v);
      continue;
    }
    v.sent++;
    v.peakQueued = Math.max(v.peakQueued, v.socket.buffered());
  }
}

// ---- the server: Deno.serve or Bun.serve ----

interface DenoLike {
  serve(
    options: { port: number; hostname: string; onListen(addr: { port: number }): void },
    handler: (req: Request) => Response,
  ): { addr: { port: number }; shutdown(): Promise<void> };
  upgradeWebSocket(req: Request): { socket: WebSocket; response: Response };
}
interface BunSocket {
  send(data: Uint8Array): number;
  getBufferedAmount(): number;
  close(code?: number, reason?: string): void;
  data: { viewer?: Viewer };
}
interface BunLike {
  serve(options: {
    port: number;
    hostname: string;
    fetch(
      req: Request,
      server: { upgrade(req: Request, o: { data: BunSocket["data"] }): boolean },
    ): Response | undefined;
    websocket: {
      backpressureLimit: number;
      closeOnBackpressureLimit: boolean;
      open(ws: BunSocket): void;
      close(ws: BunSocket): void;
      message(): void;
    };
  }): { port: number; stop(force?: boolean): unknown };
}

const runtime = globalThis as unknown as { Deno?: DenoLike; Bun?: BunLike };
const hostname = "127.0.0.1";
const notWebSocket = () => new Response("AV1 relay: connect with a WebSocket for an IVF stream\n");
let port: number;
let stopServer: () => void;
if (runtime.Deno) {
  const Deno = runtime.Deno;
  const server = Deno.serve({ port: args.port, hostname, onListen() {} }, (req) => {
    if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") return notWebSocket();
    const { socket, response } = Deno.upgradeWebSocket(req);
    socket.binaryType = "arraybuffer";
    let viewer: Viewer | undefined;
    socket.onopen = () => {
      viewer = join({
        send: (b) => socket.send(b as Uint8Array<ArrayBuffer>),
        buffered: () => socket.bufferedAmount,
        close: (code, reason) => socket.close(code, reason),
      });
    };
    socket.onclose = () => viewer && leave(viewer);
    socket.onerror = () => viewer && leave(viewer);
    return response;
  });
  port = server.addr.port;
  stopServer = () => void server.shutdown();
} else if (runtime.Bun) {
  const server = runtime.Bun.serve({
    port: args.port,
    hostname,
    fetch(req, srv) {
      if (req.headers.get("upgrade")?.toLowerCase() === "websocket" && srv.upgrade(req, { data: {} })) return;
      return notWebSocket();
    },
    websocket: {
      // The relay bounds each viewer's queue itself (--max-queue): Bun must neither drop nor close.
      backpressureLimit: 1 << 30,
      closeOnBackpressureLimit: false,
      open(ws) {
        ws.data.viewer = join({
          send: (b) => void ws.send(b),
          buffered: () => ws.getBufferedAmount(),
          close: (code, reason) => ws.close(code, reason),
        });
      },
      close(ws) {
        if (ws.data.viewer) leave(ws.data.viewer);
      },
      message() {},
    },
  });
  port = server.port;
  stopServer = () => void server.stop(true);
} else {
  throw new Error("websocket_relay.ts runs in Deno or Bun");
}
emit({ event: "listening", url: `ws://${hostname}:${port}/` });

// ---- encode once ----

let stopping = false;
process.on("SIGINT", () => {
  if (stopping) process.exit(130);
  stopping = true;
});
while (viewers.size < args.waitViewers) await new Promise<void>((r) => (viewersChanged = r));
viewersChanged = undefined;

const paced = paceFrames(source.frames(), fps);
const frames = new ReadableStream<Frame>({
  async pull(c) {
    const next = stopping ? { done: true as const } : await paced.next();
    if (next.done) c.close();
    else c.enqueue(next.value);
  },
}, { highWaterMark: 0 });

let packets = 0;
for await (const packet of frames.pipeThrough(encode)) {
  packets++;
  relay(packet, ivf.packet(packet) as Uint8Array);
}

// The end: close every viewer, give their sockets a moment to flush (bounded), then stop.
for (const v of viewers) v.socket.close(1000, "end of stream");
for (let i = 0; i < 40 && viewers.size; i++) await new Promise((r) => setTimeout(r, 50));
emit({
  event: "summary",
  packets,
  maxQueue: args.maxQueue,
  viewers: everyone.map(({ id, sent, dropped, resyncs, peakQueued }) => ({
    id,
    sent,
    dropped,
    resyncs,
    peakQueued,
  })),
});
stopServer();
// A viewer that never reads keeps its socket open: do not wait for it.
process.exit(0);
