// Enhanced RTMP sink against node-media-server (a child `node` process) read back over HTTP-FLV: every
// frame checked against a file encode, each publish decoded by dav1d; the server killed, restarted and
// refused mid-stream for each policy.
import assert from "node:assert/strict";
import * as net from "node:net";
import { test } from "node:test";
import { findSequenceHeader, parseAv1C, stripTemporalDelimiters } from "../lib/av1/mod.ts";
import { SvtAv1Encoder } from "../lib/encoder/svt_av1.ts";
import { EncoderError } from "../lib/errors.ts";
import { testSource } from "../lib/io/testsrc.ts";
import { createEncodeStream } from "../lib/stream/encode_stream.ts";
import type { SinkEvents } from "../lib/stream/packet_sink.ts";
import { createSink } from "../lib/stream/sinks.ts";
import { rtmpTransport } from "../lib/transport/rtmp/rtmp.ts";
import type { Frame, Packet } from "../lib/types.ts";
import { needs } from "./_helpers/encode.ts";
import {
  dav1dPublishFrames,
  type FlvReader,
  NodeMediaServerProcess,
  parseFlvVideoTags,
  type Publish,
  publishes,
  TcpGate,
  TLS_FIXTURE,
  TlsGate,
} from "./_helpers/rtmp_servers.ts";
import { gatedFrames, record } from "./_helpers/sink_harness.ts";
import { sameBytes, until } from "./_helpers/stream_servers.ts";
import { freePort } from "./_helpers/tcp_peer.ts";

const source = testSource({ width: 96, height: 64, frames: 150 });
const config = { ...source.info, preset: 12, lowDelay: true, keyint: 10, crf: 40, threads: 1 };
// Retries every 200 ms at most, for up to ~40 s: a restart of node-media-server took longer than ten
// retries (~1.8 s) at load 43.
const fast = { initialDelay: 20, maxDelay: 200, jitter: 0, maxAttempts: 200 } as const;
const tools = needs("node", "dav1d");

let expectedCache: Packet[] | undefined;
async function fileEncode(): Promise<Packet[]> {
  if (expectedCache) return expectedCache;
  await using enc = await SvtAv1Encoder.create({ ...config, maxQueuedPackets: 1000 });
  for await (const f of source.frames()) await enc.encode(f);
  await enc.flush();
  const out: Packet[] = [];
  for await (const p of enc.packets()) out.push(p);
  return expectedCache = out;
}

/** Frames of the test source, waiting for `gates[n]()` before frame `n`. */
function frames(gates: Record<number, () => Promise<unknown>> = {}): ReadableStream<Frame> {
  return gatedFrames(source.info.frameCount!, (n) => source.frame(n), gates);
}

/**
 * The server, a gate in front of its RTMP port (a TLS front with `secure`: the URL is `rtmps://`), and a
 * player attached to `/live/test`.
 */
async function setup({ secure = false } = {}) {
  const server = await NodeMediaServerProcess.start();
  const gate = secure ? new TlsGate(server.rtmpPort) : new TcpGate(server.rtmpPort);
  await gate.listen();
  const readers: FlvReader[] = [await server.play("live", "test")];
  const url = `${secure ? "rtmps" : "rtmp"}://127.0.0.1:${gate.port}/live/test`;
  let killing: Promise<void> = Promise.resolve();
  return {
    server,
    gate,
    readers,
    url,
    /** Kills the server process and closes the gate: the sink sees a reset, then refusals. */
    kill() {
      return killing = gate.kill().then(() => server.kill());
    },
    /**
     * Kills once the player saw a coded frame of this publish: a kill before the server relayed anything
     * would leave the first publish unseen (seen once in Bun at load 28).
     */
    async killAfterFrames() {
      await readers.at(-1)!.waitFor((r) =>
        (publishes(parseFlvVideoTags(r.data())).at(-1)?.frames.length ?? 0) > 0
      );
      return this.kill();
    },
    /** Restarts the server, attaches a new player, then opens the gate. */
    async restart() {
      await killing;
      await server.restart();
      readers.push(await server.play("live", "test"));
      await gate.listen();
    },
    /** Publishes every player saw, once each saw the end of the last one (or closed). */
    async publishes(): Promise<Publish[]> {
      const last = readers.at(-1)!;
      await last.waitFor((r) => publishes(parseFlvVideoTags(r.data())).at(-1)?.ended === true);
      return readers.flatMap((r) => publishes(parseFlvVideoTags(r.data())));
    },
    async close() {
      for (const r of readers) r.close();
      await gate.close();
      await server.close();
    },
  };
}

