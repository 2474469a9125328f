import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import { test } from "node:test";
import { runCoordinator } from "../lib/chunked/distributed.ts";
import { encodeChunked } from "../lib/chunked/local.ts";
import { writeHardCutY4m } from "./_helpers/chunked_media.ts";
import { startRedis } from "./_helpers/chunked_redis.ts";
import { dav1dFrameCount, needs, scriptCommand, tempPath } from "./_helpers/encode.ts";

interface WorkerProc {
  child: ChildProcess;
  lines: string[];
  waitFor(re: RegExp): Promise<string>;
  exited: Promise<void>;
}

function startWorker(
  redis: string,
  shared: string,
  queue: string,
  env: Record<string, string> = {},
): WorkerProc {
  const [cmd, argv] = scriptCommand("tests/_helpers/chunked_worker.ts", [redis, shared, queue]);
  const child = spawn(cmd, argv, { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, ...env } });
  const lines: string[] = [];
  const waiters: { re: RegExp; resolve: (l: string) => void }[] = [];
  let buf = "";
  child.stdout!.on("data", (d: Uint8Array) => {
    buf += new TextDecoder().decode(d);
    let nl;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      lines.push(line);
      for (const w of waiters.splice(0)) {
        if (w.re.test(line)) w.resolve(line);
        else waiters.push(w);
      }
    }
  });
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  return {
    child,
    lines,
    exited,
    waitFor: (re) => {
      const seen = lines.find((l) => re.test(l));
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        waiters.push({ re, resolve });
        exited.then(() => reject(new Error(`worker exited before printing ${re}: ${lines.join(" | ")}`)));
      });
    },
  };
}

async function stopWorker(w: WorkerProc) {
  if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill("SIGTERM");
  const timer = setTimeout(() => w.child.kill("SIGKILL"), 5000);
  await w.exited;
  clearTimeout(timer);
}

test(
  "distributed: a worker killed mid-job loses nothing, its chunk is redone and the join equals a local encode",
  { ...needs("redis-server", "dav1d"), timeout: 120_000 },
  async () => {
    const input = await writeHardCutY4m(tempPath("in.y4m"));
    const config = { preset: 12, crf: 40 };
    const plan = { minLength: 8, maxLength: 12 };
    const local = tempPath("local.ivf");
    await encodeChunked(input, config, { output: local, workDir: tempPath("local-work"), workers: 2, plan });

    const redis = await startRedis();
    const shared = tempPath("shared");
    mkdirSync(shared);
    const queue = `test-${process.pid}-${Date.now()}`;
    const workers: WorkerProc[] = [];
    try {
      // The first worker freezes in its first job; the second starts only once that job is held.
      const frozen = startWorker(redis.url, shared, queue, { HANG_AFTER_PROGRESS: "1" });
      workers.push(frozen);
      await frozen.waitFor(/^ready/);
      const out = tempPath("dist.ivf");
      const coordinator = runCoordinator(input, config, {
        redis: redis.url,
        sharedDir: shared,
        queue,
        output: out,
        plan,
        backoffMs: 200,
        pollMs: 100,
      });
      const held = await frozen.waitFor(/^progress /);
      const heldIndex = Number(held.split(" ")[1]);
      frozen.child.kill("SIGKILL");
      await frozen.exited;
      const healthy = startWorker(redis.url, shared, queue);
      workers.push(healthy);
      const result = await coordinator;

      assert.equal(result.frames, 40);
      assert.ok(
        healthy.lines.includes(`done ${heldIndex}`),
        `chunk ${heldIndex} was redone: ${healthy.lines.join(" | ")}`,
      );
      assert.ok(!frozen.lines.some((l) => l.startsWith("done")), "the frozen worker finished nothing");
      assert.deepEqual(readFileSync(out), readFileSync(local), "same bytes as the local chunked encode");
      assert.equal(dav1dFrameCount(out), 40);
    } finally {
      for (const w of workers) await stopWorker(w);
      await redis.stop();
    }
  },
);
