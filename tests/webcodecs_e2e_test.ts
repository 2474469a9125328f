import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { ivfFileSink, IvfWriter } from "../lib/io/mod.ts";
import { VideoFrame, type VideoPixelFormat } from "../lib/webcodecs/mod.ts";
import { dav1dFrameCount, needs, tempPath } from "./_helpers/encode.ts";
import { fastConfig, recordingEncoder } from "./_helpers/webcodecs.ts";

const W = 160, H = 120, FRAMES = 16;

/** A flat colour per frame, so the decoded luma can be checked against BT.601. */
function colour(i: number): [number, number, number] {
  return [(i * 37) % 256, (60 + i * 11) % 256, (200 - i * 9) % 256];
}

function expectedLuma(r: number, g: number, b: number): number {
  return 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255;
}

function packedFrame(i: number, format: VideoPixelFormat): VideoFrame {
  const [r, g, b] = colour(i);
  const px = new Uint8Array(W * H * 4);
  const pixel = format === "RGBA" || format === "RGBX" ? [r, g, b, 255] : [b, g, r, 255];
  for (let p = 0; p < W * H; p++) px.set(pixel, p * 4);
  return new VideoFrame(px, {
    format,
    codedWidth: W,
    codedHeight: H,
    timestamp: i * 33_333,
    duration: 33_333,
  });
}

function nv12Frame(i: number): VideoFrame {
  const [r, g, b] = colour(i);
  const data = new Uint8Array(W * H * 3 / 2).fill(128);
  data.fill(Math.round(expectedLuma(r, g, b)), 0, W * H);
  return new VideoFrame(data, { format: "NV12", codedWidth: W, codedHeight: H, timestamp: i * 33_333 });
}

for (const backend of ["svt-av1", "rav1e"] as const) {
  test(
    `VideoEncoder (${backend}) chunks written to IVF decode with dav1d: every frame, right size, right luma`,
    needs("dav1d"),
    async () => {
      const { encoder, chunks, errors } = recordingEncoder();
      encoder.configure(fastConfig(backend, { bitrate: 300_000, framerate: 30 }));
      const formats: VideoPixelFormat[] = ["RGBA", "BGRA", "RGBX", "BGRX"];
      for (let i = 0; i < FRAMES; i++) {
        const frame = i % 5 === 4 ? nv12Frame(i) : packedFrame(i, formats[i % 4]);
        encoder.encode(frame, { keyFrame: i === 6 });
        frame.close();
        // A flush mid-stream: the encoder goes on with a new key frame and continuing timestamps.
        if (i === 9) await encoder.flush();
      }
      await encoder.flush();
      encoder.close();
      assert.deepEqual(errors, []);
      assert.equal(chunks.length, FRAMES);
      assert.equal(chunks[6].chunk.type, "key");
      assert.equal(chunks[10].chunk.type, "key");

      const path = tempPath(`webcodecs_${backend}.ivf`);
      const ivf = new IvfWriter(await ivfFileSink(path), { width: W, height: H, fps: { num: 30, den: 1 } });
      for (const c of chunks) {
        await ivf.writePacket({ data: c.bytes, timestamp: Math.round(c.chunk.timestamp / 33_333) });
      }
      await ivf.close();
      assert.equal(dav1dFrameCount(path), FRAMES);

      const yuv = tempPath(`webcodecs_${backend}.yuv`);
      const r = spawnSync("dav1d", ["-q", "-i", path, "-o", yuv, "--muxer", "yuv"]);
      assert.equal(r.status, 0, r.stderr?.toString());
      const decoded = readFileSync(yuv);
      const frameBytes = W * H * 3 / 2;
      assert.equal(decoded.length, frameBytes * FRAMES, "decoded 160x120 4:2:0 frames");
      for (let i = 0; i < FRAMES; i++) {
        let sum = 0;
        for (let p = 0; p < W * H; p++) {
          sum += decoded[i * frameBytes + p];
        }
        const mean = sum / (W * H);
        const want = expectedLuma(...colour(i));
        assert.ok(
          Math.abs(mean - want) < 6,
          `frame ${i}: decoded luma ${mean.toFixed(1)}, expected ${want.toFixed(1)}`,
        );
      }
    },
  );
}
