/**
 * Load test of the HTTP encode service (examples/http_service.ts), bounded and on loopback only.
 *
 * Each target runs in a child process: `ours-deno` and `ours-bun` (the service in Deno or Bun),
 * `ffmpeg-deno` and `ffmpeg-bun` (bench/ffmpeg_service.ts: the same routes, spawning ffmpeg with libsvtav1
 * per request). One client (in the runtime that runs this script) keeps `--concurrency` requests in
 * flight, POSTing the same Y4M body to each; the targets take turns, `--block` requests at a time, until
 * each has served `--requests`, so that every target sees the same machine (2 cores shared with other
 * work here). Before measuring, one IVF encode from each target is compared packet by packet with the
 * first target's: the same settings must give the same packets.
 *
 * Per target: requests/s (over the time spent on that target), first-byte p50/p99 (from the request to
 * the first chunk of the response body), CPU ms per request (the target's process and the children it
 * waited for, from /proc), the service's RSS after 200 requests and after all (`GET /stats`, after the
 * encodes closed), and the encoder threads at the end. With one target (bench/http_soak.ts) the RSS is also
 * sampled at rest after every turn from request 200 on: the series and its band against the sample at 200.
 *
 * Usage: deno run -A bench/http_load.ts [--targets ours-deno,ours-bun,ffmpeg-deno,ffmpeg-bun]
 *          [--concurrency 4] [--requests 2000] [--block 100] [--frames 20] [--size 160x120]
 *          [--query preset=13&format=webm] [--max-concurrent N] [--release-memory on|off] [--no-write]
 *          [--memory-probe DIR]
 *        bun bench/http_load.ts ...
 * With several targets the "## HTTP service" section of bench/results.md is rewritten (other sections are
 * kept). With one target (default: ours in this runtime) the figures are printed only.
 * `--release-memory` runs our service through bench/service_child.ts with the encoder threads'
 * `releaseMemory` on or off (without it: examples/http_service.ts as it is, with the library's default).
 * `--memory-probe DIR` (ours only, through bench/service_child.ts) has the service write where its memory
 * is (bench/memory_probe.ts: smaps by kind of mapping, glibc's and Bun's heaps) to DIR at each RSS sample,
 * as `<target>-<requests>.json`, after 200 requests and every turn after that (each turn then ends at
 * rest); compare two with `deno run -A bench/memory_probe.ts A.json B.json`, or list them with
 * `--series`.
 * @module
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { cpus, loadavg } from "node:os";
import process from "node:process";
import { locateSvtAv1 } from "../ffi/load.ts";
import { testSourceY4m } from "../lib/io/testsrc.ts";
import { VERSION } from "../lib/version.ts";

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}
const isDeno = "Deno" in globalThis;
const here = isDeno ? "deno" : "bun";
const targetNames = option("targets", `ours-${here}`).split(",").map((s) => s.trim()).filter(Boolean);
const concurrency = Math.min(64, Number(option("concurrency", "4")));
const requests = Math.min(5000, Number(option("requests", targetNames.length > 1 ? "2000" : "200")));
const block = Math.max(concurrency, Number(option("block", "100")));
const frames = Number(option("frames", "20"));
const [width, height] = option("size", "160x120").split("x").map(Number);
const query = option("query", "preset=13&format=webm");
// An encode holds its slot until its encoder has closed, just after the client has the last byte: leave
// room for clients that ask again at once.
const maxConcurrent = Number(option("max-concurrent", String(concurrency * 2)));
const memoryProbe = option("memory-probe", "");
if (memoryProbe) mkdirSync(memoryProbe, { recursive: true });
const releaseMemory = option("release-memory", memoryProbe ? "on" : "");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const KNOWN = ["ours-deno", "ours-bun", "ffmpeg-deno", "ffmpeg-bun"];
for (const t of targetNames) {
  if (!KNOWN.includes(t)) throw new Error(`Unknown target ${t}: use ${KNOWN.join(", ")}`);
}

/** deno and bun: this runtime's own executable, the other one from node_modules/.bin or PATH. */
function executable(runtime: string): string {
  if (runtime === here) return process.execPath;
  const local = new URL(`../node_modules/.bin/${runtime}`, import.meta.url).pathname;
  return existsSync(local) ? local : runtime;
}