/** Every publish starts at a key frame, carries a valid av1C and decodes by itself with dav1d. */
function assertEachPublishDecodable(list: Publish[]) {
  for (const [i, p] of list.entries()) {
    const av1C = parseAv1C(p.av1C);
    assert.ok(findSequenceHeader(av1C.configOBUs), `publish ${i}: av1C has no sequence header`);
    if (!p.frames.length) continue;
    assert.ok(p.frames[0].key, `publish ${i} starts with frame ${p.frames[0].frame}, not a key frame`);
    assert.equal(dav1dPublishFrames(p), p.frames.length, `publish ${i}: dav1d frame count`);
  }
}

function assertSameAsFileEncode(list: Publish[], expected: Packet[]) {
  const got = new Map<number, Uint8Array>();
  for (const p of list) {
    for (const f of p.frames) {
      const seen = got.get(f.frame);
      if (seen) assert.ok(sameBytes(seen, f.obus), `frame ${f.frame} arrived twice with different bytes`);
      got.set(f.frame, f.obus);
    }
  }
  assert.deepEqual([...got.keys()].sort((a, b) => a - b), expected.map((p) => p.timestamp));
  for (const p of expected) {
    assert.ok(
      sameBytes(got.get(p.timestamp)!, stripTemporalDelimiters(p.data)),
      `frame ${p.timestamp} differs`,
    );
  }
}

test(
  "rtmp: node-media-server relays the Enhanced RTMP AV1 stream; every frame equals the file encode",
  tools,
  async () => {
    const expected = await fileEncode();
    const peer = await setup();
    try {
      const encode = createEncodeStream(config);
      const sink = createSink(peer.url, { info: source.info, ...fast });
      await frames().pipeThrough(encode).pipeTo(sink);
      const list = await peer.publishes();
      assert.equal(list.length, 1);
      assert.ok(list[0].ended, "SequenceEnd came through");
      assertSameAsFileEncode(list, expected);
      assertEachPublishDecodable(list);
      assert.deepEqual(peer.server.connects[0]?.fourCcList, ["av01"]);
      assert.equal(peer.server.connects[0]?.app, "live");
      // The av1C carries the encoder's sequence header.
      const sh = findSequenceHeader(expected[0].data)!;
      assert.ok(sameBytes(findSequenceHeader(parseAv1C(list[0].av1C).configOBUs)!, sh));
      assert.equal(sink.stats.connections, 1);
    } finally {
      await peer.close();
    }
  },
);

test(
  "rtmp block: the server killed and restarted mid-stream; deduplicated frames equal the file encode",
  tools,
  async () => {
    const expected = await fileEncode();
    const peer = await setup();
    try {
      const encode = createEncodeStream(config);
      const sink = createSink(peer.url, { info: source.info, ...fast });
      let restarting = false;
      sink.on("reconnect", (e) => {
        if (e.attempt >= 2 && !restarting && !peer.gate.listening) {
          restarting = true;
          void peer.restart();
        }
      });
      const connected = until<SinkEvents["connect"]>((cb) => sink.on("connect", cb), () => true);
      // The kill comes at frame 60, once the first connection carried some frames.
      await frames({ 0: () => connected, 60: () => peer.killAfterFrames() }).pipeThrough(encode).pipeTo(sink);
      const list = await peer.publishes();
      assert.ok(list.length >= 2, `${list.length} publish(es)`);
      assertSameAsFileEncode(list, expected);
      assertEachPublishDecodable(list);
      assert.ok(sink.stats.resent > 0);
      assert.equal(sink.stats.dropped, 0);
    } finally {
      await peer.close();
    }
  },
);

test(
  "rtmp drop: after a restart the new publish starts with SequenceStart and a key frame, and decodes",
  tools,
  async () => {
    const peer = await setup();
    try {
      const encode = createEncodeStream(config);
      const sink = createSink(peer.url, {
        info: source.info,
        onDisconnect: "drop",
        onKeyFrameNeeded: () => encode.requestKeyFrame(),
        ...fast,
      });
      const disconnects = record(sink, "disconnect");
      const connected = until<SinkEvents["connect"]>(
        (cb) => sink.on("connect", cb),
        (e) => e.connection === 1,
      );
      const reconnected = until<SinkEvents["connect"]>(
        (cb) => sink.on("connect", cb),
        (e) => e.connection === 2,
      );
      const disconnected = until<SinkEvents["disconnect"]>((cb) => sink.on("disconnect", cb), () => true);
      await frames({
        0: () => connected,
        40: () => peer.kill().then(() => disconnected),
        80: () => peer.restart().then(() => reconnected),
      }).pipeThrough(encode).pipeTo(sink);
      const list = await peer.publishes();
      assert.equal(list.length, 2);
      assert.ok(disconnects.length >= 1);
      assertEachPublishDecodable(list);
      // SVT-AV1 1.4 ignores forced key frames in low-delay mode: the publish starts at the next scheduled one.
      assert.ok(list[1].frames[0].frame >= 80, `starts at ${list[1].frames[0].frame}`);
      assert.equal(list[1].frames.at(-1)!.frame, 149);
      assert.ok(sink.stats.dropped > 0);
    } finally {
      await peer.close();
    }
  },
);

