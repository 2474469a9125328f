import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { EncoderError } from "../lib/errors.ts";
import { fileReadable } from "../lib/io/file_stream.ts";
import { encodeY4mFrame, encodeY4mHeader, parseY4mHeader, Y4mReader, Y4mWriter } from "../lib/io/y4m.ts";
import { frameByteLength, type VideoInfo } from "../lib/types.ts";
import { chunked, concat, memoryWritable, text } from "./_helpers/io_streams.ts";

/** A Y4M file with `frames` frames whose bytes count up from `frame * 7`. */
function y4m(header: string, frameSize: number, frames: number, marker = "FRAME\n"): Uint8Array {
  const parts = [text(header + "\n")];
  for (let f = 0; f < frames; f++) {
    const data = new Uint8Array(frameSize);
    for (let i = 0; i < frameSize; i++) data[i] = (f * 7 + i) & 0xff;
    parts.push(text(marker), data);
  }
  return concat(...parts);
}

async function readAll(bytes: Uint8Array, chunkSize = 1 << 16) {
  const reader = await Y4mReader.open(chunked(bytes, chunkSize));
  const frames = [];
  for await (const frame of reader.frames()) frames.push(frame);
  return { info: reader.info, frames };
}

function isInvalidInput(pattern: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof EncoderError, `expected EncoderError, got ${err}`);
    assert.equal(err.code, "INVALID_INPUT");
    assert.match(err.message, pattern);
    return true;
  };
}

const COLORSPACES: [string, Pick<VideoInfo, "chroma" | "bitDepth" | "chromaPosition">][] = [
  ["420jpeg", { chroma: "420", bitDepth: 8, chromaPosition: "unknown" }],
  ["420paldv", { chroma: "420", bitDepth: 8, chromaPosition: "unknown" }],
  ["420mpeg2", { chroma: "420", bitDepth: 8, chromaPosition: "vertical" }],
  ["420", { chroma: "420", bitDepth: 8, chromaPosition: "colocated" }],
  ["420p10", { chroma: "420", bitDepth: 10, chromaPosition: "colocated" }],
  ["420p12", { chroma: "420", bitDepth: 12, chromaPosition: "colocated" }],
  ["422", { chroma: "422", bitDepth: 8 }],
  ["422p10", { chroma: "422", bitDepth: 10 }],
  ["422p12", { chroma: "422", bitDepth: 12 }],
  ["444", { chroma: "444", bitDepth: 8 }],
  ["444p10", { chroma: "444", bitDepth: 10 }],
  ["444p12", { chroma: "444", bitDepth: 12 }],
  ["mono", { chroma: "mono", bitDepth: 8 }],
  ["mono10", { chroma: "mono", bitDepth: 10 }],
  ["mono12", { chroma: "mono", bitDepth: 12 }],
];

for (const [tag, expected] of COLORSPACES) {
  test(`Y4mReader reads C${tag} as ${expected.chroma} at ${expected.bitDepth} bits with frames of the right size`, async () => {
    const size = frameByteLength({ width: 6, height: 4, ...expected });
    const { info, frames } = await readAll(y4m(`YUV4MPEG2 W6 H4 F25:1 C${tag}`, size, 2));
    assert.equal(info.colorspace, tag);
    assert.equal(info.chroma, expected.chroma);
    assert.equal(info.bitDepth, expected.bitDepth);
    assert.equal(info.chromaPosition, expected.chromaPosition);
    assert.equal(frames.length, 2);
    assert.equal(frames[1].data.length, size);
    assert.equal(frames[1].data[0], 7);
  });
}

test("Y4mReader defaults to C420jpeg when the header has no C tag", async () => {
  const { info, frames } = await readAll(y4m("YUV4MPEG2 W4 H2 F30:1", 12, 1));
  assert.equal(info.colorspace, "420jpeg");
  assert.equal(info.chroma, "420");
  assert.equal(info.bitDepth, 8);
  assert.equal(info.chromaPosition, "unknown");
  assert.equal(frames.length, 1);
});

