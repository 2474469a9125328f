// WHIP sink: a werift WHIP endpoint on loopback receives AV1 over RTP; frames reassembled per the AV1 RTP
// payload format and decoded by dav1d; PLI/FIR give key frames; REMB reaches onBitrate; a receiver that
// goes away is replaced by a new session that decodes from its first frame.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { SvtAv1Encoder } from "../lib/encoder/svt_av1.ts";
import { EncoderError } from "../lib/errors.ts";
import { testSource } from "../lib/io/testsrc.ts";
import { createEncodeStream } from "../lib/stream/encode_stream.ts";
import type { SinkEvents } from "../lib/stream/packet_sink.ts";
import { createSink } from "../lib/stream/sinks.ts";
import { SrtSink } from "../lib/transport/srt/srt.ts";
import { playoutDelayPayload, type WhipBitrateEvent, WhipSink, whipSink } from "../lib/transport/whip.ts";
import type { Frame, Packet } from "../lib/types.ts";
import { dav1dFrameCount, needs } from "./_helpers/encode.ts";
import { gatedFrames } from "./_helpers/sink_harness.ts";
import { until } from "./_helpers/stream_servers.ts";
import { sdpCandidates } from "./_helpers/udp_relay.ts";
import {
  PLAYOUT_DELAY_URI,
  SINK_LOOPBACK,
  toSection5,
  WhipEndpoint,
  type WhipFrame,
} from "./_helpers/whip_endpoint.ts";

const source = testSource({ width: 96, height: 64, frames: 60 });
const svt = { ...source.info, preset: 12, lowDelay: true, keyint: 30, crf: 40, threads: 1 };
const fast = { initialDelay: 20, maxDelay: 200, jitter: 0, connectTimeout: 5000, ...SINK_LOOPBACK } as const;
const opts = { ...needs("dav1d"), timeout: 60_000 };

/** Frames of the test source, one every `ms`, waiting for `gates[n]()` before frame `n`. */
function frames(
  count: number,
  ms: number,
  gates: Record<number, () => Promise<unknown>> = {},
): ReadableStream<Frame> {
  // The source repeats after its 60 frames; timestamps go on.
  return gatedFrames(
    count,
    (n) => ({ ...source.frame(n % source.info.frameCount!), timestamp: n }),
    gates,
    ms,
  );
}

