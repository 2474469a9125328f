// TCP sink through a fault-injecting proxy (tests/_helpers/fault_proxy.ts): connections cut at seeded
// random byte offsets, a peer that stops reading, and refusals for a while, for each policy. The fake
// encoder gives fast deterministic streams; SVT-AV1 and dav1d prove the drop and buffer streams decode.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { SvtAv1Encoder } from "../lib/encoder/svt_av1.ts";
import { EncoderError } from "../lib/errors.ts";
import { testSource } from "../lib/io/testsrc.ts";
import { backoff, type BackoffOptions } from "../lib/stream/backoff.ts";
import { createEncodeStream } from "../lib/stream/encode_stream.ts";
import { ivfFormat } from "../lib/stream/format.ts";
import { paceFrames } from "../lib/stream/pace.ts";
import type { PacketSink, PacketSinkOptions, SinkEvents } from "../lib/stream/packet_sink.ts";
import { tcpSink } from "../lib/stream/sinks.ts";
import type { Frame, Packet } from "../lib/types.ts";
import { needs } from "./_helpers/encode.ts";
import { type Fault, FaultProxy, randomFaults } from "./_helpers/fault_proxy.ts";
import { FAKE_INFO, FakeEncoder, fakeFrame, fakePacketInfo } from "./_helpers/stream_fake_encoder.ts";
import {
  dedupe,
  joined,
  parseIvfStream,
  type Received,
  sameBytes,
  TcpReceiver,
} from "./_helpers/stream_servers.ts";

/** The IVF header every connection starts with. */
function ivfHeader(info: Parameters<typeof ivfFormat>[0]): Uint8Array {
  return ivfFormat(info).header() as Uint8Array;
}

function record<K extends keyof SinkEvents>(sink: PacketSink, type: K): SinkEvents[K][] {
  const events: SinkEvents[K][] = [];
  sink.on(type, (e) => events.push(e));
  return events;
}

/** The fake encoder's packets for `count` frames, as a file encode gives them. */
async function fakeFileEncode(count: number, keyint: number, packetSize: number): Promise<Packet[]> {
  const enc = new FakeEncoder({ keyint, packetSize, maxQueuedPackets: count + 1 });
  for (let i = 0; i < count; i++) await enc.encode(fakeFrame(i));
  await enc.flush();
  const out: Packet[] = [];
  for await (const p of enc.packets()) out.push(p);
  return out;
}

/** `count` fake frames, at `fps` when given (paced like a live source), else as fast as they are taken. */
/**
 * `count` frames, paced at `fps` if given; then, while `more()` says so, more of them, up to three times
 * `count` in all: a live source that goes on until the link has come back, however long a loaded machine
 * takes to reconnect.
 */
function fakeFrames(count: number, fps?: number, more?: () => boolean): ReadableStream<Frame> {
  function* all() {
    for (let i = 0; i < count * 3 && (i < count || more?.()); i++) yield fakeFrame(i);
  }
  const it = fps ? paceFrames(all(), fps) : all();
  return new ReadableStream<Frame>({
    async pull(c) {
      const next = await it.next();
      if (next.done) c.close();
      else c.enqueue(next.value);
    },
  }, { highWaterMark: 0 });
}

/** Passes packets on and records the largest `bufferedBytes` of the sink seen before each write and at each event. */
function bufferWatch(sink: PacketSink): { stream: TransformStream<Packet, Packet>; peak(): number } {
  let peak = 0;
  const look = () => (peak = Math.max(peak, sink.stats.bufferedBytes));
  for (const t of ["drop", "connect", "disconnect", "reconnect", "keyframe"] as const) sink.on(t, look);
  const stream = new TransformStream<Packet, Packet>({
    transform(p, c) {
      look();
      c.enqueue(p);
    },
  });
  return { stream, peak: () => Math.max(peak, sink.stats.bufferedBytes) };
}

/**
 * What the proxy and the peer saw agree: every connection reached the peer; a connection cut or stalled
 * at `at` bytes delivered exactly `at` bytes; every connection starts with the IVF header (or a piece of it).
 */