test("Y4mReader reports frame rate, interlacing, pixel aspect, colour range and ignores unknown tags", async () => {
  const { info } = await readAll(
    y4m("YUV4MPEG2 W8 H6 F30000:1001 It A10:11 C420mpeg2 XYSCSS=420MPEG2 XCOLORRANGE=FULL Zfuture", 72, 0),
  );
  assert.deepEqual(info.fps, { num: 30000, den: 1001 });
  assert.equal(info.interlace, "t");
  assert.deepEqual(info.pixelAspect, { num: 10, den: 11 });
  assert.equal(info.colorRange, "full");
  assert.deepEqual(info.extensions, ["YSCSS=420MPEG2", "COLORRANGE=FULL"]);
  const limited = parseY4mHeader("YUV4MPEG2 W8 H6 F1:1 A0:0 XCOLORRANGE=LIMITED");
  assert.equal(limited.colorRange, "limited");
  assert.equal(limited.pixelAspect, undefined);
  assert.equal(limited.interlace, "p");
});

test("Y4mReader gives each frame timestamp = index, duration 1 and its own ArrayBuffer", async () => {
  const { frames } = await readAll(y4m("YUV4MPEG2 W4 H2 F30:1 C420jpeg", 12, 3), 5);
  assert.deepEqual(frames.map((f) => [f.timestamp, f.duration]), [[0, 1], [1, 1], [2, 1]]);
  for (const f of frames) {
    assert.equal(f.data.byteOffset, 0);
    assert.equal(f.data.buffer.byteLength, 12);
  }
  assert.notEqual(frames[0].data.buffer, frames[1].data.buffer);
});

test("Y4mReader keeps the parameters of FRAME lines", async () => {
  const bytes = concat(
    text("YUV4MPEG2 W2 H2 F1:1 Cmono\n"),
    text("FRAME Ixyz XFOO=1\n"),
    new Uint8Array([1, 2, 3, 4]),
    text("FRAME\n"),
    new Uint8Array([5, 6, 7, 8]),
  );
  const { frames } = await readAll(bytes);
  assert.equal(frames[0].frameParams, "Ixyz XFOO=1");
  assert.deepEqual([...frames[0].data], [1, 2, 3, 4]);
  assert.equal(frames[1].frameParams, undefined);
  assert.deepEqual([...frames[1].data], [5, 6, 7, 8]);
});

test("Y4mReader reads the same frames from 1-byte chunks as from one chunk", async () => {
  const bytes = y4m("YUV4MPEG2 W6 H4 F24:1 Ip A1:1 C420jpeg XCOLORRANGE=LIMITED", 36, 4, "FRAME Ip\n");
  const whole = await readAll(bytes, bytes.length);
  const bytewise = await readAll(bytes, 1);
  assert.deepEqual(bytewise.info, whole.info);
  assert.equal(bytewise.frames.length, 4);
  assert.deepEqual(bytewise.frames, whole.frames);
});

test("Y4mReader handles chunk boundaries at every offset of the header and frame markers", async () => {
  const bytes = y4m("YUV4MPEG2 W4 H2 F30:1 C420", 12, 3, "FRAME XA=1\n");
  const expected = await readAll(bytes, bytes.length);
  for (let size = 2; size <= 40; size++) {
    const got = await readAll(bytes, size);
    assert.deepEqual(got.frames, expected.frames, `chunk size ${size}`);
  }
});

/** A byte stream over `bytes` that fills at most `size` bytes per pull, recording each pull's buffer size. */
function byteStream(bytes: Uint8Array, size: number, buffers: number[] = []): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    type: "bytes",
    autoAllocateChunkSize: 1 << 20,
    pull(controller) {
      const request = controller.byobRequest!;
      const view = request.view as Uint8Array;
      buffers.push(view.buffer.byteLength);
      if (at >= bytes.length) {
        controller.close();
        request.respond(0);
        return;
      }
      const n = Math.min(size, view.byteLength, bytes.length - at);
      view.set(bytes.subarray(at, at + n));
      at += n;
      request.respond(n);
    },
  }, { highWaterMark: 0 }) as ReadableStream<Uint8Array>;
}

