/**
 * The reduction of the `--chunked` start crash (docs/bun-crash.md, "A crash while one encoder starts and
 * another encodes"): one SVT-AV1 encoder encodes without a pause while a second one is set up, given a
 * few frames, flushed and closed, over and over, in the same process. Each run is a child process of its
 * own; a child that ends by a signal crashed.
 *
 * The child: encoder A (`--size-a`, preset `--preset`) encodes a test pattern until the loop of encoder B
 * (`--size-b`, same preset, `--frames` frames each) has made `--cycles` set-ups or `--seconds` passed;
 * it prints one JSON line (cycles, frames of A, library version).
 *
 * Usage: deno run -A bench/svt_overlap.ts [--runtime node|deno|bun] [--mode steady|pairs] [--runs 20] [--cycles 40]
 *          [--seconds 30] [--preset 6] [--size-a 320x240] [--size-b 160x120] [--frames 3] [--threads N]
 *        (one child: ... --child)
 * Node runs the compiled tree (.cache/node/bench/svt_overlap.js), compiled first. SVTAV1_LIB_PATH picks
 * the library, as everywhere.
 * @module
 */
import { spawn } from "node:child_process";
import { loadavg } from "node:os";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { SvtAv1Encoder } from "../lib/encoder/svt_av1.ts";
import { encoderThreadStats } from "../lib/encoder/thread_pool.ts";
import { testSource } from "../lib/io/testsrc.ts";
import type { Encoder } from "../lib/types.ts";
import { compileForNode } from "./harness.ts";

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}
const size = (text: string) => text.split("x").map(Number) as [number, number];

/** Reads every packet of `enc` while `feed` sends its frames; returns the packet count. */
async function drive(enc: Encoder, feed: () => Promise<void>): Promise<number> {
  const pump = feed();
  let n = 0;
  for await (const _ of enc.packets()) n++;
  await pump;
  return n;
}

/**
 * `--mode pairs`: two encoders of `--size-b` are created at once (the command line's `--chunked` start,
 * with its settings; `--threads` sets each one's SVT-AV1 `lp`), each encodes `--frames` frames beside the
 * other, and both close; `--cycles` times.
 */
async function pairs() {
  const preset = Number(option("preset", "6"));
  const cycles = Math.min(10_000, Number(option("cycles", "40")));
  const until = performance.now() + Math.min(600, Number(option("seconds", "30"))) * 1000;
  const frames = Math.max(1, Number(option("frames", "30")));
  const [w, h] = size(option("size-b", "160x120"));
  const threads = option("threads", "");
  const src = testSource({ width: w, height: h, frames });
  let done = 0;
  let version = "";
  const images: Record<string, number> = {};
  while (done < cycles && performance.now() < until) {
    // As the command line's --chunked makes its encoders: key frames only where asked, no scene cuts.
    const encoders = await Promise.all([0, 1].map(() =>
      SvtAv1Encoder.create({
        ...src.info,
        preset,
        keyint: -1,
        params: { scd: 0 },
        ...(threads ? { threads: Number(threads) } : {}),
      })
    ));
    try {
      await Promise.all(encoders.map(async (enc) => {
        const n = await drive(enc, async () => {
          for (let i = 0; i < frames; i++) await enc.encode(src.frame(i));
          await enc.flush();
        });
        if (n !== frames) throw new Error(`cycle ${done + 1}: ${n} packets for ${frames} frames`);
        version = enc.version;
        // (absent before encoders had images of their own)
        const kind = (enc as { libraryImage?: { kind: string } }).libraryImage?.kind ?? "unknown";
        images[kind] = (images[kind] ?? 0) + 1;
      }));
    } finally {
      await Promise.all(encoders.map((e) => e.close()));
    }
    done++;
  }
  console.log(JSON.stringify({ cycles: done, framesA: done * frames, version, images }));
}

