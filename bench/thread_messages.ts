/**
 * A reduction of bench/cycles.ts without any native library: `--cycles` times the same messages an
 * encoder exchanges with its pooled thread (init → ready, 3 frames of 64x64 transferred → packets and
 * acceptance, a 2 ms poll timer in the thread, flush → flushed, close → closed), on one thread started
 * through the project's thread adapter, RSS sampled every `--sample` cycles after a full GC. What grows
 * here grows in the runtime's threads and messages, not in SVT-AV1 or rav1e.
 *
 * Usage: deno run -A --v8-flags=--expose-gc bench/thread_messages.ts [--cycles 1000] [--sample 50] [--worker-gc]
 *        bun bench/thread_messages.ts ...; node --expose-gc .cache/node/bench/thread_messages.js ...
 * @module
 */
import process from "node:process";
import { ffiRuntime, startThread } from "../ffi/runtime/mod.ts";

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}
const cycles = Math.min(100_000, Number(option("cycles", "1000")));
const sampleEvery = Math.max(1, Number(option("sample", "50")));
const frameBytes = 64 * 64 * 3 / 2;
/** Also collect the thread's garbage before each `closed` (Deno and Node with --expose-gc). */
const workerGc = process.argv.includes("--worker-gc");

function rss(): number {
  const g = globalThis as unknown as { gc?: () => void; Bun?: { gc(force: boolean): void } };
  if (g.Bun) g.Bun.gc(true);
  else g.gc?.();
  return process.memoryUsage().rss;
}

await ffiRuntime();
const thread = startThread(new URL("./thread_messages_worker.ts", import.meta.url));
let waiting: { t: string; resolve: () => void } | undefined;
let packets = 0;
thread.onmessage = (e: MessageEvent<{ t: string; packets?: unknown[] }>) => {
  if (e.data.t === "packets") packets += e.data.packets!.length;
  else if (waiting && e.data.t === waiting.t) waiting.resolve();
};
const ask = (msg: { t: string; data?: Uint8Array; gc?: boolean }, answer: string) =>
  new Promise<void>((resolve) => {
    waiting = { t: answer, resolve };
    thread.postMessage(msg, msg.data ? [msg.data.buffer] : []);
  });

const samples: number[] = [rss()];
for (let cycle = 1; cycle <= cycles; cycle++) {
  await ask({ t: "init" }, "ready");
  for (let i = 0; i < 3; i++) await ask({ t: "frame", data: new Uint8Array(frameBytes) }, "accepted");
  await ask({ t: "flush" }, "flushed");
  await ask({ t: "close", gc: workerGc }, "closed");
  if (cycle % sampleEvery === 0) samples.push(rss());
}
thread.terminate();
const mb = (n: number) => (n / (1 << 20)).toFixed(1);
const at100 = samples[Math.round(100 / sampleEvery)] ?? samples[1];
const end = samples[samples.length - 1];
const g = globalThis as unknown as { Deno?: { version: { deno: string } }; Bun?: { version: string } };
const runtime = g.Deno
  ? `deno ${g.Deno.version.deno}`
  : g.Bun
  ? `bun ${g.Bun.version}`
  : `node ${process.versions.node}`;
console.log(
  `${runtime}${workerGc ? " (GC in the thread too)" : ""}: ${cycles} cycles, ${packets} packets, RSS ${
    mb(at100)
  } → ${mb(end)} MB (${((end - at100) / at100 * 100).toFixed(1)} %)\n  RSS MB every ${sampleEvery} cycles: ${
    samples.map(mb).join(" ")
  }`,
);
