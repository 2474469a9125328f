// File and stream sinks, stream formats, output routing and the backoff schedule.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { findSequenceHeader, isKeyFramePacket } from "../lib/av1/obu.ts";
import { EncoderError } from "../lib/errors.ts";
import { readIvf } from "../lib/io/ivf.ts";
import { testSource } from "../lib/io/testsrc.ts";
import { backoff } from "../lib/stream/backoff.ts";
import { createEncodeStream } from "../lib/stream/encode_stream.ts";
import { ivfFormat, obuFormat } from "../lib/stream/format.ts";
import { PacketSink } from "../lib/stream/packet_sink.ts";
import { createSink, filePacketSink } from "../lib/stream/sinks.ts";
import { writableTransport } from "../lib/transport/local.ts";
import type { Packet } from "../lib/types.ts";
import { FAKE_INFO, FakeEncoder, fakeFrameSource, framesOf } from "./_helpers/stream_fake_encoder.ts";

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), "sink-file-"));
}

test("file sink writes an IVF file with its frame count patched in", async () => {
  const dir = tempDir();
  try {
    const path = join(dir, "out.ivf");
    const sink = filePacketSink(path, { info: FAKE_INFO });
    await fakeFrameSource(25).readable.pipeThrough(createEncodeStream({ encoder: new FakeEncoder() })).pipeTo(
      sink,
    );
    const { header, frames } = await readIvf(new Uint8Array(readFileSync(path)));
    assert.equal(header.frameCount, 25);
    assert.equal(header.width, 64);
    assert.deepEqual(frames.map((f) => f.timestamp), Array.from({ length: 25 }, (_, i) => i));
    assert.deepEqual(sink.stats.connections, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("createSink picks OBU for .obu paths and the file holds an SVT-AV1 encode that starts at a key frame", async () => {
  const dir = tempDir();
  try {
    const path = join(dir, "out.obu");
    const source = testSource({ width: 64, height: 64, frames: 6 });
    const encode = createEncodeStream({ ...source.info, preset: 12, lowDelay: true, keyint: 3, threads: 1 });
    const packets: Packet[] = [];
    const tee = new TransformStream<Packet, Packet>({
      transform(p, c) {
        packets.push(p);
        c.enqueue(p);
      },
    });
    const sink = createSink(path, { sequenceHeader: (await encode.encoder).sequenceHeader() });
    await framesOf(source).pipeThrough(encode).pipeThrough(tee).pipeTo(sink);
    const bytes = new Uint8Array(readFileSync(path));
    assert.equal(bytes.length, packets.reduce((n, p) => n + p.data.length, 0));
    assert.ok(isKeyFramePacket(bytes.subarray(0, packets[0].data.length)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("obuFormat inserts the sequence header into a key frame packet that lacks one", () => {
  const seq = new Uint8Array([0x0a, 0x0b, 0x00, 0x00, 0x00, 0x04, 0x3c, 0xff, 0xbc, 0x00, 0x80, 0x00, 0x00]);
  const format = obuFormat({ sequenceHeader: seq });
  const frameObu = new Uint8Array([0x32, 0x01, 0x10]);
  const out = format.packet({ data: frameObu, timestamp: 0, duration: 1, keyFrame: true }) as Uint8Array;
  assert.deepEqual([...out.subarray(0, 2)], [0x12, 0x00], "a temporal delimiter first");
  assert.deepEqual(findSequenceHeader(out), seq);
  const inter = format.packet({ data: frameObu, timestamp: 1, duration: 1, keyFrame: false }) as Uint8Array;
  assert.equal(findSequenceHeader(inter), null);
  assert.equal((format.header() as Uint8Array).length, 0);
});

test("ivfFormat writes a 32-byte header per connection and 12-byte frame headers", () => {
  const format = ivfFormat({ width: 320, height: 240, fps: { num: 25, den: 1 } });
  const h = format.header() as Uint8Array;
  assert.equal(String.fromCharCode(...h.subarray(0, 4)), "DKIF");
  assert.equal(new DataView(h.buffer).getUint16(12, true), 320);
  const p = format.packet({
    data: new Uint8Array([1, 2, 3]),
    timestamp: 7,
    duration: 1,
    keyFrame: true,
  }) as Uint8Array;
  assert.equal(p.length, 15);
  assert.equal(new DataView(p.buffer).getUint32(0, true), 3);
  assert.equal(Number(new DataView(p.buffer).getBigInt64(4, true)), 7);
});

test("a writable stream sink reports events and stats and closes the stream at the end", async () => {
  const chunks: Uint8Array[] = [];
  let closed = false;
  const sink = new PacketSink(
    writableTransport(
      new WritableStream({ write: (c) => void chunks.push(c), close: () => void (closed = true) }),
    ),
    { info: FAKE_INFO },
  );
  const events: string[] = [];
  for (const t of ["connect", "end"] as const) sink.on(t, () => events.push(t));
  await fakeFrameSource(10).readable.pipeThrough(createEncodeStream({ encoder: new FakeEncoder() })).pipeTo(
    sink,
  );
  assert.deepEqual(events, ["connect", "end"]);
  assert.ok(closed);
  assert.equal(sink.stats.packets, 10);
  assert.equal(sink.stats.bytes, 32 + 10 * (12 + 200));
  assert.equal(sink.state, "closed");
});

test("a local sink error is final: no reconnection, the stream errors with the cause", async () => {
  const sink = new PacketSink(
    writableTransport(new WritableStream({ write: () => Promise.reject(new Error("disk full")) })),
    {
      info: FAKE_INFO,
    },
  );
  const reconnects: number[] = [];
  sink.on("reconnect", (e) => reconnects.push(e.attempt));
  const writer = sink.getWriter();
  await writer.write(FakeEncoder.packet(0, -1, 50)).catch(() => {});
  const err = await writer.closed.then(() => null, (e) => e);
  assert.ok(err instanceof EncoderError);
  assert.equal(err.code, "IO_ERROR");
  assert.match(err.message, /disk full/);
  assert.deepEqual(reconnects, []);
});

test("sinks reject bad options with a sentence that says what to do", () => {
  assert.throws(() => createSink("/tmp/x.ivf"), /needs info/);
  assert.throws(() => createSink("ftp://127.0.0.1:9000", { info: FAKE_INFO }), /Unsupported output/);
  assert.throws(() => createSink("tcp://nowhere", { info: FAKE_INFO }), /tcp:\/\/host:port/);
  assert.throws(
    () => createSink("tcp://127.0.0.1:9", { info: FAKE_INFO, onDisconnect: "retry" as "drop" }),
    /onDisconnect/,
  );
  assert.throws(() => backoff({ factor: 0.5 }), /factor must be a number >= 1/);
  assert.throws(() => backoff({ initialDelay: 100, maxDelay: 10 }), /maxDelay/);
});

test("backoff grows by factor up to maxDelay and jitter only shortens a delay", () => {
  const b = backoff({ initialDelay: 100, factor: 3, maxDelay: 2000, jitter: 0.5 });
  assert.deepEqual([1, 2, 3, 4, 5].map((n) => b.delay(n, 0)), [100, 300, 900, 2000, 2000]);
  assert.deepEqual([1, 2, 3].map((n) => b.delay(n, 1)), [50, 150, 450]);
  const d = backoff();
  assert.deepEqual([d.initialDelay, d.maxDelay, d.factor, d.maxAttempts, d.jitter], [
    250,
    10_000,
    2,
    10,
    0.2,
  ]);
});
