import assert from "node:assert/strict";
import { test } from "node:test";
import { av1CodecConfigurationRecord, isKeyFramePacket, stripTemporalDelimiters } from "../lib/av1/mod.ts";
import { Mp4Writer, type Mp4WriterOptions } from "../lib/container/mp4.ts";
import { fileSink } from "../lib/io/sink.ts";
import type { Packet } from "../lib/types.ts";
import {
  assertClipProbe,
  boxes,
  type Clip,
  clip,
  dav1dFrameCount,
  findBoxPayload,
  fragmentSampleCounts,
  memorySink,
  needs,
  readBack,
  run,
  tempPath,
} from "./_helpers/container_media.ts";
import { memoryWritable } from "./_helpers/io_streams.ts";

async function writeMp4(packets: Packet[], info: Clip["info"], options: Mp4WriterOptions = {}) {
  const sink = memorySink();
  const mp4 = new Mp4Writer(sink, info, options);
  for (const p of packets) await mp4.writePacket(p);
  await mp4.close();
  return { bytes: sink.bytes(), sink };
}

function assertRoundTrip(
  back: Awaited<ReturnType<typeof readBack>>,
  packets: Packet[],
  fps: { num: number; den: number },
) {
  assert.equal(back.packets.length, packets.length);
  for (const [i, p] of packets.entries()) {
    const r = back.packets[i];
    assert.deepEqual(
      r.data,
      stripTemporalDelimiters(p.data),
      `packet ${i}: same bytes without the temporal delimiter`,
    );
    assert.notEqual((r.data[0] >> 3) & 0x0f, 2, `packet ${i} does not start with a temporal delimiter`);
    assert.equal((r.timestamp * fps.num) / fps.den, p.timestamp, `packet ${i} timestamp is exact`);
    assert.equal(Math.round((r.duration * fps.num) / fps.den), p.duration, `packet ${i} duration`);
    assert.equal(r.key, p.keyFrame, `packet ${i} key flag`);
  }
}

test("Mp4Writer round trip: packets without temporal delimiters, exact timestamps, key flags, moov first", async () => {
  const { packets, info } = await clip();
  const { bytes, sink } = await writeMp4(packets, info);
  assert.equal(sink.seeks, 0, "written strictly forward");
  assert.deepEqual(boxes(bytes).map((b) => b.type), ["ftyp", "moov", "mdat"]);
  const back = await readBack(bytes);
  assert.equal(back.format, "MP4");
  assertRoundTrip(back, packets, info.fps);
});

test("Mp4Writer at 30000/1001 keeps timestamps exact in a 30000 timescale", async () => {
  const { packets, info } = await clip({ fps: { num: 30000, den: 1001 }, frames: 20 });
  const { bytes } = await writeMp4(packets, info);
  const back = await readBack(bytes);
  assert.deepEqual(
    back.packets.map((r) => Math.round((r.timestamp * 30000) / 1001)),
    packets.map((p) => p.timestamp),
  );
  // mdhd version 0: timescale at payload offset 12.
  const mdhd = findBoxPayload(bytes, "mdhd")!;
  assert.equal(new DataView(mdhd.buffer, mdhd.byteOffset).getUint32(12), 30000);
});

test("Mp4Writer av1C matches the record built from the sequence header", async () => {
  const { packets, info } = await clip();
  const { bytes } = await writeMp4(packets, info);
  const av1C = findBoxPayload(bytes, "av1C")!;
  assert.ok(av1C);
  assert.deepEqual(av1C.subarray(0, 4), av1CodecConfigurationRecord(packets[0].data).subarray(0, 4));
});

test("fragmented Mp4Writer: init segment, then one fragment per key-frame interval, each starting with a key frame", async () => {
  const { packets, info } = await clip();
  const { bytes, sink } = await writeMp4(packets, info, { fragmented: true });
  assert.equal(sink.seeks, 0);
  const types = boxes(bytes).map((b) => b.type);
  assert.deepEqual(types.slice(0, 2), ["ftyp", "moov"]);
  assert.ok(findBoxPayload(bytes, "mvex"), "moov has mvex");
  const counts = fragmentSampleCounts(bytes);
  assert.deepEqual(counts, [10, 10, 10]);
  const back = await readBack(bytes);
  assertRoundTrip(back, packets, info.fps);
  let first = 0;
  for (const n of counts) {
    assert.ok(back.packets[first].key, `fragment at sample ${first} starts with a key-flagged sample`);
    assert.ok(
      isKeyFramePacket(back.packets[first].data),
      `fragment at sample ${first} starts with a key frame`,
    );
    first += n;
  }
});

test("fragmented Mp4Writer with fragmentDuration: fragments still cut only at key frames", async () => {
  const { packets, info } = await clip({ frames: 40, keyint: 5 });
  const { bytes } = await writeMp4(packets, info, { fragmented: true, fragmentDuration: 0.5 });
  const counts = fragmentSampleCounts(bytes);
  assert.equal(counts.reduce((a, b) => a + b, 0), 40);
  const back = await readBack(bytes);
  let first = 0;
  for (const n of counts) {
    assert.ok(isKeyFramePacket(back.packets[first].data), `fragment at ${first} starts with a key frame`);
    assert.ok(n >= 15 || first + n === 40, `fragment of ${n} frames lasts at least 0.5 s`);
    first += n;
  }
});

test("Mp4Writer writes to a WritableStream (forward only) and closes it", async () => {
  const { packets, info } = await clip();
  for (const fragmented of [false, true]) {
    const out = memoryWritable();
    const mp4 = new Mp4Writer(out.writable, info, { fragmented });
    await Promise.all(packets.map((p) => mp4.writePacket(p)));
    await mp4.close();
    assert.ok(out.closed());
    assert.equal((await readBack(out.bytes())).packets.length, 30);
  }
});

for (const fragmented of [false, true]) {
  const name = fragmented ? "fMP4" : "MP4";
  test(
    `ffprobe reads ${name}'s codec, size, frame rate, frame count and duration; ffmpeg and dav1d decode every frame`,
    {
      ...needs("ffprobe", "ffmpeg", "dav1d"),
    },
    async () => {
      const { packets, info } = await clip();
      const path = tempPath(fragmented ? "clip-frag.mp4" : "clip.mp4");
      const mp4 = new Mp4Writer(await fileSink(path), info, { fragmented });
      for (const p of packets) await mp4.writePacket(p);
      await mp4.close();
      assertClipProbe(path, packets, { containerFrameCount: !fragmented });
      for (const [muxer, demuxer] of [["ivf", "ivf"], ["obu", "section5"]] as const) {
        const out = tempPath(`from-${fragmented ? "fmp4" : "mp4"}.${muxer}`);
        assert.equal(run("ffmpeg", ["-v", "error", "-i", path, "-c", "copy", "-f", muxer, out]).code, 0);
        assert.equal(dav1dFrameCount(out, demuxer), 30, `dav1d decodes every frame of the ${muxer} stream`);
      }
    },
  );
}
