import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { ffiRuntime } from "../ffi/runtime/mod.ts";
import { Rav1eEncoder } from "../lib/encoder/rav1e.ts";
import { SvtAv1Encoder } from "../lib/encoder/svt_av1.ts";
import {
  configureEncoderThreads,
  encoderThreads,
  encoderThreadStats,
  prestartEncoderThreads,
  warmEncoderThreads,
} from "../lib/encoder/thread_pool.ts";
import { EncoderError } from "../lib/errors.ts";
import { testSource } from "../lib/io/testsrc.ts";
import { encodeAll, rejectsWith, scriptCommand } from "./_helpers/encode.ts";

const defaults = {
  threads: 2,
  maxThreads: 64,
  idleTimeoutMs: 10_000,
  stallTimeoutMs: 60_000,
  releaseMemory: true,
};

async function encodeSmall(kind: "svt-av1" | "rav1e", frames = 3): Promise<number> {
  const src = testSource({ width: 64, height: 64, frames });
  const enc = kind === "svt-av1"
    ? await SvtAv1Encoder.create({ ...src.info, preset: 12 })
    : await Rav1eEncoder.create({ ...src.info, speed: 10 });
  try {
    return (await encodeAll(enc, src.frames())).length;
  } finally {
    await enc.close();
  }
}

test("encoders take turns on pooled threads: no thread is started per encoder and none is left busy", async () => {
  configureEncoderThreads({ ...defaults, threads: 1 });
  try {
    const before = encoderThreadStats();
    for (let i = 0; i < 6; i++) assert.equal(await encodeSmall(i % 2 === 0 ? "svt-av1" : "rav1e"), 3);
    const after = encoderThreadStats();
    assert.equal(after.leases - before.leases, 6);
    assert.ok(
      after.started - before.started <= 1,
      `started ${after.started - before.started} threads for 6 encoders`,
    );
    assert.equal(after.busy, 0);
    assert.equal(after.waiting, 0);
  } finally {
    configureEncoderThreads(defaults);
  }
});

test("a thread started ahead of the first encoder hosts it while it is still loading, and setupTimes say where create() went", async () => {
  configureEncoderThreads({ ...defaults, threads: 1 });
  try {
    encoderThreads.endIdle();
    const before = encoderThreadStats();
    await prestartEncoderThreads(1);
    const ahead = encoderThreadStats();
    assert.equal(ahead.started - before.started, 1, "prestart started one thread");
    assert.equal(ahead.idle, 1);
    const src = testSource({ width: 64, height: 64, frames: 2 });
    const enc = await SvtAv1Encoder.create({ ...src.info, preset: 12 });
    try {
      assert.equal(encoderThreadStats().started, ahead.started, "create() took the prestarted thread");
      const t = enc.setupTimes;
      assert.ok(t.libraryMs > 0 && t.libraryMs <= t.threadMs && t.threadMs <= t.totalMs, JSON.stringify(t));
      assert.equal((await encodeAll(enc, src.frames())).length, 2);
    } finally {
      await enc.close();
    }
    await prestartEncoderThreads(1);
    assert.equal(encoderThreadStats().started, ahead.started, "no second thread when one is alive");
  } finally {
    configureEncoderThreads(defaults);
  }
});

