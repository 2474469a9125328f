// TCP sink: a peer on 127.0.0.1 killed, restarted, refusing and stalled mid-stream, for each policy.
import assert from "node:assert/strict";
import { test } from "node:test";
import { EncoderError } from "../lib/errors.ts";
import { createEncodeStream } from "../lib/stream/encode_stream.ts";
import { tcpSink } from "../lib/stream/sinks.ts";
import type { Frame, Packet } from "../lib/types.ts";
import { gatedFrames, milestones, record } from "./_helpers/sink_harness.ts";
import {
  FAKE_INFO,
  FakeEncoder,
  fakeFrame,
  fakeFrameSource,
  fakePacketInfo,
} from "./_helpers/stream_fake_encoder.ts";
import { dedupe, joined, parseIvfStream, sameBytes, TcpReceiver } from "./_helpers/stream_servers.ts";

const fast = { initialDelay: 20, maxDelay: 200, jitter: 0 } as const;

/** What a file encode of `count` frames gives with the fake encoder. */
async function fileEncode(
  count: number,
  options: ConstructorParameters<typeof FakeEncoder>[0],
): Promise<Packet[]> {
  const enc = new FakeEncoder({ ...options, maxQueuedPackets: count + 1 });
  for (let i = 0; i < count; i++) await enc.encode(fakeFrame(i));
  await enc.flush();
  const out: Packet[] = [];
  for await (const p of enc.packets()) out.push(p);
  return out;
}

/** A source of `count` fake frames that runs `gates[n]()` and waits for it before frame `n`. */
function gatedSource(count: number, gates: Record<number, () => Promise<unknown>>): ReadableStream<Frame> {
  return gatedFrames(count, fakeFrame, gates);
}

/** Every connection is a valid IVF stream starting with a key frame whose frames reference only frames before them on it. */
function assertEachConnectionDecodable(
  rx: TcpReceiver | { connections: { chunks: Uint8Array[]; bytes: number; ended: boolean }[] },
) {
  for (const [i, conn] of rx.connections.entries()) {
    const { valid, frames } = parseIvfStream(joined(conn));
    assert.ok(valid, `connection ${i} is not IVF`);
    if (!frames.length) continue;
    assert.ok(
      fakePacketInfo(frames[0].data).keyFrame,
      `connection ${i} starts with frame ${frames[0].timestamp}, not a key frame`,
    );
    for (let k = 1; k < frames.length; k++) {
      const info = fakePacketInfo(frames[k].data);
      if (!info.keyFrame) {
        assert.equal(
          info.ref,
          frames[k - 1].timestamp,
          `connection ${i}: frame ${info.timestamp} references a frame it never got`,
        );
      }
    }
  }
}

test("tcp block: a peer killed and restarted mid-stream receives every frame of the file encode", async () => {
  const rx = await TcpReceiver.start();
  let killed = false;
  rx.onData = (conn, _s, index) => {
    if (index === 0 && conn.bytes > 40_000 && !killed) {
      killed = true;
      void rx.kill();
    }
  };
  const encode = createEncodeStream({ encoder: new FakeEncoder({ keyint: 10, packetSize: 1000 }) });
  const sink = tcpSink(`tcp://127.0.0.1:${rx.port}`, { info: FAKE_INFO, ...fast });
  sink.on("reconnect", (e) => {
    if (e.attempt >= 2 && !rx.listening) void rx.listen();
  });
  const disconnects = record(sink, "disconnect");
  await fakeFrameSource(300).readable.pipeThrough(encode).pipeTo(sink);
  await rx.close();

  assert.ok(killed);
  assert.ok(rx.connections.length >= 2, `${rx.connections.length} connection(s)`);
  assert.ok(disconnects.length >= 1);
  const got = dedupe(rx.connections);
  const expected = await fileEncode(300, { keyint: 10, packetSize: 1000 });
  assert.equal(got.size, expected.length);
  for (const p of expected) {
    assert.ok(sameBytes(got.get(p.timestamp)!, p.data), `frame ${p.timestamp} differs`);
  }
  assert.ok(rx.connections.at(-1)!.ended, "the last connection saw the end of the stream");
  assertEachConnectionDecodable(rx);
  assert.ok(sink.stats.resent > 0);
  assert.equal(sink.stats.dropped, 0);
});

test("tcp block: backpressure holds the source while the peer is away", async () => {
  const rx = await TcpReceiver.start();
  let pulledAtKill = -1;
  const src = fakeFrameSource(200);
  rx.onData = (conn, _s, index) => {
    if (index === 0 && conn.bytes > 20_000 && pulledAtKill < 0) {
      pulledAtKill = src.pulled();
      void rx.kill();
    }
  };
  let pulledAtRestart = -1;
  const encode = createEncodeStream({
    encoder: new FakeEncoder({ keyint: 10, packetSize: 1000, maxQueuedPackets: 2 }),
  });
  const sink = tcpSink(`tcp://127.0.0.1:${rx.port}`, { info: FAKE_INFO, ...fast });
  sink.on("reconnect", (e) => {
    if (e.attempt >= 3 && !rx.listening) {
      pulledAtRestart = src.pulled();
      void rx.listen();
    }
  });
  await src.readable.pipeThrough(encode).pipeTo(sink);
  await rx.close();
  // While nobody listened the source moved on by no more than the pipeline's few buffered frames.
  assert.ok(
    pulledAtRestart - pulledAtKill <= 12,
    `source read ${pulledAtRestart - pulledAtKill} frames during the outage`,
  );
  assert.equal(dedupe(rx.connections).size, 200);
});