test("Y4mReader reads a byte stream into each frame's own buffer: the same frames whatever each read gives", async () => {
  // Frames larger than the 4 KiB buffer lines are read through, so part of each is always read directly.
  const frameSize = 64 * 48 * 3 / 2;
  const bytes = y4m("YUV4MPEG2 W64 H48 F30:1 C420 XA=1", frameSize, 4, "FRAME Ip\n");
  const expected = await readAll(bytes, bytes.length);
  for (const size of [1, 7, 11, 1000, 4095, 4096, 4097, frameSize, frameSize + 9, bytes.length]) {
    const buffers: number[] = [];
    const reader = await Y4mReader.open(byteStream(bytes, size, buffers));
    const frames = [];
    for await (const frame of reader.frames()) frames.push(frame);
    assert.deepEqual(frames, expected.frames, `${size} bytes per read`);
    for (const f of frames) assert.equal(f.data.buffer.byteLength, frameSize, "each frame owns its buffer");
    // Read in BYOB mode: no pull got a chunk the stream allocated (1 MiB); lines go through one small
    // buffer and frame bytes straight into the frame.
    assert.ok(buffers.every((n) => n < 1 << 20), `${size} bytes per read: ${buffers}`);
    assert.ok(buffers.includes(frameSize), `${size} bytes per read: a frame was read into its own buffer`);
  }
});

test("fileReadable is a byte stream: a Y4M file is read into the frames' buffers, a default reader gets chunks", async () => {
  const dir = mkdtempSync(join(tmpdir(), "y4m-file-"));
  try {
    const frameSize = 64 * 48 * 3 / 2;
    const bytes = y4m("YUV4MPEG2 W64 H48 F30:1 C420jpeg", frameSize, 5);
    const path = join(dir, "clip.y4m");
    writeFileSync(path, bytes);
    const reader = await Y4mReader.open(await fileReadable(path));
    const frames = [];
    for await (const frame of reader.frames()) frames.push(frame);
    assert.deepEqual(frames, (await readAll(bytes, 1000)).frames);
    for (const f of frames) assert.equal(f.data.buffer.byteLength, frameSize);
    // A default reader still gets the file in chunks of the chunk size.
    const plain = (await fileReadable(path, 4096)).getReader();
    const chunks: Uint8Array[] = [];
    for (let r = await plain.read(); !r.done; r = await plain.read()) chunks.push(r.value);
    assert.deepEqual(concat(...chunks), bytes);
    assert.ok(chunks.slice(0, -1).every((c) => c.byteLength === 4096));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("Y4mReader rejects a truncated last frame and emits nothing from it", async () => {
  const full = y4m("YUV4MPEG2 W4 H2 F30:1", 12, 3);
  const reader = await Y4mReader.open(chunked(full.subarray(0, full.length - 5), 4));
  const got: number[] = [];
  await assert.rejects(async () => {
    for await (const frame of reader.frames()) got.push(frame.timestamp);
  }, isInvalidInput(/frame 2 is truncated: got 7 of 12 bytes/));
  assert.deepEqual(got, [0, 1]);
});

test("Y4mReader rejects a stream cut inside a FRAME marker", async () => {
  const bytes = concat(y4m("YUV4MPEG2 W4 H2 F30:1", 12, 1), text("FRA"));
  await assert.rejects(readAll(bytes), isInvalidInput(/ends inside the FRAME marker of frame 1/));
});

test("Y4mReader rejects a missing or garbled FRAME marker", async () => {
  // Frame data one byte longer than the header says: the next marker is off by one.
  const bytes = concat(
    text("YUV4MPEG2 W4 H2 F30:1\nFRAME\n"),
    new Uint8Array(13),
    text("FRAME\n"),
    new Uint8Array(12),
  );
  await assert.rejects(readAll(bytes), isInvalidInput(/frame 1 does not start with "FRAME"/));
  const garbled = concat(text("YUV4MPEG2 W4 H2 F30:1\nFRAMES\n"), new Uint8Array(12));
  await assert.rejects(readAll(garbled), isInvalidInput(/frame 0 does not start with "FRAME"/));
});

test("Y4mReader rejects input that is not Y4M from its first bytes, without waiting for a newline", async () => {
  let pulls = 0;
  // An endless binary stream with no newline: the check must fail on the first chunk.
  const endless = new ReadableStream<Uint8Array>({
    pull(controller) {
      pulls++;
      controller.enqueue(new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0b]));
    },
  }, { highWaterMark: 0 });
  await assert.rejects(Y4mReader.open(endless), isInvalidInput(/not a Y4M stream.*ffmpeg/));
  assert.ok(pulls <= 2, `pulled ${pulls} chunks`);
  await assert.rejects(readAll(text("RIFF....WAVEfmt \n")), isInvalidInput(/not a Y4M stream/));
  await assert.rejects(readAll(text("YUV4MPEG W2 H2 F1:1\n")), isInvalidInput(/not a Y4M stream/));
  await assert.rejects(readAll(new Uint8Array(0)), isInvalidInput(/Input is empty/));
});

test("Y4mReader rejects a header with no newline within 4 KiB instead of hanging", async () => {
  const endless = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(text("YUV4MPEG2 W2 H2 F1:1 X"));
    },
    pull(controller) {
      controller.enqueue(new Uint8Array(1000).fill(0x41));
    },
  }, { highWaterMark: 0 });
  await assert.rejects(Y4mReader.open(endless), isInvalidInput(/no newline in its first 4096 bytes/));
});

