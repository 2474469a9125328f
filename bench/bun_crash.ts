/**
 * (Bun only: type-checked with tsconfig.bun.json.) Reduction of the Bun crash under encode load (docs/bun-crash.md). Runs one shape of load for a bounded
 * number of rounds and prints what it did; a crash shows as Bun's panic and a non-zero exit.
 *
 *   bun bench/bun_crash.ts --mode encoders --backend svt-av1 --concurrency 8 --rounds 50
 *   bun bench/bun_crash.ts --mode serve --backend rav1e --concurrency 8 --rounds 50
 *   bun bench/bun_crash.ts --mode serve-fetch-only --concurrency 8 --rounds 400
 *
 * Modes:
 * - `encoders`: `concurrency` loops, each creating an encoder, encoding `frames` frames, flushing and
 *   closing it, `rounds` times. No HTTP.
 * - `serve`: the same encodes, each one inside a `Bun.serve` request handler that streams the packets
 *   as the response, with `concurrency` fetch clients on 127.0.0.1.
 * - `serve-fetch-only`: the same HTTP load with no encoder (the handler streams fixed bytes).
 * - `serve-buffered`: as `serve`, but the handler reads the whole request body before encoding and
 *   answers with one buffered body (no streaming on either side).
 * - `serve-worker-bytes`: no encoder and no FFI: a plain Worker posts `frames` buffers per request
 *   (transferred, as encoder threads post packets) and the handler streams them as the response. With
 *   `--delay ms` the worker posts them one by one, `ms` apart, as an encoder's packets come.
 *
 * `--realtime` leaves SVT-AV1's thread scheduling alone (no effective-uid switch, no demotion).
 * `--copy` makes the handler stream a copy of each buffer made on the main thread instead of the buffer
 * that came from the other thread.
 * @module
 */
import { Rav1eEncoder } from "../lib/encoder/rav1e.ts";
import { SvtAv1Encoder } from "../lib/encoder/svt_av1.ts";
import { encoderThreadStats } from "../lib/encoder/thread_pool.ts";
import { testSource } from "../lib/io/testsrc.ts";
import type { Encoder } from "../lib/types.ts";

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}
const mode = option("mode", "encoders");
const backend = option("backend", "svt-av1");
const concurrency = Math.min(32, Number(option("concurrency", "8")));
const rounds = Math.min(1000, Number(option("rounds", "50")));
const frames = Math.min(100, Number(option("frames", "20")));
const copy = process.argv.includes("--copy");
const delay = Math.min(100, Number(option("delay", "0")));
/** Leave SVT-AV1's thread scheduling alone (no effective-uid switch, no demotion of its threads). */
const realtime = process.argv.includes("--realtime");

const src = testSource({ width: 160, height: 120, frames });
const pictures: Uint8Array[] = [];
for await (const f of src.frames()) pictures.push(f.data);

async function create(): Promise<Encoder> {
  return backend === "rav1e"
    ? await Rav1eEncoder.create({ ...src.info, speed: 10 })
    : await SvtAv1Encoder.create({
      ...src.info,
      preset: 13,
      threadPriority: realtime ? "realtime" : undefined,
    });
}

/** One encode; `out` receives each packet as it comes. */
async function encodeOnce(out: (bytes: Uint8Array) => void): Promise<void> {
  const enc = await create();
  try {
    const reading = (async () => {
      for await (const p of enc.packets()) out(p.data);
    })();
    for (const data of pictures) await enc.encode({ data: data.slice() });
    await enc.flush();
    await reading;
  } finally {
    await enc.close();
  }
}

/** A plain Worker with no FFI that answers each request with `frames` transferred buffers. */
const byteWorkers: Worker[] = [];
const byteSource = `self.onmessage = () => {
  let i = 0;
  const one = () => {
    const b = new Uint8Array(200 + ((i * 7919) % 3000)).fill(i);
    self.postMessage({ b, last: ++i === ${frames} }, [b.buffer]);
    if (i < ${frames}) ${delay > 0 ? `setTimeout(one, ${delay})` : "one()"};
  };
  one();
};`;
async function workerBytes(out: (b: Uint8Array) => void): Promise<void> {
  const w = byteWorkers.pop()
    ?? new Worker(URL.createObjectURL(new Blob([byteSource], { type: "application/javascript" })));
  try {
    await new Promise<void>((resolve) => {
      w.onmessage = (e) => {
        out(e.data.b);
        if (e.data.last) resolve();
      };
      w.postMessage(0);
    });
  } finally {
    byteWorkers.push(w);
  }
}

const t0 = performance.now();
let done = 0;
if (mode === "encoders") {
  await Promise.all(Array.from({ length: concurrency }, async () => {
    for (let r = 0; r < rounds; r++) {
      await encodeOnce(() => {});
      done++;
    }
  }));
} else {
  const fixed = new Uint8Array(2000);
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      if (mode === "serve-buffered") {
        await req.arrayBuffer();
        const parts: Uint8Array[] = [];
        await encodeOnce((b) => parts.push(b));
        return new Response(new Blob(parts as BlobPart[]));
      }
      const body = new ReadableStream<Uint8Array>({
        async start(controller) {
          if (mode === "serve-fetch-only") {
            for (let i = 0; i < frames; i++) controller.enqueue(fixed.slice());
          } else if (mode === "serve-worker-bytes") {
            await workerBytes((b) => controller.enqueue(copy ? b.slice() : b));
          } else {
            await encodeOnce((b) => controller.enqueue(copy ? b.slice() : b));
          }
          controller.close();
        },
      });
      await req.arrayBuffer();
      return new Response(body);
    },
  });
  const upload = new Uint8Array(pictures.length * pictures[0].byteLength);
  await Promise.all(Array.from({ length: concurrency }, async () => {
    for (let r = 0; r < rounds; r++) {
      const res = await fetch(`http://127.0.0.1:${server.port}/`, { method: "POST", body: upload });
      await res.arrayBuffer();
      done++;
    }
  }));
  server.stop(true);
  for (const w of byteWorkers) w.terminate();
}
console.log(JSON.stringify({
  mode,
  backend,
  concurrency,
  rounds,
  encodes: done,
  seconds: ((performance.now() - t0) / 1000).toFixed(1),
  rssMB: Math.round(process.memoryUsage().rss / 2 ** 20),
  threads: encoderThreadStats(),
}));