test(
  "rtmp buffer: the server away for a while; the new publish starts at a kept key frame and decodes",
  tools,
  async () => {
    const peer = await setup();
    try {
      const encode = createEncodeStream(config);
      const sink = createSink(peer.url, {
        info: source.info,
        onDisconnect: "buffer",
        onKeyFrameNeeded: () => encode.requestKeyFrame(),
        ...fast,
      });
      const connected = until<SinkEvents["connect"]>(
        (cb) => sink.on("connect", cb),
        (e) => e.connection === 1,
      );
      const reconnected = until<SinkEvents["connect"]>(
        (cb) => sink.on("connect", cb),
        (e) => e.connection === 2,
      );
      const disconnected = until<SinkEvents["disconnect"]>((cb) => sink.on("disconnect", cb), () => true);
      await frames({
        0: () => connected,
        40: () => peer.kill().then(() => disconnected),
        80: () => peer.restart().then(() => reconnected),
      }).pipeThrough(encode).pipeTo(sink);
      const list = await peer.publishes();
      assert.equal(list.length, 2);
      assertEachPublishDecodable(list);
      assert.equal(list[1].frames.at(-1)!.frame, 149);
    } finally {
      await peer.close();
    }
  },
);

test(
  "rtmp: refused connections are retried on the backoff schedule until the server comes up",
  tools,
  async () => {
    const expected = await fileEncode();
    const peer = await setup();
    try {
      await peer.gate.kill();
      const encode = createEncodeStream(config);
      const sink = createSink(peer.url, {
        info: source.info,
        initialDelay: 20,
        factor: 2,
        maxDelay: 200,
        jitter: 0,
      });
      const reconnects = record(sink, "reconnect");
      sink.on("reconnect", (e) => {
        if (e.attempt >= 3 && !peer.gate.listening) void peer.gate.listen();
      });
      await frames().pipeThrough(encode).pipeTo(sink);
      assert.deepEqual(reconnects.slice(0, 3).map((e) => [e.attempt, e.delay]), [[1, 20], [2, 40], [3, 80]]);
      assert.equal((reconnects[0].cause as { code?: string }).code, "ECONNREFUSED");
      const list = await peer.publishes();
      assert.equal(list.length, 1);
      assertSameAsFileEncode(list, expected);
    } finally {
      await peer.close();
    }
  },
);

test(
  "rtmps: through a TLS front trusting the test certificate; every frame equals the file encode",
  tools,
  async () => {
    const expected = await fileEncode();
    const peer = await setup({ secure: true });
    try {
      const encode = createEncodeStream(config);
      const sink = createSink(peer.url, { info: source.info, tls: { ca: TLS_FIXTURE.cert }, ...fast });
      await frames().pipeThrough(encode).pipeTo(sink);
      const list = await peer.publishes();
      assert.equal(list.length, 1);
      assert.ok(list[0].ended, "SequenceEnd came through");
      assertSameAsFileEncode(list, expected);
      assertEachPublishDecodable(list);
      // tcUrl names the scheme the client used.
      assert.equal(peer.server.connects[0]?.tcUrl, `rtmps://127.0.0.1:${peer.gate.port}/live`);
      assert.equal(sink.stats.connections, 1);
      assert.equal(peer.gate.connections, 1);
    } finally {
      await peer.close();
    }
  },
);

test(
  "rtmps block: the server killed and restarted mid-stream behind TLS; deduplicated frames equal the file encode",
  tools,
  async () => {
    const expected = await fileEncode();
    const peer = await setup({ secure: true });
    try {
      const encode = createEncodeStream(config);
      // The certificate names localhost: servername checks it against that name instead of the IP.
      const sink = createSink(peer.url, {
        info: source.info,
        tls: { ca: new TextEncoder().encode(TLS_FIXTURE.cert), servername: "localhost" },
        ...fast,
      });
      const reconnects = record(sink, "reconnect");
      let restarting = false;
      sink.on("reconnect", (e) => {
        if (e.attempt >= 2 && !restarting && !peer.gate.listening) {
          restarting = true;
          void peer.restart();
        }
      });
      const connected = until<SinkEvents["connect"]>((cb) => sink.on("connect", cb), () => true);
      await frames({ 0: () => connected, 60: () => peer.killAfterFrames() }).pipeThrough(encode).pipeTo(sink);
      const list = await peer.publishes();
      assert.ok(list.length >= 2, `${list.length} publish(es)`);
      assertSameAsFileEncode(list, expected);
      assertEachPublishDecodable(list);
      assert.ok(sink.stats.resent > 0);
      assert.equal(sink.stats.dropped, 0);
      // The outage was retried on the schedule: refused while the front was down.
      assert.ok(reconnects.some((e) => (e.cause as { code?: string }).code === "ECONNREFUSED"));
      assert.equal((peer.gate as TlsGate).handshakeErrors.length, 0);
    } finally {
      await peer.close();
    }
  },
);