test("Y4mReader rejects headers without W, H or F", async () => {
  await assert.rejects(readAll(text("YUV4MPEG2 H2 F1:1\n")), isInvalidInput(/no W \(width\)/));
  await assert.rejects(readAll(text("YUV4MPEG2 W2 F1:1\n")), isInvalidInput(/no H \(height\)/));
  await assert.rejects(readAll(text("YUV4MPEG2 W2 H2\n")), isInvalidInput(/no F \(frame rate\)/));
  await assert.rejects(readAll(text("YUV4MPEG2 W2 H2 F30\n")), isInvalidInput(/F30 is not a valid ratio/));
  await assert.rejects(
    readAll(text("YUV4MPEG2 W2 H2 F30:0\n")),
    isInvalidInput(/F30:0 is not a valid ratio/),
  );
});

test("Y4mReader rejects zero, negative and non-numeric sizes", async () => {
  await assert.rejects(
    readAll(text("YUV4MPEG2 W0 H2 F1:1\n")),
    isInvalidInput(/width must be positive, got 0/),
  );
  await assert.rejects(
    readAll(text("YUV4MPEG2 W2 H-4 F1:1\n")),
    isInvalidInput(/height must be positive, got -4/),
  );
  await assert.rejects(readAll(text("YUV4MPEG2 Wabc H2 F1:1\n")), isInvalidInput(/Wabc is not a number/));
});

test("Y4mReader rejects huge sizes with a clear error before allocating", async () => {
  await assert.rejects(
    readAll(text("YUV4MPEG2 W20000 H2 F1:1\n")),
    isInvalidInput(/width 20000 is larger than the 16384/),
  );
  await assert.rejects(
    readAll(text("YUV4MPEG2 W2 H99999999999999999999 F1:1\n")),
    isInvalidInput(/height .* is larger than the 16384/),
  );
  await assert.rejects(
    Y4mReader.open(chunked(text("YUV4MPEG2 W16384 H16384 F1:1 C444p12\n"), 64)),
    isInvalidInput(/take 1610612736 bytes each, more than the 1073741824 allowed/),
  );
  await assert.rejects(
    Y4mReader.open(chunked(text("YUV4MPEG2 W64 H64 F1:1\n"), 64), { maxFrameBytes: 1000 }),
    isInvalidInput(/more than the 1000 allowed/),
  );
});

