import assert from "node:assert/strict";
import { test } from "node:test";
import { EncodedVideoChunk, rgbToI420, VideoFrame } from "../lib/webcodecs/mod.ts";

const i420 = (w: number, h: number) => new Uint8Array(w * h + 2 * Math.ceil(w / 2) * Math.ceil(h / 2));

async function assertRejectsName(p: Promise<unknown>, name: string) {
  await assert.rejects(p, (e: Error) => e.name === name);
}

test("VideoFrame from an I420 buffer reports its geometry, timestamp and duration", () => {
  const frame = new VideoFrame(i420(4, 2), {
    format: "I420",
    codedWidth: 4,
    codedHeight: 2,
    timestamp: 1234,
    duration: 33_333,
  });
  assert.equal(frame.format, "I420");
  assert.equal(frame.codedWidth, 4);
  assert.equal(frame.codedHeight, 2);
  assert.equal(frame.displayWidth, 4);
  assert.equal(frame.displayHeight, 2);
  assert.equal(frame.timestamp, 1234);
  assert.equal(frame.duration, 33_333);
  assert.deepEqual({ ...frame.visibleRect }, {
    x: 0,
    y: 0,
    width: 4,
    height: 2,
    top: 0,
    left: 0,
    right: 4,
    bottom: 2,
  });
  assert.equal(frame.allocationSize(), 12);
  frame.close();
});

test("VideoFrame without a duration has a null duration", () => {
  const frame = new VideoFrame(i420(2, 2), { format: "I420", codedWidth: 2, codedHeight: 2, timestamp: 0 });
  assert.equal(frame.duration, null);
});

test("VideoFrame rejects a missing timestamp, zero or missing sizes and unknown formats with TypeError", () => {
  const data = i420(4, 4);
  const base = { format: "I420" as const, codedWidth: 4, codedHeight: 4, timestamp: 0 };
  const { timestamp: _t, ...noTimestamp } = base;
  assert.throws(() => new VideoFrame(data, noTimestamp as typeof base), TypeError);
  assert.throws(() => new VideoFrame(data, { ...base, codedWidth: 0 }), TypeError);
  assert.throws(() => new VideoFrame(data, { ...base, codedHeight: 0 }), TypeError);
  assert.throws(
    () => new VideoFrame(data, { ...base, codedWidth: undefined as unknown as number }),
    TypeError,
  );
  assert.throws(() => new VideoFrame(data, { ...base, format: "YUY2" as "I420" }), TypeError);
  assert.throws(() => new VideoFrame(data, { ...base, displayWidth: 4 }), TypeError);
  assert.throws(() => new VideoFrame(data, { ...base, displayWidth: 0, displayHeight: 4 }), TypeError);
  assert.throws(() => new VideoFrame("pixels" as unknown as Uint8Array, base), TypeError);
});

test("VideoFrame rejects data smaller than the coded picture", () => {
  const init = { format: "I420" as const, codedWidth: 4, codedHeight: 4, timestamp: 0 };
  assert.throws(() => new VideoFrame(new Uint8Array(23), init), TypeError);
  assert.throws(
    () => new VideoFrame(new Uint8Array(4 * 4 * 4 - 1), { ...init, format: "RGBA" }),
    TypeError,
  );
  assert.doesNotThrow(() => new VideoFrame(new Uint8Array(24), init));
});

test("VideoFrame with odd coded sizes in 4:2:0 rounds chroma planes up", () => {
  // 3x3 I420: 9 luma + 2 * (2x2) chroma = 17 bytes.
  assert.throws(
    () => new VideoFrame(new Uint8Array(16), { format: "I420", codedWidth: 3, codedHeight: 3, timestamp: 0 }),
    TypeError,
  );
  const frame = new VideoFrame(new Uint8Array(17), {
    format: "I420",
    codedWidth: 3,
    codedHeight: 3,
    timestamp: 0,
  });
  assert.equal(frame.allocationSize(), 17);
  // NV12 3x3: 9 luma + 2x2 interleaved pairs = 17 bytes too.
  const nv12 = new VideoFrame(new Uint8Array(17), {
    format: "NV12",
    codedWidth: 3,
    codedHeight: 3,
    timestamp: 0,
  });
  assert.equal(nv12.allocationSize(), 17);
});

