/**
 * Encoder life cycles in one process: `--cycles` times create an encoder, encode a few small frames,
 * flush, read every packet and close, sampling the process's memory every `--sample` cycles (after a
 * garbage collection where the runtime offers one). Shows whether memory is flat over many short encodes
 * (an encode service's life) and whether the pooled encoder threads are all idle at the end.
 *
 * Each runtime × backend runs in a child process of its own; the parent (any runtime) runs them one
 * after another and writes the "## Encoder cycles" section of bench/results.md.
 *
 * Usage: deno run -A bench/cycles.ts [--cycles 1000] [--size 64x64] [--frames 3] [--sample 50]
 *          [--backends svt-av1,rav1e] [--runtimes deno,bun,node] [--no-write]
 *        (one child: ... --child svt-av1, prints one JSON line)
 * @module
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { Rav1eEncoder } from "../lib/encoder/rav1e.ts";
import { SvtAv1Encoder } from "../lib/encoder/svt_av1.ts";
import {
  configureEncoderThreads,
  type EncoderThreadStats,
  encoderThreadStats,
} from "../lib/encoder/thread_pool.ts";
import { testSource } from "../lib/io/testsrc.ts";
import type { Encoder } from "../lib/types.ts";
import { libcForProbe, mallocInfo as probeMallocInfo } from "./memory_probe.ts";

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

type Backend = "svt-av1" | "rav1e";
const cycles = Math.min(100_000, Number(option("cycles", "1000")));
const sampleEvery = Math.max(1, Number(option("sample", "50")));
const frames = Number(option("frames", "3"));
const [width, height] = option("size", "64x64").split("x").map(Number);
const parallel = Math.max(1, Math.min(16, Number(option("parallel", "1"))));

/** The settings a child ran with, as a row label. */
function variantName(): string {
  const parts = [`releaseMemory ${option("release-memory", "on")}`];
  if (parallel > 1) parts.push(`${parallel} at once`);
  if (process.env.MALLOC_ARENA_MAX) parts.push(`MALLOC_ARENA_MAX=${process.env.MALLOC_ARENA_MAX}`);
  return parts.join(", ");
}

/** One memory sample. */
interface Sample {
  cycle: number;
  rss: number;
  heapUsed: number;
  external: number;
  /** glibc's heap (every arena), from malloc_info: arenas, bytes taken from the system, free in bins. */
  malloc?: { arenas: number; system: number; free: number; mmapped: number };
  /** RSS right after malloc_trim(0) (with --trim-samples). */
  rssTrimmed?: number;
}

const libc = await libcForProbe();
const mallocInfo = (): Sample["malloc"] => probeMallocInfo(libc);

/** What a child reports. */
interface ChildResult {
  runtime: string;
  backend: Backend;
  version: string;
  variant: string;
  cycles: number;
  packets: number;
  seconds: number;
  samples: Sample[];
  /** A second after the last cycle, all threads idle. */
  idle: Sample;
  threads: EncoderThreadStats;
}

function runtimeLabel(): string {
  const g = globalThis as unknown as { Deno?: { version: { deno: string } }; Bun?: { version: string } };
  if (g.Deno) return `deno ${g.Deno.version.deno}`;
  if (g.Bun) return `bun ${g.Bun.version}`;
  return `node ${process.versions.node}`;
}

/** A full garbage collection where the runtime offers one (Deno and Node with --expose-gc, Bun always). */
function collectGarbage(): void {
  const g = globalThis as unknown as { gc?: () => void; Bun?: { gc(force: boolean): void } };
  if (g.Bun) g.Bun.gc(true);
  else g.gc?.();
}

const withMalloc = !process.argv.includes("--no-malloc-info");
const trimSamples = process.argv.includes("--trim-samples");

function sample(cycle: number): Sample {
  collectGarbage();
  const m = process.memoryUsage();
  const s: Sample = { cycle, rss: m.rss, heapUsed: m.heapUsed, external: m.external };
  if (withMalloc) s.malloc = mallocInfo();
  if (trimSamples && libc?.symbols.malloc_trim) {
    libc.symbols.malloc_trim(0);
    s.rssTrimmed = process.memoryUsage().rss;
  }
  return s;
}

