/**
 * Runs the command line's `--chunked` start over and over, the way tests/cli_faults_test.ts does (a
 * 900-frame 160x120 Y4M, preset 6 (the test now uses 3, slower, so that the encode outlasts its first progress line; the crash figures in docs/bun-crash.md were taken at 6), wait for the first progress line, SIGTERM, expect 143), and reports
 * how long each run took to print its first progress line. A run that prints none by `--timeout` is a
 * hang: its threads' kernel state (/proc/PID/task/*: name, state, wchan) and, with gdb, every thread's
 * stack are written to bench/tmp/chunked_start-<runtime>-<run>.txt before it is killed.
 *
 * A run that ends by a signal before its first progress line is a crash (Node prints nothing for a
 * SIGSEGV); run it with `ulimit -c unlimited` to get its core in the current directory.
 *
 * `--load N` keeps N busy-looping processes running meanwhile (each ends with the bench), as on a CI
 * machine where three runtimes' suites share two cores.
 *
 * Usage: deno run -A bench/chunked_start.ts [--runtime node|deno|bun] [--runs 30] [--timeout 90]
 *        [--load 0] [--max-minutes 20]
 * Node runs the compiled tree (.cache/node/cli.js), compiled first.
 * @module
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import process from "node:process";
import { testSourceY4m } from "../lib/io/testsrc.ts";
import { threadStates } from "../tests/_helpers/proc_threads.ts";
import { compileForNode } from "./harness.ts";

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}
const runtime = option("runtime", "node");
const runs = Math.min(200, Number(option("runs", "30")));
const timeoutMs = Math.min(300, Number(option("timeout", "90"))) * 1000;
const load = Math.min(8, Number(option("load", "0")));
const deadline = Date.now() + Math.min(60, Number(option("max-minutes", "20"))) * 60_000;

const root = new URL("../", import.meta.url).pathname;
const tmp = `${root}bench/tmp`;
mkdirSync(tmp, { recursive: true });
const bin = (name: string) => `${root}node_modules/.bin/${name}`;
const command: [string, string[]] = runtime === "node"
  ? ["node", [`${compileForNode(root)}cli.js`]]
  : runtime === "deno"
  ? [bin("deno"), ["run", "-A", `${root}cli.ts`]]
  : [bin("bun"), [`${root}cli.ts`]];

const input = `${tmp}/chunked_start-900.y4m`;
if (!existsSync(input)) {
  const chunks: Uint8Array[] = [];
  const reader = testSourceY4m({ width: 160, height: 120, frames: 900 }).getReader();
  for (let r = await reader.read(); !r.done; r = await reader.read()) chunks.push(r.value);
  writeFileSync(input, Buffer.concat(chunks));
}

// Busy loops in their own processes (bounded by the bench: killed at its end, and by `timeout`).
const busy: ChildProcess[] = [];
for (let i = 0; i < load; i++) {
  const seconds = Math.ceil((deadline - Date.now()) / 1000);
  busy.push(spawn("timeout", [String(seconds), "sh", "-c", "while :; do :; done"], { stdio: "ignore" }));
}

function sh(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { timeout: 60_000 });
  return (r.stdout?.toString() ?? "") + (r.stderr?.toString() ?? "");
}

/** The kernel's view of every thread of `pid`, and gdb's stacks when gdb is there. */
function diagnose(pid: number): string {
  const lines = threadStates(pid);
  lines.push("", sh("gdb", ["-p", String(pid), "-batch", "-ex", "thread apply all bt 30"]));
  return lines.join("\n");
}

const progress = /frames, chunks \d+\/\d+ [\d.]+ fps encode/;
const firstLines: number[] = [];
let hangs = 0;
let crashes = 0;
let failures = 0;
let done = 0;
for (let run = 1; run <= runs && Date.now() < deadline; run++) {
  const out = `${tmp}/chunked_start-${runtime}.ivf`;
  rmSync(`${out}.chunks`, { recursive: true, force: true });
  const started = performance.now();
  const child = spawn(command[0], [...command[1], "-i", input, "-o", out, "--chunked", "--preset", "6"], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, SVT_LOG: "1" },
  });
  let stderr = "";
  child.stderr!.on("data", (d) => void (stderr += d));
  child.stdout!.resume();
  const closed = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    child.on("close", (code, signal) => resolve({ code, signal }))
  );
  let exited: { code: number | null; signal: string | null } | undefined;
  void closed.then((e) => (exited = e));
  while (!progress.test(stderr) && !exited && performance.now() - started < timeoutMs) {
    await new Promise((r) => setTimeout(r, 20));
  }
  const firstLine = performance.now() - started;
  let verdict: string;
  if (progress.test(stderr)) {
    firstLines.push(firstLine);
    process.kill(child.pid!, "SIGTERM");
    const kill = setTimeout(() => child.kill("SIGKILL"), 60_000);
    const e = await closed;
    clearTimeout(kill);
    verdict = e.code === 143 ? "ok" : `exit ${e.code} ${e.signal}`;
    if (e.code !== 143) failures++;
  } else if (exited) {
    // Ended by a signal nobody sent (SIGSEGV, SIGABRT): a crash, which Node's prints nothing for.
    if (exited.signal) crashes++;
    else failures++;
    verdict = `${
      exited.signal ? "CRASH: " : ""
    }ended before a progress line: exit ${exited.code} ${exited.signal}`;
  } else {
    hangs++;
    const report = `${tmp}/chunked_start-${runtime}-${run}.txt`;
    writeFileSync(report, `stderr: ${JSON.stringify(stderr)}\n\n${diagnose(child.pid!)}\n`);
    child.kill("SIGKILL");
    await closed;
    verdict = `HANG: no progress line in ${timeoutMs / 1000} s (${report})`;
  }
  done++;
  const la = loadavg().map((l) => l.toFixed(1)).join(" ");
  console.log(
    `${runtime} run ${run}: first progress line ${(firstLine / 1000).toFixed(2)} s, ${verdict} (load ${la})`,
  );
  if (verdict !== "ok" && stderr) console.log(`  stderr: ${stderr.slice(-400).replace(/\n/g, "\n  ")}`);
}
for (const b of busy) b.kill();
const sorted = firstLines.sort((a, b) => a - b);
const median = sorted.length ? sorted[Math.floor(sorted.length / 2)] / 1000 : NaN;
const max = sorted.length ? sorted[sorted.length - 1] / 1000 : NaN;
console.log(
  `${runtime}: ${done} runs, ${hangs} hangs, ${crashes} crashes, ${failures} other failures; first progress line median `
    + `${median.toFixed(2)} s, max ${max.toFixed(2)} s; ${load} busy loops on ${cpus().length} cores, `
    + `load ${loadavg().map((l) => l.toFixed(1)).join(" ")}`,
);
process.exit(hangs + crashes + failures ? 1 : 0);
