// The reinit policy: a peer killed and restarted mid-stream gets a stream from a fresh encoder on each
// new connection (a key frame first, a new sequence header) while timestamps continue.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { EncoderError } from "../lib/errors.ts";
import { testSource } from "../lib/io/testsrc.ts";
import { createEncodeStream } from "../lib/stream/encode_stream.ts";
import type { SinkEvents } from "../lib/stream/packet_sink.ts";
import { createSink, tcpSink } from "../lib/stream/sinks.ts";
import { needs } from "./_helpers/encode.ts";
import {
  dav1dPublishFrames,
  NodeMediaServerProcess,
  parseFlvVideoTags,
  publishes,
  TcpGate,
} from "./_helpers/rtmp_servers.ts";
import { gatedFrames, milestones } from "./_helpers/sink_harness.ts";
import { FAKE_INFO, FakeEncoder, fakeFrame, fakePacketInfo } from "./_helpers/stream_fake_encoder.ts";
import { joined, parseIvfStream, TcpReceiver } from "./_helpers/stream_servers.ts";

const fast = { initialDelay: 20, maxDelay: 200, jitter: 0 } as const;

test("reinit: a fresh encoder starts the new connection at the next frame, timestamps continuing", async () => {
  const rx = await TcpReceiver.start();
  const made: FakeEncoder[] = [];
  const encode = createEncodeStream({
    encoder: () => {
      const e = new FakeEncoder({ keyint: 60, packetSize: 500 });
      made.push(e);
      return e;
    },
  });
  const sink = tcpSink(`tcp://127.0.0.1:${rx.port}`, {
    info: FAKE_INFO,
    onDisconnect: "reinit",
    onReinit: () => encode.reinit(),
    onKeyFrameNeeded: () => encode.requestKeyFrame(),
    ...fast,
  });
  const reinits: SinkEvents["reinit"][] = [];
  sink.on("reinit", (e) => reinits.push(e));
  const m = milestones(sink);
  // Frames 40 to 99 are made while the peer is away; it is back before frame 100.
  await gatedFrames(200, fakeFrame, {
    0: () => m.connected,
    40: () => rx.kill().then(() => m.disconnected),
    100: () => (rx.listen(), m.reconnected),
  }).pipeThrough(encode).pipeTo(sink);
  await rx.close();

  assert.equal(rx.connections.length, 2);
  assert.equal(made.length, 2, "one encoder per connection");
  assert.equal(encode.reinits, 1);
  assert.deepEqual(reinits, [{ connection: 2 }]);
  assert.equal(sink.stats.reinits, 1);
  const [first, second] = rx.connections.map((c) => parseIvfStream(joined(c)).frames);
  // The second connection: the fresh encoder's key frame at frame 100, then every frame to the end.
  assert.deepEqual(second.map((f) => f.timestamp), Array.from({ length: 100 }, (_, i) => 100 + i));
  assert.ok(fakePacketInfo(second[0].data).keyFrame);
  for (const [k, f] of second.entries()) {
    const info = fakePacketInfo(f.data);
    if (k > 0 && !info.keyFrame) assert.equal(info.ref, second[k - 1].timestamp, `frame ${f.timestamp}`);
  }
  assert.ok(first.every((f) => f.timestamp < 40));
  // The old encoder was never asked for a key frame: the fresh one starts with one anyway.
  assert.equal(made[0].keyFramesRequested, 0);
  assert.ok(made[0].closed);
  assert.ok(sink.stats.dropped >= 60, `${sink.stats.dropped} dropped`);
});

test("reinit: packets of the old encoder still in flight are dropped, not sent on the new connection", async () => {
  const rx = await TcpReceiver.start();
  // Encoder latency 5: the old encoder holds frames that come out only when it is flushed, never here.
  const encode = createEncodeStream({ encoder: () => new FakeEncoder({ keyint: 15, latency: 5 }) });
  const sink = tcpSink(`tcp://127.0.0.1:${rx.port}`, {
    info: FAKE_INFO,
    onDisconnect: "reinit",
    onReinit: () => encode.reinit(),
    ...fast,
  });
  const m = milestones(sink);
  await gatedFrames(120, fakeFrame, {
    0: () => m.connected,
    30: () => rx.kill().then(() => m.disconnected),
    70: () => (rx.listen(), m.reconnected),
  }).pipeThrough(encode).pipeTo(sink);
  await rx.close();
  const second = parseIvfStream(joined(rx.connections[1])).frames;
  assert.equal(second[0].timestamp, 70);
  assert.ok(fakePacketInfo(second[0].data).keyFrame);
  // The fresh encoder was flushed at the end: every frame from 70 on.
  assert.equal(second.length, 50);
  assert.ok(second.every((f, i) => f.timestamp === 70 + i));
});