test(
  "rtmps: a certificate the client does not trust fails at once, saying to pass ca or rejectUnauthorized: false",
  tools,
  async () => {
    const peer = await setup({ secure: true });
    try {
      const attempt = async (tls: Record<string, unknown> | undefined) => {
        const sink = createSink(peer.url, { info: source.info, ...(tls ? { tls } : {}), ...fast });
        const reconnects = record(sink, "reconnect");
        const err = await frames().pipeThrough(createEncodeStream(config)).pipeTo(sink).then(
          () => undefined,
          (e: EncoderError) => e,
        );
        assert.ok(err instanceof EncoderError, String(err));
        assert.equal(err.code, "IO_ERROR");
        // Final: no reconnection attempts with the same certificate.
        assert.equal(reconnects.length, 0);
        assert.equal(sink.state, "failed");
        return err;
      };
      // The runtime's default roots do not hold a self-signed certificate.
      const untrusted = await attempt(undefined);
      assert.match(untrusted.message, /rtmps:\/\/127\.0\.0\.1:\d+\/live\/test/);
      assert.match(untrusted.message, /does not trust \(DEPTH_ZERO_SELF_SIGNED_CERT/);
      assert.match(untrusted.message, /pass tls: \{ ca \}.*or tls: \{ rejectUnauthorized: false \}/);
      // A name the certificate does not hold.
      const misnamed = await attempt({ ca: TLS_FIXTURE.cert, servername: "stream.example" });
      assert.equal((misnamed.cause as { code?: string }).code, "ERR_TLS_CERT_ALTNAME_INVALID");
      assert.match(misnamed.message, /certificate for another name/);
      assert.match(misnamed.message, /servername/);
      assert.equal(peer.server.connects.length, 0, "nothing reached the server");
      // rejectUnauthorized: false publishes over the same front.
      const sink = createSink(peer.url, { info: source.info, tls: { rejectUnauthorized: false }, ...fast });
      await frames().pipeThrough(createEncodeStream(config)).pipeTo(sink);
      const list = await peer.publishes();
      assert.equal(list.length, 1);
      assertEachPublishDecodable(list);
    } finally {
      await peer.close();
    }
  },
);

test("rtmp and rtmps on each other's port: the error names the other scheme; a refusal stays a refusal", async () => {
  // A TLS front (its upstream never used) and a plain server that drops a first byte other than RTMP's 3.
  const front = new TlsGate(1);
  await front.listen();
  const plain = net.createServer((s) => {
    s.on("error", () => {});
    s.once("data", (d: Uint8Array) => d[0] !== 3 && s.destroy());
  });
  await new Promise<void>((r) => plain.listen(0, "127.0.0.1", () => r()));
  const plainPort = (plain.address() as net.AddressInfo).port;
  const refusedPort = await freePort();
  const open = (url: string) =>
    rtmpTransport(url).connect({ timeout: 20_000, contentType: "" }).then(
      (link) => (link.destroy(new Error("unexpected")), undefined),
      (e: Error & { code?: string }) => e,
    );
  try {
    const toTls = await open(`rtmp://127.0.0.1:${front.port}/live/k`);
    assert.match(
      toTls!.message,
      /closed the connection during handshake.*if it serves rtmps:\/\/, use rtmps:\/\//,
    );
    const toPlain = await open(`rtmps://127.0.0.1:${plainPort}/live/k`);
    assert.match(
      toPlain!.message,
      /TLS handshake with 127\.0\.0\.1:\d+ failed.*if that port serves plain RTMP, use rtmp:\/\//,
    );
    const refused = await open(`rtmps://127.0.0.1:${refusedPort}/live/k`);
    assert.equal(refused!.code, "ECONNREFUSED");
    assert.doesNotMatch(refused!.message, /TLS handshake/);
  } finally {
    await front.close();
    await new Promise<void>((r) => plain.close(() => r()));
  }
});
