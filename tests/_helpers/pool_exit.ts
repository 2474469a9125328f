/**
 * A script that encodes with both backends and then ends without closing anything else: the process must
 * exit by itself (idle encoder threads do not keep it alive). With `stuck`, it also leaves a thread blocked
 * in a native call for ten minutes, which must not keep it alive either.
 * @module
 */
import { Rav1eEncoder } from "../../lib/encoder/rav1e.ts";
import { SvtAv1Encoder } from "../../lib/encoder/svt_av1.ts";
import { encoderThreads, encoderThreadStats } from "../../lib/encoder/thread_pool.ts";
import { testSource } from "../../lib/io/testsrc.ts";

const stuck = globalThis.process?.argv?.includes("stuck")
  ?? (globalThis as unknown as { Deno?: { args: string[] } }).Deno?.args.includes("stuck");
for (const Encoder of [SvtAv1Encoder, Rav1eEncoder]) {
  const src = testSource({ width: 64, height: 64, frames: 2 });
  await using enc = await (Encoder as typeof SvtAv1Encoder).create({ ...src.info, preset: 12 } as never);
  for await (const f of src.frames()) await enc.encode(f);
  await enc.flush();
  let n = 0;
  for await (const _ of enc.packets()) n++;
  if (n !== 2) throw new Error(`expected 2 packets, got ${n}`);
}
if (stuck) {
  encoderThreads.configure({ stallTimeoutMs: 500 });
  const lease = await encoderThreads.acquire();
  await new Promise<void>((resolve) => {
    lease.onlost = () => resolve();
    lease.post({ t: "block", ms: 600_000 });
  });
}
console.log(JSON.stringify(encoderThreadStats()));
