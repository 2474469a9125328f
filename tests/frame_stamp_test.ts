// The frame-index bar code of bench/latency.ts: stamped into the test source, encoded by each backend with
// the live settings at a harsh quantizer, decoded by dav1d, and read back from the decoded luma.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import {
  READ_FRAME_INDEX_SOURCE,
  readFrameIndex,
  stampBlock,
  stampFrameIndex,
} from "../bench/frame_stamp.ts";
import { Rav1eEncoder } from "../lib/encoder/rav1e.ts";
import { SvtAv1Encoder } from "../lib/encoder/svt_av1.ts";
import { ivfFileSink, IvfWriter } from "../lib/io/mod.ts";
import { testSource } from "../lib/io/testsrc.ts";
import type { Encoder } from "../lib/types.ts";
import { encodeAll, needs, tempPath } from "./_helpers/encode.ts";

const W = 640, H = 360;
// Every bit pattern's edge cases: all zeros, all ones, alternating, single bits, and counting.
const INDICES = [0, 65535, 0xaaaa, 0x5555, 1, 0x8000, 2, 3, 300, 301, 302, 4095, 4096, 12345, 54321, 7, 8, 9];

test("the frame stamp reads back from the picture it was written into, at every width it fits", () => {
  for (const width of [128, 320, 640, 1280]) {
    const height = 2 * stampBlock(width);
    for (const index of INDICES) {
      const luma = new Uint8Array(width * height).fill(128);
      stampFrameIndex(luma, width, height, index);
      assert.equal(readFrameIndex(luma, width, width), index, `${width} wide, index ${index}`);
    }
  }
  // The page's copy is the same function.
  const fromSource = new Function(`return (${READ_FRAME_INDEX_SOURCE})`)() as typeof readFrameIndex;
  const luma = new Uint8Array(W * 64);
  stampFrameIndex(luma, W, 64, 0xabcd);
  assert.equal(fromSource(luma, W, W), 0xabcd);
});

test("a picture without a stamp, or with a damaged one, reads as null; bad indices and sizes are refused", () => {
  assert.equal(readFrameIndex(new Uint8Array(W * 64).fill(16), W, W), null, "all black");
  assert.equal(readFrameIndex(new Uint8Array(W * 64).fill(128), W, W), null, "all grey");
  const luma = new Uint8Array(W * 64);
  stampFrameIndex(luma, W, 64, 0x1234);
  // Block 5's lower half (the inverted row) painted like its upper half: the rows agree there.
  for (let y = 32; y < 64; y++) luma.copyWithin(y * W + 5 * 32, (y - 32) * W + 5 * 32, (y - 32) * W + 6 * 32);
  assert.equal(readFrameIndex(luma, W, W), null);
  assert.throws(() => stampFrameIndex(new Uint8Array(W * 64), W, 64, 65536), RangeError);
  assert.throws(() => stampFrameIndex(new Uint8Array(W * 64), W, 64, -1), RangeError);
  assert.throws(() => stampFrameIndex(new Uint8Array(100 * 100), 100, 100, 1), /too small/);
});

async function stampedRoundTrip(name: string, encoder: Encoder): Promise<(number | null)[]> {
  const source = testSource({ width: W, height: H, frames: INDICES.length });
  const frames = INDICES.map((index, n) => {
    const f = source.frame(n);
    stampFrameIndex(f.data, W, H, index);
    return f;
  });
  const packets = await encodeAll(encoder, frames);
  await encoder.close();
  assert.equal(packets.length, INDICES.length);
  const ivfPath = tempPath(`frame_stamp_${name}.ivf`);
  const ivf = new IvfWriter(await ivfFileSink(ivfPath), { width: W, height: H, fps: { num: 30, den: 1 } });
  for (const p of packets) await ivf.writePacket(p);
  await ivf.close();
  const yuvPath = tempPath(`frame_stamp_${name}.yuv`);
  const r = spawnSync("dav1d", ["-q", "-i", ivfPath, "-o", yuvPath, "--muxer", "yuv"]);
  assert.equal(r.status, 0, r.stderr?.toString());
  const yuv = readFileSync(yuvPath);
  const frameBytes = W * H * 3 / 2;
  assert.equal(yuv.length, frameBytes * INDICES.length, "every frame decoded");
  return INDICES.map((_, n) => readFrameIndex(yuv.subarray(n * frameBytes), W, W));
}

test("stamped indices survive SVT-AV1 low delay at crf 55, decoded by dav1d", needs("dav1d"), async () => {
  const info = testSource({ width: W, height: H }).info;
  const enc = await SvtAv1Encoder.create({ ...info, preset: 12, lowDelay: true, crf: 55, keyint: 60 });
  assert.deepEqual(await stampedRoundTrip("svt", enc), INDICES);
});

test(
  "stamped indices survive rav1e low latency at quantizer 200, decoded by dav1d",
  needs("dav1d"),
  async () => {
    const info = testSource({ width: W, height: H }).info;
    const enc = await Rav1eEncoder.create({
      ...info,
      speed: 10,
      lowLatency: true,
      rdoLookahead: 1,
      quantizer: 200,
      keyint: 60,
    });
    assert.deepEqual(await stampedRoundTrip("rav1e", enc), INDICES);
  },
);
