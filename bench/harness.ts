/**
 * What the benchmarks share: the clips they encode and a child process measured from outside (wall time,
 * peak RSS sampled from /proc, and the lag an API script reports on its last line).
 * @module
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import process from "node:process";
import { fileSink } from "../lib/io/sink.ts";
import { testSourceY4m } from "../lib/io/testsrc.ts";

/** Writes the clip: ffmpeg's testsrc2 when available (what the facts were measured on), else ours. */
export async function clip(
  tmp: string,
  c: { width: number; height: number; frames: number },
): Promise<string> {
  const path = `${tmp}/${c.width}x${c.height}-${c.frames}.y4m`;
  if (existsSync(path)) return path;
  const size = `${c.width}x${c.height}`;
  const ff = spawnSync("ffmpeg", [
    ...["-v", "error", "-f", "lavfi", "-i", `testsrc2=size=${size}:rate=30`],
    ...["-frames:v", String(c.frames), "-pix_fmt", "yuv420p", "-y", path],
  ]);
  if (ff.status !== 0) {
    const sink = await fileSink(path);
    const reader = testSourceY4m({ width: c.width, height: c.height, frames: c.frames }).getReader();
    for (let r = await reader.read(); !r.done; r = await reader.read()) await sink.write(r.value);
    await sink.close();
  }
  return path;
}

export interface Measure {
  seconds: number;
  peakRssMB: number;
  maxLagMs?: number;
  createLagMs?: number;
}

/** Runs a command, sampling its peak RSS (VmHWM) from /proc while it runs. */
export function measure(cmd: string, args: string[]): Promise<Measure> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(cmd, args, {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, SVT_LOG: "1" },
    });
    let hwm = 0;
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (d) => (stdout += d));
    child.stderr!.on("data", (d) => (stderr += d));
    const sample = setInterval(() => {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"));
        if (m) hwm = Math.max(hwm, Number(m[1]) / 1024);
      } catch { /* it has exited */ }
    }, 10);
    child.on("close", (code) => {
      clearInterval(sample);
      const seconds = (performance.now() - started) / 1000;
      if (code !== 0) {
        return reject(new Error(`${cmd} ${args.join(" ")} exited ${code}: ${stderr.slice(-500)}`));
      }
      const line = stdout.trim().split("\n").pop() ?? "";
      if (line.startsWith("{")) {
        // The API script reports its own lag and peak RSS; the wall time here includes runtime start-up.
        const r = JSON.parse(line);
        return resolve({
          seconds,
          peakRssMB: Math.max(hwm, r.peakRssMB),
          maxLagMs: r.maxLagMs,
          createLagMs: r.createLagMs,
        });
      }
      resolve({ seconds, peakRssMB: hwm });
    });
  });
}

/**
 * Rewrites one `## title` section of bench/results.md and keeps the others, which other benchmarks
 * (chunked, HTTP service, rav1e) write.
 */
