import assert from "node:assert/strict";
import { test } from "node:test";
import {
  av1CodecConfigurationRecord,
  codecString,
  findSequenceHeader,
  parseSequenceHeader,
} from "../lib/av1/mod.ts";
import { WebmWriter } from "../lib/container/webm.ts";
import { EncoderError } from "../lib/errors.ts";
import { fileSink } from "../lib/io/sink.ts";
import {
  assertClipProbe,
  clip,
  dav1dFrameCount,
  memorySink,
  needs,
  readBack,
  run,
  tempPath,
} from "./_helpers/container_media.ts";
import { memoryWritable } from "./_helpers/io_streams.ts";

async function writeWebm(
  packets: Awaited<ReturnType<typeof clip>>["packets"],
  info: Awaited<ReturnType<typeof clip>>["info"],
  options: ConstructorParameters<typeof WebmWriter>[2] = {},
) {
  const sink = memorySink();
  const webm = new WebmWriter(sink, info, options);
  for (const p of packets) await webm.writePacket(p);
  await webm.close();
  return { bytes: sink.bytes(), sink, webm };
}

test("WebmWriter round trip: the same packet bytes, exact timestamps and durations, key flags", async () => {
  const { packets, info } = await clip();
  const { bytes } = await writeWebm(packets, info);
  const back = await readBack(bytes);
  assert.equal(back.format, "WebM");
  assert.equal(back.packets.length, packets.length);
  for (const [i, p] of packets.entries()) {
    const r = back.packets[i];
    assert.deepEqual(r.data, p.data, `packet ${i} bytes`);
    assert.equal(Math.round(r.timestamp * 30), p.timestamp, `packet ${i} timestamp`);
    assert.equal(Math.round(r.duration * 30), p.duration, `packet ${i} duration`);
    assert.equal(r.key, p.keyFrame, `packet ${i} key flag`);
  }
  assert.equal(packets.filter((p) => p.keyFrame).length, 3);
});

test("WebmWriter at 30000/1001: timestamps map back to the exact frame numbers", async () => {
  const { packets, info } = await clip({ fps: { num: 30000, den: 1001 }, frames: 20 });
  const { bytes } = await writeWebm(packets, info);
  const back = await readBack(bytes);
  assert.deepEqual(
    back.packets.map((r) => Math.round((r.timestamp * 30000) / 1001)),
    packets.map((p) => p.timestamp),
  );
});

test("WebmWriter takes the codec string and CodecPrivate from the sequence header", async () => {
  const { packets, info } = await clip();
  const { bytes, webm } = await writeWebm(packets, info);
  const seq = parseSequenceHeader(findSequenceHeader(packets[0].data)!);
  assert.equal(webm.codec, codecString(seq, { full: true }));
  const back = await readBack(bytes);
  assert.ok(back.codec?.startsWith(codecString(seq)), `${back.codec} starts with ${codecString(seq)}`);
  // CodecPrivate (ID 63 A2, a 1-byte size): mediabunny writes the 4 fixed bytes of av1C, no configOBUs.
  const at = bytes.findIndex((b, i) => b === 0x63 && bytes[i + 1] === 0xa2);
  assert.ok(at > 0, "CodecPrivate present");
  const size = bytes[at + 2] & 0x7f;
  assert.equal(size, 4);
  assert.deepEqual(
    bytes.subarray(at + 3, at + 3 + size),
    av1CodecConfigurationRecord(packets[0].data).subarray(0, 4),
  );
});

