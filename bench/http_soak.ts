/**
 * Runs bench/http_load.ts `--runs` times in a row in this runtime and counts the runs whose service died
 * (a crash shows as failed requests and a non-zero exit), that leaked encoders or busy threads, or that
 * answered a 503 without a Retry-After. Each run's line also gives the service's RSS at rest after every
 * turn of 100 requests from request 200 on, and the band of that series against the sample at 200 (the
 * target is ± 10 %); the last line counts the runs inside it.
 *
 * Usage: bun bench/http_soak.ts [--runs 10] [--concurrency 8] [--requests 2000] [--max-concurrent N]
 *        deno run -A bench/http_soak.ts ...
 * @module
 */
import { spawnSync } from "node:child_process";
import process from "node:process";

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}
const runs = Math.min(20, Number(option("runs", "10")));
const concurrency = option("concurrency", "8");
const requests = option("requests", "2000");
// Below the concurrency, the service is full at times and answers 503 (with Retry-After) to the rest.
const maxConcurrent = option("max-concurrent", "");
const isDeno = "Deno" in globalThis;
const script = new URL("./http_load.ts", import.meta.url).pathname;
let bad = 0;
let flat = 0;
for (let i = 1; i <= runs; i++) {
  const args = [
    ...(isDeno ? ["run", "-A"] : []),
    script,
    "--concurrency",
    concurrency,
    "--requests",
    requests,
    ...(maxConcurrent ? ["--max-concurrent", maxConcurrent] : []),
  ];
  // Bounded: one run of 2000 small requests takes 2-4 minutes here.
  const r = spawnSync(process.execPath, args, { encoding: "utf8", timeout: 900_000 });
  const out = `${r.stdout}\n${r.stderr}`;
  const panicked = /panic:|Segmentation fault|double free|Bun has crashed/.test(out);
  const field = (name: string) => out.match(new RegExp(`${name}\\s*│\\s*"?([^"│]+?)"?\\s*│`))?.[1] ?? "?";
  const ok = r.status === 0 && !panicked && field("live encoders at the end") === "0"
    && field("503s without Retry-After") === "0";
  if (!ok) bad++;
  const [low, high] = field("RSS band from 200 %").split(" … ").map(Number);
  if (Math.abs(low) <= 10 && Math.abs(high) <= 10) flat++;
  console.log(
    `run ${i}: ${ok ? "ok" : "FAILED"} exit=${r.status ?? r.signal} requests/s=${field("requests/s")} `
      + `p99=${field("first byte p99 ms")} rss200=${field("RSS after 200 MB")} `
      + `rssEnd=${field(`RSS after ${requests} MB`)} growth=${field("RSS growth %")}% js=${
        field("JS heap and external MB after 200 / at the end")
      } alive=${field("encoder threads alive after 200 / at the end")} threads=${
        field("encoder threads \\(busy at the end / started / lost\\)")
      } band=${field("RSS band from 200 %")}% series=${field("RSS at rest per turn MB")} 503s=${
        field("503s")
      }/${field("503s without Retry-After")} failed=${field("failed")} load=${
        out.match(/load average ([\d. ]+)/)?.[1]?.trim() ?? "?"
      }`,
  );
  if (!ok) {
    // What the run printed last says why: the service's error, the client's, or a crash.
    const tail = out.trim().split("\n").slice(-40).join("\n");
    console.log(`run ${i} ended ${r.error ? `with ${r.error.message}` : "badly"}; its last lines:\n${tail}`);
  }
}
console.log(`${runs - bad} of ${runs} runs clean; RSS within ± 10 % of request 200's in ${flat} of ${runs}`);
process.exit(bad === 0 ? 0 : 1);