test("more encoders than maxThreads wait for a thread and all finish", async () => {
  encoderThreads.endIdle();
  configureEncoderThreads({ ...defaults, threads: 1, maxThreads: 2 });
  try {
    const src = testSource({ width: 64, height: 64, frames: 2 });
    const a = await SvtAv1Encoder.create({ ...src.info, preset: 12 });
    const b = await Rav1eEncoder.create({ ...src.info, speed: 10 });
    assert.equal(encoderThreadStats().busy, 2);
    let cCreated = false;
    const c = SvtAv1Encoder.create({ ...src.info, preset: 12 }).then((e) => (cCreated = true, e));
    // Bounded wait for the third encoder to queue.
    for (let i = 0; i < 200 && encoderThreadStats().waiting === 0; i++) {
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.equal(encoderThreadStats().waiting, 1);
    assert.equal(cCreated, false);
    assert.equal((await encodeAll(a, src.frames())).length, 2);
    await a.close();
    const third = await c;
    assert.equal((await encodeAll(third, src.frames())).length, 2);
    assert.equal((await encodeAll(b, src.frames())).length, 2);
    await Promise.all([b.close(), third.close()]);
    const s = encoderThreadStats();
    assert.equal(s.busy, 0);
    assert.ok(s.threads <= 2);
  } finally {
    configureEncoderThreads(defaults);
  }
});

test("a native call that never answers fails its encoder alone with STALLED; the next encoder gets a new thread", async () => {
  configureEncoderThreads({ ...defaults, stallTimeoutMs: 300 });
  try {
    const before = encoderThreadStats();
    const lease = await encoderThreads.acquire();
    const lost = await new Promise<EncoderError>((resolve) => {
      lease.onlost = resolve;
      // A real native call that blocks the thread ten times the deadline, as a hung library would (not
      // longer: a Node process cannot end before the call returns).
      lease.post({ t: "block", ms: 3_000 });
    });
    assert.equal(lost.code, "STALLED");
    assert.match(lost.message, /no sign of progress for 300 ms.*create a new one/);
    assert.equal(lease.usable, false);
    assert.equal(encoderThreadStats().lost - before.lost, 1);
    configureEncoderThreads({ ...defaults });
    assert.equal(await encodeSmall("svt-av1"), 3);
    assert.equal(await encodeSmall("rav1e"), 3);

    // An encoder whose library call outlasts the deadline fails with the encoder's library named.
    configureEncoderThreads({ ...defaults, stallTimeoutMs: 1 });
    const src = testSource({ width: 640, height: 480, frames: 1 });
    await rejectsWith(
      () => SvtAv1Encoder.create({ ...src.info, preset: 4 }),
      "STALLED",
      /no sign of progress/,
    );
  } finally {
    configureEncoderThreads(defaults);
  }
});

/** The process's OS threads (Linux), or undefined where /proc is not there. */
function osThreads(): number | undefined {
  try {
    return Number(/Threads:\s+(\d+)/.exec(readFileSync("/proc/self/status", "utf8"))?.[1]);
  } catch {
    return undefined;
  }
}

test("idle threads the pool ends are gone: the process's OS threads come back to their number", async () => {
  if (osThreads() === undefined) return;
  const eventually = async (ok: () => boolean) => {
    for (let i = 0; i < 200 && !ok(); i++) await new Promise((r) => setTimeout(r, 50));
  };
  configureEncoderThreads({ ...defaults, threads: 3 });
  try {
    encoderThreads.endIdle();
    await new Promise((r) => setTimeout(r, 300));
    const before = osThreads()!;
    const ended = encoderThreadStats().ended;
    for (let round = 0; round < 5; round++) {
      await warmEncoderThreads();
      encoderThreads.endIdle();
    }
    assert.equal(encoderThreadStats().ended - ended, 15);
    // The runtime's own helper threads come and go: a little slack, far below the 15 threads ended.
    await eventually(() => osThreads()! <= before + 3);
    assert.ok(osThreads()! <= before + 3, `${osThreads()} OS threads after ending 15, ${before} before`);
  } finally {
    configureEncoderThreads(defaults);
  }
});

test("encoder thread options are checked", () => {
  assert.throws(() => configureEncoderThreads({ threads: -1 }), /threads must be a number of 0 or more/);
  assert.throws(() => configureEncoderThreads({ maxThreads: 0 }), /maxThreads must be at least 1/);
  assert.throws(() => configureEncoderThreads({ stallTimeoutMs: Number.NaN }), /stallTimeoutMs/);
  assert.throws(
    () => configureEncoderThreads({ releaseMemory: "yes" as unknown as boolean }),
    /releaseMemory must be true or false, got yes/,
  );
});

test("a thread that released the native heap's free memory after an encoder hosts the next one", async () => {
  for (const releaseMemory of [true, false]) {
    configureEncoderThreads({ ...defaults, threads: 1, releaseMemory });
    try {
      encoderThreads.endIdle();
      const before = encoderThreadStats();
      for (let i = 0; i < 4; i++) assert.equal(await encodeSmall(i % 2 === 0 ? "svt-av1" : "rav1e"), 3);
      const lease = await encoderThreads.acquire();
      if (!releaseMemory) assert.equal(lease.claimMemoryRelease(), false);
      // A close on a thread with no encoder, and the release after it, answers too.
      await new Promise<void>((resolve, reject) => {
        lease.onmessage = (m) => m.t === "closed" ? resolve() : reject(new Error(`got ${m.t}`));
        lease.post({ t: "close", releaseMemory: true });
      });
      lease.release();
      assert.equal(await encodeSmall("svt-av1"), 3);
      const after = encoderThreadStats();
      assert.equal(after.started - before.started, 1, "one thread hosted every encoder");
      assert.equal(after.busy, 0);
      assert.equal(after.lost - before.lost, 0);
    } finally {
      configureEncoderThreads(defaults);
    }
  }
});

test("a thread that never hosted an encoder releases memory and then hosts one", async () => {
  // The quiet-moment release may go to a thread that was leased and given back without an encoder: it
  // has not loaded the runtime yet. Its release once failed the thread, which then ignored the next
  // encoder's set-up until the stall deadline.
  await ffiRuntime();
  configureEncoderThreads({ ...defaults, threads: 1, stallTimeoutMs: 20_000 });
  try {
    encoderThreads.endIdle();
    const before = encoderThreadStats();
    const lease = await encoderThreads.acquire();
    assert.equal(encoderThreadStats().started - before.started, 1, "a new thread");
    const answers: string[] = [];
    await new Promise<void>((resolve) => {
      lease.onmessage = (m) => {
        answers.push(m.t);
        if (m.t === "closed") setTimeout(resolve, 200);
      };
      lease.post({ t: "close", releaseMemory: true });
    });
    assert.deepEqual(answers, ["closed"], "the release after the close answered nothing more");
    lease.release();
    assert.equal(await encodeSmall("svt-av1"), 3);
    assert.equal(encoderThreadStats().lost - before.lost, 0);
  } finally {
    configureEncoderThreads(defaults);
  }
});

test("memory freed while another encoder stays open is released once no encoder has been freed for a moment", async () => {
  configureEncoderThreads({ ...defaults, threads: 2 });
  const src = testSource({ width: 64, height: 64, frames: 3 });
  // An encode service keeps a spare encoder open like this one: one thread stays busy throughout.
  const held = await SvtAv1Encoder.create({ ...src.info, preset: 12 });
  try {
    // A release the tests before this one left pending goes first.
    await new Promise((r) => setTimeout(r, 500));
    const lease = await encoderThreads.acquire();
    lease.claimMemoryRelease();
    // A second close within the once-a-second bound does not release: it is left for the quiet moment.
    assert.equal(lease.claimMemoryRelease(), false);
    const before = encoderThreadStats().memoryReleases;
    lease.release();
    const end = Date.now() + 20_000; // bounded; the release comes 200 ms after the pool goes quiet
    while (encoderThreadStats().memoryReleases === before && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(encoderThreadStats().memoryReleases, before + 1, "the deferred release never came");
    assert.ok(encoderThreadStats().busy >= 1, "the held encoder kept its thread");
    assert.equal((await encodeAll(held, src.frames())).length, 3);
  } finally {
    await held.close();
    configureEncoderThreads(defaults);
  }
});

/** Node joins every worker thread as it exits, even in process.exit(): one inside a native call that never
 * returns keeps a Node process from ending, whatever the pool does (measured: process.exit(0) hung). */
const nodeJoinsThreads = !("Deno" in globalThis) && !("Bun" in globalThis);

test("idle encoder threads, and one stuck in a native call, do not keep the process from exiting", () => {
  for (const args of nodeJoinsThreads ? [[]] : [[], ["stuck"]]) {
    const [cmd, argv] = scriptCommand("tests/_helpers/pool_exit.ts", args);
    // The bound only catches a hang: the script ends in well under a second when it works.
    const r = spawnSync(cmd, argv, { encoding: "utf8", timeout: 60_000 });
    assert.equal(r.signal, null, `the script ${args.join(" ")} did not exit by itself: ${r.stderr}`);
    assert.equal(r.status, 0, r.stderr);
    const stats = JSON.parse(r.stdout.trim().split("\n").pop()!);
    assert.equal(stats.busy, 0);
    assert.equal(stats.lost, args.length);
  }
});

test("SVT-AV1 encoders started and closed side by side in one process run clean (set-up and tear-down never overlap)", () => {
  const [cmd, argv] = scriptCommand("tests/_helpers/concurrent_encoders.ts", ["8", "12"]);
  const r = spawnSync(cmd, argv, { encoding: "utf8", timeout: 240_000 });
  assert.equal(r.signal, null, `the process died of ${r.signal}: ${r.stderr.slice(-2000)}`);
  assert.equal(r.status, 0, r.stderr.slice(-2000));
  const stats = JSON.parse(r.stdout.trim().split("\n").pop()!);
  assert.equal(stats.packets, 8 * 12 * 10);
  assert.equal(stats.busy, 0);
  assert.equal(stats.lost, 0);
  assert.ok(stats.started <= 8, `${stats.started} threads for 8 loops`);
});