function assertConnections(proxy: FaultProxy, rx: TcpReceiver, header: Uint8Array, seed: number) {
  assert.equal(
    rx.connections.length,
    proxy.connections.length,
    `seed ${seed}: one peer connection per sink connection`,
  );
  for (const [i, c] of proxy.connections.entries()) {
    const got = joined(rx.connections[i]);
    assert.equal(c.upstreamFailed, false);
    if (c.faulted && c.fault.kind !== "pass") {
      assert.equal(got.length, c.fault.at, `seed ${seed}: connection ${i} cut at ${c.fault.at}`);
    }
    const n = Math.min(header.length, got.length);
    assert.ok(
      sameBytes(got.subarray(0, n), header.subarray(0, n)),
      `seed ${seed}: connection ${i} starts with the IVF header`,
    );
  }
}

/** Each connection's frames are consecutive and resume no later than the first frame not yet received; all `total` arrive. */
function assertInOrderNoneLost(connections: Received[], total: number, seed: number) {
  let next = 0;
  for (const [i, conn] of connections.entries()) {
    const frames = parseIvfStream(joined(conn)).frames;
    if (!frames.length) continue;
    assert.ok(
      frames[0].timestamp <= next,
      `seed ${seed}: connection ${i} resumes at ${frames[0].timestamp}, frame ${next} missing`,
    );
    for (let k = 1; k < frames.length; k++) {
      assert.equal(
        frames[k].timestamp,
        frames[k - 1].timestamp + 1,
        `seed ${seed}: connection ${i} out of order`,
      );
    }
    next = Math.max(next, frames.at(-1)!.timestamp + 1);
  }
  assert.equal(next, total, `seed ${seed}: frames received up to ${next} of ${total}`);
}

/** Fake packets: each connection starts with a key frame and every other frame references the one before it on that connection. */
function assertFakeDecodable(connections: Received[], seed: number): number {
  let frames = 0;
  for (const [i, conn] of connections.entries()) {
    const { valid, frames: got } = parseIvfStream(joined(conn));
    assert.ok(valid || conn.bytes < 32, `seed ${seed}: connection ${i} is not IVF`);
    frames += got.length;
    if (!got.length) continue;
    assert.ok(
      fakePacketInfo(got[0].data).keyFrame,
      `seed ${seed}: connection ${i} starts with a delta frame`,
    );
    for (let k = 1; k < got.length; k++) {
      const info = fakePacketInfo(got[k].data);
      if (!info.keyFrame) {
        assert.equal(
          info.ref,
          got[k - 1].timestamp,
          `seed ${seed}: connection ${i} frame ${info.timestamp} lacks its reference`,
        );
      }
    }
  }
  return frames;
}

/** Frames that reached the peer over the connections after the first fault's (-1: no fault yet). */
function framesAfterFirstFault(proxy: FaultProxy, rx: TcpReceiver): number {
  const first = proxy.connections.findIndex((c) => c.faulted);
  if (first < 0) return -1;
  return rx.connections.slice(first + 1).reduce((n, c) => n + parseIvfStream(joined(c)).frames.length, 0);
}

/** Frames reached the peer after the first fault: the link came back. */
function assertRecovered(proxy: FaultProxy, rx: TcpReceiver, seed: number) {
  const first = proxy.connections.findIndex((c) => c.faulted);
  const after = framesAfterFirstFault(proxy, rx);
  assert.ok(
    first >= 0 && after > 0,
    `seed ${seed}: ${after} frames after the first fault (connection ${first})`,
  );
}

/** Every reconnect event's delay is the configured schedule's for its attempt; attempts count 1, 2, 3… per outage. */
function assertSchedule(events: SinkEvents["reconnect"][], options: BackoffOptions) {
  const b = backoff({ ...options, jitter: 0 });
  const jitter = options.jitter ?? 0.2;
  let previous = 0;
  for (const e of events) {
    assert.ok(e.attempt === 1 || e.attempt === previous + 1, `attempt ${e.attempt} after ${previous}`);
    const base = b.delay(e.attempt);
    assert.ok(
      e.delay <= base && e.delay >= Math.round(base * (1 - jitter)),
      `attempt ${e.attempt}: delay ${e.delay} outside [${Math.round(base * (1 - jitter))}, ${base}]`,
    );
    previous = e.attempt;
  }
}

