import assert from "node:assert/strict";
import { test } from "node:test";
import { EdgeEncoder, EdgeEncoderPool } from "../examples/edge_pool.ts";
import { IvfWriter } from "../lib/io/ivf.ts";
import { fileSink } from "../lib/io/sink.ts";
import { testSource } from "../lib/io/testsrc.ts";
import type { Packet } from "../lib/types.ts";
import { dav1dFrameCount, denoOrBun, needs, tempPath } from "./_helpers/encode.ts";

const EDGE =
  "examples/edge_pool.ts and edge_worker.ts start their threads with the web Worker global, which Node lacks";

const SMALL = { preset: 13, logLevel: "error" };

/** Polls `value()` until it stops changing for `quietPolls` polls (a stalled pipeline) or `done()`. */
async function settle(value: () => number, done: () => boolean, quietPolls = 4): Promise<number> {
  let last = -1;
  let quiet = 0;
  while (!done() && quiet < quietPolls) {
    await new Promise((r) => setTimeout(r, 150));
    const v = value();
    quiet = v === last ? quiet + 1 : 0;
    last = v;
  }
  return value();
}

test(
  "EdgeEncoder encodes every frame in a worker, transferring each frame's buffer",
  { ...needs("dav1d"), ...denoOrBun(EDGE) },
  async () => {
    const source = testSource({ width: 160, height: 120, frames: 12 });
    const enc = await EdgeEncoder.create({ ...source.info, ...SMALL });
    try {
      assert.equal(enc.codec, "svt-av1");
      assert.match(enc.version, /\d+\.\d+/);
      let detached = 0;
      const pump = (async () => {
        for await (const frame of source.frames()) {
          await enc.encode(frame);
          // Transferred, not copied: the buffer now belongs to the worker.
          if (frame.data.byteLength === 0 && frame.data.buffer.byteLength === 0) detached++;
        }
        await enc.flush();
      })();
      const chunks: Packet[] = [];
      for await (const c of enc.chunks()) chunks.push(c);
      await pump;
      assert.equal(detached, 12);
      assert.equal(chunks.length, 12);
      assert.ok(chunks[0].keyFrame);
      assert.deepEqual(chunks.map((c) => c.timestamp), [...Array(12).keys()]);
      const path = tempPath("edge_worker.ivf");
      const ivf = new IvfWriter(await fileSink(path), source.info);
      for (const c of chunks) await ivf.writePacket(c);
      await ivf.close();
      assert.equal(dav1dFrameCount(path), 12);
    } finally {
      await enc.close();
    }
  },
);

test(
  "EdgeEncoder holds encode() back while nobody reads chunks, with bounded frames in flight",
  denoOrBun(EDGE),
  async () => {
    const total = 240;
    const source = testSource({ width: 160, height: 120, frames: total });
    const enc = await EdgeEncoder.create(
      { ...source.info, ...SMALL, lowDelay: true, maxQueuedPackets: 2 },
      { maxInFlight: 2, maxQueuedChunks: 1 },
    );
    try {
      let posted = 0;
      let maxInFlight = 0;
      let pumpDone = false;
      const pending: Promise<void>[] = [];
      const pump = (async () => {
        for await (const frame of source.frames()) {
          // Not awaited one by one: encode() itself must bound what is in flight.
          const p = enc.encode(frame);
          pending.push(p);
          posted++;
          maxInFlight = Math.max(maxInFlight, enc.inFlight);
          if (pending.length >= 4) await pending.shift();
        }
        await Promise.all(pending);
        await enc.flush();
        pumpDone = true;
      })();
      const stalledAt = await settle(() => enc.framesEncoded, () => pumpDone);
      assert.ok(!pumpDone, "the source must not run to the end while chunks are not read");
      assert.ok(stalledAt < total, `stalled after ${stalledAt} frames`);
      assert.ok(maxInFlight <= 2, `at most 2 frames in flight, saw ${maxInFlight}`);
      assert.ok(enc.queuedChunks <= 1, `at most 1 chunk queued, saw ${enc.queuedChunks}`);
      let n = 0;
      for await (const _ of enc.chunks()) n++;
      await pump;
      assert.equal(n, total);
      assert.ok(posted === total);
    } finally {
      await enc.close();
    }
  },
);

test(
  "EdgeEncoderPool: a stalled reader on stream A does not stop stream B from finishing",
  denoOrBun(EDGE),
  async () => {
    await using pool = new EdgeEncoderPool({ size: 2, maxQueuedChunks: 1 });
    const sourceA = testSource({ width: 160, height: 120, frames: 400, seed: 1 });
    const a = await pool.open({ ...sourceA.info, ...SMALL, lowDelay: true, maxQueuedPackets: 2 });
    let aDone = false;
    const pumpA = (async () => {
      for await (const frame of sourceA.frames()) await a.encode(frame);
      await a.flush();
      aDone = true;
    })();
    pumpA.catch(() => {});
    // Nobody reads A's chunks: wait until it is stuck.
    const aStalled = await settle(() => a.framesEncoded, () => aDone);
    assert.ok(!aDone && aStalled < 400, `stream A stalled after ${aStalled} frames`);

    const sourceB = testSource({ width: 160, height: 120, frames: 30, seed: 2 });
    const chunksB = await pool.encodeAll(sourceB.frames(), { ...sourceB.info, ...SMALL });
    assert.equal(chunksB.length, 30);
    assert.ok(chunksB[0].keyFrame);
    assert.equal(a.framesEncoded, aStalled, "stream A stayed where it was");
    assert.equal(pool.workers, 2);

    // A stalled stream still closes, and its worker goes back to the pool for the next stream.
    await a.close();
    await assert.rejects(pumpA, { code: "CLOSED" });
    assert.equal(pool.active, 0);
    const sourceC = testSource({ width: 160, height: 120, frames: 5, seed: 3 });
    assert.equal((await pool.encodeAll(sourceC.frames(), { ...sourceC.info, ...SMALL })).length, 5);
    assert.equal(pool.workers, 2, "workers are reused");
  },
);

test("EdgeEncoder rejects a bad setting with the encoder's own error", denoOrBun(EDGE), async () => {
  await assert.rejects(
    EdgeEncoder.create({ width: 160, height: 120, fps: { num: 30, den: 1 }, preset: 99 }),
    (e: Error & { code?: string }) => e.code === "INVALID_CONFIG" && /preset/.test(e.message),
  );
  const enc = await EdgeEncoder.create({ width: 160, height: 120, fps: { num: 30, den: 1 }, ...SMALL });
  await enc.close();
  await enc.close();
  await assert.rejects(enc.encode({ data: new Uint8Array(160 * 120 * 3 / 2) }), { code: "CLOSED" });
});
