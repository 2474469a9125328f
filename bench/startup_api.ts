/**
 * Start-up in a warm process: creates and closes encoders one after another and prints one JSON line of
 * where `create()`'s time goes (`setupTimes`): the first, cold create (pooled thread started, library
 * opened) and the median of the warm ones after it, each split into the library's own set-up calls and
 * what this module adds. Run by bench/startup.ts under Deno, Bun and Node.
 *
 * Usage: startup_api.ts <svt-av1|rav1e> <width> <height> [creates]
 * @module
 */
import process from "node:process";
import { Rav1eEncoder } from "../lib/encoder/rav1e.ts";
import { SvtAv1Encoder } from "../lib/encoder/svt_av1.ts";
import type { EncoderSetupTimes } from "../lib/types.ts";

const [codec, w, h, n] = process.argv.slice(2);
const width = Number(w), height = Number(h), creates = Number(n ?? 12);
const fps = { num: 30, den: 1 };

async function once(): Promise<EncoderSetupTimes> {
  const enc = codec === "rav1e"
    ? await Rav1eEncoder.create({ width, height, fps, speed: 10, tune: "psnr" })
    : await SvtAv1Encoder.create({ width, height, fps, preset: 10, crf: 35, logLevel: "error" });
  const t = { ...enc.setupTimes };
  await enc.close();
  return t;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
};
const cold = await once();
const warm: EncoderSetupTimes[] = [];
for (let i = 0; i < creates; i++) warm.push(await once());
const pick = (k: keyof EncoderSetupTimes) => median(warm.map((t) => t[k]));
const ours = warm.map((t) => t.totalMs - t.libraryMs);
console.log(JSON.stringify({
  cold,
  warm: { totalMs: pick("totalMs"), threadMs: pick("threadMs"), libraryMs: pick("libraryMs") },
  oursMedianMs: median(ours),
  oursMaxMs: Math.max(...ours),
  creates,
}));
process.exit(0);
