// createEncodeStream: backpressure from a slow consumer back to the source, flush, errors and cancel.
import assert from "node:assert/strict";
import { test } from "node:test";
import { EncoderError } from "../lib/errors.ts";
import { testSource } from "../lib/io/testsrc.ts";
import { createEncodeStream } from "../lib/stream/encode_stream.ts";
import type { Packet } from "../lib/types.ts";
import { FakeEncoder, fakeFrameSource, framesOf } from "./_helpers/stream_fake_encoder.ts";

/** A sink that takes one packet and then waits until `release()` is called. */
function gatedSink() {
  const got: Packet[] = [];
  let open: (() => void) | undefined;
  let waiting: (() => void) | undefined;
  const writable = new WritableStream<Packet>({
    async write(p) {
      got.push(p);
      await new Promise<void>((r) => {
        open = r;
        waiting?.();
      });
    },
  }, { highWaterMark: 1 });
  return {
    writable,
    got,
    /** Resolves once the sink is holding a packet. */
    held: () => new Promise<void>((r) => (open ? r() : (waiting = r))),
    release() {
      const o = open;
      open = undefined;
      o?.();
    },
  };
}

test("createEncodeStream stops pulling frames while the consumer is slow", async () => {
  const source = fakeFrameSource(100);
  const encoder = new FakeEncoder({ maxQueuedPackets: 3 });
  const encode = createEncodeStream({ encoder });
  const sink = gatedSink();
  const done = source.readable.pipeThrough(encode).pipeTo(sink.writable);
  const seen: [number, number][] = [];
  for (let consumed = 1; consumed <= 20; consumed++) {
    await sink.held();
    // Let every stream settle: microtasks and a macrotask turn.
    for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 0));
    seen.push([consumed, source.pulled()]);
    sink.release();
  }
  // The source is never more than a fixed pipeline depth ahead of the consumer:
  // sink queue (1) + readable (1) + encoder queue (3) + encode() in flight (1) + writable queue (1) + pipe (1).
  for (const [consumed, pulled] of seen) {
    assert.ok(pulled - consumed <= 8, `consumed ${consumed}, pulled ${pulled}`);
  }
  assert.ok(seen.at(-1)![1] < 40, "the source was held back");
  while (sink.got.length < 100) {
    await sink.held();
    sink.release();
  }
  await done;
  assert.equal(source.pulled(), 100);
  assert.deepEqual(sink.got.map((p) => p.timestamp), Array.from({ length: 100 }, (_, i) => i));
  assert.equal(encode.framesIn, 100);
  assert.equal(encode.packetsOut, 100);
  assert.ok(encoder.closed, "the encoder is closed after the last packet");
});

test("createEncodeStream flushes the encoder's held frames on close", async () => {
  const encoder = new FakeEncoder({ latency: 5 });
  const packets: Packet[] = [];
  await fakeFrameSource(12).readable.pipeThrough(createEncodeStream({ encoder })).pipeTo(
    new WritableStream({ write: (p) => void packets.push(p) }),
  );
  assert.equal(packets.length, 12);
  assert.ok(encoder.closed);
});

test("createEncodeStream errors the packet side and closes the encoder when encode() fails", async () => {
  const encoder = new FakeEncoder({ failAt: 7 });
  const err = await fakeFrameSource(20).readable.pipeThrough(createEncodeStream({ encoder })).pipeTo(
    new WritableStream(),
  ).then(() => null, (e) => e);
  assert.match(String(err?.message), /failed at frame 7/);
  assert.ok(encoder.closed);
});

test("createEncodeStream closes the encoder when the packet side is cancelled", async () => {
  const encoder = new FakeEncoder();
  const source = fakeFrameSource(1000);
  const encode = createEncodeStream({ encoder });
  const packets = source.readable.pipeThrough(encode);
  const reader = packets.getReader();
  for (let i = 0; i < 3; i++) await reader.read();
  await reader.cancel("enough");
  assert.ok(encoder.closed);
  assert.ok(source.pulled() < 1000);
});

test("createEncodeStream passes requestKeyFrame to the encoder", async () => {
  const encoder = new FakeEncoder({ keyint: 1000 });
  const encode = createEncodeStream({ encoder });
  const packets: Packet[] = [];
  let n = 0;
  const frames = new ReadableStream({
    pull(c) {
      if (n === 5) encode.requestKeyFrame();
      if (n >= 10) return c.close();
      c.enqueue({ data: new Uint8Array(16), timestamp: n++ });
    },
  }, { highWaterMark: 0 });
  await frames.pipeThrough(encode).pipeTo(new WritableStream({ write: (p) => void packets.push(p) }));
  assert.deepEqual(packets.filter((p) => p.keyFrame).map((p) => p.timestamp), [0, 5]);
});

test("createEncodeStream with codec rav1e works or fails with a clear error", async () => {
  const encode = createEncodeStream({ codec: "rav1e", width: 64, height: 64 });
  const err = await encode.encoder.then((e) => e.close().then(() => null), (e) => e);
  if (err) {
    assert.ok(err instanceof EncoderError);
    assert.ok(["LIBRARY_NOT_FOUND", "LIBRARY_UNSUPPORTED"].includes(err.code), err.code);
  }
  await encode.writable.abort().catch(() => {});
});

test("createEncodeStream over SVT-AV1 gives the packets of a direct encode", async () => {
  const source = testSource({ width: 64, height: 64, frames: 24 });
  const config = { ...source.info, preset: 12, lowDelay: true, keyint: 8, crf: 40, threads: 1 };
  const streamed: Packet[] = [];
  await framesOf(source).pipeThrough(createEncodeStream(config)).pipeTo(
    new WritableStream({ write: (p) => void streamed.push(p) }),
  );
  const { SvtAv1Encoder } = await import("../lib/encoder/svt_av1.ts");
  await using enc = await SvtAv1Encoder.create({ ...config, maxQueuedPackets: 100 });
  for await (const f of source.frames()) await enc.encode(f);
  await enc.flush();
  const direct: Packet[] = [];
  for await (const p of enc.packets()) direct.push(p);
  assert.equal(streamed.length, 24);
  assert.deepEqual(
    streamed.map((p) => [p.timestamp, p.keyFrame, p.data]),
    direct.map((p) => [p.timestamp, p.keyFrame, p.data]),
  );
  assert.deepEqual(streamed.filter((p) => p.keyFrame).map((p) => p.timestamp), [0, 8, 16]);
});