test("reinit: needs onReinit, and reinit() needs a way to make encoders", async () => {
  assert.throws(
    () => tcpSink("tcp://127.0.0.1:9", { info: FAKE_INFO, onDisconnect: "reinit" }),
    (e: unknown) => e instanceof EncoderError && e.code === "INVALID_CONFIG" && /onReinit/.test(e.message),
  );
  const encode = createEncodeStream({ encoder: new FakeEncoder() });
  await assert.rejects(
    encode.reinit(),
    (e: unknown) => e instanceof EncoderError && e.code === "INVALID_STATE",
  );
  await encode.writable.close();
  await encode.readable.cancel();
});

const source = testSource({ width: 96, height: 64, frames: 120 });
// keyint 120: without reinit the second connection would wait for a key frame that never comes (SVT-AV1
// 1.4 ignores forced key frames in low-delay mode).
const svt = { ...source.info, preset: 12, lowDelay: true, keyint: 120, crf: 40, threads: 1 };

function dav1dIvfFrames(bytes: Uint8Array): number {
  const dir = mkdtempSync(join(tmpdir(), "reinit-"));
  try {
    writeFileSync(join(dir, "in.ivf"), bytes);
    const r = spawnSync("dav1d", ["-i", join(dir, "in.ivf"), "-o", "/dev/null"], { encoding: "utf8" });
    const m = [...`${r.stderr}${r.stdout}`.matchAll(/Decoded (\d+)\/(\d+) frames/g)].at(-1);
    return m ? Number(m[1]) : -1;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test(
  "reinit with SVT-AV1 over TCP: each connection decodes by itself with dav1d",
  needs("dav1d"),
  async () => {
    const rx = await TcpReceiver.start();
    const encode = createEncodeStream(svt);
    const sink = tcpSink(`tcp://127.0.0.1:${rx.port}`, {
      info: source.info,
      onDisconnect: "reinit",
      onReinit: () => encode.reinit(),
      ...fast,
    });
    const m = milestones(sink);
    await gatedFrames(120, (n) => source.frame(n), {
      0: () => m.connected,
      30: () => rx.kill().then(() => m.disconnected),
      60: () => (rx.listen(), m.reconnected),
    }).pipeThrough(encode).pipeTo(sink);
    await rx.close();
    assert.equal(rx.connections.length, 2);
    for (const [i, conn] of rx.connections.entries()) {
      const { frames } = parseIvfStream(joined(conn));
      assert.ok(frames.length > 0, `connection ${i} carried frames`);
      assert.equal(dav1dIvfFrames(joined(conn)), frames.length, `connection ${i}`);
    }
    const second = parseIvfStream(joined(rx.connections[1])).frames;
    assert.deepEqual(second.map((f) => f.timestamp), Array.from({ length: 60 }, (_, i) => 60 + i));
  },
);

test(
  "reinit over RTMP: the restarted server gets a new SequenceStart and a key frame from a fresh encoder",
  needs("node", "dav1d"),
  async () => {
    const server = await NodeMediaServerProcess.start();
    const gate = new TcpGate(server.rtmpPort);
    await gate.listen();
    const readers = [await server.play("live", "test")];
    try {
      const encode = createEncodeStream(svt);
      const sink = createSink(`rtmp://127.0.0.1:${gate.port}/live/test`, {
        info: source.info,
        onDisconnect: "reinit",
        onReinit: () => encode.reinit(),
        ...fast,
        // A node-media-server restart outlasted ten retries (~1.8 s) at load 33: allow ~40 s.
        maxAttempts: 200,
      });
      const m = milestones(sink);
      await gatedFrames(120, (n) => source.frame(n), {
        0: () => m.connected,
        30: () => gate.kill().then(() => server.kill()).then(() => m.disconnected),
        60: async () => {
          await server.restart();
          readers.push(await server.play("live", "test"));
          await gate.listen();
          await m.reconnected;
        },
      }).pipeThrough(encode).pipeTo(sink);
      await readers[1].waitFor((r) => publishes(parseFlvVideoTags(r.data())).at(-1)?.ended === true);
      const list = readers.flatMap((r) => publishes(parseFlvVideoTags(r.data())));
      assert.equal(list.length, 2);
      for (const [i, p] of list.entries()) {
        assert.ok(p.frames[0].key, `publish ${i} starts with a key frame`);
        assert.equal(dav1dPublishFrames(p), p.frames.length, `publish ${i}`);
      }
      assert.deepEqual(list[1].frames.map((f) => f.frame), Array.from({ length: 60 }, (_, i) => 60 + i));
      assert.equal(encode.reinits, 1);
    } finally {
      for (const r of readers) r.close();
      await gate.close();
      await server.close();
    }
  },
);