const schedule = { initialDelay: 10, maxDelay: 120, factor: 2, jitter: 0.3, maxAttempts: 40 } as const;

/** A fake-encoder stream through the proxy: the peer, the proxy, the sink and what they saw. */
async function fakeRun(
  seed: number,
  faults: Fault[],
  options: PacketSinkOptions,
  stream: { frames: number; keyint: number; packetSize: number; fps?: number; untilRecovered?: boolean },
) {
  const rx = await TcpReceiver.start();
  const proxy = await FaultProxy.start({ port: rx.port }, faults);
  try {
    const enc = new FakeEncoder({ keyint: stream.keyint, packetSize: stream.packetSize });
    const encode = createEncodeStream({ encoder: enc });
    const sink = tcpSink(`tcp://127.0.0.1:${proxy.port}`, {
      info: FAKE_INFO,
      writeTimeout: 500,
      ...schedule,
      onKeyFrameNeeded: () => encode.requestKeyFrame(),
      ...options,
    });
    const reconnects = record(sink, "reconnect");
    sink.on("reconnect", () => proxy.attempted());
    const watch = bufferWatch(sink);
    const more = stream.untilRecovered ? () => framesAfterFirstFault(proxy, rx) <= 0 : undefined;
    await fakeFrames(stream.frames, stream.fps, more).pipeThrough(encode).pipeThrough(watch.stream).pipeTo(
      sink,
    );
    return { rx, proxy, sink, reconnects, peak: watch.peak(), enc };
  } finally {
    await proxy.close();
    await rx.close();
  }
}

for (const seed of [1, 2]) {
  test(`proxy block (seed ${seed}): cuts, a stall and a refusal lose nothing; frames over all connections equal the file encode`, async () => {
    const frames = 700, keyint = 30, packetSize = 16_000;
    // Cut points up to 3 MB; connection 2 stalls (the watchdog must notice), connection 4's cut is followed by 3 refused attempts.
    const faults = randomFaults({ seed, count: 6, maxOffset: 3_000_000, stalls: [2], refusals: { 4: 3 } });
    const { rx, proxy, sink, reconnects } = await fakeRun(seed, faults, {}, { frames, keyint, packetSize });

    assert.ok(proxy.connections.length >= 7, `seed ${seed}: ${proxy.connections.length} connections`);
    assert.ok(proxy.connections.slice(0, 6).every((c) => c.faulted), `seed ${seed}: every fault happened`);
    assertConnections(proxy, rx, ivfHeader(FAKE_INFO), seed);
    assertInOrderNoneLost(rx.connections, frames, seed);
    const got = dedupe(rx.connections);
    const expected = await fakeFileEncode(frames, keyint, packetSize);
    assert.equal(got.size, expected.length);
    for (const p of expected) {
      assert.ok(sameBytes(got.get(p.timestamp)!, p.data), `seed ${seed}: frame ${p.timestamp} differs`);
    }
    assertFakeDecodable(rx.connections, seed);
    assert.ok(rx.connections.at(-1)!.ended, "the last connection saw the end of the stream");
    assert.equal(sink.stats.dropped, 0);
    assert.equal(sink.state, "closed");
    assert.ok(
      reconnects.some((e) => (e.cause as { code?: string }).code === "ETIMEDOUT"),
      "the stall was detected",
    );
    assert.ok(
      reconnects.some((e) => (e.cause as { code?: string }).code === "ECONNREFUSED"),
      "the refusal was seen",
    );
    assertSchedule(reconnects, schedule);
  });
}

