/**
 * Encodes a Y4M file through the API (not the CLI) while a 1 ms interval timer measures how late the
 * event loop runs, and prints one JSON line: seconds, frames, maxLagMs (while encoding), createLagMs (while
 * the encoder starts), peakRssMB. Run by bench/run.ts
 * under Deno and Bun.
 *
 * Usage: api_encode.ts <in.y4m> <out.ivf> <preset> <crf> [batch|realtime]
 *        api_encode.ts <in.y4m> <out.ivf> <speed> - - rav1e   (rav1e with tune psnr, like `rav1e --tune Psnr`)
 * @module
 */
import process from "node:process";
import { Rav1eEncoder } from "../lib/encoder/rav1e.ts";
import { SvtAv1Encoder } from "../lib/encoder/svt_av1.ts";
import { fileReadable } from "../lib/io/file_stream.ts";
import { IvfWriter } from "../lib/io/ivf.ts";
import { fileSink } from "../lib/io/sink.ts";
import { Y4mReader } from "../lib/io/y4m.ts";
import type { Encoder } from "../lib/types.ts";
import { LagMeter, peakRssMB } from "./measure.ts";

const [input, output, preset, crf, priority, codec] = process.argv.slice(2);
const started = performance.now();
const createLag = new LagMeter();
const reader = await Y4mReader.open(await fileReadable(input));
const enc: Encoder = codec === "rav1e"
  ? await Rav1eEncoder.create({ ...reader.info, speed: Number(preset), tune: "psnr" })
  : await SvtAv1Encoder.create({
    ...reader.info,
    preset: Number(preset),
    crf: Number(crf),
    logLevel: "error",
    threadPriority: priority === "realtime" ? "realtime" : "batch",
  });
createLag.stop();
// Creating an encoder starts a Worker, which Deno does partly on the calling thread: measured apart.
const lag = new LagMeter();
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
console.log(
  JSON.stringify({
    seconds,
    frames,
    maxLagMs: Number(lag.max.toFixed(1)),
    createLagMs: Number(createLag.max.toFixed(1)),
    peakRssMB: Math.round(peakRssMB()),
  }),
);
