// SRT sink through libsrt: srt-live-transmit as the listener, killed, restarted and refusing mid-stream.
import assert from "node:assert/strict";
import { test } from "node:test";
import { locateSrt, SRT_SONAMES } from "../ffi/load.ts";
import { EncoderError } from "../lib/errors.ts";
import { createEncodeStream } from "../lib/stream/encode_stream.ts";
import type { SinkEvents } from "../lib/stream/packet_sink.ts";
import { parseSrtUrl, sockaddr, srtSink, validateSrtOptions } from "../lib/transport/srt/srt.ts";
import type { Frame, Packet } from "../lib/types.ts";
import { needs } from "./_helpers/encode.ts";
import { gatedFrames, record } from "./_helpers/sink_harness.ts";
import { freeUdpPort, splitIvfStreams, SrtReceiver } from "./_helpers/srt_receiver.ts";
import { FAKE_INFO, FakeEncoder, fakeFrame, fakePacketInfo } from "./_helpers/stream_fake_encoder.ts";
import {
  dedupe,
  joined,
  parseIvfStream,
  type Received,
  sameBytes,
  until,
} from "./_helpers/stream_servers.ts";

/** srt-live-transmit is the listener; a SIGKILLed one is noticed only after about 5 s (16 unanswered EXP timers). */
const slow = { ...needs("srt-live-transmit"), timeout: 60_000 };

const fast = {
  initialDelay: 20,
  maxDelay: 200,
  jitter: 0,
  connectTimeout: 500,
  peerIdleTimeout: 1000,
} as const;

async function fileEncode(count: number, options: ConstructorParameters<typeof FakeEncoder>[0]) {
  const enc = new FakeEncoder({ ...options, maxQueuedPackets: count + 1 });
  for (let i = 0; i < count; i++) await enc.encode(fakeFrame(i));
  await enc.flush();
  const out: Packet[] = [];
  for await (const p of enc.packets()) out.push(p);
  return out;
}

/** Every connection's stream over all runs of the receiver. */
function connections(rx: SrtReceiver): Received[] {
  return rx.runs.flatMap((run) =>
    splitIvfStreams(joined(run)).map((bytes) => ({ chunks: [bytes], bytes: bytes.length, ended: run.ended }))
  );
}

/** Each connection is IVF, starts with a key frame, and references only frames it carried. */
function assertEachConnectionDecodable(conns: Received[]) {
  for (const [i, conn] of conns.entries()) {
    const { valid, frames } = parseIvfStream(joined(conn));
    assert.ok(valid, `connection ${i} is not IVF`);
    if (!frames.length) continue;
    assert.ok(
      fakePacketInfo(frames[0].data).keyFrame,
      `connection ${i} starts with frame ${frames[0].timestamp}`,
    );
    for (let k = 1; k < frames.length; k++) {
      const info = fakePacketInfo(frames[k].data);
      if (!info.keyFrame) {
        assert.equal(
          info.ref,
          frames[k - 1].timestamp,
          `connection ${i}: frame ${info.timestamp} lacks its reference`,
        );
      }
    }
  }
}

function gatedSource(count: number, gates: Record<number, () => Promise<unknown>>): ReadableStream<Frame> {
  return gatedFrames(count, fakeFrame, gates);
}

/** `count` fake frames, one every `ms`. */
function pacedSource(count: number, ms: number): ReadableStream<Frame> {
  return gatedFrames(count, fakeFrame, {}, ms);
}

async function assertBlockDeliveredEverything(rx: SrtReceiver, count: number, packetSize: number) {
  const got = dedupe(connections(rx));
  const expected = await fileEncode(count, { keyint: 10, packetSize });
  assert.equal(got.size, expected.length, `${got.size} of ${expected.length} frames arrived`);
  for (const p of expected) {
    assert.ok(sameBytes(got.get(p.timestamp)!, p.data), `frame ${p.timestamp} differs`);
  }
  assertEachConnectionDecodable(connections(rx));
}