function versionOf(runtime: string): string {
  const out = execFileSync(executable(runtime), ["--version"], { encoding: "utf8" });
  return runtime === "deno" ? out.split("\n")[0].split(" ").slice(0, 2).join(" ") : `bun ${out.trim()}`;
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

interface Stats {
  active: number;
  liveEncoders: number;
  rss: number;
  heapUsed?: number;
  external?: number;
  threads?: { threads: number; busy: number; started: number; lost: number };
}

interface Target {
  name: string;
  runtime: string;
  version: string;
  base: string;
  child: ChildProcess;
  firstByte: number[];
  total: number[];
  done: number;
  busy: number;
  /** 503s without a `Retry-After` of a positive number of seconds. */
  busyWithoutRetryAfter: number;
  failed: number;
  seconds: number;
  cpuTicks: number;
  /** The service's stats at rest after 200 requests, and after all of them. */
  at200?: Stats;
  end?: Stats;
  /** RSS at rest after every turn from request 200 on (one target: every turn is then sampled). */
  rssSeries: number[];
  samePackets?: boolean;
  /** Memory snapshots asked for (`--memory-probe`). */
  probes?: number;
}

async function startTarget(name: string): Promise<Target> {
  const [kind, runtime] = name.split("-");
  const port = await freePort();
  const script = new URL(
    kind === "ffmpeg"
      ? "./ffmpeg_service.ts"
      : releaseMemory
      ? "./service_child.ts"
      : "../examples/http_service.ts",
    import.meta.url,
  ).pathname;
  const child = spawn(executable(runtime), runtime === "deno" ? ["run", "-A", script] : [script], {
    env: {
      ...process.env,
      PORT: String(port),
      MAX_CONCURRENT: String(maxConcurrent),
      SVT_LOG: "1",
      RELEASE_MEMORY: releaseMemory === "off" ? "0" : "1",
      ...(memoryProbe && kind === "ours" ? { MEMORY_PROBE_DIR: `${memoryProbe}/${port}` } : {}),
    },
    stdio: ["ignore", "ignore", "inherit"],
  });
  const target: Target = {
    name,
    runtime,
    version: versionOf(runtime),
    base: `http://127.0.0.1:${port}`,
    child,
    firstByte: [],
    rssSeries: [],
    total: [],
    done: 0,
    busy: 0,
    busyWithoutRetryAfter: 0,
    failed: 0,
    seconds: 0,
    cpuTicks: 0,
  };
  for (let i = 0;; i++) {
    try {
      await stats(target);
      return target;
    } catch {
      if (i > 400 || child.exitCode !== null) throw new Error(`${name} did not start`);
      await sleep(50);
    }
  }
}

async function stats(t: Target): Promise<Stats> {
  return await (await fetch(`${t.base}/stats`)).json();
}

/** CPU time of the target's process and of the children it has waited for, in clock ticks. */
function cpuTicks(t: Target): number {
  try {
    const fields = readFileSync(`/proc/${t.child.pid}/stat`, "utf8").split(") ")[1].split(" ");
    // utime, stime, cutime, cstime are fields 14-17 of the whole line, 12-15 after the command.
    return [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i]), 0);
  } catch {
    return NaN;
  }
}

/** The frames of an IVF file (12-byte frame headers after a 32-byte file header). */
function ivfFrames(bytes: Uint8Array): Uint8Array[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Uint8Array[] = [];
  for (let at = view.getUint16(6, true); at + 12 <= bytes.length;) {
    const size = view.getUint32(at, true);
    out.push(bytes.subarray(at + 12, at + 12 + size));
    at += 12 + size;
  }
  return out;
}

