/**
 * Backpressure end to end, measured as what a stalled consumer costs in memory: a 720p test source piped
 * through createEncodeStream (SVT-AV1) into a consumer that takes the first `--warm` packets at once (the
 * encoder reaches its steady state: every buffer of the library touched), then stalls. RSS is taken when
 * the stall begins and at its peak during the stall; their difference is the growth the stall causes (the
 * library's own memory, a few hundred MB at 720p, is in both). If backpressure holds, the source stops
 * a bounded number of frames ahead of the consumer and the growth stays small.
 *
 * `--sink memory`: the consumer's write stops resolving for `--stall-ms`, or, with `--interval N`, takes
 * one packet per N ms during the stall. `--sink tcp`: a block-policy tcpSink (`--buffer-mb`, its
 * maxBufferBytes) to an in-process peer that stops reading for `--stall-ms`: the sink's buffer and the
 * sockets fill, then backpressure holds the encoder; the target is that buffer + 64 MB.
 *
 * Usage: deno run -A bench/stream_backpressure.ts [--frames 300] [--warm 60] [--stall-ms 10000]
 *        [--interval 0] [--preset 12] [--sink memory|tcp] [--buffer-mb 16] [--low-delay] [--host caller]
 *        bun bench/stream_backpressure.ts ...
 * Prints one JSON line.
 * @module
 */
import * as net from "node:net";
import process from "node:process";
import { testSource } from "../lib/io/testsrc.ts";
import { createEncodeStream } from "../lib/stream/encode_stream.ts";
import { tcpSink } from "../lib/stream/sinks.ts";
import type { Frame, Packet } from "../lib/types.ts";
import { peakRssMB, rssMB } from "./measure.ts";

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}
const frames = Number(option("frames", "300"));
const warm = Number(option("warm", "60"));
const stallMs = Number(option("stall-ms", "10000"));
const interval = Number(option("interval", "0"));
const preset = Number(option("preset", "12"));
const sinkKind = option("sink", "memory");
const bufferMB = Number(option("buffer-mb", "16"));
const host = option("host", "pool");
const lowDelay = process.argv.includes("--low-delay");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const startRss = rssMB();
const started = performance.now();
const source = testSource({ width: 1280, height: 720, frames });
let pulled = 0;
const readable = new ReadableStream<Frame>({
  pull(c) {
    if (pulled >= frames) return c.close();
    c.enqueue(source.frame(pulled++));
  },
}, { highWaterMark: 0 });
const encode = createEncodeStream(
  {
    ...source.info,
    preset,
    lowDelay,
    logLevel: "warn",
    ...(host === "caller" ? { host } : {}),
  } as Parameters<
    typeof createEncodeStream
  >[0],
);

let consumed = 0;
/** RSS when the stall began, the peak during it, and how far the source got ahead meanwhile. */
let stallRss = NaN;
let stallPeak = 0;
let stallAhead = 0;
let stalling = false;
let stallStartedAt = 0;
const sample = () => {
  if (!stalling) return;
  stallPeak = Math.max(stallPeak, rssMB());
  stallAhead = Math.max(stallAhead, pulled - consumed);
};
const beginStall = () => {
  stalling = true;
  stallStartedAt = performance.now();
  stallRss = rssMB();
  stallPeak = stallRss;
};
const endStall = () => {
  sample();
  stalling = false;
};

let sink: WritableStream<Packet>;
let server: net.Server | undefined;
let tcpDone: Promise<void> | undefined;
if (sinkKind === "tcp") {
  // The peer reads everything until the warm packets have gone out, then stops reading (its socket
  // paused) for the stall, then reads again.
  let peerStalled = false;
  const sockets: net.Socket[] = [];
  server = net.createServer((socket) => {
    sockets.push(socket);
    socket.on("end", () => socket.end());
    socket.on("error", () => {});
  });
  await new Promise<void>((r) => server!.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  const tcp = tcpSink(`tcp://127.0.0.1:${port}`, {
    info: source.info,
    onDisconnect: "block",
    maxBufferBytes: bufferMB << 20,
  });
  const counter = new TransformStream<Packet, Packet>(
    {
      transform(p, c) {
        consumed++;
        if (consumed === warm && !peerStalled) {
          peerStalled = true;
          for (const s of sockets) s.pause();
          beginStall();
          setTimeout(() => {
            endStall();
            for (const s of sockets) s.resume();
          }, stallMs);
        }
        sample();
        c.enqueue(p);
      },
    },
    { highWaterMark: 1 },
    { highWaterMark: 0 },
  );
  tcpDone = counter.readable.pipeTo(tcp);
  sink = counter.writable;
} else {
  sink = new WritableStream<Packet>({
    async write() {
      consumed++;
      sample();
      if (consumed === warm) {
        beginStall();
        if (interval > 0) return;
        // A consumer that stops: nothing is taken for the whole stall.
        await sleep(stallMs);
        endStall();
      } else if (stalling && interval > 0) {
        // A slow consumer: one packet per interval for the stall's length.
        await sleep(interval);
        if (performance.now() - stallStartedAt >= stallMs) endStall();
      }
    },
  }, { highWaterMark: 1 });
}

const ticker = setInterval(sample, 50);
await readable.pipeThrough(encode).pipeTo(sink);
await tcpDone;
clearInterval(ticker);
server?.close();
const runtime = "Bun" in globalThis ? "bun" : "Deno" in globalThis ? "deno" : "node";
const result = {
  runtime,
  host,
  frames,
  warmPackets: warm,
  stallMs,
  intervalMs: interval,
  sink: sinkKind,
  ...(sinkKind === "tcp" ? { sinkBufferMB: bufferMB } : {}),
  seconds: Math.round((performance.now() - started) / 100) / 10,
  startRssMB: Math.round(startRss),
  rssAtStallMB: Math.round(stallRss),
  peakDuringStallMB: Math.round(stallPeak),
  growthDuringStallMB: Math.round(stallPeak - stallRss),
  maxFramesAheadDuringStall: stallAhead,
  peakRssMB: Math.round(peakRssMB()),
};
console.log(JSON.stringify(result));