async function child(backend: Backend): Promise<ChildResult> {
  configureEncoderThreads({ releaseMemory: option("release-memory", "on") !== "off" });
  const src = testSource({ width, height, frames });
  const create = (): Promise<Encoder> =>
    backend === "svt-av1"
      ? SvtAv1Encoder.create({ ...src.info, preset: 12 })
      : Rav1eEncoder.create({ ...src.info, speed: 10 });
  const samples: Sample[] = [sample(0)];
  let packets = 0;
  let version = "";
  let started = 0;
  let done = 0;
  const t0 = performance.now();
  // `parallel` loops take cycles from one count, as an encode service's requests take threads.
  const loop = async () => {
    while (started < cycles) {
      const cycle = ++started;
      const enc = await create();
      version ||= (enc as { version?: string }).version ?? "";
      try {
        const pump = (async () => {
          for (let i = 0; i < frames; i++) await enc.encode(src.frame(i));
          await enc.flush();
        })();
        let n = 0;
        for await (const _ of enc.packets()) n++;
        await pump;
        if (n !== frames) throw new Error(`Cycle ${cycle}: ${n} packets for ${frames} frames`);
        packets += n;
      } finally {
        await enc.close();
      }
      done++;
      if (done % sampleEvery === 0) samples.push(sample(done));
    }
  };
  await Promise.all(Array.from({ length: parallel }, loop));
  const seconds = (performance.now() - t0) / 1000;
  // The pool releases free native memory once no encoder has been freed for a moment: the last sample is
  // taken after that.
  await new Promise((r) => setTimeout(r, 1000));
  const idle = sample(cycles);
  return {
    runtime: runtimeLabel(),
    backend,
    version,
    variant: variantName(),
    cycles,
    packets,
    seconds,
    samples,
    idle,
    threads: encoderThreadStats(),
  };
}

/** A setting compared side by side: extra child arguments and environment. */
interface Variant {
  args: string[];
  env: Record<string, string>;
}

/** `--variants release,keep,arena2`: releaseMemory on (the default), off, on with MALLOC_ARENA_MAX=2. */
const VARIANTS: Record<string, Variant> = {
  release: { args: ["--release-memory", "on"], env: {} },
  keep: { args: ["--release-memory", "off"], env: {} },
  arena2: { args: ["--release-memory", "on"], env: { MALLOC_ARENA_MAX: "2" } },
  "keep-arena2": { args: ["--release-memory", "off"], env: { MALLOC_ARENA_MAX: "2" } },
};

async function parent(): Promise<void> {
  const root = fileURLToPath(new URL("../", import.meta.url));
  const backends = option("backends", "svt-av1,rav1e").split(",") as Backend[];
  const runtimes = option("runtimes", "deno,bun,node").split(",");
  const variants = option("variants", "keep,release").split(",");
  for (const v of variants) {
    if (!VARIANTS[v]) throw new Error(`Unknown variant ${v}: ${Object.keys(VARIANTS)}`);
  }
  const passOn = ["--cycles", String(cycles), "--sample", String(sampleEvery), "--frames", String(frames)];
  passOn.push("--size", `${width}x${height}`, "--parallel", String(parallel));
  if (runtimes.includes("node")) {
    const tsc = spawnSync(`${root}node_modules/.bin/tsc`, ["-p", `${root}tsconfig.node.json`], {
      stdio: "inherit",
    });
    if (tsc.status !== 0) throw new Error("tsc -p tsconfig.node.json failed: Node cannot run");
  }
  const command = (runtime: string, args: string[]): [string, string[]] => {
    if (runtime === "deno") {
      return [`${root}node_modules/.bin/deno`, [
        "run",
        "-A",
        "--v8-flags=--expose-gc",
        `${root}bench/cycles.ts`,
        ...args,
      ]];
    }
    if (runtime === "bun") return [`${root}node_modules/.bin/bun`, [`${root}bench/cycles.ts`, ...args]];
    const node = "Deno" in globalThis || "Bun" in globalThis ? "node" : process.execPath;
    return [node, ["--expose-gc", `${root}.cache/node/bench/cycles.js`, ...args]];
  };
  const results: Row[] = [];
  for (const runtime of runtimes) {
    for (const backend of backends) {
      // The variants of one runtime and backend run one right after the other, under the same load.
      for (const name of variants) {
        const variant = VARIANTS[name];
        const [cmd, args] = command(runtime, [...passOn, ...variant.args, "--child", backend]);
        const r = spawnSync(cmd, args, {
          encoding: "utf8",
          env: { ...process.env, SVT_LOG: "1", ...variant.env },
          // Bounded: 1000 small cycles take 20-40 s here.
          timeout: 1_200_000,
          maxBuffer: 64 << 20,
        });
        const line = r.stdout?.split("\n").find((l) => l.startsWith("RESULT "));
        const load = loadavg().map((l) => l.toFixed(2)).join(" ");
        if (r.status !== 0 || !line) {
          console.error(`${runtime} ${backend}: exit ${r.status ?? r.signal}\n${r.stderr}`);
          throw new Error(`${runtime} ${backend} failed (exit ${r.status ?? r.signal})`);
        }
        const result = { ...JSON.parse(line.slice(7)) as ChildResult, load };
        results.push(result);
        console.log(summary(result));
      }
    }
  }
  if (!process.argv.includes("--no-write")) write(root, results);
}

type Row = ChildResult & { load: string };

const mb = (n: number) => (n / (1 << 20)).toFixed(1);