async function child() {
  if (option("mode", "steady") === "pairs") return await pairs();
  const preset = Number(option("preset", "6"));
  const cycles = Math.min(10_000, Number(option("cycles", "40")));
  const until = performance.now() + Math.min(600, Number(option("seconds", "30"))) * 1000;
  const frames = Math.max(1, Number(option("frames", "3")));
  const [wa, ha] = size(option("size-a", "320x240"));
  const [wb, hb] = size(option("size-b", "160x120"));
  const srcA = testSource({ width: wa, height: ha, frames: 30 });
  const srcB = testSource({ width: wb, height: hb, frames });
  const a = await SvtAv1Encoder.create({ ...srcA.info, preset });
  let stop = false;
  let framesA = 0;
  const encodingA = drive(a, async () => {
    while (!stop) await a.encode(srcA.frame(framesA++ % 30));
    await a.flush();
  });
  let done = 0;
  while (done < cycles && performance.now() < until) {
    const b = await SvtAv1Encoder.create({ ...srcB.info, preset });
    try {
      const n = await drive(b, async () => {
        for (let i = 0; i < frames; i++) await b.encode(srcB.frame(i));
        await b.flush();
      });
      if (n !== frames) throw new Error(`cycle ${done + 1}: ${n} packets for ${frames} frames`);
    } finally {
      await b.close();
    }
    done++;
  }
  stop = true;
  await encodingA;
  await a.close();
  console.log(JSON.stringify({ cycles: done, framesA, version: a.version, threads: encoderThreadStats() }));
}

async function parent() {
  const runtime = option("runtime", "node");
  const runs = Math.min(500, Number(option("runs", "20")));
  const root = fileURLToPath(new URL("../", import.meta.url));
  const bin = (name: string) => `${root}node_modules/.bin/${name}`;
  const self = fileURLToPath(import.meta.url);
  const command: [string, string[]] = runtime === "node"
    ? ["node", [`${compileForNode(root)}bench/svt_overlap.js`]]
    : runtime === "deno"
    ? [bin("deno"), ["run", "-A", self]]
    : [bin("bun"), [self]];
  const pass = ["mode", "threads", "cycles", "seconds", "preset", "size-a", "size-b", "frames"].flatMap((k) =>
    process.argv.includes(`--${k}`) ? [`--${k}`, option(k, "")] : []
  );
  const limitMs = (Number(option("seconds", "30")) + 120) * 1000;
  let crashes = 0;
  let failures = 0;
  let cyclesTotal = 0;
  let version = "";
  for (let run = 1; run <= runs; run++) {
    const started = performance.now();
    const c = spawn(command[0], [...command[1], "--child", ...pass], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, SVT_LOG: "1" },
    });
    let out = "";
    let err = "";
    c.stdout!.on("data", (d) => void (out += d));
    c.stderr!.on("data", (d) => void (err += d));
    const kill = setTimeout(() => c.kill("SIGKILL"), limitMs);
    const { code, signal } = await new Promise<{ code: number | null; signal: string | null }>((resolve) =>
      c.on("close", (code, signal) => resolve({ code, signal }))
    );
    clearTimeout(kill);
    const secs = ((performance.now() - started) / 1000).toFixed(1);
    const la = loadavg()[0].toFixed(1);
    let verdict: string;
    if (code === 0) {
      const r = JSON.parse(out.trim().split("\n").pop()!);
      cyclesTotal += r.cycles;
      version = r.version;
      verdict = `ok, ${r.cycles} set-ups beside ${r.framesA} frames of A${
        r.images ? `, images ${JSON.stringify(r.images)}` : ""
      }`;
    } else if (signal) {
      crashes++;
      verdict = `CRASH: ${signal}`;
    } else {
      failures++;
      verdict = `exit ${code}`;
    }
    console.log(`${runtime} run ${run}: ${verdict} (${secs} s, load ${la})`);
    if (code !== 0 && err) console.log(`  stderr: ${err.slice(-400).replace(/\n/g, "\n  ")}`);
  }
  console.log(
    `${runtime}: ${runs} runs, ${crashes} crashes, ${failures} other failures, ${cyclesTotal} set-ups beside `
      + `an encoding encoder; SVT-AV1 ${version || "?"}`,
  );
  process.exit(crashes + failures ? 1 : 0);
}

if (process.argv.includes("--child")) await child();
else await parent();