test("VideoFrame rejects a visible rectangle outside the coded size or at odd chroma offsets", () => {
  const data = i420(8, 8);
  const init = { format: "I420" as const, codedWidth: 8, codedHeight: 8, timestamp: 0 };
  assert.throws(
    () => new VideoFrame(data, { ...init, visibleRect: { x: 4, y: 0, width: 6, height: 8 } }),
    TypeError,
  );
  assert.throws(
    () => new VideoFrame(data, { ...init, visibleRect: { x: 1, y: 0, width: 4, height: 4 } }),
    TypeError,
  );
  assert.throws(
    () => new VideoFrame(data, { ...init, visibleRect: { x: 0, y: 0, width: 0, height: 4 } }),
    TypeError,
  );
  const frame = new VideoFrame(data, { ...init, visibleRect: { x: 2, y: 2, width: 4, height: 4 } });
  assert.equal(frame.displayWidth, 4);
  assert.equal(frame.allocationSize(), 4 * 4 + 2 * 2 * 2);
});

test("VideoFrame owns a copy of its data", async () => {
  const data = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
  const frame = new VideoFrame(data, { format: "RGBA", codedWidth: 2, codedHeight: 2, timestamp: 0 });
  data.fill(0);
  const out = new Uint8Array(16);
  await frame.copyTo(out);
  assert.deepEqual([...out], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
});

test("VideoFrame reads planes where the layout says and copyTo returns a tight layout", async () => {
  // 2x2 I420 with 4-byte strides and planes in reverse order.
  const data = new Uint8Array(32).fill(0xee);
  data.set([10, 11], 16);
  data.set([12, 13], 20); // Y rows at 16 and 20
  data[8] = 20; // U at 8
  data[0] = 30; // V at 0
  const frame = new VideoFrame(data, {
    format: "I420",
    codedWidth: 2,
    codedHeight: 2,
    timestamp: 0,
    layout: [{ offset: 16, stride: 4 }, { offset: 8, stride: 4 }, { offset: 0, stride: 4 }],
  });
  const out = new Uint8Array(frame.allocationSize());
  const layout = await frame.copyTo(out);
  assert.deepEqual([...out], [10, 11, 12, 13, 20, 30]);
  assert.deepEqual(layout, [{ offset: 0, stride: 2 }, { offset: 4, stride: 1 }, { offset: 5, stride: 1 }]);
  assert.throws(
    () =>
      new VideoFrame(data, {
        format: "I420",
        codedWidth: 2,
        codedHeight: 2,
        timestamp: 0,
        layout: [{ offset: 0, stride: 1 }, { offset: 8, stride: 4 }, { offset: 12, stride: 4 }],
      }),
    TypeError,
  );
});

test("VideoFrame copyTo a rectangle copies that region of each plane", async () => {
  const w = 4, h = 4;
  const data = i420(w, h);
  for (let i = 0; i < w * h; i++) data[i] = i;
  data.fill(100, 16, 20);
  data.fill(200, 20, 24);
  const frame = new VideoFrame(data, { format: "I420", codedWidth: w, codedHeight: h, timestamp: 0 });
  const rect = { x: 2, y: 2, width: 2, height: 2 };
  const out = new Uint8Array(frame.allocationSize({ rect }));
  await frame.copyTo(out, { rect });
  assert.deepEqual([...out], [10, 11, 14, 15, 100, 200]);
  await assertRejectsName(frame.copyTo(new Uint8Array(3)), "TypeError");
});

test("VideoFrame clone shares pixels and closes independently; closed frames throw InvalidStateError", async () => {
  const frame = new VideoFrame(i420(2, 2).fill(7), {
    format: "I420",
    codedWidth: 2,
    codedHeight: 2,
    timestamp: 5,
  });
  const copy = frame.clone();
  frame.close();
  frame.close(); // idempotent
  assert.equal(frame.format, null);
  assert.equal(frame.codedWidth, 0);
  assert.throws(() => frame.allocationSize(), (e: Error) => e.name === "InvalidStateError");
  assert.throws(() => frame.clone(), (e: Error) => e.name === "InvalidStateError");
  await assertRejectsName(frame.copyTo(new Uint8Array(6)), "InvalidStateError");
  assert.equal(copy.format, "I420");
  assert.equal(copy.timestamp, 5);
  const out = new Uint8Array(6);
  await copy.copyTo(out);
  assert.deepEqual([...out], [7, 7, 7, 7, 7, 7]);
  copy.close();
});

test("VideoFrame wrapping another frame takes the new timestamp", () => {
  const frame = new VideoFrame(i420(2, 2), { format: "I420", codedWidth: 2, codedHeight: 2, timestamp: 5 });
  const moved = new VideoFrame(frame, { timestamp: 99 } as never);
  assert.equal(moved.timestamp, 99);
  assert.equal(moved.codedWidth, 2);
});

/** BT.601 limited range in floating point, the reference for the integer conversion. */
function bt601(r: number, g: number, b: number): [number, number, number] {
  const y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255;
  const u = 128 + (-37.797 * r - 74.203 * g + 112 * b) / 255;
  const v = 128 + (112 * r - 93.786 * g - 18.214 * b) / 255;
  return [y, u, v];
}

const COLOURS: [string, number, number, number][] = [
  ["black", 0, 0, 0],
  ["white", 255, 255, 255],
  ["red", 255, 0, 0],
  ["green", 0, 255, 0],
  ["blue", 0, 0, 255],
  ["grey", 128, 128, 128],
  ["orange", 255, 128, 0],
  ["teal", 20, 160, 170],
];

for (const format of ["RGBA", "RGBX", "BGRA", "BGRX"] as const) {
  test(`VideoFrame ${format} of known colours converts to BT.601 limited-range Y, U, V within 1`, () => {
    for (const [name, r, g, b] of COLOURS) {
      const w = 6, h = 4;
      const px = new Uint8Array(w * h * 4);
      for (let i = 0; i < w * h; i++) {
        px.set(format.startsWith("RGB") ? [r, g, b, 255] : [b, g, r, 255], i * 4);
      }
      const frame = new VideoFrame(px, { format, codedWidth: w, codedHeight: h, timestamp: 0 });
      const pic = VideoFrame.toI420(frame, 8)!;
      const [ey, eu, ev] = bt601(r, g, b);
      const at = (i: number) => pic.data[i];
      for (let i = 0; i < w * h; i++) assert.ok(Math.abs(at(i) - ey) <= 1, `${name} Y ${at(i)} vs ${ey}`);
      for (let i = 0; i < 6; i++) {
        assert.ok(Math.abs(at(w * h + i) - eu) <= 1, `${name} U ${at(w * h + i)} vs ${eu}`);
        assert.ok(Math.abs(at(w * h + 6 + i) - ev) <= 1, `${name} V ${at(w * h + 6 + i)} vs ${ev}`);
      }
    }
  });
}

test("RGBA to I420 averages each 2x2 block for chroma and handles odd sizes", () => {
  // 3x1: red, blue, white. Chroma block 0 averages red and blue; block 1 is white alone.
  const px = new Uint8Array([255, 0, 0, 255, 0, 0, 255, 255, 255, 255, 255, 255]);
  const out = new Uint8Array(3 + 2 + 2);
  rgbToI420({ data: px, stride: 12, offset: 0 }, 3, 1, "rgb", out);
  const red = bt601(255, 0, 0), blue = bt601(0, 0, 255), white = bt601(255, 255, 255);
  const avg = bt601(128, 0, 128);
  const expected = [red[0], blue[0], white[0], avg[1], white[1], avg[2], white[2]];
  out.forEach((v, i) => assert.ok(Math.abs(v - expected[i]) <= 1, `sample ${i}: ${v} vs ${expected[i]}`));
});

test("NV12 converts to I420 exactly", () => {
  const w = 4, h = 2;
  const nv12 = new Uint8Array([0, 1, 2, 3, 4, 5, 6, 7, 50, 60, 51, 61]);
  const frame = new VideoFrame(nv12, { format: "NV12", codedWidth: w, codedHeight: h, timestamp: 0 });
  assert.deepEqual([...VideoFrame.toI420(frame, 8)!.data], [0, 1, 2, 3, 4, 5, 6, 7, 50, 51, 60, 61]);
});

test("I420 converts to 10-bit and I420P10 to 8-bit for the configured depth", () => {
  const frame = new VideoFrame(new Uint8Array([0, 64, 128, 255, 16, 240]), {
    format: "I420",
    codedWidth: 2,
    codedHeight: 2,
    timestamp: 0,
  });
  const ten = VideoFrame.toI420(frame, 10)!.data;
  assert.deepEqual([...new Uint16Array(ten.buffer)], [0, 256, 512, 1020, 64, 960]);
  const p10 = new VideoFrame(ten, { format: "I420P10", codedWidth: 2, codedHeight: 2, timestamp: 0 });
  assert.deepEqual([...VideoFrame.toI420(p10, 8)!.data], [0, 64, 128, 255, 16, 240]);
  assert.deepEqual([...VideoFrame.toI420(p10, 10)!.data], [...ten]);
});

test("I420 with a visible rectangle converts only that region", () => {
  const w = 4, h = 4;
  const data = i420(w, h);
  for (let i = 0; i < 16; i++) data[i] = i;
  data.set([1, 2, 3, 4], 16);
  data.set([5, 6, 7, 8], 20);
  const frame = new VideoFrame(data, {
    format: "I420",
    codedWidth: w,
    codedHeight: h,
    timestamp: 0,
    visibleRect: { x: 2, y: 0, width: 2, height: 2 },
  });
  assert.deepEqual([...VideoFrame.toI420(frame, 8)!.data], [2, 3, 6, 7, 2, 6]);
});

test("RGBA to I420 at 1280x720 takes milliseconds", () => {
  const w = 1280, h = 720;
  const px = new Uint8Array(w * h * 4);
  for (let i = 0; i < px.length; i++) px[i] = (i * 7) & 255;
  const frame = new VideoFrame(px, { format: "RGBA", codedWidth: w, codedHeight: h, timestamp: 0 });
  VideoFrame.toI420(frame, 8); // warm up
  const runs = 10;
  const t0 = performance.now();
  for (let i = 0; i < runs; i++) VideoFrame.toI420(frame, 8);
  const ms = (performance.now() - t0) / runs;
  console.log(`RGBA→I420 1280x720: ${ms.toFixed(2)} ms per frame`);
  assert.equal(VideoFrame.toI420(frame, 8)!.data.length, w * h * 3 / 2);
});

test("EncodedVideoChunk copies its data and checks its init", () => {
  const data = new Uint8Array([1, 2, 3]);
  const chunk = new EncodedVideoChunk({ type: "delta", timestamp: 10, duration: 5, data });
  data[0] = 9;
  assert.equal(chunk.type, "delta");
  assert.equal(chunk.timestamp, 10);
  assert.equal(chunk.duration, 5);
  assert.equal(chunk.byteLength, 3);
  const out = new Uint8Array(3);
  chunk.copyTo(out);
  assert.deepEqual([...out], [1, 2, 3]);
  assert.throws(() => chunk.copyTo(new Uint8Array(2)), TypeError);
  assert.equal(new EncodedVideoChunk({ type: "key", timestamp: 0, data: new ArrayBuffer(1) }).duration, null);
  assert.throws(() => new EncodedVideoChunk({ type: "other" as "key", timestamp: 0, data }), TypeError);
  assert.throws(
    () => new EncodedVideoChunk({ type: "key", timestamp: undefined as unknown as number, data }),
    TypeError,
  );
});
