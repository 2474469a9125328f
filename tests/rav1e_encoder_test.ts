import assert from "node:assert/strict";
import { test } from "node:test";
import { locateRav1e, RAV1E_INSTALL_HINT } from "../ffi/load.ts";
import { findSequenceHeader, isKeyFramePacket } from "../lib/av1/obu.ts";
import { Rav1eEncoder } from "../lib/encoder/rav1e.ts";
import { EncoderError } from "../lib/errors.ts";
import { testSource } from "../lib/io/testsrc.ts";
import {
  assertHeldBackWithoutConsumer,
  assertRefusesAfterFlushAndClose,
  encodeAll,
  rejectsWith,
} from "./_helpers/encode.ts";

const fast = { speed: 10, lowLatency: true, rdoLookahead: 1 } as const;

test("Rav1eEncoder flushes every frame into one packet each, in input order, with timestamps carried", async () => {
  // The default lookahead reorders frames inside rav1e: packets still come out one per input frame.
  const src = testSource({ width: 128, height: 96, frames: 24 });
  await using enc = await Rav1eEncoder.create({ ...src.info, speed: 10 });
  const frames = [];
  for await (const f of src.frames()) frames.push({ ...f, timestamp: 500 + f.timestamp * 2, duration: 2 });
  const packets = await encodeAll(enc, frames);
  assert.equal(packets.length, 24, "frames in == packets out");
  assert.deepEqual(packets.map((p) => p.timestamp), frames.map((f) => f.timestamp));
  assert.ok(packets.every((p) => p.duration === 2));
  assert.equal(packets[0].keyFrame, true);
  assert.ok(isKeyFramePacket(packets[0].data));
  assert.ok(packets.every((p) => p.data.byteLength > 0));
  assert.equal(enc.framesEncoded, 24);
});

test("Rav1eEncoder's sequenceHeader() is the sequence header OBU of its key frames once the first is out", async () => {
  const src = testSource({ width: 128, height: 96, frames: 3 });
  await using enc = await Rav1eEncoder.create({ ...src.info, ...fast });
  assert.match(enc.version, /^0\.\d+\.\d+/);
  const packets = await encodeAll(enc, src.frames());
  const header = enc.sequenceHeader();
  assert.equal(header[0] >> 3 & 0xf, 1, "OBU type 1: sequence header");
  assert.deepEqual(header, findSequenceHeader(packets[0].data));
});

test("Rav1eEncoder forces key frames with encode() options and requestKeyFrame()", async () => {
  const src = testSource({ width: 128, height: 96, frames: 20 });
  await using enc = await Rav1eEncoder.create({ ...src.info, ...fast });
  const packets: boolean[] = [];
  const pump = (async () => {
    for await (const f of src.frames()) {
      if (f.timestamp === 13) enc.requestKeyFrame();
      await enc.encode(f, { keyFrame: f.timestamp === 6 });
    }
    await enc.flush();
  })();
  for await (const p of enc.packets()) {
    packets.push(p.keyFrame);
    assert.equal(p.keyFrame, isKeyFramePacket(p.data), `packet ${p.timestamp}: flag and bitstream agree`);
  }
  await pump;
  assert.deepEqual(packets.flatMap((k, i) => (k ? [i] : [])), [0, 6, 13]);
});

test("Rav1eEncoder encodes 10-bit and 12-bit, 4:2:2, 4:4:4 and monochrome input", async () => {
  const shapes = [
    { bitDepth: 10 as const, chroma: "420" as const },
    { bitDepth: 12 as const, chroma: "420" as const },
    { bitDepth: 8 as const, chroma: "422" as const },
    { bitDepth: 10 as const, chroma: "444" as const },
    { bitDepth: 8 as const, chroma: "mono" as const },
  ];
  for (const shape of shapes) {
    const src = testSource({ width: 64, height: 48, frames: 3, ...shape });
    await using enc = await Rav1eEncoder.create({ ...src.info, ...fast });
    const packets = await encodeAll(enc, src.frames());
    assert.equal(packets.length, 3, `${shape.bitDepth}-bit ${shape.chroma}`);
  }
});