test(
  "srt block: a listener killed (SIGKILL) and restarted mid-stream receives every frame of the file encode",
  slow,
  async () => {
    const rx = await SrtReceiver.start();
    let killed = false;
    rx.onData = (run, index) => {
      if (index === 0 && run.bytes > 40_000 && !killed) {
        killed = true;
        void rx.kill("SIGKILL");
      }
    };
    const encode = createEncodeStream({ encoder: new FakeEncoder({ keyint: 10, packetSize: 1000 }) });
    const sink = srtSink(rx.url, { info: FAKE_INFO, ...fast });
    sink.on("reconnect", (e) => {
      if (e.attempt >= 2 && !rx.listening) void rx.listen();
    });
    const disconnects = record(sink, "disconnect");
    // Paced, so that the sink is still sending when the listener dies: SRT acknowledges what reached the
    // listener's socket, and a listener killed after the last acknowledgement loses its buffered tail.
    await pacedSource(300, 4).pipeThrough(encode).pipeTo(sink);
    await rx.close();
    assert.ok(killed);
    assert.ok(rx.runs.length >= 2, `${rx.runs.length} run(s) of the listener`);
    assert.ok(disconnects.length >= 1);
    assert.ok(sink.stats.connections >= 2);
    assert.ok(sink.stats.resent > 0);
    assert.equal(sink.stats.dropped, 0);
    await assertBlockDeliveredEverything(rx, 300, 1000);
  },
);

test("srt block: a listener that says goodbye (SIGTERM) mid-stream loses nothing either", slow, async () => {
  const rx = await SrtReceiver.start();
  let killed = false;
  rx.onData = (run, index) => {
    if (index === 0 && run.bytes > 30_000 && !killed) {
      killed = true;
      void rx.kill("SIGTERM").then(() => rx.listen());
    }
  };
  const encode = createEncodeStream({ encoder: new FakeEncoder({ keyint: 10, packetSize: 1500 }) });
  const sink = srtSink(rx.url, { info: FAKE_INFO, ...fast });
  await pacedSource(200, 4).pipeThrough(encode).pipeTo(sink);
  await rx.close();
  assert.ok(killed);
  assert.ok(sink.stats.connections >= 2);
  await assertBlockDeliveredEverything(rx, 200, 1500);
});

test(
  "srt drop: every connection starts with a key frame and nothing references a dropped frame",
  slow,
  async () => {
    const rx = await SrtReceiver.start();
    const enc = new FakeEncoder({ keyint: 60, packetSize: 1000 });
    const encode = createEncodeStream({ encoder: enc });
    const sink = srtSink(rx.url, {
      info: FAKE_INFO,
      onDisconnect: "drop",
      onKeyFrameNeeded: () => encode.requestKeyFrame(),
      ...fast,
    });
    const connected = until<SinkEvents["connect"]>((cb) => sink.on("connect", cb), (e) => e.connection === 1);
    const disconnected = until<SinkEvents["disconnect"]>((cb) => sink.on("disconnect", cb), () => true);
    const reconnected = until<SinkEvents["connect"]>(
      (cb) => sink.on("connect", cb),
      (e) => e.connection === 2,
    );
    // The listener goes away before frame 70 and is back before frame 150.
    const source = gatedSource(300, {
      0: () => connected,
      70: async () => {
        await new Promise((r) => setTimeout(r, 300)); // let the listener write out what it has
        await rx.kill("SIGTERM");
        await disconnected;
      },
      150: () => (rx.listen(), reconnected),
    });
    await source.pipeThrough(encode).pipeTo(sink);
    await rx.close();
    const conns = connections(rx);
    assert.equal(conns.length, 2);
    assertEachConnectionDecodable(conns);
    const first = parseIvfStream(joined(conns[0])).frames;
    const second = parseIvfStream(joined(conns[1])).frames;
    assert.equal(first[0].timestamp, 0);
    // The key frame was asked for on reconnect: the next scheduled one would be frame 180.
    assert.equal(second[0].timestamp, 150);
    assert.equal(second.at(-1)!.timestamp, 299);
    assert.ok(enc.keyFramesRequested >= 1);
    assert.ok(sink.stats.dropped >= 80, `${sink.stats.dropped} dropped`);
  },
);