const body = new Uint8Array(await new Response(testSourceY4m({ width, height, frames })).arrayBuffer());

async function encodeIvf(t: Target): Promise<Uint8Array[]> {
  const q = new URLSearchParams(query);
  q.set("format", "ivf");
  const r = await fetch(`${t.base}/encode?${q}`, { method: "POST", body });
  if (r.status !== 200) throw new Error(`${t.name}: IVF encode answered ${r.status}: ${await r.text()}`);
  return ivfFrames(new Uint8Array(await r.arrayBuffer()));
}

/** One request; false when it must be retried (a 503 or a failure). */
async function one(t: Target): Promise<boolean> {
  const start = performance.now();
  const r = await fetch(`${t.base}/encode?${query}`, { method: "POST", body });
  if (r.status === 503) {
    t.busy++;
    // A full service says when to come back.
    if (!Number(r.headers.get("retry-after"))) t.busyWithoutRetryAfter++;
    await r.body?.cancel();
    await sleep(20);
    return false;
  }
  if (r.status !== 200) {
    t.failed++;
    console.error(`${t.name}: request failed: ${r.status} ${await r.text()}`);
    return false;
  }
  let first = true;
  for await (const _chunk of r.body!) {
    if (first) {
      t.firstByte.push(performance.now() - start);
      first = false;
    }
  }
  t.total.push(performance.now() - start);
  t.done++;
  return true;
}

/** `count` more requests to one target, `concurrency` at a time. */
async function runBlock(t: Target, count: number): Promise<void> {
  let started = 0;
  const goal = t.done + count;
  const cpu0 = cpuTicks(t);
  const t0 = performance.now();
  const client = async () => {
    while (started < count) {
      started++;
      const ok = await one(t).catch((
        e,
      ) => (t.failed++, console.error(`${t.name}: ${e?.message ?? e}`), false));
      if (!ok) started--; // a 503 or a failure is retried, bounded by `failed` below
      if (t.failed > 20) throw new Error(`${t.name}: ${t.failed} requests failed`);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, client));
  t.seconds += (performance.now() - t0) / 1000;
  t.cpuTicks += cpuTicks(t) - cpu0;
  const first = t.at200 === undefined && t.done >= 200;
  if (first) {
    t.at200 = await settled(t);
    t.rssSeries.push(t.at200.rss);
  }
  if (t.done >= requests) {
    // Sampled as the target's last turn ends, before it idles through the others' turns.
    t.end = await settled(t);
    t.rssSeries.push(t.end.rss);
  } else if ((memoryProbe || targetNames.length === 1) && !first && t.done > 200) {
    // With one target (a soak) or --memory-probe every turn after that ends at rest too, so that the
    // series says whether the resident set trends or only moves about.
    t.rssSeries.push((await settled(t)).rss);
  }
  if (t.done !== goal) throw new Error(`${t.name}: ${t.done} done, expected ${goal}`);
}

/**
 * The target's stats once its encodes have closed and the memory they freed has had its moment to be
 * released (the encoder threads do that 200 ms after the last close): the resident set at rest, not
 * whatever the last closes left in flight.
 */
async function settled(t: Target): Promise<Stats> {
  for (let i = 0; i < 100; i++) {
    if ((await stats(t)).liveEncoders === 0) break;
    await sleep(20);
  }
  await sleep(500);
  const s = await stats(t);
  if (memoryProbe && t.name.startsWith("ours")) await probe(t);
  return s;
}

