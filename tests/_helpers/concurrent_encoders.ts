/**
 * Many SVT-AV1 encoders created, used and closed side by side in one process, as an encode service runs
 * them: `loops` loops of `rounds` encodes each (one loop with low delay and forced key frames, which
 * restarts SVT-AV1 1.4-1.7 sessions mid-stream). Prints the encoder thread stats as JSON. Before set-up
 * and tear-down were serialised this process died of heap corruption (docs/bun-crash.md).
 *
 * Usage: <runtime> tests/_helpers/concurrent_encoders.ts [loops] [rounds]
 * @module
 */
import process from "node:process";
import { SvtAv1Encoder } from "../../lib/encoder/svt_av1.ts";
import { encoderThreadStats } from "../../lib/encoder/thread_pool.ts";
import { testSource } from "../../lib/io/testsrc.ts";

const args = process.argv.slice(2).filter((a) => /^\d+$/.test(a)).map(Number);
const loops = Math.min(16, args[0] ?? 8);
const rounds = Math.min(100, args[1] ?? 12);
const src = testSource({ width: 160, height: 120, frames: 10 });
const frames: Uint8Array[] = [];
for await (const f of src.frames()) frames.push(f.data);

let packets = 0;
await Promise.all(Array.from({ length: loops }, async (_, loop) => {
  for (let r = 0; r < rounds; r++) {
    const lowDelay = loop === 0;
    await using enc = await SvtAv1Encoder.create({ ...src.info, preset: 13, lowDelay });
    const reading = (async () => {
      for await (const _ of enc.packets()) packets++;
    })();
    for (const [i, data] of frames.entries()) {
      await enc.encode({ data: data.slice() }, { keyFrame: lowDelay && i === 5 });
    }
    await enc.flush();
    await reading;
  }
}));
console.log(JSON.stringify({ packets, ...encoderThreadStats() }));
