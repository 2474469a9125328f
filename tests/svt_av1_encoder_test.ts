import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { test } from "node:test";
import { findSequenceHeader, isKeyFramePacket } from "../lib/av1/obu.ts";
import { SvtAv1Encoder } from "../lib/encoder/svt_av1.ts";
import { testSource } from "../lib/io/testsrc.ts";
import {
  assertHeldBackWithoutConsumer,
  assertRefusesAfterFlushAndClose,
  dav1dFrameCount,
  encodeAll,
  needs,
  rejectsWith,
  tempPath,
} from "./_helpers/encode.ts";

const small = { width: 160, height: 120, fps: { num: 30, den: 1 }, preset: 12, crf: 45 };

test("SvtAv1Encoder encodes every frame into one packet each, in order, with timestamps carried", async () => {
  const src = testSource({ width: 160, height: 120, frames: 12 });
  await using enc = await SvtAv1Encoder.create({ ...src.info, preset: 12, crf: 45 });
  const frames = [];
  for await (const f of src.frames()) frames.push({ ...f, timestamp: 1000 + f.timestamp * 3, duration: 3 });
  const packets = await encodeAll(enc, frames);
  assert.equal(packets.length, 12);
  assert.deepEqual(packets.map((p) => p.timestamp), frames.map((f) => f.timestamp));
  assert.ok(packets.every((p) => p.duration === 3));
  assert.equal(packets[0].keyFrame, true);
  assert.equal(isKeyFramePacket(packets[0].data), true);
  assert.ok(packets.every((p) => p.data.byteLength > 0));
});

test("SvtAv1Encoder's sequenceHeader() is the sequence header OBU of its key frames", async () => {
  const src = testSource({ width: 160, height: 120, frames: 3 });
  await using enc = await SvtAv1Encoder.create({ ...src.info, preset: 12 });
  const before = enc.sequenceHeader();
  assert.equal(before[0] >> 3 & 0xf, 1, "OBU type 1: sequence header, from the library before any frame");
  const packets = await encodeAll(enc, src.frames());
  assert.deepEqual(enc.sequenceHeader(), findSequenceHeader(packets[0].data));
});

test("SvtAv1Encoder forces key frames where asked, and they are real key frames", async () => {
  const src = testSource({ width: 160, height: 120, frames: 24 });
  await using enc = await SvtAv1Encoder.create({ ...src.info, preset: 12, crf: 45 });
  const packets = await encodeAll(enc, src.frames(), new Set([10]));
  const keys = packets.flatMap((p, i) => (p.keyFrame ? [i] : []));
  assert.deepEqual(keys, [0, 10]);
  assert.ok(isKeyFramePacket(packets[10].data), "the bitstream agrees");
});

test("SvtAv1Encoder honours requestKeyFrame() on the next frame", async () => {
  const src = testSource({ width: 160, height: 120, frames: 16 });
  await using enc = await SvtAv1Encoder.create({ ...src.info, preset: 12, crf: 45 });
  const pump = (async () => {
    for await (const f of src.frames()) {
      if (f.timestamp === 7) enc.requestKeyFrame();
      await enc.encode(f);
    }
    await enc.flush();
  })();
  const keys: number[] = [];
  for await (const p of enc.packets()) if (p.keyFrame) keys.push(p.timestamp);
  await pump;
  assert.deepEqual(keys, [0, 7]);
});

test("SvtAv1Encoder encodes 10-bit input", async () => {
  const src = testSource({ width: 160, height: 120, frames: 4, bitDepth: 10 });
  await using enc = await SvtAv1Encoder.create({ ...src.info, preset: 12 });
  assert.equal(enc.frameSize, 160 * 120 * 3);
  const packets = await encodeAll(enc, src.frames());
  assert.equal(packets.length, 4);
});

test("SvtAv1Encoder holds encode() back while nobody reads packets, then finishes", async () => {
  const src = testSource({ width: 160, height: 120, frames: 150 });
  const enc = await SvtAv1Encoder.create({ ...src.info, preset: 13, crf: 50, maxQueuedPackets: 2 });
  // Without a consumer the pump cannot finish: at most the queue plus the encoder's pipeline get through.
  await assertHeldBackWithoutConsumer(enc, src, { waitMs: 1500, maxAccepted: 149 });
});

