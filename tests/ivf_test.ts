import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { test } from "node:test";
import { EncoderError } from "../lib/errors.ts";
import {
  decodeIvfHeader,
  encodeIvfFrameHeader,
  encodeIvfHeader,
  IvfReader,
  IvfWriter,
  readIvf,
} from "../lib/io/ivf.ts";
import { fileSink, ivfFileSink, writableSink } from "../lib/io/sink.ts";
import { testSourceY4m } from "../lib/io/testsrc.ts";
import { chunked, collect, concat, memoryWritable, tempPath } from "./_helpers/io_streams.ts";

const info = { width: 640, height: 360, fps: { num: 30000, den: 1001 } };

function packets(n: number) {
  return Array.from({ length: n }, (_, i) => ({
    data: new Uint8Array(10 + i * 3).map((_, j) => (i + j) & 0xff),
    timestamp: i * 2,
  }));
}

function isCode(code: string, pattern: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof EncoderError, `expected EncoderError, got ${err}`);
    assert.equal(err.code, code);
    assert.match(err.message, pattern);
    return true;
  };
}

test("encodeIvfHeader writes every field at its offset, little-endian", () => {
  const bytes = encodeIvfHeader(info, 90);
  assert.equal(bytes.length, 32);
  const view = new DataView(bytes.buffer);
  assert.equal(new TextDecoder().decode(bytes.subarray(0, 4)), "DKIF");
  assert.equal(view.getUint16(4, true), 0); // version
  assert.equal(view.getUint16(6, true), 32); // header size
  assert.equal(new TextDecoder().decode(bytes.subarray(8, 12)), "AV01");
  assert.equal(view.getUint16(12, true), 640);
  assert.equal(view.getUint16(14, true), 360);
  assert.equal(view.getUint32(16, true), 30000); // rate (time base denominator)
  assert.equal(view.getUint32(20, true), 1001); // scale (time base numerator)
  assert.equal(view.getUint32(24, true), 90);
  assert.equal(view.getUint32(28, true), 0);
  assert.deepEqual(
    [
      ...encodeIvfHeader({ width: 0x102, height: 0x304, fps: { num: 25, den: 1 } }, 0x05060708).subarray(
        12,
        28,
      ),
    ],
    [0x02, 0x01, 0x04, 0x03, 25, 0, 0, 0, 1, 0, 0, 0, 0x08, 0x07, 0x06, 0x05],
  );
});

test("encodeIvfHeader rejects sizes IVF cannot hold", () => {
  assert.throws(
    () => encodeIvfHeader({ ...info, width: 70000 }, 0),
    isCode("INVALID_CONFIG", /width must be .* 65535/),
  );
  assert.throws(
    () => encodeIvfHeader({ ...info, fps: { num: 0, den: 1 } }, 0),
    isCode("INVALID_CONFIG", /fps.num/),
  );
  assert.throws(() => encodeIvfHeader(info, -1), isCode("INVALID_CONFIG", /frame count/));
  assert.throws(() => encodeIvfHeader(info, 0, { fourcc: "AV1" }), isCode("INVALID_CONFIG", /fourcc/));
});

test("encodeIvfFrameHeader writes size u32 and pts 64-bit little-endian", () => {
  assert.deepEqual([...encodeIvfFrameHeader(0x01020304, 0x0506070809)], [
    0x04,
    0x03,
    0x02,
    0x01,
    0x09,
    0x08,
    0x07,
    0x06,
    0x05,
    0,
    0,
    0,
  ]);
  assert.deepEqual([...encodeIvfFrameHeader(1, -1).subarray(4)], [255, 255, 255, 255, 255, 255, 255, 255]);
  assert.throws(() => encodeIvfFrameHeader(1, 0.5), isCode("INVALID_FRAME", /safe integer/));
});

test("IvfWriter to a file patches the frame count on close", async () => {
  const path = tempPath("count.ivf");
  const writer = new IvfWriter(await ivfFileSink(path), info);
  for (const p of packets(5)) await writer.writePacket(p);
  assert.equal(writer.frameCount, 5);
  await writer.close();
  await writer.close();
  const bytes = new Uint8Array(await readFile(path));
  assert.equal(new DataView(bytes.buffer).getUint32(24, true), 5);
  const expectedLength = 32 + packets(5).reduce((n, p) => n + 12 + p.data.length, 0);
  assert.equal(bytes.length, expectedLength);
  await assert.rejects(writer.writePacket(packets(1)[0]), isCode("CLOSED", /IvfWriter is closed/));
});

test("IvfWriter keeps packet order when writes are not awaited one by one", async () => {
  const path = tempPath("order.ivf");
  const writer = new IvfWriter(await fileSink(path), info);
  await Promise.all(packets(20).map((p) => writer.writePacket(p)));
  await writer.close();
  const { header, frames } = await readIvf(new Uint8Array(await readFile(path)));
  assert.equal(header.frameCount, 20);
  assert.deepEqual(frames, packets(20));
});

test("IvfWriter to a WritableStream writes forward only, with the frame count given up front", async () => {
  const out = memoryWritable();
  const writer = new IvfWriter(out.writable, info, { frameCount: 7 });
  for (const p of packets(3)) await writer.writePacket(p);
  await writer.close();
  assert.equal(out.closed(), true);
  const bytes = out.bytes();
  assert.equal(decodeIvfHeader(bytes).frameCount, 7);
  // One chunk for the header, then one per packet (frame header and data together).
  assert.deepEqual(out.chunks.map((c) => c.length), [32, 22, 25, 28]);
  const unknown = memoryWritable();
  await new IvfWriter(writableSink(unknown.writable), info).close();
  assert.deepEqual(unknown.bytes(), encodeIvfHeader(info, 0));
});