/** The service's memory snapshot (bench/memory_probe.ts), saved as `<target>-<requests>.json`. */
async function probe(t: Target): Promise<void> {
  const dir = `${memoryProbe}/${new URL(t.base).port}`;
  mkdirSync(dir, { recursive: true });
  t.probes = (t.probes ?? 0) + 1;
  const file = `${dir}/probe-${t.probes}.json`;
  t.child.kill("SIGUSR2");
  for (let i = 0; i < 200 && !existsSync(file); i++) await sleep(25);
  if (existsSync(file)) renameSync(file, `${memoryProbe}/${t.name}-${t.done}.json`);
  else console.error(`${t.name}: no memory snapshot after 5 s`);
}

const targets: Target[] = [];
try {
  for (const name of targetNames) targets.push(await startTarget(name));
  // Same settings, same packets: each target's IVF against the first one's.
  const reference = await encodeIvf(targets[0]);
  for (const t of targets) {
    const mine = t === targets[0] ? reference : await encodeIvf(t);
    t.samePackets = mine.length === reference.length
      && mine.every((f, i) => f.length === reference[i].length && f.every((b, j) => b === reference[i][j]));
    if (!t.samePackets) console.error(`${t.name}: its packets differ from ${targets[0].name}'s`);
  }
  // Turns of `block` requests; 200 is a turn boundary, so that RSS is sampled there.
  const turns = [Math.min(block, 200)];
  while (turns.reduce((a, b) => a + b, 0) < requests) {
    const sum = turns.reduce((a, b) => a + b, 0);
    turns.push(Math.min(sum < 200 ? 200 - sum : block, requests - sum));
  }
  for (const [i, count] of turns.entries()) {
    // The order rotates, so that no target always follows the same one.
    for (let k = 0; k < targets.length; k++) await runBlock(targets[(i + k) % targets.length], count);
  }
} finally {
  await Promise.all(targets.map(async ({ child }) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
    await exited;
    clearTimeout(timer);
  }));
}

const mb = (n: number | undefined) => (n === undefined ? "-" : (n / (1 << 20)).toFixed(1));
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)];
};
const ticks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
const load = loadavg().map((l) => l.toFixed(2)).join(" ");
const ffmpegVersion =
  execFileSync("ffmpeg", ["-hide_banner", "-version"], { encoding: "utf8" }).split("\n")[0]
    .split(" ")[2];
const svt = await locateSvtAv1({});
/** The lowest and highest RSS at rest from request 200 on, against the sample at 200, in %. */
const band = (t: Target) => {
  if (!t.at200 || t.rssSeries.length < 2) return "-";
  const dev = t.rssSeries.map((r) => (r / t.at200!.rss - 1) * 100);
  return `${Math.min(...dev).toFixed(1)} … +${Math.max(...dev).toFixed(1)}`;
};
const rows = targets.map((t) => {
  const growth = t.at200 && t.end ? ((t.end.rss / t.at200.rss - 1) * 100).toFixed(1) : "-";
  const js = (s: Stats | undefined) => s?.heapUsed === undefined ? "-" : mb(s.heapUsed + (s.external ?? 0));
  return {
    target: t.name,
    runtime: t.version,
    requests: t.done,
    "requests/s": (t.done / t.seconds).toFixed(2),
    "first byte p50 ms": pct(t.firstByte, 0.5).toFixed(0),
    "first byte p99 ms": pct(t.firstByte, 0.99).toFixed(0),
    "whole response p50 ms": pct(t.total, 0.5).toFixed(0),
    "CPU ms per request": ((t.cpuTicks / ticks) * 1000 / t.done).toFixed(0),
    "RSS after 200 MB": mb(t.at200?.rss),
    [`RSS after ${requests} MB`]: mb(t.end?.rss),
    "RSS growth %": growth,
    "RSS band from 200 %": band(t),
    "RSS at rest per turn MB": t.rssSeries.map((r) => mb(r)).join(" "),
    "JS heap and external MB after 200 / at the end": `${js(t.at200)} / ${js(t.end)}`,
    "encoder threads alive after 200 / at the end": `${t.at200?.threads?.threads ?? "-"} / ${
      t.end?.threads?.threads ?? "-"
    }`,
    "503s": t.busy,
    "503s without Retry-After": t.busyWithoutRetryAfter,
    failed: t.failed,
    "live encoders at the end": t.end?.liveEncoders ?? "-",
    "encoder threads (busy at the end / started / lost)": t.end?.threads
      ? `${t.end.threads.busy} / ${t.end.threads.started} / ${t.end.threads.lost}`
      : "-",
    "same packets": t.samePackets ? "yes" : "no",
  };
});
if (rows.length === 1) {
  // One target: the shape bench/http_soak.ts reads.
  const { target: _t, runtime: _r, ...row } = rows[0];
  console.table({ ...row, concurrency, seconds: targets[0].seconds.toFixed(2) });
} else {
  console.table(rows);
}
console.log(`load average ${load}`);

