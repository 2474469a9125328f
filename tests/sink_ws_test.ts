// WebSocket sink against a receiver on Deno.serve / Bun.serve: delivery, reconnection after the server drops the socket.
import assert from "node:assert/strict";
import { test } from "node:test";
import { EncoderError } from "../lib/errors.ts";
import { createEncodeStream } from "../lib/stream/encode_stream.ts";
import { webSocketSink } from "../lib/stream/sinks.ts";
import { FAKE_INFO, FakeEncoder, fakeFrameSource, fakePacketInfo } from "./_helpers/stream_fake_encoder.ts";
import { dedupe, joined, parseIvfStream, TcpReceiver, WebSocketReceiver } from "./_helpers/stream_servers.ts";

test("websocket sink delivers header and packets as binary messages and ends with a clean close", async () => {
  const rx = await WebSocketReceiver.start();
  const sink = webSocketSink(`ws://127.0.0.1:${rx.port}/ingest`, { info: FAKE_INFO });
  await fakeFrameSource(40).readable.pipeThrough(createEncodeStream({ encoder: new FakeEncoder() })).pipeTo(
    sink,
  );
  await rx.close();
  assert.equal(rx.connections.length, 1);
  assert.equal(rx.connections[0].chunks.length, 41, "one message for the header, one per packet");
  assert.equal(rx.connections[0].chunks[0].length, 32);
  assert.equal(parseIvfStream(joined(rx.connections[0])).frames.length, 40);
  assert.equal(sink.state, "closed");
});

test("websocket sink in block mode reconnects after the server drops the socket and loses nothing", async () => {
  const rx = await WebSocketReceiver.start();
  rx.onData = (conn, index) => index === 0 && conn.chunks.length === 30;
  const sink = webSocketSink(`ws://127.0.0.1:${rx.port}/ingest`, {
    info: FAKE_INFO,
    initialDelay: 10,
    jitter: 0,
  });
  const disconnects: string[] = [];
  sink.on("disconnect", (e) => disconnects.push(e.cause.message));
  await fakeFrameSource(100).readable.pipeThrough(
    createEncodeStream({ encoder: new FakeEncoder({ keyint: 10 }) }),
  )
    .pipeTo(sink);
  await rx.close();
  assert.ok(rx.connections.length >= 2, `${rx.connections.length} connections`);
  // Deno reports 1005 when the server's close crosses ours, Bun the server's 4000.
  assert.match(disconnects[0], /code (4000|1005)/);
  const frames = dedupe(rx.connections);
  assert.equal(frames.size, 100);
  for (const conn of rx.connections) {
    const first = parseIvfStream(joined(conn)).frames[0];
    if (first) assert.ok(fakePacketInfo(first.data).keyFrame);
  }
});

test("websocket sink fails after maxAttempts when nothing accepts the upgrade", async () => {
  const closed = await TcpReceiver.start();
  await closed.kill();
  const sink = webSocketSink(`ws://127.0.0.1:${closed.port}/`, {
    info: FAKE_INFO,
    maxAttempts: 2,
    initialDelay: 5,
  });
  const err = await sink.getWriter().write(FakeEncoder.packet(0, -1, 50)).then(() => null, (e) => e);
  assert.ok(err instanceof EncoderError);
  assert.match(err.message, /after 2 reconnection attempts/);
  assert.ok(err.cause instanceof Error);
});