test("IvfWriter writes packet timestamps as IVF pts", async () => {
  const out = memoryWritable();
  const writer = new IvfWriter(out.writable, info);
  await writer.writePacket({ data: new Uint8Array([1]), timestamp: 0 });
  await writer.writePacket({ data: new Uint8Array([2, 3]), timestamp: 1001 });
  await writer.close();
  const bytes = out.bytes();
  assert.deepEqual([...bytes.subarray(32)], [
    1,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    1,
    2,
    0,
    0,
    0,
    0xe9,
    0x03,
    0,
    0,
    0,
    0,
    0,
    0,
    2,
    3,
  ]);
});

test("IvfReader reads back what IvfWriter wrote, from 1-byte chunks too", async () => {
  const out = memoryWritable();
  const writer = new IvfWriter(out.writable, { width: 64, height: 48, fps: { num: 25, den: 1 } }, {
    frameCount: 4,
  });
  for (const p of packets(4)) await writer.writePacket(p);
  await writer.close();
  for (const size of [1, 5, 1 << 20]) {
    const reader = await IvfReader.open(chunked(out.bytes(), size));
    assert.deepEqual(reader.header, {
      fourcc: "AV01",
      width: 64,
      height: 48,
      fps: { num: 25, den: 1 },
      frameCount: 4,
      version: 0,
      headerSize: 32,
    });
    const frames = [];
    for await (const f of reader.frames()) frames.push(f);
    assert.deepEqual(frames, packets(4));
  }
});

test("IvfReader rejects truncated files and non-IVF input clearly", async () => {
  const whole = concat(encodeIvfHeader(info, 1), encodeIvfFrameHeader(10, 0), new Uint8Array(10));
  await assert.rejects(
    readIvf(whole.subarray(0, 20)),
    isCode("INVALID_INPUT", /IVF header is truncated: got 20 of 32/),
  );
  await assert.rejects(
    readIvf(whole.subarray(0, 38)),
    isCode("INVALID_INPUT", /frame 0 header is truncated: got 6 of 12/),
  );
  await assert.rejects(
    readIvf(whole.subarray(0, 50)),
    isCode("INVALID_INPUT", /frame 0 is truncated: got 6 of 10 bytes/),
  );
  await assert.rejects(
    readIvf(new TextEncoder().encode("RIFF".padEnd(40))),
    isCode("INVALID_INPUT", /not IVF.*"RIFF"/),
  );
  const huge = concat(encodeIvfHeader(info, 1), encodeIvfFrameHeader(0xffffffff, 0));
  await assert.rejects(readIvf(huge), isCode("INVALID_INPUT", /claims 4294967295 bytes/));
  assert.equal((await readIvf(whole)).frames.length, 1);
});

test("fileSink reports a path it cannot create as IO_ERROR", async () => {
  await assert.rejects(
    fileSink("/nonexistent-dir/x/out.ivf"),
    isCode("IO_ERROR", /Could not create .*out\.ivf/),
  );
});

const ffmpeg = "/usr/bin/ffmpeg";
const hasLibaom = existsSync(ffmpeg)
  && spawnSync(ffmpeg, ["-hide_banner", "-encoders"], { encoding: "utf8" }).stdout?.includes("libaom-av1");
test(
  "IvfReader reads ffmpeg's AV1 IVF, and ffmpeg decodes the same packets rewritten by IvfWriter",
  { skip: hasLibaom ? false : "ffmpeg with libaom-av1 not installed" },
  async () => {
    const y4mPath = tempPath("src.y4m");
    await writeFile(y4mPath, await collect(testSourceY4m({ width: 64, height: 48, frames: 3 })));
    const theirs = tempPath("theirs.ivf");
    const encode = spawnSync(ffmpeg, [
      ...["-v", "error", "-y", "-i", y4mPath, "-c:v", "libaom-av1", "-cpu-used", "8", "-g", "2", theirs],
    ], { encoding: "utf8" });
    assert.equal(encode.status, 0, encode.stderr);
    const reader = await IvfReader.open(new Uint8Array(await readFile(theirs)));
    assert.equal(reader.header.fourcc, "AV01");
    assert.equal(reader.header.width, 64);
    assert.equal(reader.header.height, 48);
    const frames = [];
    for await (const f of reader.frames()) frames.push(f);
    assert.equal(frames.length, 3);
    assert.ok(frames.every((f) => f.data.length > 0));

    const ours = tempPath("ours.ivf");
    const writer = new IvfWriter(await ivfFileSink(ours), {
      width: 64,
      height: 48,
      fps: { num: 30, den: 1 },
    });
    for (const [i, f] of frames.entries()) await writer.writePacket({ data: f.data, timestamp: i });
    await writer.close();
    const decode = spawnSync(ffmpeg, ["-v", "error", "-i", ours, "-f", "framecrc", "-"], {
      encoding: "utf8",
    });
    assert.equal(decode.status, 0, decode.stderr);
    const lines = decode.stdout.split("\n").filter((l) => /^0,/.test(l));
    assert.equal(lines.length, 3);
    assert.ok(lines.every((l) => l.includes(String(64 * 48 * 3 / 2))), decode.stdout);
  },
);

test("IvfWriter.close waits for packets written without await before closing the file", async () => {
  const path = tempPath("unawaited.ivf");
  const writer = new IvfWriter(await fileSink(path), info);
  for (const p of packets(30)) void writer.writePacket(p);
  await writer.close();
  const { header, frames } = await readIvf(new Uint8Array(await readFile(path)));
  assert.equal(header.frameCount, 30);
  assert.deepEqual(frames, packets(30));
});
