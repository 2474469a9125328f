/**
 * Load test of the HTTP encode service (examples/http_service.ts), bounded and on loopback only: the
 * service runs in a child process of the same runtime; N clients POST a small Y4M to /encode at once
 * until `--requests` have completed. Prints throughput, first-byte latency (p50, p99) and the service's
 * RSS after 20 and after all requests, and writes the "## HTTP service" section of bench/results.md
 * (other sections are kept).
 *
 * Usage: deno run -A bench/http_load.ts [--concurrency 4] [--requests 200] [--frames 20] [--size 160x120]
 *          [--release-memory on|off] [--no-write]
 *        bun bench/http_load.ts ...
 * `--release-memory` runs the service through bench/service_child.ts with the encoder threads'
 * `releaseMemory` on or off (without it: examples/http_service.ts as it is, with the library's default).
 * @module
 */
import { spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { cpus, loadavg } from "node:os";
import process from "node:process";
import { testSourceY4m } from "../lib/io/testsrc.ts";

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}
const concurrency = Math.min(64, Number(option("concurrency", "4")));
const requests = Math.min(2000, Number(option("requests", "200")));
const frames = Number(option("frames", "20"));
const [width, height] = option("size", "160x120").split("x").map(Number);
const query = option("query", "preset=13&format=webm");
// An encode holds its slot until its encoder has closed, just after the client has the last byte: leave
// room for clients that ask again at once.
const maxConcurrent = Number(option("max-concurrent", String(concurrency * 2)));
const isDeno = "Deno" in globalThis;
const runtime = isDeno
  ? `deno ${(globalThis as unknown as { Deno: { version: { deno: string } } }).Deno.version.deno}`
  : `bun ${(globalThis as unknown as { Bun: { version: string } }).Bun.version}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

const body = new Uint8Array(await new Response(testSourceY4m({ width, height, frames })).arrayBuffer());
const port = await freePort();
const base = `http://127.0.0.1:${port}`;
const releaseMemory = option("release-memory", "");
const script = new URL(releaseMemory ? "./service_child.ts" : "../examples/http_service.ts", import.meta.url)
  .pathname;
const child = spawn(
  process.execPath,
  isDeno ? ["run", "-A", script] : [script],
  {
    env: {
      ...process.env,
      PORT: String(port),
      MAX_CONCURRENT: String(maxConcurrent),
      SVT_LOG: "1",
      RELEASE_MEMORY: releaseMemory === "off" ? "0" : "1",
    },
    stdio: ["ignore", "ignore", "inherit"],
  },
);

interface Stats {
  active: number;
  liveEncoders: number;
  rss: number;
  threads?: { threads: number; busy: number; started: number; lost: number };
}
async function stats(): Promise<Stats> {
  return await (await fetch(`${base}/stats`)).json();
}