test("tcp block: kept groups stay bounded by retainBytes while connected", async () => {
  const rx = await TcpReceiver.start();
  const encode = createEncodeStream({ encoder: new FakeEncoder({ keyint: 10, packetSize: 2000 }) });
  const sink = tcpSink(`tcp://127.0.0.1:${rx.port}`, { info: FAKE_INFO, retainBytes: 50_000 });
  let peak = 0;
  const watch = new TransformStream<Packet, Packet>({
    transform(p, c) {
      peak = Math.max(peak, sink.stats.bufferedBytes);
      c.enqueue(p);
    },
  });
  await fakeFrameSource(500).readable.pipeThrough(encode).pipeThrough(watch).pipeTo(sink);
  await rx.close();
  // retainBytes after a group, plus that group and the one being built.
  assert.ok(peak <= 50_000 + 2 * 10 * 2000 + 2000, `peak kept ${peak} bytes`);
  assert.ok(peak > 0);
  assert.equal(dedupe(rx.connections).size, 500);
});

test("tcp drop: every connection starts with a key frame and nothing references a dropped frame", async () => {
  const rx = await TcpReceiver.start();
  rx.onData = (conn, _s, index) => {
    if (index === 0 && conn.bytes > 20_000 && rx.listening) void rx.kill();
  };
  const enc = new FakeEncoder({ keyint: 60, packetSize: 1000 });
  const encode = createEncodeStream({ encoder: enc });
  const sink = tcpSink(`tcp://127.0.0.1:${rx.port}`, {
    info: FAKE_INFO,
    onDisconnect: "drop",
    onKeyFrameNeeded: () => encode.requestKeyFrame(),
    ...fast,
  });
  const m = milestones(sink);
  // Frames 70 to 149 are made while the peer is away; the peer comes back before frame 150.
  const source = gatedSource(300, {
    0: () => m.connected,
    70: () => m.disconnected,
    150: () => (rx.listen(), m.reconnected),
  });
  await source.pipeThrough(encode).pipeTo(sink);
  await rx.close();

  assert.equal(rx.connections.length, 2);
  assertEachConnectionDecodable(rx);
  const second = parseIvfStream(joined(rx.connections[1])).frames;
  // The key frame was asked for on reconnect: the next scheduled one would be frame 180.
  assert.equal(second[0].timestamp, 150);
  assert.equal(second.at(-1)!.timestamp, 299);
  assert.ok(enc.keyFramesRequested >= 1);
  assert.ok(sink.stats.dropped >= 80, `${sink.stats.dropped} dropped`);
  assert.ok(sink.stats.keyFramesRequested >= 1);
  assert.equal(sink.stats.resent, 0);
});

test("tcp buffer: stays within maxBufferBytes during an outage, then sends from a key frame", async () => {
  const rx = await TcpReceiver.start();
  rx.onData = (conn, _s, index) => {
    if (index === 0 && conn.bytes > 20_000 && rx.listening) void rx.kill();
  };
  const enc = new FakeEncoder({ keyint: 10, packetSize: 1000 });
  const encode = createEncodeStream({ encoder: enc });
  const maxBufferBytes = 25_000;
  const sink = tcpSink(`tcp://127.0.0.1:${rx.port}`, {
    info: FAKE_INFO,
    onDisconnect: "buffer",
    maxBufferBytes,
    onKeyFrameNeeded: () => encode.requestKeyFrame(),
    ...fast,
  });
  let peak = 0;
  const watch = new TransformStream<Packet, Packet>({
    transform(p, c) {
      peak = Math.max(peak, sink.stats.bufferedBytes);
      c.enqueue(p);
    },
  });
  sink.on("drop", () => (peak = Math.max(peak, sink.stats.bufferedBytes)));
  const m = milestones(sink);
  const source = gatedSource(300, {
    0: () => m.connected,
    70: () => m.disconnected,
    150: () => (rx.listen(), m.reconnected),
  });
  await source.pipeThrough(encode).pipeThrough(watch).pipeTo(sink);
  await rx.close();

  assert.ok(peak <= maxBufferBytes, `buffered ${peak} bytes`);
  assert.ok(peak >= maxBufferBytes - 10_000, `buffered only ${peak} bytes`);
  assert.ok(sink.stats.dropped > 0, "frames past the bound were dropped");
  assertEachConnectionDecodable(rx);
  const second = parseIvfStream(joined(rx.connections[1])).frames;
  // The newest frames buffered while the peer was away went out on the new connection, from a key frame.
  assert.ok(
    second[0].timestamp < 150 && second[0].timestamp > 100,
    `new connection starts at frame ${second[0].timestamp}`,
  );
  assert.equal(second.at(-1)!.timestamp, 299);
  assert.equal(dedupe(rx.connections).size < 300, true);
});

