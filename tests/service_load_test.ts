import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import process from "node:process";
import { test } from "node:test";
import { readIvf } from "../lib/io/ivf.ts";
import { testSourceY4m } from "../lib/io/testsrc.ts";
import { scriptCommand } from "./_helpers/encode.ts";
import { collect } from "./_helpers/io_streams.ts";

// Bounded load on the HTTP service as a user runs it (examples/http_service.ts in its own process): more
// clients than the service takes at once, so that both answers occur (200 with the stream, 503 with
// Retry-After, which the client retries) until ENCODES requests were encoded. Counts, never timings: each
// request has a deadline only so that a hang fails the test, and the attempts are bounded.
const ENCODES = 160;
const MAX_ATTEMPTS = 50 * ENCODES;
const CONCURRENCY = 8;
const MAX_CONCURRENT = 6;
const FRAMES = 5;
const REQUEST_DEADLINE_MS = 30_000;
const SETTLE_DEADLINE_MS = 20_000;
const EXIT_DEADLINE_MS = 20_000;

const BODY = (await collect(testSourceY4m({ width: 64, height: 64, frames: FRAMES }))) as Uint8Array<
  ArrayBuffer
>;

interface Stats {
  active: number;
  liveEncoders: number;
  rss: number;
  threads: { threads: number; idle: number; busy: number; waiting: number; started: number; lost: number };
}

/** The service in a child process of this runtime; resolves with its URL once it listens. */
function startServiceProcess(): { child: ChildProcess; url: Promise<string>; output: () => string } {
  const [cmd, argv] = scriptCommand("examples/http_service.ts", []);
  const child = spawn(cmd, argv, {
    env: { ...process.env, PORT: "0", MAX_CONCURRENT: String(MAX_CONCURRENT), SVT_LOG: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stderr!.on("data", (d) => void (out += d));
  const url = new Promise<string>((resolve, reject) => {
    let stdout = "";
    const timer = setTimeout(() => reject(new Error(`The service did not start: ${out}`)), 30_000);
    child.stdout!.on("data", (d) => {
      stdout += d;
      const m = /on (http:\/\/\S+)/.exec(stdout);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`The service exited before listening (${code ?? signal}): ${out}`));
    });
  });
  return { child, url, output: () => out };
}

async function stats(url: string): Promise<Stats> {
  const r = await fetch(`${url}/stats`, { signal: AbortSignal.timeout(REQUEST_DEADLINE_MS) });
  assert.equal(r.status, 200);
  return await r.json() as Stats;
}

test(
  `the HTTP service encodes ${ENCODES} requests at concurrency ${CONCURRENCY} with 200 or 503, `
    + "frees every encoder and thread, and exits cleanly",
  { timeout: 300_000 },
  async () => {
    const service = startServiceProcess();
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
      service.child.once("exit", (code, signal) => resolve({ code, signal }))
    );
    try {
      const url = await service.url;
      let attempts = 0;
      let ok = 0;
      let busy = 0;
      const problems: string[] = [];

      async function one(): Promise<void> {
        const r = await fetch(`${url}/encode?format=ivf&preset=12`, {
          method: "POST",
          body: BODY,
          signal: AbortSignal.timeout(REQUEST_DEADLINE_MS),
        });
        if (r.status === 503) {
          const retryAfter = r.headers.get("retry-after");
          await r.body?.cancel();
          if (retryAfter === null || !/^\d+$/.test(retryAfter)) problems.push(`503 without Retry-After`);
          busy++;
          // Not the Retry-After's seconds: the test asks again soon to keep the service full.
          await new Promise((res) => setTimeout(res, 100));
          return;
        }
        const bytes = new Uint8Array(await r.arrayBuffer());
        if (r.status !== 200) {
          problems.push(`status ${r.status}: ${new TextDecoder().decode(bytes).slice(0, 200)}`);
          return;
        }
        const frames = (await readIvf(bytes)).frames.length;
        if (frames !== FRAMES) problems.push(`a 200 held ${frames} frames, not ${FRAMES}`);
        ok++;
      }

      // Each client asks until ENCODES requests were encoded (bounded by MAX_ATTEMPTS in all).
      await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
        while (ok < ENCODES && attempts < MAX_ATTEMPTS && problems.length < 5) {
          attempts++;
          try {
            await one();
          } catch (e) {
            problems.push(`request failed: ${(e as Error)?.message ?? e}`);
          }
        }
      }));
      assert.deepEqual(problems, [], `every request gets 200 or 503 with Retry-After\n${service.output()}`);
      assert.equal(ok + busy, attempts, "every request answered");
      assert.ok(ok >= ENCODES, `${ok} of ${ENCODES} encodes in ${attempts} requests`);
      console.log(`${ok} encoded, ${busy} answered 503`);

      // The last encoders close just after their clients have the last byte: wait (bounded) for that.
      let end = await stats(url);
      const until = Date.now() + SETTLE_DEADLINE_MS;
      while ((end.liveEncoders > 0 || end.active > 0 || end.threads.busy > 0) && Date.now() < until) {
        await new Promise((res) => setTimeout(res, 50));
        end = await stats(url);
      }
      assert.equal(end.liveEncoders, 0, "no encoder left open");
      assert.equal(end.active, 0, "no encode left running");
      assert.equal(end.threads.busy, 0, "no encoder thread left busy");
      assert.equal(end.threads.waiting, 0, "no encoder waiting for a thread");
      assert.equal(end.threads.lost, 0, "no encoder thread failed or stalled");
      assert.ok(
        end.threads.started <= MAX_CONCURRENT + 2,
        `threads are pooled, not started per request: ${end.threads.started} started for ${ok} encodes`,
      );
      assert.equal(service.child.exitCode, null, "the service is still running");

      // SIGTERM stops the service, which then ends by itself: 0 and no crash report. (process.kill, not
      // child.kill: Deno's child.kill reports an exit by the signal even when the child handled it.)
      process.kill(service.child.pid!, "SIGTERM");
      const timer = setTimeout(() => service.child.kill("SIGKILL"), EXIT_DEADLINE_MS);
      const exit = await exited;
      clearTimeout(timer);
      assert.doesNotMatch(service.output(), /panic|Segmentation fault|double free|corruption|has crashed/);
      assert.deepEqual(exit, { code: 0, signal: null }, `the service exits cleanly\n${service.output()}`);
    } finally {
      if (service.child.exitCode === null && service.child.signalCode === null) {
        service.child.kill("SIGKILL");
        await exited;
      }
    }
  },
);