test("WebmWriter to a file sink patches sizes and cues in place; live writes strictly forward", async () => {
  const { packets, info } = await clip();
  const file = await writeWebm(packets, info);
  assert.ok(file.sink.seeks > 0, "a seekable sink gets its sizes patched");
  const live = await writeWebm(packets, info, { live: true });
  assert.equal(live.sink.seeks, 0);
  // An unknown-size Segment: ID 18 53 80 67, then an all-ones size (FF, or 01 FF FF FF FF FF FF FF).
  const at = live.bytes.findIndex((_, i) =>
    live.bytes[i] === 0x18 && live.bytes[i + 1] === 0x53 && live.bytes[i + 2] === 0x80
    && live.bytes[i + 3] === 0x67
  );
  assert.ok(at > 0);
  const size = [...live.bytes.subarray(at + 4, at + 12)];
  assert.ok(size[0] === 0xff || size.every((b, i) => b === (i ? 0xff : 0x01)), `unknown size, got ${size}`);
  assert.equal((await readBack(live.bytes)).packets.length, packets.length);
});

test("WebmWriter to a WritableStream goes live by itself and closes the stream", async () => {
  const { packets, info } = await clip();
  const out = memoryWritable();
  const webm = new WebmWriter(out.writable, info);
  await Promise.all(packets.map((p) => webm.writePacket(p))); // not awaited one by one: order still holds
  await webm.close();
  assert.ok(out.closed());
  const back = await readBack(out.bytes());
  assert.deepEqual(back.packets.map((p) => p.data), packets.map((p) => p.data));
});

test("WebmWriter with matroska: true writes DocType matroska", async () => {
  const { packets, info } = await clip();
  const { bytes } = await writeWebm(packets, info, { matroska: true });
  assert.equal((await readBack(bytes)).format, "Matroska");
});

test(
  "ffprobe reads WebM's codec, size, frame rate, frame count and duration; ffmpeg and dav1d decode every frame",
  {
    ...needs("ffprobe", "ffmpeg", "dav1d"),
  },
  async () => {
    const { packets, info } = await clip();
    const path = tempPath("clip.webm");
    const webm = new WebmWriter(await fileSink(path), info);
    for (const p of packets) await webm.writePacket(p);
    await webm.close();
    assert.match(assertClipProbe(path, packets).format.format_name, /webm/);
    const ivf = tempPath("from-webm.ivf");
    assert.equal(run("ffmpeg", ["-v", "error", "-i", path, "-c", "copy", "-f", "ivf", ivf]).code, 0);
    assert.equal(dav1dFrameCount(ivf), 30);
  },
);

test("WebmWriter refuses a first packet that is not a key frame, and one without a sequence header", async () => {
  const { packets, info } = await clip();
  const a = new WebmWriter(memorySink(), info);
  await assert.rejects(
    a.writePacket(packets[1]),
    (e) => e instanceof EncoderError && /key frame/.test(e.message),
  );
  await a.close().catch(() => {});
  const b = new WebmWriter(memorySink(), info);
  await assert.rejects(
    b.writePacket({ ...packets[0], data: new Uint8Array([0x12, 0x00]) }),
    (e) => e instanceof EncoderError && /sequence header/.test(e.message),
  );
  await b.close().catch(() => {});
});

test("WebmWriter uses the sequenceHeader option when the first key frame lacks one", async () => {
  const { packets, info, sequenceHeader } = await clip();
  const data = packets[0].data;
  const sh = findSequenceHeader(data)!;
  const at = sh.byteOffset - data.byteOffset;
  const first = {
    ...packets[0],
    data: new Uint8Array([...data.subarray(0, at), ...data.subarray(at + sh.length)]),
  };
  const { webm } = await writeWebm([first, ...packets.slice(1)], info, { sequenceHeader });
  assert.equal(webm.codec, codecString(sequenceHeader, { full: true }));
});

test("WebmWriter: a closed writer rejects packets with CLOSED; close is idempotent; bad timestamps are refused", async () => {
  const { packets, info } = await clip();
  const webm = new WebmWriter(memorySink(), info);
  await assert.rejects(
    webm.writePacket({ ...packets[0], timestamp: NaN }),
    (e) => e instanceof EncoderError && e.code === "INVALID_FRAME",
  );
  await webm.writePacket(packets[0]);
  const c1 = webm.close();
  assert.equal(webm.close(), c1);
  await c1;
  await assert.rejects(webm.writePacket(packets[1]), (e) => e instanceof EncoderError && e.code === "CLOSED");
});
