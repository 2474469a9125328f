// paceFrames: frames in order, no faster than the frame rate (a lower bound only: a loaded machine may be slower), abortable.
import assert from "node:assert/strict";
import { test } from "node:test";
import { EncoderError } from "../lib/errors.ts";
import { paceFrames } from "../lib/stream/pace.ts";

test("paceFrames yields every frame in order, frame n no sooner than n / fps after the first", async () => {
  const times: number[] = [];
  const got: number[] = [];
  // Pacing counts from the moment the first frame arrives, which is before the loop body first runs: a
  // time taken before the loop is no later than it, so frame n is at least n periods after it.
  const before = performance.now();
  for await (const f of paceFrames([0, 1, 2, 3, 4, 5], { num: 100, den: 1 }, { maxLag: Infinity })) {
    times.push(performance.now());
    got.push(f);
  }
  assert.deepEqual(got, [0, 1, 2, 3, 4, 5]);
  // Timers may fire up to a millisecond early on some runtimes.
  for (let n = 1; n < times.length; n++) {
    assert.ok(times[n] - before >= n * 10 - 1, `frame ${n} at ${times[n] - before} ms`);
  }
});

test("paceFrames takes async sources and stops when its signal aborts", async () => {
  async function* endless() {
    for (let i = 0;; i++) yield i;
  }
  const stop = new AbortController();
  const got: number[] = [];
  for await (const f of paceFrames(endless(), 1000, { signal: stop.signal })) {
    got.push(f);
    if (got.length === 5) stop.abort();
    assert.ok(got.length <= 5);
  }
  assert.deepEqual(got, [0, 1, 2, 3, 4]);
});

test("paceFrames rejects a frame rate that is not positive", async () => {
  for (const fps of [0, -1, NaN, { num: 0, den: 1 }]) {
    await assert.rejects(
      paceFrames([1], fps).next(),
      (e) => e instanceof EncoderError && e.code === "INVALID_CONFIG",
    );
  }
});
