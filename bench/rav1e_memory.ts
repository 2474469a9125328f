/**
 * Bounded memory and a free event loop with rav1e: encodes 600 frames of 640x480 while the consumer of
 * `packets()` stops for 5 s halfway. rav1e itself would take every frame it is given (1000 frames grew to
 * 3.4 GB); the encoder must hold the producer back instead. Prints one JSON line and exits 1 when peak RSS
 * grows more than 150 MB past the RSS after the first packet, or the event loop stalls more than 20 ms.
 *
 * Usage: deno run -A bench/rav1e_memory.ts [frames] [speed]   |   bun bench/rav1e_memory.ts [frames] [speed]
 * @module
 */
import process from "node:process";
import { Rav1eEncoder } from "../lib/encoder/rav1e.ts";
import { testSource } from "../lib/io/testsrc.ts";
import { LagMeter, peakRssMB, rssMB } from "./measure.ts";

const frames = Number(process.argv[2] ?? 600);
const speed = Number(process.argv[3] ?? 10);
const RSS_BOUND_MB = 150;
const LAG_BOUND_MS = 20;

const source = testSource({ width: 640, height: 480, frames });
const enc = await Rav1eEncoder.create({ ...source.info, speed });
const lag = new LagMeter();
const started = performance.now();
const pump = (async () => {
  for await (const frame of source.frames()) await enc.encode(frame);
  await enc.flush();
})();

let packets = 0;
let bytes = 0;
let rssAfterFirst = 0;
let peakAfterFirst = 0;
let acceptedBeforePause = 0;
let acceptedAfterPause = 0;
for await (const packet of enc.packets()) {
  packets++;
  bytes += packet.data.byteLength;
  if (packets === 1) {
    rssAfterFirst = rssMB();
    peakAfterFirst = peakRssMB();
  }
  if (packets === Math.floor(frames / 2)) {
    // The slow consumer: while it sleeps, encode() must stop resolving.
    acceptedBeforePause = enc.framesEncoded;
    await new Promise((r) => setTimeout(r, 5000));
    acceptedAfterPause = enc.framesEncoded;
  }
}
await pump;
const seconds = (performance.now() - started) / 1000;
lag.stop();
await enc.close();
const peak = peakRssMB();
const result = {
  runtime: "Bun" in globalThis ? "bun" : "deno",
  frames: packets,
  seconds: +seconds.toFixed(1),
  fps: +(packets / seconds).toFixed(1),
  kbytes: Math.round(bytes / 1024),
  rssAfterFirstPacketMB: +rssAfterFirst.toFixed(1),
  peakRssMB: +peak.toFixed(1),
  peakBeforeFirstPacketMB: +peakAfterFirst.toFixed(1),
  growthMB: +(peak - rssAfterFirst).toFixed(1),
  framesAcceptedDuringPause: acceptedAfterPause - acceptedBeforePause,
  maxLagMs: +lag.max.toFixed(1),
};
console.log(JSON.stringify(result));
const ok = packets === frames && result.growthMB <= RSS_BOUND_MB && result.maxLagMs <= LAG_BOUND_MS;
if (!ok) {
  console.error(`FAIL: want ${frames} packets, growth <= ${RSS_BOUND_MB} MB, lag <= ${LAG_BOUND_MS} ms`);
  process.exit(1);
}
