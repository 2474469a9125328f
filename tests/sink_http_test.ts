// HTTP sink: one streaming chunked POST/PUT per connection to a node:http receiver, reset mid-upload.
import assert from "node:assert/strict";
import { test } from "node:test";
import { EncoderError } from "../lib/errors.ts";
import { createEncodeStream } from "../lib/stream/encode_stream.ts";
import { httpSink } from "../lib/stream/sinks.ts";
import { FAKE_INFO, FakeEncoder, fakeFrameSource, fakePacketInfo } from "./_helpers/stream_fake_encoder.ts";
import { dedupe, HttpReceiver, joined, parseIvfStream, TcpReceiver } from "./_helpers/stream_servers.ts";

test("http sink streams one PUT with the IVF stream and ends when the server answers", async () => {
  const rx = await HttpReceiver.start();
  const sink = httpSink(`http://127.0.0.1:${rx.port}/live.ivf`, { info: FAKE_INFO, method: "PUT" });
  await fakeFrameSource(60).readable.pipeThrough(createEncodeStream({ encoder: new FakeEncoder() })).pipeTo(
    sink,
  );
  await rx.close();
  assert.equal(rx.connections.length, 1);
  assert.equal(rx.connections[0].method, "PUT");
  assert.equal(rx.connections[0].contentType, "video/x-ivf");
  assert.ok(rx.connections[0].ended);
  assert.equal(parseIvfStream(joined(rx.connections[0])).frames.length, 60);
});

test("http sink in block mode resends from a kept key frame after the upload is reset", async () => {
  const rx = await HttpReceiver.start();
  rx.onData = (conn, req, index) => {
    if (index === 0 && conn.bytes > 20_000) req.socket.destroy();
  };
  const sink = httpSink(`http://127.0.0.1:${rx.port}/ingest`, {
    info: FAKE_INFO,
    initialDelay: 10,
    jitter: 0,
  });
  await fakeFrameSource(150).readable.pipeThrough(
    createEncodeStream({ encoder: new FakeEncoder({ keyint: 10, packetSize: 1000 }) }),
  ).pipeTo(sink);
  await rx.close();
  assert.ok(rx.connections.length >= 2);
  assert.equal(dedupe(rx.connections).size, 150);
  for (const conn of rx.connections) {
    const first = parseIvfStream(joined(conn)).frames[0];
    if (first) assert.ok(fakePacketInfo(first.data).keyFrame);
  }
  assert.ok(rx.connections.at(-1)!.ended);
});

test("http sink fails after maxAttempts refused connections, with the cause", async () => {
  const closed = await TcpReceiver.start();
  await closed.kill();
  const sink = httpSink(`http://127.0.0.1:${closed.port}/`, {
    info: FAKE_INFO,
    maxAttempts: 2,
    initialDelay: 5,
  });
  const reconnects: number[] = [];
  sink.on("reconnect", (e) => reconnects.push(e.attempt));
  // The first write may resolve: fetch takes body chunks before it connects.
  const writer = sink.getWriter();
  await writer.write(FakeEncoder.packet(0, -1, 50)).catch(() => {});
  await writer.close().catch(() => {});
  const err = await writer.closed.then(() => null, (e) => e);
  assert.ok(err instanceof EncoderError, String(err));
  assert.match(err.message, /after 2 reconnection attempts/);
  assert.match(String((err.cause as Error).message), /refused|connect|failed/i);
  assert.deepEqual(reconnects, [1, 2]);
});