if (rows.length > 1 && !process.argv.includes("--no-write")) {
  const resultsPath = new URL("./results.md", import.meta.url).pathname;
  const old = existsSync(resultsPath) ? readFileSync(resultsPath, "utf8") : "# Benchmark results\n";
  const start = old.indexOf("\n## HTTP service\n");
  let kept = old;
  if (start >= 0) {
    const next = old.indexOf("\n## ", start + 1);
    kept = old.slice(0, start) + (next >= 0 ? old.slice(next) : "");
  }
  const ours = (runtime: string) => targets.find((t) => t.name === `ours-${runtime}`);
  const peer = (runtime: string) => targets.find((t) => t.name === `ffmpeg-${runtime}`);
  const ratios = ["deno", "bun"].flatMap((r) => {
    const o = ours(r), p = peer(r);
    return o && p ? [`${r}: ${((o.done / o.seconds) / (p.done / p.seconds)).toFixed(2)}×`] : [];
  });
  const columns = Object.keys(rows[0]);
  const section = `## HTTP service

Written by \`bench/http_load.ts --targets ${targetNames.join(",")}\` on ${
    new Date().toISOString().slice(0, 16).replace("T", " ")
  } UTC, ${cpus().length} cores shared with other work (load
average ${load} at the end). av1-stream ${VERSION}, SVT-AV1 ${svt.version.text} (${svt.path}), ffmpeg ${ffmpegVersion}
(its libsvtav1 is the same library). \`ours-*\`: examples/http_service.ts (\`maxConcurrent\` ${maxConcurrent}); \`ffmpeg-*\`:
bench/ffmpeg_service.ts, the same routes, spawning \`ffmpeg -f yuv4mpegpipe -i - -c:v libsvtav1 … -f webm -\`
per request (as root: without CAP_SYS_NICE, so that SVT-AV1's threads are not real-time). One client keeps ${concurrency} requests in flight, POSTing a ${width}x${height} Y4M of ${frames} frames (${
    (body.length / 1024).toFixed(0)
  } KiB) to
\`/encode?${query}\`; the targets take turns of ${block} requests until each has served ${requests}. First byte:
request to the first chunk of the body (ours sends the WebM header with the first packet, ffmpeg when its
muxer flushes its output buffer). CPU: the target's process and its waited-for children, per request. RSS: the
service's process after 200 requests and after all (ffmpeg's children are gone by then). Same packets:
an IVF encode of the same body, packet for packet equal to the first target's.

Ours against ffmpeg in the same runtime, requests/s: ${ratios.join(", ") || "-"}.

| ${columns.join(" | ")} |
| ${columns.map((c, i) => (i < 2 ? "-".repeat(c.length) : "-".repeat(c.length - 1) + ":")).join(" | ")} |
${rows.map((r) => `| ${Object.values(r).join(" | ")} |`).join("\n")}
`;
  // The section goes where it was, or at the end.
  const at = start >= 0 ? start : kept.length;
  writeFileSync(resultsPath, kept.slice(0, at).trimEnd() + "\n\n" + section + kept.slice(at));
  console.log(section);
}