test("SvtAv1Encoder rejects bad configurations before native code runs", async () => {
  await rejectsWith(
    SvtAv1Encoder.create({ width: 161, height: 120 }),
    "INVALID_CONFIG",
    /even for 4:2:0.*161x120/,
  );
  await rejectsWith(
    SvtAv1Encoder.create({ width: 0, height: 120 }),
    "INVALID_CONFIG",
    /Width must be a positive/,
  );
  await rejectsWith(SvtAv1Encoder.create({ width: 100000, height: 120 }), "INVALID_CONFIG", /at most 16384/);
  await rejectsWith(SvtAv1Encoder.create({ width: 32, height: 32 }), "INVALID_CONFIG", /at least 64x64/);
  await rejectsWith(
    SvtAv1Encoder.create({ width: 160, height: 120, bitDepth: 12 }),
    "INVALID_CONFIG",
    /8 or 10/,
  );
  await rejectsWith(
    SvtAv1Encoder.create({ width: 160, height: 120, chroma: "444" }),
    "INVALID_CONFIG",
    /4:2:0 only/,
  );
  await rejectsWith(
    SvtAv1Encoder.create({ ...small, preset: 14 }),
    "INVALID_CONFIG",
    /preset must be .* -2 to 13, got 14/,
  );
  await rejectsWith(SvtAv1Encoder.create({ ...small, crf: 0 }), "INVALID_CONFIG", /crf must be/);
  await rejectsWith(
    SvtAv1Encoder.create({ ...small, bitrate: 500 }),
    "INVALID_CONFIG",
    /one of crf, qp or bitrate/,
  );
  await rejectsWith(
    SvtAv1Encoder.create({ width: 160, height: 120, bitrate: 500, rateControl: "cbr" }),
    "INVALID_CONFIG",
    /CBR needs lowDelay/,
  );
  await rejectsWith(
    SvtAv1Encoder.create({ ...small, fps: { num: 0, den: 1 } }),
    "INVALID_CONFIG",
    /Frame rate/,
  );
});

test("SvtAv1Encoder names an unknown SVT-AV1 parameter", async () => {
  await rejectsWith(
    SvtAv1Encoder.create({ ...small, params: { "no-such-option": 1 } }),
    "UNKNOWN_PARAMETER",
    /Unknown SVT-AV1 parameter 'no-such-option'/,
  );
  await rejectsWith(
    SvtAv1Encoder.create({ ...small, params: { "bad key": 1 } }),
    "UNKNOWN_PARAMETER",
    /'bad key'/,
  );
});

test("SvtAv1Encoder reports a value SVT-AV1 rejects", async () => {
  await rejectsWith(
    SvtAv1Encoder.create({ ...small, params: { "film-grain": 99 } }),
    "INVALID_CONFIG",
    /SVT-AV1 rejected/,
  );
});

test("SvtAv1Encoder rejects frames of the wrong size and non-byte data", async () => {
  await using enc = await SvtAv1Encoder.create(small);
  await rejectsWith(
    enc.encode({ data: new Uint8Array(100) }),
    "INVALID_FRAME",
    /has 100 bytes but 160x120.*needs 28800/,
  );
  await rejectsWith(
    enc.encode({ data: [1, 2, 3] as unknown as Uint8Array }),
    "INVALID_FRAME",
    /must be a Uint8Array/,
  );
});

test("SvtAv1Encoder refuses encode after flush and after close; close is idempotent", async () => {
  const src = testSource({ width: 160, height: 120, frames: 2 });
  await assertRefusesAfterFlushAndClose(await SvtAv1Encoder.create({ ...src.info, preset: 12 }), src);
});

test("SvtAv1Encoder with no frames flushes to an empty stream and closes", async () => {
  const enc = await SvtAv1Encoder.create(small);
  const packets = await encodeAll(enc, []);
  assert.equal(packets.length, 0);
  await enc.close();
  const unflushed = await SvtAv1Encoder.create(small);
  await unflushed.close();
  assert.equal(unflushed.closed, true);
});

test("SvtAv1Encoder closes mid-stream without flushing and rejects the waiting encode", async () => {
  const src = testSource({ width: 160, height: 120, frames: 5 });
  const enc = await SvtAv1Encoder.create({ ...src.info, preset: 12 });
  await enc.encode(src.frame(0));
  await enc.encode(src.frame(1));
  await enc.close();
  await rejectsWith(enc.encode(src.frame(2)), "CLOSED", /closed/);
});

test("SvtAv1Encoder takes ownership of a frame buffer it can transfer, and copies otherwise", async () => {
  const src = testSource({ width: 160, height: 120, frames: 2 });
  await using enc = await SvtAv1Encoder.create({ ...src.info, preset: 12 });
  const owned = src.frame(0);
  await enc.encode(owned);
  assert.equal(owned.data.byteLength, 0, "transferred to the encoder thread");
  const kept = src.frame(1);
  await enc.encode(kept, { transfer: false });
  assert.equal(kept.data.byteLength, enc.frameSize, "copied");
  await enc.flush();
});

test(
  "SvtAv1Encoder makes requested key frames under low delay too, and the stream decodes",
  needs("dav1d"),
  async () => {
    const src = testSource({ width: 160, height: 120, frames: 20 });
    await using enc = await SvtAv1Encoder.create({ ...src.info, preset: 12, lowDelay: true });
    const packets = await encodeAll(enc, src.frames(), new Set([7, 13]));
    assert.equal(packets.length, 20);
    assert.deepEqual(packets.flatMap((p, i) => (p.keyFrame ? [i] : [])), [0, 7, 13]);
    assert.ok(packets.every((p, i) => p.timestamp === i), "timestamps in order across sessions");
    assert.ok(isKeyFramePacket(packets[7].data) && isKeyFramePacket(packets[13].data));
    const out = tempPath("lowdelay-keys.obu");
    writeFileSync(out, Buffer.concat(packets.map((p) => p.data)));
    assert.equal(dav1dFrameCount(out, "section5"), 20);
  },
);