export function writeResultsSection(path: string, title: string, body: string): void {
  const previous = existsSync(path) ? readFileSync(path, "utf8") : "# Benchmark results\n";
  const sections = previous.split(/^(?=## )/m);
  const head = sections[0].startsWith("## ") ? "# Benchmark results\n\n" : sections.shift()!;
  const others = sections.filter((x) => !x.startsWith(`## ${title}\n`));
  const ours = `## ${title}\n\n${body.trimEnd()}\n`;
  writeFileSync(
    path,
    [head.trimEnd() + "\n\n", ours, ...others.map((x) => "\n" + x.trimEnd() + "\n")].join(""),
  );
}

/** One command a benchmark compares, built for the clip at hand. */
export interface Contender<C> {
  name: string;
  command(input: string, c: C): [string, string[]];
}

/**
 * Runs every contender `runs` times on one clip, alternating them run by run so that machine load hits
 * them alike, and keeps the best wall time and the worst peak RSS and lag of each.
 */
export async function bestOf<C extends { name: string }>(
  contenders: Contender<C>[],
  input: string,
  c: C,
  runs: number,
): Promise<Map<string, Measure>> {
  const worst = (a: number | undefined, b: number | undefined) =>
    b === undefined ? undefined : Math.max(a ?? 0, b);
  const best = new Map<string, Measure>();
  for (let r = 0; r < runs; r++) {
    for (const k of contenders) {
      const [cmd, args] = k.command(input, c);
      const m = await measure(cmd, args);
      const prev = best.get(k.name);
      best.set(k.name, {
        seconds: Math.min(prev?.seconds ?? Infinity, m.seconds),
        peakRssMB: Math.max(prev?.peakRssMB ?? 0, m.peakRssMB),
        maxLagMs: worst(prev?.maxLagMs, m.maxLagMs),
        createLagMs: worst(prev?.createLagMs, m.createLagMs),
      });
      process.stderr.write(`${c.name} run ${r + 1}/${runs} ${k.name}: ${m.seconds.toFixed(2)} s\n`);
    }
  }
  return best;
}

/**
 * Compiles the project for Node (Node 20 cannot run TypeScript) and returns the folder of the compiled
 * tree, where `cli.js` and `bench/api_encode.js` are.
 */
export function compileForNode(root: string): string {
  const r = spawnSync(`${root}node_modules/.bin/tsc`, ["-p", `${root}tsconfig.node.json`], {
    stdio: "inherit",
  });
  if (r.status !== 0) throw new Error("tsc -p tsconfig.node.json failed: the Node contenders cannot run");
  return `${root}.cache/node/`;
}

/** av1-stream's own version, for the results. */
export function libraryVersion(root: string): string {
  return JSON.parse(readFileSync(`${root}package.json`, "utf8")).version;
}

/** Where a bench works: the project's root folder (trailing slash), bench/tmp (created), npm's tools. */
export function benchPaths(): { root: string; tmp: string; bin: (name: string) => string } {
  const root = new URL("../", import.meta.url).pathname;
  const tmp = `${root}bench/tmp`;
  mkdirSync(tmp, { recursive: true });
  return { root, tmp, bin: (name) => `${root}node_modules/.bin/${name}` };
}

/** The value after `--name` on the command line, if any. */
export function benchOption(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/**
 * `--before <dir>` (a checkout of an earlier commit, its folder with a trailing slash) and
 * `--before-label <text>`: an earlier tree whose contenders run in the same alternation.
 */
export function beforeTree(): { dir: string | undefined; label: string } {
  return { dir: benchOption("before")?.replace(/\/?$/, "/"), label: benchOption("before-label") ?? "before" };
}

/** The machine's three load averages, for the results. */
export function loadAverage(): string {
  return readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
}

/** What a side-by-side bench of the command line and the API needs before its contenders. */
export interface BenchSetup {
  /** The project's root folder, with a trailing slash. */
  root: string;
  /** bench/tmp, created: the clips and every contender's output. */
  tmp: string;
  /** The path of a tool installed by npm (deno, bun). */
  bin: (name: string) => string;
  /** The compiled tree Node runs (`compileForNode`). */
  nodeTree: string;
  /** `--quick`: fewer frames and runs. */
  quick: boolean;
  /** `--runs N`, else the default given. */
  runs: number;
}

/** Creates bench/tmp, compiles the Node tree and reads `--quick` and `--runs N` from the command line. */
export function benchSetup(defaultRuns: { full: number; quick: number }): BenchSetup {
  const paths = benchPaths();
  const quick = process.argv.includes("--quick");
  const runs = benchOption("runs");
  return {
    ...paths,
    nodeTree: compileForNode(paths.root),
    quick,
    runs: runs !== undefined ? Number(runs) : quick ? defaultRuns.quick : defaultRuns.full,
  };
}

/** The first line a tool prints for its version flag (stdout, else stderr), for the results. */
export function toolVersion(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args);
  return (r.stdout?.toString() || r.stderr?.toString() || "?").trim().split("\n")[0];
}
