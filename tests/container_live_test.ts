import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import { isKeyFramePacket, stripTemporalDelimiters } from "../lib/av1/mod.ts";
import { fmp4StreamFormat, webmStreamFormat } from "../lib/container/live.ts";
import { EncoderError } from "../lib/errors.ts";
import { readIvf } from "../lib/io/ivf.ts";
import type { StreamFormat } from "../lib/stream/format.ts";
import { PacketSink } from "../lib/stream/packet_sink.ts";
import { tcpSink } from "../lib/stream/sinks.ts";
import { writableTransport } from "../lib/transport/local.ts";
import type { Packet } from "../lib/types.ts";
import {
  boxes,
  clip,
  ffmpegDecodedFrames,
  fragmentSampleCounts,
  needs,
  readBack,
  tempPath,
} from "./_helpers/container_media.ts";
import { concat, memoryWritable } from "./_helpers/io_streams.ts";
import { freePort } from "./_helpers/tcp_peer.ts";

/** Drives a format like a sink does: one connection's header, packets and (optionally) end. */
async function connection(format: StreamFormat, packets: Packet[], end: boolean): Promise<Uint8Array> {
  const parts = [await format.header()];
  for (const p of packets) parts.push(await format.packet(p));
  if (end && format.end) parts.push(await format.end());
  return concat(...parts);
}

test("live WebM over TCP: ffmpeg reads it from a socket, copies every packet and decodes every frame", {
  ...needs("ffmpeg"),
}, async () => {
  const { packets, info } = await clip();
  const port = await freePort();
  const copy = tempPath("live-copy.ivf");
  const crc = tempPath("live.framecrc");
  const ffmpeg = spawn("ffmpeg", [
    "-v",
    "error",
    "-y",
    "-f",
    "webm",
    "-i",
    `tcp://127.0.0.1:${port}?listen=1`,
    "-map",
    "0:v",
    "-c",
    "copy",
    "-f",
    "ivf",
    copy,
    "-map",
    "0:v",
    "-f",
    "framecrc",
    crc,
  ], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  ffmpeg.stderr!.on("data", (d) => (stderr += d));
  const exited = new Promise<number>((resolve) => ffmpeg.on("close", (code) => resolve(code ?? -1)));
  const guard = setTimeout(() => ffmpeg.kill(), 60_000);
  try {
    // ffmpeg may take a moment to listen: the sink retries refused connections.
    const sink = tcpSink({ host: "127.0.0.1", port }, {
      format: webmStreamFormat(info),
      info,
      initialDelay: 50,
      maxDelay: 200,
      maxAttempts: 100,
    });
    const writer = sink.getWriter();
    for (const p of packets) await writer.write(p);
    await writer.close();
    assert.equal(sink.stats.connections, 1);
    assert.equal(await exited, 0, stderr);
  } finally {
    clearTimeout(guard);
    ffmpeg.kill();
  }
  const { frames } = await readIvf(await readFile(copy));
  assert.equal(frames.length, packets.length);
  for (const [i, p] of packets.entries()) {
    assert.deepEqual(stripTemporalDelimiters(frames[i].data), stripTemporalDelimiters(p.data), `packet ${i}`);
  }
  const decoded = (await readFile(crc, "utf8")).split("\n").filter((l) => /^\d+,/.test(l)).length;
  assert.equal(decoded, packets.length);
});

test("webmStreamFormat: every connection is a complete WebM stream that starts at a key frame", async () => {
  const { packets, info } = await clip();
  const format = webmStreamFormat(info);
  assert.equal(format.contentType, "video/webm");
  const first = await connection(format, packets.slice(0, 15), false); // dropped mid-stream
  const second = await connection(format, packets.slice(10), true); // a reconnect resends from frame 10
  for (const [bytes, sent] of [[first, packets.slice(0, 15)], [second, packets.slice(10)]] as const) {
    assert.deepEqual([...bytes.subarray(0, 4)], [0x1a, 0x45, 0xdf, 0xa3], "starts with the EBML header");
    const back = await readBack(bytes);
    assert.equal(back.format, "WebM");
    assert.equal(back.packets.length, sent.length);
    assert.ok(back.packets[0].key && isKeyFramePacket(back.packets[0].data));
    assert.deepEqual(back.packets.map((p) => Math.round(p.timestamp * 30)), sent.map((p) => p.timestamp));
    assert.deepEqual(back.packets.map((p) => p.data), sent.map((p) => p.data));
  }
});

test("webmStreamFormat sends each packet's block as soon as it gets the packet", async () => {
  const { packets, info } = await clip();
  const format = webmStreamFormat(info);
  await format.header();
  for (const p of packets) {
    const bytes = await format.packet(p);
    assert.ok(bytes.length >= p.data.length, `packet ${p.timestamp}: ${bytes.length} bytes out`);
  }
});

test("fmp4StreamFormat: an init segment per connection, fragments that start at key frames", async () => {
  const { packets, info } = await clip();
  const format = fmp4StreamFormat(info);
  assert.equal(format.contentType, "video/mp4");
  const first = await connection(format, packets.slice(0, 25), false);
  const second = await connection(format, packets.slice(20), true);
  // The first connection ended without end(): its two complete fragments went out, the third was pending.
  assert.deepEqual(boxes(first).map((b) => b.type), ["ftyp", "moov", "moof", "mdat", "moof", "mdat"]);
  assert.deepEqual(fragmentSampleCounts(first), [10, 10]);
  // A clean end adds the last fragment and mediabunny's random access index (mfra).
  assert.deepEqual(boxes(second).map((b) => b.type), ["ftyp", "moov", "moof", "mdat", "mfra"]);
  const back = await readBack(second);
  assert.equal(back.packets.length, 10);
  assert.ok(back.packets[0].key && isKeyFramePacket(back.packets[0].data));
  assert.deepEqual(
    back.packets.map((p) => Math.round(p.timestamp * 30)),
    packets.slice(20).map((p) => p.timestamp),
  );
  assert.deepEqual(
    back.packets.map((p) => p.data),
    packets.slice(20).map((p) => stripTemporalDelimiters(p.data)),
  );
});

test("fMP4 through a PacketSink: the sink awaits the format and the stream reads back whole", {
  ...needs("ffmpeg"),
}, async () => {
  const { packets, info } = await clip();
  const out = memoryWritable();
  const sink = new PacketSink(writableTransport(out.writable), { format: fmp4StreamFormat(info), info });
  const writer = sink.getWriter();
  for (const p of packets) await writer.write(p);
  await writer.close();
  const bytes = out.bytes();
  assert.deepEqual(fragmentSampleCounts(bytes), [10, 10, 10]);
  const back = await readBack(bytes);
  assert.equal(back.packets.length, 30);
  assert.equal(sink.stats.packets, 30);
  const path = tempPath("sink.mp4");
  await import("node:fs/promises").then((fs) => fs.writeFile(path, bytes));
  assert.equal(ffmpegDecodedFrames(path), 30);
});

test("live formats refuse a connection that starts without a key frame", async () => {
  const { packets, info } = await clip();
  for (const format of [webmStreamFormat(info), fmp4StreamFormat(info)]) {
    await format.header();
    await assert.rejects(
      Promise.resolve().then(() => format.packet(packets[1])),
      (e) => e instanceof EncoderError && /key frame/.test(e.message),
    );
  }
});