function decode(list: WhipFrame[]): number {
  const dir = mkdtempSync(join(tmpdir(), "whip-"));
  try {
    const file = join(dir, "s.obu");
    writeFileSync(file, toSection5(list));
    return dav1dFrameCount(file, "section5");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function fileEncode(): Promise<Packet[]> {
  await using enc = await SvtAv1Encoder.create({ ...svt, maxQueuedPackets: 1000 });
  for await (const f of source.frames()) await enc.encode(f);
  await enc.flush();
  const out: Packet[] = [];
  for await (const p of enc.packets()) out.push(p);
  return out;
}

test(
  "whip: every frame arrives over RTP, reassembles to the encoder's OBUs and decodes with dav1d; DELETE on close",
  opts,
  async () => {
    const expected = await fileEncode();
    const ep = await WhipEndpoint.start();
    const encode = createEncodeStream(svt);
    const sink = whipSink(ep.url, { info: source.info, token: "s3cret", ...fast });
    const connected = until<SinkEvents["connect"]>((cb) => sink.on("connect", cb), () => true);
    await frames(60, 5, { 0: () => connected }).pipeThrough(encode).pipeTo(sink);
    const stats = sink.transportStats();
    await ep.close();
    assert.equal(ep.sessions.length, 1);
    assert.ok(ep.sessions[0].deleted, "the resource was DELETEd");
    assert.deepEqual(ep.authorizations, ["Bearer s3cret"]);
    const { frames: got, incomplete } = ep.sessions[0].frames();
    assert.deepEqual(incomplete, []);
    assert.equal(got.length, 60);
    assert.equal(decode(got), 60);
    // 90 kHz timestamps: 3000 per frame at 30 fps.
    for (let i = 1; i < got.length; i++) {
      assert.equal(
        (got[i].rtpTimestamp - got[i - 1].rtpTimestamp) >>> 0,
        3000,
      );
    }
    // The temporal delimiter is not sent (AV1 RTP §5); the rest is the encoder's bytes.
    for (const [i, p] of expected.entries()) {
      const body = p.data[0] === 0x12 && p.data[1] === 0 ? p.data.subarray(2) : p.data;
      assert.deepEqual(got[i].obus, body, `frame ${i}`);
    }
    assert.deepEqual(got.map((f) => f.keyFrame), expected.map((p) => p.keyFrame));
    assert.ok(stats.rtpPackets >= 60 && stats.bytesSent > 0);
    // Loopback only: the offer's and the answer's candidates are all 127.0.0.1.
    const pc = ep.sessions[0].pc;
    for (const sdp of [pc.remoteDescription!.sdp, pc.localDescription!.sdp]) {
      const cands = sdpCandidates(sdp);
      assert.ok(cands.length > 0);
      assert.deepEqual([...new Set(cands.map((c) => c.address))], ["127.0.0.1"], sdp);
    }
  },
);

test("whip: a PLI or FIR from the receiver yields a key frame", opts, async () => {
  const ep = await WhipEndpoint.start();
  // rav1e forces key frames mid-stream with low latency (SVT-AV1 1.4.1 does not in low-delay mode).
  const encode = createEncodeStream({
    codec: "rav1e",
    ...source.info,
    speed: 10,
    lowLatency: true,
    rdoLookahead: 1,
    keyint: 1000,
    quantizer: 120,
    threads: 1,
  });
  const sink = whipSink(ep.url, {
    info: source.info,
    onKeyFrameNeeded: () => encode.requestKeyFrame(),
    ...fast,
  });
  const connected = until<SinkEvents["connect"]>((cb) => sink.on("connect", cb), () => true);
  await frames(70, 15, {
    0: () => connected,
    20: () => ep.sessions[0].sendPli(),
    45: () => ep.sessions[0].sendFir(),
  }).pipeThrough(encode).pipeTo(sink);
  const stats = sink.transportStats();
  await ep.close();
  const { frames: got, incomplete } = ep.sessions[0].frames();
  assert.deepEqual(incomplete, []);
  const keys = got.flatMap((f, i) => (f.keyFrame ? [i] : []));
  assert.equal(stats.pli, 1);
  assert.equal(stats.fir, 1);
  assert.equal(keys[0], 0);
  assert.ok(keys.some((i) => i >= 20 && i < 45), `key frames at ${keys}`);
  assert.ok(keys.some((i) => i >= 45), `key frames at ${keys}`);
  assert.equal(decode(got), got.length);
});

test("whip: playoutDelay as the playout-delay extension's 12-bit fields in 10 ms units; bad bounds refused", () => {
  assert.deepEqual([...playoutDelayPayload({ min: 0, max: 0 })], [0, 0, 0]);
  // 100 ms = 10 units = 0x00a, 1000 ms = 100 units = 0x064.
  assert.deepEqual([...playoutDelayPayload({ min: 100, max: 1000 })], [0x00, 0xa0, 0x64]);
  assert.deepEqual([...playoutDelayPayload({ min: 40950, max: 40950 })], [0xff, 0xff, 0xff]);
  for (
    const bad of [{ min: -1, max: 0 }, { min: 0, max: 40960 }, { min: 50, max: 20 }, { min: NaN, max: 0 }]
  ) {
    assert.throws(
      () => playoutDelayPayload(bad),
      (e) => e instanceof EncoderError && e.code === "INVALID_CONFIG" && /playoutDelay/.test(e.message),
    );
    assert.throws(() => whipSink("whip+http://127.0.0.1:9/whip", { playoutDelay: bad }), EncoderError);
  }
});

const extmapId = (sdp: string) =>
  Number(
    sdp.split(/\r?\n/).find((l) => l.startsWith("a=extmap:") && l.endsWith(` ${PLAYOUT_DELAY_URI}`))
      ?.slice(9).split(/[ /]/)[0],
  );

for (const accept of [true, false]) {
  test(
    `whip: playoutDelay is offered; ${
      accept ? "accepted, it rides on every RTP packet" : "declined by the answer, no packet carries it"
    }`,
    opts,
    async () => {
      const ep = await WhipEndpoint.start({ playoutDelay: accept });
      const encode = createEncodeStream(svt);
      const sink = whipSink(ep.url, { info: source.info, playoutDelay: { min: 0, max: 100 }, ...fast });
      const connected = until<SinkEvents["connect"]>((cb) => sink.on("connect", cb), () => true);
      await frames(20, 5, { 0: () => connected }).pipeThrough(encode).pipeTo(sink);
      await ep.close();
      const [session] = ep.sessions;
      assert.ok(extmapId(session.offer) > 0, "the offer has the extension");
      const id = extmapId(session.answer);
      assert.equal(id > 0, accept, `the answer ${accept ? "accepts" : "declines"} it`);
      assert.equal(session.frames().frames.length, 20);
      const carried = session.packets.map((p) => p.header.extensions.find((e) => e.id === id));
      if (accept) {
        for (const e of carried) {
          assert.ok(e, "the packet carries the extension");
          assert.deepEqual([...e.payload], [0, 0, 10], "min 0, max 10 units");
        }
      } else {
        // Nothing but werift's own extensions: none has the 3-byte playout-delay payload.
        for (const p of session.packets) {
          assert.ok(p.header.extensions.every((e) => e.payload.length !== 3), "no playout-delay payload");
        }
      }
    },
  );
}

test("whip: REMB from the receiver reaches onBitrate", opts, async () => {
  const ep = await WhipEndpoint.start();
  const events: WhipBitrateEvent[] = [];
  const encode = createEncodeStream(svt);
  const sink = whipSink(ep.url, { info: source.info, onBitrate: (e) => events.push(e), ...fast });
  const connected = until<SinkEvents["connect"]>((cb) => sink.on("connect", cb), () => true);
  await frames(30, 10, {
    0: () => connected,
    10: () => ep.sessions[0].sendRemb(800_000),
    20: () => ep.sessions[0].sendRemb(300_000),
  }).pipeThrough(encode).pipeTo(sink);
  await ep.close();
  assert.deepEqual(events.map((e) => [Math.round(e.kbps / 10) * 10, e.source]), [[800, "remb"], [
    300,
    "remb",
  ]]);
  assert.equal(Math.round(sink.transportStats().availableBitrateKbps! / 10) * 10, 300);
});

test(
  "whip drop: a receiver that goes away is noticed by RTCP silence; the new session starts at a key frame and decodes",
  opts,
  async () => {
    const ep = await WhipEndpoint.start();
    const encode = createEncodeStream(svt);
    const sink = whipSink(ep.url, {
      info: source.info,
      onKeyFrameNeeded: () => encode.requestKeyFrame(),
      peerTimeout: 2500,
      ...fast,
    });
    const connected = until<SinkEvents["connect"]>((cb) => sink.on("connect", cb), (e) => e.connection === 1);
    const disconnected = until<SinkEvents["disconnect"]>((cb) => sink.on("disconnect", cb), () => true);
    await frames(150, 20, {
      0: () => connected,
      40: () => ep.drop(ep.sessions[0]),
      70: () => disconnected,
    }).pipeThrough(encode).pipeTo(sink);
    await ep.close();
    assert.ok(ep.sessions.length >= 2, `${ep.sessions.length} sessions`);
    assert.match((await disconnected).cause.message, /no RTCP for 2500 ms/);
    for (const [i, s] of ep.sessions.entries()) {
      const { frames: got, incomplete } = s.frames();
      assert.deepEqual(incomplete, [], `session ${i}`);
      if (!got.length) continue;
      assert.ok(got[0].keyFrame, `session ${i} starts with a key frame`);
      assert.equal(decode(got), got.length, `session ${i}`);
    }
    const counts = ep.sessions.map((s) => s.frames().frames.length);
    assert.ok(counts.at(-1)! > 0, `frames per session: ${counts}`);
  },
);

test("whip: refused POSTs are retried until the endpoint answers 201", opts, async () => {
  const ep = await WhipEndpoint.start();
  ep.refuseWith = 503;
  const encode = createEncodeStream(svt);
  const sink = whipSink(ep.url, { info: source.info, ...fast });
  const reconnects: SinkEvents["reconnect"][] = [];
  sink.on("reconnect", (e) => {
    reconnects.push(e);
    if (e.attempt >= 2) ep.refuseWith = undefined;
  });
  const connected = until<SinkEvents["connect"]>((cb) => sink.on("connect", cb), () => true);
  await frames(30, 5, { 0: () => connected }).pipeThrough(encode).pipeTo(sink);
  await ep.close();
  assert.ok(reconnects.length >= 2);
  assert.match(reconnects[0].cause.message, /answered 503/);
  assert.equal(ep.sessions.length, 1);
  assert.equal(ep.sessions[0].frames().frames.length, 30);
});

test("whip: URLs are checked; createSink routes whip+http(s):// and srt:// to sinks with transportStats()", async () => {
  assert.throws(() => whipSink("rtmp://x/app"), /whip\+http/);
  assert.throws(() => whipSink("whip+ftp://x/"), /whip\+http/);
  assert.throws(
    () => whipSink("whip+http://127.0.0.1:9/", { iceHostAddresses: ["localhost"] }),
    /IP addresses/,
  );
  assert.throws(
    () => whipSink("whip+http://127.0.0.1:9/", { iceHostAddresses: ["127.0.0.1", "192.0.2.1"] }),
    /at most one IPv4 and one IPv6/,
  );
  const whip = createSink("whip+http://127.0.0.1:9/whip", { maxAttempts: 0, connectTimeout: 500 });
  assert.ok(whip instanceof WhipSink);
  assert.equal(whip.transportStats().rtpPackets, 0);
  await whip.close().catch(() => {});
  const srt = createSink("srt://127.0.0.1:9?latency=50", {
    info: source.info,
    maxAttempts: 0,
    connectTimeout: 200,
  });
  assert.ok(srt instanceof SrtSink);
  assert.deepEqual(srt.transportStats(), {});
  await srt.close().catch(() => {});
});