function at(r: ChildResult, cycle: number): Sample {
  return r.samples.find((s) => s.cycle === cycle) ?? r.samples[r.samples.length - 1];
}

function growth(a: number, b: number): string {
  const g = (b - a) / a * 100;
  return `${g >= 0 ? "+" : ""}${g.toFixed(1)} %`;
}

/** glibc heap at a sample: MB taken from the system / MB of it free, and arenas. */
function heapText(s: Sample): string {
  return s.malloc ? `${mb(s.malloc.system)} / ${mb(s.malloc.free)} (${s.malloc.arenas})` : "-";
}

function summary(r: Row): string {
  const a = at(r, 100);
  const b = r.samples[r.samples.length - 1];
  return `${r.runtime} ${r.backend} ${r.version} [${r.variant}]: ${r.cycles} cycles in ${
    r.seconds.toFixed(1)
  } s, RSS ${mb(a.rss)} → ${mb(b.rss)} MB (${growth(a.rss, b.rss)}), JS heap ${mb(a.heapUsed)} → ${
    mb(b.heapUsed)
  } MB, malloc system/free (arenas) ${heapText(a)} → ${heapText(b)}, idle RSS ${mb(r.idle.rss)} MB, threads ${
    JSON.stringify(r.threads)
  } (load ${r.load})\n  RSS MB every ${sampleEvery} cycles: ${r.samples.map((s) => mb(s.rss)).join(" ")}`;
}

function write(root: string, results: Row[]): void {
  const path = `${root}bench/results.md`;
  const old = existsSync(path) ? readFileSync(path, "utf8") : "# Benchmark results\n";
  const heading = "\n## Encoder cycles";
  const start = old.indexOf(heading);
  let kept = old;
  let notes = "";
  if (start >= 0) {
    const next = old.indexOf("\n## ", start + 1);
    const mine = old.slice(start, next >= 0 ? next : undefined);
    // Prose after the generated part (from "Reading:" on) is kept.
    const n = mine.indexOf("\nReading:");
    if (n >= 0) notes = mine.slice(n).trim();
    kept = old.slice(0, start) + (next >= 0 ? old.slice(next) : "");
  }
  const last = results[results.length - 1];
  const rows = results.map((r) => {
    const a = at(r, 100);
    const b = r.samples[r.samples.length - 1];
    const t = r.threads;
    const cells = [
      r.runtime,
      `${r.backend} ${r.version}`,
      r.variant,
      (r.cycles / r.seconds).toFixed(1),
      mb(a.rss),
      mb(b.rss),
      growth(a.rss, b.rss),
      mb(r.idle.rss),
      `${mb(a.heapUsed)} → ${mb(b.heapUsed)}`,
      `${heapText(a)} → ${heapText(b)}`,
      `${t.busy} / ${t.idle} / ${t.started} / ${t.leases}`,
      r.load,
    ];
    return `| ${cells.join(" | ")} |`;
  });
  const series = results.map((r) =>
    `${r.runtime} ${r.backend} [${r.variant}]: ${r.samples.map((s) => mb(s.rss)).join(" ")}`
  );
  const section = `## Encoder cycles

Written by \`bench/cycles.ts\` (${new Date().toISOString()}, ${cpus().length} cores, load average at the
end of each run in the last column). Each row is one process: ${last.cycles} times create an encoder
(SVT-AV1 preset 12 or rav1e speed 10), encode ${frames} frames of ${width}x${height}, flush, read the packets, close${
    parallel > 1 ? `, ${parallel} at once` : ""
  }. The settings of one runtime and backend ran one right after the other. Memory is sampled every ${sampleEvery}
cycles after a full garbage collection (Bun.gc, or \`--expose-gc\`): RSS is the whole process's, JS heap the
calling thread's, glibc heap from \`malloc_info\` (MB taken from the system / MB of it free in the bins, and
the number of arenas). Threads at the end: busy / idle / started / encoders hosted (\`encoderThreadStats()\`).

| runtime | backend | setting | cycles/s | RSS at 100 MB | RSS at ${last.cycles} MB | growth | RSS idle 1 s later MB | JS heap MB | glibc heap MB at 100 → ${last.cycles} | threads busy / idle / started / hosted | load |
| ------- | ------- | ------- | -------: | ------------: | -------------: | -----: | --------------------: | ---------- | ------------------------ | -------------------------------------- | ---- |
${rows.join("\n")}

RSS in MB every ${sampleEvery} cycles (from cycle 0):

\`\`\`
${series.join("\n")}
\`\`\`
${notes ? `\n${notes}\n` : ""}`;
  writeFileSync(path, kept.trimEnd() + "\n\n" + section);
  console.log(section);
}

const childBackend = option("child", "");
if (childBackend) {
  const result = await child(childBackend as Backend);
  console.log(`RESULT ${JSON.stringify(result)}`);
  // Idle pooled threads do not hold the process: it ends here by itself.
} else {
  await parent();
}