test("Rav1eEncoder holds encode() back while nobody reads packets, then finishes", async () => {
  const src = testSource({ width: 128, height: 96, frames: 60 });
  const enc = await Rav1eEncoder.create({ ...src.info, ...fast, maxQueuedPackets: 2 });
  // Without a consumer only the packet queue plus rav1e's few frames of latency get through, however
  // long we wait; a slow machine only lets fewer through.
  await assertHeldBackWithoutConsumer(enc, src, { waitMs: 1000, maxAccepted: 12 });
});

test("Rav1eEncoder refuses encode after flush and after close; close is idempotent", async () => {
  const src = testSource({ width: 64, height: 48, frames: 2 });
  await assertRefusesAfterFlushAndClose(await Rav1eEncoder.create({ ...src.info, ...fast }), src);
});

test("Rav1eEncoder with no frames flushes to an empty stream; an unused encoder closes", async () => {
  const info = { width: 64, height: 48, ...fast };
  const enc = await Rav1eEncoder.create(info);
  assert.equal((await encodeAll(enc, [])).length, 0);
  await enc.close();
  const unused = await Rav1eEncoder.create(info);
  await unused.close();
  assert.equal(unused.closed, true);
});

test("Rav1eEncoder closes while encoding: the pending encode rejects and nothing hangs", async () => {
  const src = testSource({ width: 160, height: 120, frames: 200 });
  const enc = await Rav1eEncoder.create({ ...src.info, speed: 10 });
  let pumpError: unknown;
  const pump = (async () => {
    for await (const f of src.frames()) await enc.encode(f);
    await enc.flush();
  })().catch((e) => (pumpError = e));
  let n = 0;
  for await (const _ of enc.packets()) {
    if (++n === 3) break;
  }
  await enc.close();
  await pump;
  assert.ok(pumpError instanceof EncoderError && pumpError.code === "CLOSED", `pump ended with ${pumpError}`);
  await rejectsWith(enc.encode(src.frame(0)), "CLOSED", /closed/);
});

test("Rav1eEncoder disposes with await using mid-stream", async () => {
  const src = testSource({ width: 64, height: 48, frames: 4 });
  let kept: Rav1eEncoder;
  {
    await using enc = await Rav1eEncoder.create({ ...src.info, ...fast });
    kept = enc;
    await enc.encode(src.frame(0));
    await enc.encode(src.frame(1));
  }
  assert.equal(kept.closed, true);
});

test("Rav1eEncoder rejects frames of the wrong size", async () => {
  await using enc = await Rav1eEncoder.create({ width: 64, height: 48, ...fast });
  await rejectsWith(
    enc.encode({ data: new Uint8Array(10) }),
    "INVALID_FRAME",
    /10 bytes but 64x48 420 at 8 bits needs 4608/,
  );
});

test("Rav1eEncoder names an unknown rav1e parameter and a value rav1e rejects", async () => {
  await rejectsWith(
    Rav1eEncoder.create({ width: 64, height: 48, params: { no_such_key: 3 } }),
    "UNKNOWN_PARAMETER",
    /Unknown rav1e parameter 'no_such_key'/,
  );
  await rejectsWith(
    Rav1eEncoder.create({ width: 64, height: 48, params: { enable_timing_info: "maybe" } }),
    "INVALID_CONFIG",
    /enable_timing_info must be true or false/,
  );
});

test("locateRav1e lists every path it tried and how to install rav1e", async () => {
  await rejectsWith(
    locateRav1e({ libraryPath: "/nonexistent/librav1e.so.0" }),
    "LIBRARY_NOT_FOUND",
    /rav1e library \(librav1e\) not found\. Tried:\n {2}\/nonexistent\/librav1e\.so\.0: /,
  );
  await assert.rejects(locateRav1e({ env: { RAV1E_LIB_PATH: "/nonexistent/x.so" } }), (e: Error) => {
    assert.ok(e.message.includes("/nonexistent/x.so") && e.message.includes(RAV1E_INSTALL_HINT));
    return true;
  });
  const found = await locateRav1e();
  assert.match(found.version.text, /^0\.\d+\.\d+/);
});