test("Y4mReader rejects unsupported colourspaces and names the supported ones", async () => {
  await assert.rejects(
    readAll(text("YUV4MPEG2 W2 H2 F1:1 C411\n")),
    isInvalidInput(/C411 is not supported: use one of .*C420p10/),
  );
  await assert.rejects(
    readAll(text("YUV4MPEG2 W2 H2 F1:1 C444alpha\n")),
    isInvalidInput(/C444alpha is not supported/),
  );
  await assert.rejects(
    readAll(text("YUV4MPEG2 W2 H2 F1:1 C420p16\n")),
    isInvalidInput(/C420p16 is not supported/),
  );
});

test("Y4mReader stops reading after a break and releases the stream", async () => {
  let pulled = 0;
  const marker = text("FRAME\n");
  let cancelled = false;
  // An endless source: reading three frames must not need the rest of it.
  const endless = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(text("YUV4MPEG2 W4 H2 F30:1\n"));
    },
    pull(controller) {
      pulled++;
      controller.enqueue(concat(marker, new Uint8Array(12).fill(pulled)));
    },
    cancel() {
      cancelled = true;
    },
  }, { highWaterMark: 0 });
  const reader = await Y4mReader.open(endless);
  assert.equal(endless.locked, true);
  const got: number[] = [];
  for await (const frame of reader.frames()) {
    got.push(frame.data[0]);
    if (got.length === 3) break;
  }
  assert.deepEqual(got, [1, 2, 3]);
  assert.ok(pulled <= 4, `pulled ${pulled} chunks`);
  assert.equal(reader.closed, true);
  assert.equal(cancelled, true);
  assert.equal(endless.locked, false);
});

test("Y4mReader.close releases the lock, is idempotent, and frames() can only be called once", async () => {
  const stream = chunked(y4m("YUV4MPEG2 W4 H2 F30:1", 12, 2), 7);
  const reader = await Y4mReader.open(stream);
  reader.frames();
  assert.throws(
    () => reader.frames(),
    (err: unknown) => err instanceof EncoderError && err.code === "INVALID_STATE",
  );
  await reader.close();
  await reader.close();
  assert.equal(stream.locked, false);
  const other = await Y4mReader.open(chunked(y4m("YUV4MPEG2 W4 H2 F30:1", 12, 2), 7));
  await other.cancel(new Error("not needed"));
  assert.throws(() => other.frames(), (err: unknown) => err instanceof EncoderError && err.code === "CLOSED");
});

test("encodeY4mHeader writes the conventional tags for each geometry", () => {
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  const base = { width: 64, height: 48, fps: { num: 30000, den: 1001 } };
  assert.equal(
    decode(encodeY4mHeader({ ...base, bitDepth: 8, chroma: "420" })),
    "YUV4MPEG2 W64 H48 F30000:1001 Ip A0:0 C420jpeg\n",
  );
  assert.equal(
    decode(
      encodeY4mHeader({
        ...base,
        bitDepth: 10,
        chroma: "420",
        colorRange: "full",
        pixelAspect: { num: 1, den: 1 },
      }),
    ),
    "YUV4MPEG2 W64 H48 F30000:1001 Ip A1:1 C420p10 XCOLORRANGE=FULL\n",
  );
  assert.match(
    decode(encodeY4mHeader({ ...base, bitDepth: 8, chroma: "420", chromaPosition: "vertical" })),
    / C420mpeg2\n$/,
  );
  assert.match(
    decode(encodeY4mHeader({ ...base, bitDepth: 8, chroma: "420", colorspace: "420paldv" })),
    / C420paldv\n$/,
  );
  assert.match(decode(encodeY4mHeader({ ...base, bitDepth: 12, chroma: "444" })), / C444p12\n$/);
  assert.match(decode(encodeY4mHeader({ ...base, bitDepth: 10, chroma: "mono" })), / Cmono10\n$/);
  assert.throws(
    () => encodeY4mHeader({ ...base, bitDepth: 9, chroma: "420" }),
    /cannot describe 420 video at 9 bits/,
  );
  assert.deepEqual([...encodeY4mFrame({ data: new Uint8Array([1, 2]) }, "Ip")], [
    ...text("FRAME Ip\n"),
    1,
    2,
  ]);
});

