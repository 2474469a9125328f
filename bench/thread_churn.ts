/**
 * Starts and ends pooled encoder threads over and over, without an encoder, and prints the process's RSS
 * and OS thread count every `--every` rounds: an ended thread must give back what it held. (Deno's
 * `node:worker_threads` port has no `close()`: before the fix in ffi/runtime/node_thread_scope.ts every
 * thread the pool ended lived on and kept ~13 MB, which is how the HTTP service's RSS grew from 460 MB to
 * 1.9 GB over 2000 requests whenever its extra threads idled out between bursts.)
 *
 * Usage: deno run -A bench/thread_churn.ts [--rounds 40] [--threads 4] [--every 10]
 *        bun bench/thread_churn.ts ...
 * @module
 */
import { readFileSync } from "node:fs";
import process from "node:process";
import {
  configureEncoderThreads,
  encoderThreads,
  encoderThreadStats,
  warmEncoderThreads,
} from "../lib/encoder/thread_pool.ts";

function option(name: string, fallback: string): number {
  const i = process.argv.indexOf(`--${name}`);
  return Number(i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback);
}
const rounds = Math.min(1000, option("rounds", "40"));
const every = Math.max(1, option("every", "10"));
configureEncoderThreads({ threads: option("threads", "4") });

const osThreads = () => Number(/Threads:\s+(\d+)/.exec(readFileSync("/proc/self/status", "utf8"))?.[1]);
const runtime = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node";
for (let i = 0; i <= rounds; i++) {
  await warmEncoderThreads();
  encoderThreads.endIdle();
  // Time for the ended threads to wind down before the next round (or the sample).
  await new Promise((r) => setTimeout(r, 200));
  if (i % every === 0) {
    const s = encoderThreadStats();
    console.log(
      `${runtime} round ${i}: RSS ${(process.memoryUsage().rss / 1048576).toFixed(0)} MB, `
        + `${osThreads()} OS threads, pool threads started ${s.started} ended ${s.ended}`,
    );
  }
}
process.exit(0);