test("proxy drop: every connection starts at a key frame, nothing references a dropped frame, the queue stays bounded", async () => {
  const seed = 3, maxBufferBytes = 256_000;
  const faults = randomFaults({ seed, count: 5, maxOffset: 1_000_000, stalls: [1], refusals: { 3: 3 } });
  const { rx, proxy, sink, reconnects, peak, enc } = await fakeRun(
    seed,
    faults,
    { onDisconnect: "drop", maxBufferBytes, writeTimeout: 300 },
    { frames: 1000, keyint: 60, packetSize: 16_000, fps: 700, untilRecovered: true },
  );
  assertConnections(proxy, rx, ivfHeader(FAKE_INFO), seed);
  assertFakeDecodable(rx.connections, seed);
  assert.ok(peak <= maxBufferBytes, `queued ${peak} bytes, bound ${maxBufferBytes}`);
  assert.ok(sink.stats.dropped > 0, `${sink.stats.dropped} dropped`);
  assert.ok(sink.stats.keyFramesRequested >= 1 && enc.keyFramesRequested >= 1);
  assert.equal(sink.stats.resent, 0);
  assert.equal(sink.state, "closed");
  // The stream recovered after the faults: connections after the last fault carried frames. (A fault
  // that lasts to the end of the source leaves the last connection with the header alone: drop sends no stale tail.)
  assertRecovered(proxy, rx, seed);
  assertSchedule(reconnects, schedule);
});

test("proxy buffer: what is kept stays within maxBufferBytes; every connection starts at a key frame", async () => {
  const seed = 4, maxBufferBytes = 600_000;
  const faults = randomFaults({ seed, count: 5, maxOffset: 2_000_000, stalls: [2], refusals: { 1: 4 } });
  const { rx, proxy, sink, reconnects, peak } = await fakeRun(
    seed,
    faults,
    { onDisconnect: "buffer", maxBufferBytes },
    { frames: 700, keyint: 10, packetSize: 16_000, fps: 600 },
  );
  assertConnections(proxy, rx, ivfHeader(FAKE_INFO), seed);
  assertFakeDecodable(rx.connections, seed);
  assert.ok(peak <= maxBufferBytes, `kept ${peak} bytes, bound ${maxBufferBytes}`);
  assert.ok(peak > 0);
  assert.ok(sink.stats.resent > 0, "kept packets were resent on a new connection");
  assert.equal(sink.state, "closed");
  assert.equal(parseIvfStream(joined(rx.connections.at(-1)!)).frames.at(-1)?.timestamp, 699);
  assertSchedule(reconnects, schedule);
});

test("proxy: refused connections are retried on the configured schedule (delays from the events, not the clock)", async () => {
  const rx = await TcpReceiver.start();
  // Connection 0 is cut at once and the next 6 attempts are refused.
  const proxy = await FaultProxy.start({ port: rx.port }, [{ kind: "cut", at: 100, refuse: 6 }]);
  try {
    const options = { initialDelay: 10, factor: 3, maxDelay: 200, jitter: 0, maxAttempts: 10 };
    const sink = tcpSink(`tcp://127.0.0.1:${proxy.port}`, { info: FAKE_INFO, ...options });
    const reconnects = record(sink, "reconnect");
    sink.on("reconnect", () => proxy.attempted());
    const encode = createEncodeStream({ encoder: new FakeEncoder({ keyint: 5 }) });
    await fakeFrames(40).pipeThrough(encode).pipeTo(sink);
    assert.deepEqual(
      reconnects.map((e) => [e.attempt, e.delay]),
      [[1, 10], [2, 30], [3, 90], [4, 200], [5, 200], [6, 200]],
    );
    // The first outage is the cut: a reset or an end of file, as the runtime reports it.
    assert.match(String((reconnects[0].cause as { code?: string }).code), /ECONNRESET|EOF|EPIPE/);
    assert.deepEqual(
      reconnects.slice(1).map((e) => (e.cause as { code?: string }).code),
      Array(5).fill("ECONNREFUSED"),
    );
    assert.equal(sink.stats.connections, 2);
    assert.equal(dedupe(rx.connections).size, 40);
  } finally {
    await proxy.close();
    await rx.close();
  }
});