test(
  "srt buffer: an outage shorter than the bound loses nothing and the new connection starts at a key frame",
  slow,
  async () => {
    const rx = await SrtReceiver.start();
    const encode = createEncodeStream({ encoder: new FakeEncoder({ keyint: 10, packetSize: 800 }) });
    const sink = srtSink(rx.url, { info: FAKE_INFO, onDisconnect: "buffer", ...fast });
    const connected = until<SinkEvents["connect"]>((cb) => sink.on("connect", cb), (e) => e.connection === 1);
    const disconnected = until<SinkEvents["disconnect"]>((cb) => sink.on("disconnect", cb), () => true);
    const reconnected = until<SinkEvents["connect"]>(
      (cb) => sink.on("connect", cb),
      (e) => e.connection === 2,
    );
    const source = gatedSource(150, {
      0: () => connected,
      50: async () => {
        await new Promise((r) => setTimeout(r, 300));
        await rx.kill("SIGTERM");
        await disconnected;
      },
      100: () => (rx.listen(), reconnected),
    });
    await source.pipeThrough(encode).pipeTo(sink);
    await rx.close();
    const conns = connections(rx);
    assert.equal(conns.length, 2);
    assertEachConnectionDecodable(conns);
    assert.equal(dedupe(conns).size, 150);
    assert.equal(sink.stats.dropped, 0);
  },
);

test("srt: connections refused for a while are retried until the listener comes up", slow, async () => {
  const port = await freeUdpPort();
  const sink = srtSink(`srt://127.0.0.1:${port}`, { info: FAKE_INFO, ...fast });
  const reconnects = record(sink, "reconnect");
  const started = until<SinkEvents["reconnect"]>((cb) => sink.on("reconnect", cb), (e) => e.attempt === 2);
  const writer = sink.getWriter();
  const writing = (async () => {
    for (let i = 0; i < 30; i++) await writer.write(FakeEncoder.packet(i, i % 10 === 0 ? -1 : i - 1, 500));
    await writer.close();
  })();
  await started;
  const rx = await SrtReceiver.start({ port });
  await writing;
  await rx.close();
  assert.ok(reconnects.length >= 2);
  assert.equal(reconnects[0].cause.message.includes("SRT connect"), true, reconnects[0].cause.message);
  assert.equal(sink.stats.connections, 1);
  assert.equal(dedupe(connections(rx)).size, 30);
});

test("srt: after maxAttempts without a listener the sink errors with the cause", slow, async () => {
  const port = await freeUdpPort();
  const sink = srtSink(`srt://127.0.0.1:${port}`, { info: FAKE_INFO, ...fast, maxAttempts: 1 });
  const writer = sink.getWriter();
  await assert.rejects(writer.write(FakeEncoder.packet(0, -1, 100)), (e: EncoderError) => {
    assert.equal(e.code, "IO_ERROR");
    assert.match(e.message, /after 1 reconnection attempts/);
    assert.match(e.message, /SRT connect to srt:\/\/127\.0\.0\.1:\d+ failed/);
    return true;
  });
});

test("srt: a passphrase encrypts the stream; a wrong one is refused with a hint", slow, async () => {
  // No spaces: srt-live-transmit reads its URL's query without decoding `+`.
  const passphrase = "correct-horse-battery";
  const rx = await SrtReceiver.start({ passphrase });
  const ok = srtSink(`${rx.url}?passphrase=${encodeURIComponent(passphrase)}&latency=80`, {
    info: FAKE_INFO,
    ...fast,
  });
  const w = ok.getWriter();
  for (let i = 0; i < 20; i++) await w.write(FakeEncoder.packet(i, i === 0 ? -1 : i - 1, 700));
  await w.close();
  // The sink's close is the sender's end; srt-live-transmit writes what it got a little later (seconds on a
  // loaded machine): wait for it, bounded, before the wrong passphrase's attempt.
  for (const until = Date.now() + 15_000; dedupe(connections(rx)).size < 20 && Date.now() < until;) {
    await new Promise((r) => setTimeout(r, 50));
  }
  const bad = srtSink(rx.url, { info: FAKE_INFO, ...fast, passphrase: "not the right one", maxAttempts: 0 });
  const bw = bad.getWriter();
  await assert.rejects(bw.write(FakeEncoder.packet(0, -1, 100)), (e: EncoderError) => {
    assert.match(e.message, /passphrase/);
    return true;
  });
  await rx.close();
  assert.equal(dedupe(connections(rx)).size, 20);
});