test("tcp: refused connections are retried on the backoff schedule until the peer comes up", async () => {
  const rx = await TcpReceiver.start();
  await rx.kill();
  const sink = tcpSink(`tcp://127.0.0.1:${rx.port}`, {
    info: FAKE_INFO,
    initialDelay: 30,
    factor: 2,
    jitter: 0,
    maxDelay: 1000,
  });
  const reconnects = record(sink, "reconnect");
  sink.on("reconnect", (e) => {
    if (e.attempt >= 3 && !rx.listening) void rx.listen();
  });
  const encode = createEncodeStream({ encoder: new FakeEncoder({ keyint: 5 }) });
  await fakeFrameSource(50).readable.pipeThrough(encode).pipeTo(sink);
  await rx.close();
  assert.deepEqual(reconnects.slice(0, 3).map((e) => [e.attempt, e.delay]), [[1, 30], [2, 60], [3, 120]]);
  assert.equal((reconnects[0].cause as { code?: string }).code, "ECONNREFUSED");
  assert.equal(sink.stats.connections, 1);
  assert.equal(dedupe(rx.connections).size, 50);
});

test("tcp: after maxAttempts refused connections the sink errors with the cause", async () => {
  const rx = await TcpReceiver.start();
  await rx.kill();
  const sink = tcpSink(`tcp://127.0.0.1:${rx.port}`, {
    info: FAKE_INFO,
    initialDelay: 5,
    factor: 2,
    jitter: 0,
    maxAttempts: 3,
  });
  const reconnects = record(sink, "reconnect");
  const errors = record(sink, "error");
  const writer = sink.getWriter();
  const err = await writer.write(FakeEncoder.packet(0, -1, 100)).then(() => null, (e) => e);
  assert.ok(err instanceof EncoderError, String(err));
  assert.equal(err.code, "IO_ERROR");
  assert.match(err.message, /after 3 reconnection attempts/);
  assert.equal((err.cause as { code?: string }).code, "ECONNREFUSED");
  assert.deepEqual(reconnects.map((e) => e.delay), [5, 10, 20]);
  assert.equal(errors.length, 1);
  assert.equal(sink.state, "failed");
});

test("tcp: a peer that stops reading is detected by writeTimeout and the stream continues on a new connection", async () => {
  const rx = await TcpReceiver.start();
  rx.stallConnections.add(0);
  const encode = createEncodeStream({ encoder: new FakeEncoder({ keyint: 10, packetSize: 64 << 10 }) });
  const sink = tcpSink(`tcp://127.0.0.1:${rx.port}`, { info: FAKE_INFO, writeTimeout: 300, ...fast });
  const disconnects = record(sink, "disconnect");
  await fakeFrameSource(160).readable.pipeThrough(encode).pipeTo(sink);
  await rx.close();
  assert.equal((disconnects[0].cause as { code?: string }).code, "ETIMEDOUT");
  assert.ok(rx.connections.length >= 2);
  assert.equal(dedupe(rx.connections.slice(1)).size, 160);
});

test("tcp: close() resolves only after the peer answered the end", async () => {
  const rx = await TcpReceiver.start();
  const sink = tcpSink(`tcp://127.0.0.1:${rx.port}`, { info: FAKE_INFO });
  const ends = record(sink, "end");
  const writer = sink.getWriter();
  for (let i = 0; i < 5; i++) await writer.write(FakeEncoder.packet(i, i === 0 ? -1 : i - 1, 100));
  await writer.close();
  assert.equal(ends.length, 1);
  assert.ok(rx.connections[0].ended);
  assert.equal(parseIvfStream(joined(rx.connections[0])).frames.length, 5);
  assert.equal(sink.state, "closed");
  await rx.close();
});

test("tcp: a reset while ending resends the tail on a new connection", async () => {
  const rx = await TcpReceiver.start();
  // The first peer reads the end but resets instead of answering our FIN.
  rx.silentConnections.add(0);
  const sink = tcpSink(`tcp://127.0.0.1:${rx.port}`, { info: FAKE_INFO, ...fast });
  const writer = sink.getWriter();
  for (let i = 0; i < 5; i++) await writer.write(FakeEncoder.packet(i, i === 0 ? -1 : i - 1, 100));
  const closing = writer.close();
  let resolved = false;
  void closing.then(() => (resolved = true));
  while (!rx.connections[0].ended) await new Promise((r) => setTimeout(r, 5));
  assert.equal(resolved, false, "close() waits for the peer's answer");
  await rx.kill();
  await rx.listen();
  await closing;
  await rx.close();
  assert.equal(rx.connections.length, 2);
  assert.equal(parseIvfStream(joined(rx.connections[1])).frames.length, 5);
  assert.ok(rx.connections[1].ended);
});