test("Y4mWriter output reads back with the same info and frames", async () => {
  for (
    const info of [
      { width: 6, height: 4, fps: { num: 25, den: 1 }, bitDepth: 8, chroma: "420", colorRange: "full" },
      {
        width: 5,
        height: 3,
        fps: { num: 60000, den: 1001 },
        bitDepth: 10,
        chroma: "422",
        pixelAspect: { num: 4, den: 3 },
      },
      { width: 3, height: 3, fps: { num: 1, den: 1 }, bitDepth: 8, chroma: "mono" },
    ] as VideoInfo[]
  ) {
    const out = memoryWritable();
    const writer = new Y4mWriter(out.writable, info);
    const size = frameByteLength(info);
    const sent = [0, 1, 2].map((f) => ({ data: new Uint8Array(size).map((_, i) => (i * 3 + f) & 0xff) }));
    for (const frame of sent) await writer.write(frame);
    await assert.rejects(writer.write({ data: new Uint8Array(size + 1) }), /describes \d+/);
    await writer.close();
    assert.equal(out.closed(), true);
    assert.equal(writer.frameCount, 3);
    const { info: back, frames } = await readAll(out.bytes(), 3);
    assert.equal(back.width, info.width);
    assert.equal(back.height, info.height);
    assert.deepEqual(back.fps, info.fps);
    assert.equal(back.bitDepth, info.bitDepth);
    assert.equal(back.chroma, info.chroma);
    assert.equal(back.colorRange, info.colorRange);
    assert.deepEqual(back.pixelAspect, info.pixelAspect);
    assert.deepEqual(frames.map((f) => f.data), sent.map((f) => f.data));
  }
});

test("Y4mWriter writes the header even when no frame is written", async () => {
  const out = memoryWritable();
  await new Y4mWriter(out.writable, {
    width: 2,
    height: 2,
    fps: { num: 1, den: 1 },
    bitDepth: 8,
    chroma: "420",
  }).close();
  assert.equal(out.chunks.length, 1);
  assert.equal(new TextDecoder().decode(out.bytes()), "YUV4MPEG2 W2 H2 F1:1 Ip A0:0 C420jpeg\n");
});

const ffmpeg = "/usr/bin/ffmpeg";
test(
  "Y4mReader reads ffmpeg's Y4M output at 8 and 10 bits, full range included",
  { skip: existsSync(ffmpeg) ? false : "ffmpeg not installed" },
  async () => {
    for (
      const [pixFmt, tag, depth, range] of [
        ["yuv420p", "420jpeg", 8, "limited"],
        ["yuv420p10le", "420p10", 10, "limited"],
        ["yuvj444p", "444", 8, "full"],
      ] as const
    ) {
      const run = spawnSync(ffmpeg, [
        ...["-v", "error", "-f", "lavfi", "-i", "testsrc2=size=34x18:rate=24000/1001", "-frames:v", "3"],
        ...["-pix_fmt", pixFmt, "-strict", "-1", "-f", "yuv4mpegpipe", "-"],
      ]);
      assert.equal(run.status, 0, String(run.stderr));
      const { info, frames } = await readAll(new Uint8Array(run.stdout), 1000);
      assert.equal(info.colorspace, tag, pixFmt);
      assert.equal(info.bitDepth, depth);
      assert.equal(info.width, 34);
      assert.equal(info.height, 18);
      assert.deepEqual(info.fps, { num: 24000, den: 1001 });
      assert.equal(info.colorRange ?? "limited", range, pixFmt);
      assert.equal(frames.length, 3);
      assert.equal(frames[2].data.length, frameByteLength(info));
    }
  },
);
