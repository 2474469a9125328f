/**
 * Backpressure end to end: a 720p test source piped through createEncodeStream (SVT-AV1) into a sink that
 * accepts one packet per 50 ms. If backpressure holds, the source is read only as fast as the sink takes
 * packets and memory stays flat; prints RSS at the start, once the encoder runs, and at its peak, and how
 * far the source ran ahead of the sink.
 *
 * Usage: deno run -A bench/stream_backpressure.ts [--frames 1000] [--interval 50] [--preset 12]
 *        [--sink memory|tcp] [--low-delay]
 *        bun bench/stream_backpressure.ts ...
 * `--sink tcp` sends through a block-policy tcpSink to an in-process peer that reads once per interval
 * (whatever the socket holds, up to 64 KiB).
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
const frames = Number(option("frames", "1000"));
const interval = Number(option("interval", "50"));
const preset = Number(option("preset", "12"));
const sinkKind = option("sink", "memory");
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
  { ...source.info, preset, lowDelay, logLevel: "warn" } as Parameters<
    typeof createEncodeStream
  >[0],
);

let consumed = 0;
let maxAhead = 0;
let encoderRss = NaN;
let peakAfterStart = 0;
const sample = () => {
  const rss = rssMB();
  if (Number.isNaN(encoderRss)) encoderRss = rss;
  peakAfterStart = Math.max(peakAfterStart, rss);
  maxAhead = Math.max(maxAhead, pulled - consumed);
};

let sink: WritableStream<Packet>;
let server: net.Server | undefined;
let tcpDone: Promise<void> | undefined;
if (sinkKind === "tcp") {
  // A peer that reads one packet's worth of bytes per interval: pauses the socket between reads.
  server = net.createServer((socket) => {
    socket.on("data", () => {
      socket.pause();
      setTimeout(() => socket.resume(), interval);
    });
    socket.on("end", () => socket.end());
    socket.on("error", () => {});
  });
  await new Promise<void>((r) => server!.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  const tcp = tcpSink(`tcp://127.0.0.1:${port}`, { info: source.info });
  const counter = new TransformStream<Packet, Packet>(
    {
      transform(p, c) {
        consumed++;
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
      await sleep(interval);
    },
  }, { highWaterMark: 1 });
}

const ticker = setInterval(sample, 100);
await readable.pipeThrough(encode).pipeTo(sink);
await tcpDone;
clearInterval(ticker);
server?.close();
const result = {
  runtime: typeof (globalThis as { Bun?: unknown }).Bun !== "undefined" ? "bun" : "deno",
  frames,
  intervalMs: interval,
  sink: sinkKind,
  seconds: Math.round((performance.now() - started) / 100) / 10,
  startRssMB: Math.round(startRss),
  encoderRunningRssMB: Math.round(encoderRss),
  peakRssMB: Math.round(Math.max(peakRssMB(), peakAfterStart)),
  peakOverStartMB: Math.round(Math.max(peakRssMB(), peakAfterStart) - startRss),
  peakOverEncoderRunningMB: Math.round(peakAfterStart - encoderRss),
  maxFramesAheadOfSink: maxAhead,
};
console.log(JSON.stringify(result));