test("proxy: a sink that can never connect fails after maxAttempts with the cause", async () => {
  const rx = await TcpReceiver.start();
  const proxy = await FaultProxy.start({ port: rx.port }, []);
  await proxy.refuse(Infinity);
  try {
    const sink = tcpSink(`tcp://127.0.0.1:${proxy.port}`, {
      info: FAKE_INFO,
      initialDelay: 5,
      factor: 2,
      jitter: 0,
      maxAttempts: 4,
    });
    const reconnects = record(sink, "reconnect");
    const errors = record(sink, "error");
    const src = fakeFrames(1000);
    const err = await src.pipeThrough(createEncodeStream({ encoder: new FakeEncoder() })).pipeTo(sink).then(
      () => null,
      (e) => e,
    );
    assert.ok(err instanceof EncoderError, String(err));
    assert.equal(err.code, "IO_ERROR");
    assert.match(
      err.message,
      new RegExp(`Could not reach tcp://127\\.0\\.0\\.1:${proxy.port} after 4 reconnection attempts`),
    );
    assert.equal((err.cause as { code?: string }).code, "ECONNREFUSED");
    assert.deepEqual(reconnects.map((e) => e.delay), [5, 10, 20, 40]);
    assert.equal(errors.length, 1);
    assert.equal(sink.state, "failed");
    assert.equal(rx.connections.length, 0);
  } finally {
    await proxy.close();
    await rx.close();
  }
});

test("proxy: a peer that accepts and resets every connection at once also fails after maxAttempts", async () => {
  const rx = await TcpReceiver.start();
  const proxy = await FaultProxy.start({ port: rx.port }, () => ({ kind: "cut", at: 1 }));
  try {
    const sink = tcpSink(`tcp://127.0.0.1:${proxy.port}`, {
      info: FAKE_INFO,
      initialDelay: 5,
      factor: 2,
      jitter: 0,
      maxAttempts: 3,
    });
    const reconnects = record(sink, "reconnect");
    const err = await fakeFrames(1000).pipeThrough(createEncodeStream({ encoder: new FakeEncoder() })).pipeTo(
      sink,
    )
      .then(() => null, (e) => e);
    assert.ok(err instanceof EncoderError, String(err));
    assert.match(err.message, /after 3 reconnection attempts/);
    assert.deepEqual(reconnects.map((e) => [e.attempt, e.delay]), [[1, 5], [2, 10], [3, 20]]);
    assert.equal(sink.state, "failed");
    // Each connection got one byte of the header before it was cut.
    assert.ok(rx.connections.every((c) => c.bytes <= 1));
  } finally {
    await proxy.close();
    await rx.close();
  }
});

// ---- SVT-AV1 and dav1d ----

const source = testSource({ width: 160, height: 120, frames: 240 });
const svtConfig = {
  ...source.info,
  preset: 12,
  lowDelay: true,
  keyint: 10,
  threads: 1,
  logLevel: "error",
} as const;