try {
  for (let i = 0;; i++) {
    try {
      await stats();
      break;
    } catch {
      if (i > 200) throw new Error("The service did not start");
      await sleep(50);
    }
  }

  const firstByte: number[] = [];
  let done = 0;
  let started = 0;
  let busy = 0;
  let failed = 0;
  let bytesOut = 0;
  let rssAt20: number | undefined;
  let rssAt200: number | undefined;
  const t0 = performance.now();

  /** One request; false when it must be retried (a 503 or a failure). */
  async function one(): Promise<boolean> {
    const t = performance.now();
    const r = await fetch(`${base}/encode?${query}`, { method: "POST", body });
    if (r.status === 503) {
      busy++;
      await r.body?.cancel();
      await sleep(20);
      return false;
    }
    if (r.status !== 200) {
      failed++;
      console.error(`request failed: ${r.status}`);
      await r.body?.cancel();
      return false;
    }
    let first = true;
    for await (const chunk of r.body!) {
      if (first) {
        firstByte.push(performance.now() - t);
        first = false;
      }
      bytesOut += chunk.length;
    }
    done++;
    return true;
  }

  async function client(): Promise<void> {
    while (started < requests) {
      started++;
      const ok = await one().catch((
        e,
      ) => (failed++, console.error(`request failed: ${e?.message ?? e}`), false));
      if (!ok) started--; // a 503 or a failure is retried, bounded by `failed` below
      if (failed > 20) throw new Error(`${failed} requests failed`);
      if (rssAt20 === undefined && done >= 20) {
        // Let the service settle (encoders closed) before sampling.
        rssAt20 = -1;
        rssAt20 = (await stats()).rss;
      }
      if (rssAt200 === undefined && done >= 200) {
        rssAt200 = -1;
        rssAt200 = (await stats()).rss;
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, client));
  const seconds = (performance.now() - t0) / 1000;
  for (let i = 0; i < 100 && (await stats()).liveEncoders > 0; i++) await sleep(20);
  const end = await stats();
  firstByte.sort((a, b) => a - b);
  const pct = (p: number) => firstByte[Math.min(firstByte.length - 1, Math.ceil(p * firstByte.length) - 1)];
  const mb = (n: number) => (n / (1 << 20)).toFixed(1);
  const rows = {
    requests: done,
    concurrency,
    seconds: seconds.toFixed(2),
    "requests/s": (done / seconds).toFixed(2),
    "frames/s": (done * frames / seconds).toFixed(1),
    "first byte p50 ms": pct(0.5).toFixed(0),
    "first byte p99 ms": pct(0.99).toFixed(0),
    "RSS after 20 MB": mb(rssAt20 ?? 0),
    "RSS after 200 MB": rssAt200 && rssAt200 > 0 ? mb(rssAt200) : "-",
    [`RSS after ${done} MB`]: mb(end.rss),
    "503s": busy,
    failed,
    "live encoders at the end": end.liveEncoders,
    "encoder threads (busy at the end / started / lost)": end.threads
      ? `${end.threads.busy} / ${end.threads.started} / ${end.threads.lost}`
      : "-",
  };
  console.table(rows);

  const resultsPath = new URL("./results.md", import.meta.url).pathname;
  const old = existsSync(resultsPath) ? readFileSync(resultsPath, "utf8") : "# Benchmark results\n";
  const start = old.indexOf("\n## HTTP service");
  let kept = old;
  let otherRows: string[] = [];
  if (start >= 0) {
    const next = old.indexOf("\n## ", start + 1);
    // The other runtime's row stays: run once under Deno and once under Bun for both.
    const mine = `| ${runtime.split(" ")[0]} `;
    otherRows = old.slice(start, next >= 0 ? next : undefined).split("\n")
      .filter((l) => /^\| (deno|bun) /.test(l) && !l.startsWith(mine));
    kept = old.slice(0, start) + (next >= 0 ? old.slice(next) : "");
  }
  const row = [
    runtime,
    done,
    concurrency,
    rows.seconds,
    rows["requests/s"],
    rows["frames/s"],
    rows["first byte p50 ms"],
    rows["first byte p99 ms"],
    rows["RSS after 20 MB"],
    rows["RSS after 200 MB"],
    mb(end.rss),
    busy,
    end.liveEncoders,
    rows["encoder threads (busy at the end / started / lost)"],
  ].join(" | ");
  const section = `## HTTP service

Written by \`bench/http_load.ts\` (last run: ${runtime}, ${
    new Date().toISOString()
  }, ${cpus().length} cores, load
average ${loadavg().map((l) => l.toFixed(2)).join(" ")} at the end). The service (examples/http_service.ts,
\`maxConcurrent\` ${maxConcurrent}) runs in a child process of the same runtime; ${concurrency} clients on loopback
POST a ${width}x${height} Y4M of ${frames} frames (${
    (body.length / 1024).toFixed(0)
  } KiB) to \`/encode?${query}\` until
${requests} responses are complete (a 503 is retried). First byte: from the request to the first chunk of the
response body (the WebM header goes out with the first packet). RSS is the service's (\`GET /stats\`),
after 20, after 200 and after all requests. Encoder threads: busy at the end, started, lost (stalled or
failed), from the service's \`encoderThreadStats()\`.

| runtime | requests | concurrency | seconds | requests/s | frames/s | first byte p50 ms | first byte p99 ms | RSS after 20 MB | RSS after 200 MB | RSS after all MB | 503s | live encoders after | threads busy / started / lost |
| ------- | -------: | ----------: | ------: | ---------: | -------: | ----------------: | ----------------: | --------------: | ---------------: | ---------------: | ---: | ------------------: | ----------------------------: |
${[...otherRows, `| ${row} |`].sort().join("\n")}
`;
  if (!process.argv.includes("--no-write")) {
    writeFileSync(resultsPath, kept.trimEnd() + "\n\n" + section);
    console.log(section);
  }
} finally {
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
    await exited;
    clearTimeout(timer);
  }
}