test("srt: options are checked before libsrt sees them", () => {
  assert.throws(() => validateSrtOptions({ passphrase: "short" }), /10 to 79 characters, got 5/);
  assert.throws(() => validateSrtOptions({ passphrase: "x".repeat(80) }), /got 80/);
  assert.throws(() => validateSrtOptions({ latency: -1 }), /latency/);
  assert.throws(() => validateSrtOptions({ pbkeylen: 20 as 16 }), /pbkeylen/);
  assert.throws(() => parseSrtUrl("srt://host"), /srt:\/\/host:port/);
  assert.throws(() => parseSrtUrl("srt://host:9000?mode=listener"), /caller/);
  assert.throws(() => parseSrtUrl("srt://host:9000?foo=1"), /Unknown SRT URL parameter "foo"/);
  assert.throws(() => srtSink("srt://h:1?passphrase=tooshort", { info: FAKE_INFO }), EncoderError);
  assert.deepEqual(parseSrtUrl("srt://[::1]:9000?latency=200&streamid=live/a"), {
    host: "::1",
    port: 9000,
    options: { latency: 200, streamId: "live/a" },
  });
  assert.deepEqual([...sockaddr("127.0.0.1", 0x1234)], [
    2,
    0,
    0x12,
    0x34,
    127,
    0,
    0,
    1,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
  ]);
  const v6 = sockaddr("::1", 80);
  assert.equal(v6.length, 28);
  assert.equal(v6[0], 10);
  assert.equal(v6[23], 1);
});

test("srt: a missing libsrt fails at once with the paths tried and how to install it", async () => {
  await assert.rejects(locateSrt({ libraryPath: "/nonexistent/libsrt.so" }), (e: EncoderError) => {
    assert.equal(e.code, "LIBRARY_NOT_FOUND");
    assert.equal(e.library, "srt");
    assert.match(e.message, /\/nonexistent\/libsrt\.so/);
    assert.match(e.message, /apt-get install libsrt1\.5-gnutls/);
    return true;
  });
  const sink = srtSink("srt://127.0.0.1:9", { info: FAKE_INFO, libraryPath: "/nonexistent/libsrt.so" });
  await assert.rejects(sink.getWriter().write(FakeEncoder.packet(0, -1, 100)), (e: EncoderError) => {
    assert.equal(e.code, "IO_ERROR");
    assert.equal(sink.stats.reconnects, 0);
    assert.equal((e.cause as EncoderError).code, "LIBRARY_NOT_FOUND");
    return true;
  });
  const found = await locateSrt();
  assert.ok(SRT_SONAMES.some((s) => found.path.endsWith(s)), found.path);
  assert.ok(found.version.major === 1 && found.version.minor >= 4);
});

test("srt: transportStats reports the link's RTT and send rate while connected", slow, async () => {
  const rx = await SrtReceiver.start();
  const sink = srtSink(rx.url, { info: FAKE_INFO, ...fast });
  assert.deepEqual(sink.transportStats(), {});
  const w = sink.getWriter();
  for (let i = 0; i < 40; i++) {
    await w.write(FakeEncoder.packet(i, i % 10 === 0 ? -1 : i - 1, 2000));
    await new Promise((r) => setTimeout(r, 15));
  }
  const stats = sink.transportStats();
  await w.close();
  await rx.close();
  assert.equal(typeof stats.rttMs, "number");
  assert.ok(stats.rttMs! >= 0);
  assert.ok(stats.bytesSent! > 40_000, `${stats.bytesSent} bytes sent`);
  assert.ok(stats.sendBitrateKbps! > 0, `${stats.sendBitrateKbps} kbps`);
});