/** Frames dav1d decodes from IVF bytes, and how many the file holds. */
function dav1dCount(bytes: Uint8Array): { decoded: number; total: number } {
  const dir = mkdtempSync(join(tmpdir(), "sink-proxy-"));
  try {
    const file = join(dir, "in.ivf");
    writeFileSync(file, bytes);
    const r = spawnSync("dav1d", ["-i", file, "-o", "/dev/null", "--muxer", "null"], { encoding: "utf8" });
    // dav1d exits 0 even when frames fail: count. It rewrites its progress line; the last count is final.
    const m = [...`${r.stderr}${r.stdout}`.matchAll(/Decoded (\d+)\/(\d+) frames/g)].at(-1);
    assert.ok(m, `dav1d said: ${r.stderr}`);
    return { decoded: Number(m[1]), total: Number(m[2]) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function svtFrames(fps: number): ReadableStream<Frame> {
  const it = paceFrames(source.frames(), fps);
  return new ReadableStream<Frame>({
    async pull(c) {
      const next = await it.next();
      if (next.done) c.close();
      else c.enqueue(next.value);
    },
  }, { highWaterMark: 0 });
}

for (const [policy, seed] of [["drop", 5], ["buffer", 6]] as const) {
  test(
    `svt-av1 through the proxy, ${policy}: every connection's bytes decode with dav1d, memory bounded`,
    needs("dav1d"),
    async () => {
      const rx = await TcpReceiver.start();
      // About 580 kB in all: cuts in the first 150 kB of each connection, a stall, a refusal.
      const faults = randomFaults({ seed, count: 5, maxOffset: 150_000, stalls: [3], refusals: { 1: 3 } });
      const proxy = await FaultProxy.start({ port: rx.port }, faults);
      try {
        const encode = createEncodeStream(svtConfig);
        const maxBufferBytes = policy === "drop" ? 40_000 : 120_000;
        const sink = tcpSink(`tcp://127.0.0.1:${proxy.port}`, {
          info: source.info,
          onDisconnect: policy,
          maxBufferBytes,
          writeTimeout: 500,
          ...schedule,
          onKeyFrameNeeded: () => encode.requestKeyFrame(),
        });
        const reconnects = record(sink, "reconnect");
        sink.on("reconnect", () => proxy.attempted());
        const watch = bufferWatch(sink);
        await svtFrames(300).pipeThrough(encode).pipeThrough(watch.stream).pipeTo(sink);
        await proxy.close();
        await rx.close();

        assertConnections(proxy, rx, ivfHeader(source.info), seed);
        assert.ok(proxy.connections.length >= 3, `${proxy.connections.length} connections`);
        let decodedAll = 0;
        for (const [i, conn] of rx.connections.entries()) {
          const { frames } = parseIvfStream(joined(conn));
          if (!frames.length) continue;
          const { decoded, total } = dav1dCount(joined(conn));
          assert.equal(
            decoded,
            frames.length,
            `connection ${i}: dav1d decoded ${decoded} of ${total} (${frames.length} whole frames)`,
          );
          decodedAll += decoded;
        }
        assert.ok(decodedAll > 0);
        assert.ok(watch.peak() <= maxBufferBytes, `held ${watch.peak()} bytes, bound ${maxBufferBytes}`);
        assert.equal(sink.state, "closed");
        if (policy === "buffer") {
          // What was kept during the last outage went out on the last connection, up to the last frame.
          assert.equal(parseIvfStream(joined(rx.connections.at(-1)!)).frames.at(-1)?.timestamp, 239);
        } else assertRecovered(proxy, rx, seed);
        assertSchedule(reconnects, schedule);
      } finally {
        await proxy.close();
        await rx.close();
      }
    },
  );
}

test(
  "svt-av1 through the proxy, block: deduplicated frames equal the file encode, in order",
  needs("dav1d"),
  async () => {
    const expected: Packet[] = [];
    {
      await using enc = await SvtAv1Encoder.create({ ...svtConfig, maxQueuedPackets: 1000 });
      for await (const f of source.frames()) await enc.encode(f);
      await enc.flush();
      for await (const p of enc.packets()) expected.push(p);
    }
    const seed = 7;
    const rx = await TcpReceiver.start();
    const proxy = await FaultProxy.start(
      { port: rx.port },
      randomFaults({ seed, count: 5, maxOffset: 300_000, refusals: { 2: 3 } }),
    );
    try {
      const sink = tcpSink(`tcp://127.0.0.1:${proxy.port}`, { info: source.info, ...schedule });
      sink.on("reconnect", () => proxy.attempted());
      await svtFrames(1000).pipeThrough(createEncodeStream(svtConfig)).pipeTo(sink);
      await proxy.close();
      await rx.close();
      assertConnections(proxy, rx, ivfHeader(source.info), seed);
      assertInOrderNoneLost(rx.connections, expected.length, seed);
      const got = dedupe(rx.connections);
      assert.deepEqual([...got.keys()].sort((a, b) => a - b), expected.map((p) => p.timestamp));
      for (const p of expected) {
        assert.ok(
          sameBytes(got.get(p.timestamp)!, p.data),
          `frame ${p.timestamp} differs`,
        );
      }
      for (const [i, conn] of rx.connections.entries()) {
        const { frames } = parseIvfStream(joined(conn));
        if (frames.length) assert.equal(dav1dCount(joined(conn)).decoded, frames.length, `connection ${i}`);
      }
    } finally {
      await proxy.close();
      await rx.close();
    }
  },
);
