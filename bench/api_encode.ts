/**
 * Encodes a Y4M file through the API (not the CLI) while a 1 ms interval timer measures how late the
 * event loop runs, and prints one JSON line: seconds, frames, maxLagMs, peakRssMB. Run by bench/run.ts
 * under Deno and Bun.
 *
 * Usage: api_encode.ts <in.y4m> <out.ivf> <preset> <crf>
 * @module
 */
import process from "node:process";
import { SvtAv1Encoder } from "../lib/encoder/svt_av1.ts";
import { Y4mReader } from "../lib/io/y4m.ts";
import { IvfWriter } from "../lib/io/ivf.ts";
import { fileSink } from "../lib/io/sink.ts";
import { fileReadable } from "../lib/io/file_stream.ts";
import { LagMeter, peakRssMB } from "./measure.ts";

const [input, output, preset, crf] = process.argv.slice(2);
const lag = new LagMeter();
const started = performance.now();
const reader = await Y4mReader.open(await fileReadable(input));
const enc = await SvtAv1Encoder.create({ ...reader.info, preset: Number(preset), crf: Number(crf), logLevel: "warn" });
const ivf = new IvfWriter(await fileSink(output), reader.info);
const pump = (async () => {
  for await (const frame of reader.frames()) await enc.encode(frame);
  await enc.flush();
})();
let frames = 0;
for await (const packet of enc.packets()) {
  await ivf.writePacket(packet);
  frames++;
}
await pump;
await ivf.close();
await enc.close();
const seconds = (performance.now() - started) / 1000;
lag.stop();
console.log(JSON.stringify({ seconds, frames, maxLagMs: Number(lag.max.toFixed(1)), peakRssMB: Math.round(peakRssMB()) }));
