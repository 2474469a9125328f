// registerAv1Encoder: mediabunny's Output and Conversion encode AV1 through SVT-AV1 or rav1e.
import * as mb from "mediabunny";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { test } from "node:test";
import { fileReadable } from "../lib/io/file_stream.ts";
import { Y4mReader } from "../lib/io/y4m.ts";
import { quantizerFromQIndex, registerAv1Encoder } from "../lib/mediabunny/mod.ts";
import { ffprobe } from "./_helpers/container_media.ts";
import { dav1dFrameCount, needs, tempPath, y4mTestFile } from "./_helpers/encode.ts";
import { FfmpegVideoDecoder } from "./_helpers/ffmpeg_decoder.ts";

const W = 160, H = 96, FRAMES = 30;

// No runtime here has a WebCodecs VideoDecoder: the conversion's VP9 input is decoded by ffmpeg.
mb.registerDecoder(FfmpegVideoDecoder);

/** Copies a container's AV1 track to IVF with ffmpeg and counts the frames dav1d decodes from it. */
function dav1dDecodesTrack(path: string): number {
  const ivf = path.replace(/\.\w+$/, ".ivf");
  const r = spawnSync("ffmpeg", [
    "-v",
    "error",
    "-y",
    "-i",
    path,
    "-map",
    "0:v:0",
    "-c",
    "copy",
    "-f",
    "ivf",
    ivf,
  ]);
  assert.equal(r.status, 0, r.stderr?.toString());
  return dav1dFrameCount(ivf);
}

function assertAv1File(path: string, frames: number) {
  const probe = ffprobe(path);
  assert.equal(probe.stream.codec_name, "av1");
  assert.equal(Number(probe.stream.width), W);
  assert.equal(Number(probe.stream.height), H);
  assert.equal(Number(probe.stream.nb_read_frames), frames, "ffprobe decodes every frame");
  assert.equal(dav1dDecodesTrack(path), frames, "dav1d decodes every frame");
}

test("quantizerFromQIndex maps mediabunny's 0-255 AV1 quantizer to the registration's 0-63", () => {
  assert.deepEqual([0, 4, 80, 176, 208, 240, 244, 249, 255].map(quantizerFromQIndex), [
    0,
    1,
    20,
    44,
    52,
    60,
    61,
    62,
    63,
  ]);
});

test("registerAv1Encoder rejects a bad backend and a bad queue depth with EncoderError", async () => {
  await assert.rejects(
    registerAv1Encoder({ backend: "aom" as "rav1e" }),
    /backend must be "svt-av1" or "rav1e"/,
  );
  await assert.rejects(registerAv1Encoder({ maxQueuedFrames: -1 }), /maxQueuedFrames/);
});

test("registerAv1Encoder selects the backend: 32x32 is encodable with rav1e, not with SVT-AV1 (64x64 at least)", async () => {
  await registerAv1Encoder({ backend: "svt-av1", backendOptions: { preset: 12 } });
  assert.equal(await mb.canEncodeVideo("av1", { width: 32, height: 32 }), false);
  assert.equal(await mb.canEncodeVideo("av1", { width: W, height: H }), true);
  await registerAv1Encoder({ backend: "rav1e", backendOptions: { speed: 10 } });
  assert.equal(await mb.canEncodeVideo("av1", { width: 32, height: 32 }), true);
  assert.equal(await mb.canEncodeVideo("av1", { width: 33, height: 32 }), false, "odd sizes are refused");
});

for (const backend of ["svt-av1", "rav1e"] as const) {
  test(
    `registerAv1Encoder (${backend}): Y4M → WebM through a mediabunny Output, checked by ffprobe and dav1d`,
    needs("ffmpeg", "ffprobe", "dav1d"),
    async () => {
      await registerAv1Encoder({
        backend,
        backendOptions: backend === "svt-av1" ? { preset: 12 } : { speed: 10 },
      });
      const y4m = await y4mTestFile("mediabunny_", { width: W, height: H, frames: FRAMES });
      const reader = await Y4mReader.open(await fileReadable(y4m));
      const fps = reader.info.fps.num / reader.info.fps.den;
      const output = new mb.Output({ format: new mb.WebMOutputFormat(), target: new mb.BufferTarget() });
      const packets: mb.EncodedPacket[] = [];
      const source = new mb.VideoSampleSource({
        codec: "av1",
        bitrate: mb.QUALITY_LOW,
        onEncodedPacket: (packet) => void packets.push(packet),
      });
      output.addVideoTrack(source, { frameRate: fps });
      await output.start();
      let i = 0;
      for await (const frame of reader.frames()) {
        const sample = new mb.VideoSample(frame.data, {
          format: "I420",
          codedWidth: W,
          codedHeight: H,
          timestamp: i / fps,
          duration: 1 / fps,
        });
        await source.add(sample);
        sample.close();
        i++;
      }
      await output.finalize();
      assert.equal(i, FRAMES);
      assert.equal(packets.length, FRAMES);
      assert.equal(packets[0].type, "key");
      // mediabunny asks for a key frame every 2 s: at frame 0 and 60 of 30 fps, so only the first here.
      assert.deepEqual(packets.map((p) => p.timestamp), packets.map((_, k) => k / fps));
      const path = tempPath(`mediabunny_${backend}.webm`);
      writeFileSync(path, new Uint8Array(output.target.buffer!));
      assertAv1File(path, FRAMES);
    },
  );

  test(
    `registerAv1Encoder (${backend}): a mediabunny Conversion of a VP9 MP4 to an AV1 MP4, checked by ffprobe and dav1d`,
    needs("ffmpeg", "ffprobe", "dav1d"),
    async () => {
      await registerAv1Encoder({
        backend,
        backendOptions: backend === "svt-av1" ? { preset: 12 } : { speed: 10 },
      });
      const vp9 = tempPath(`mediabunny_src_${backend}.mp4`);
      const made = spawnSync("ffmpeg", [
        ...[
          "-v",
          "error",
          "-y",
          "-f",
          "lavfi",
          "-i",
          `testsrc2=size=${W}x${H}:rate=30`,
          "-frames:v",
          String(FRAMES),
        ],
        ...["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-pix_fmt", "yuv420p", vp9],
      ]);
      assert.equal(made.status, 0, made.stderr?.toString());
      const input = new mb.Input({ source: new mb.BufferSource(readFileSync(vp9)), formats: mb.ALL_FORMATS });
      const output = new mb.Output({ format: new mb.Mp4OutputFormat(), target: new mb.BufferTarget() });
      const conversion = await mb.Conversion.init({
        input,
        output,
        video: { codec: "av1", forceTranscode: true },
      });
      assert.equal(conversion.isValid, true, JSON.stringify(conversion.discardedTracks.map((t) => t.reason)));
      await conversion.execute();
      const path = tempPath(`mediabunny_${backend}.mp4`);
      writeFileSync(path, new Uint8Array(output.target.buffer!));
      assertAv1File(path, FRAMES);
    },
  );
}

test("registerAv1Encoder (rav1e, realtime): source.add() waits for the encoder, a bounded number of frames ahead", async () => {
  await registerAv1Encoder({ backend: "rav1e", backendOptions: { speed: 10 } });
  const output = new mb.Output({ format: new mb.WebMOutputFormat(), target: new mb.BufferTarget() });
  let packets = 0;
  const source = new mb.VideoSampleSource({
    codec: "av1",
    bitrate: mb.QUALITY_LOW,
    latencyMode: "realtime",
    onEncodedPacket: () => void packets++,
  });
  output.addVideoTrack(source, { frameRate: 30 });
  await output.start();
  const frames = 60;
  let ahead = 0;
  for (let i = 0; i < frames; i++) {
    const pixels = new Uint8Array(W * H * 3 / 2);
    for (let k = 0; k < W * H; k++) pixels[k] = (k + i * 7) & 255;
    const sample = new mb.VideoSample(pixels, {
      format: "I420",
      codedWidth: W,
      codedHeight: H,
      timestamp: i / 30,
      duration: 1 / 30,
    });
    await source.add(sample);
    sample.close();
    ahead = Math.max(ahead, i + 1 - packets);
  }
  await output.finalize();
  assert.equal(packets, frames);
  // rav1e takes a frame only once it has encoded the one before (low latency: ~5 frames of delay), and
  // mediabunny keeps at most 4 encode() calls open: without backpressure all 60 would be in before any came out.
  assert.ok(ahead <= 16, `the source ran ${ahead} frames ahead of the encoder's output`);
});

test("registerAv1Encoder rejects with LIBRARY_NOT_FOUND for a missing library; a sample format it cannot take fails add()", async () => {
  await assert.rejects(
    registerAv1Encoder({ backendOptions: { libraryPath: "/nonexistent/libSvtAv1Enc.so.1" } }),
    (e: unknown) => (e as { code?: string }).code === "LIBRARY_NOT_FOUND",
  );
  await registerAv1Encoder({ backend: "svt-av1", backendOptions: { preset: 12 } });
  const output = new mb.Output({ format: new mb.WebMOutputFormat(), target: new mb.BufferTarget() });
  const source = new mb.VideoSampleSource({ codec: "av1", bitrate: mb.QUALITY_LOW });
  output.addVideoTrack(source, { frameRate: 30 });
  await output.start();
  await assert.rejects(
    (async () => {
      // mediabunny keeps up to 4 encode() calls open: the error surfaces within a few frames.
      for (let i = 0; i < 8; i++) {
        const sample = new mb.VideoSample(new Uint8Array(W * H * 2), {
          format: "I422",
          codedWidth: W,
          codedHeight: H,
          timestamp: i / 30,
          duration: 1 / 30,
        });
        await source.add(sample);
        sample.close();
      }
      await output.finalize();
    })(),
    /takes video samples in I420, .*got I422: convert the samples first/,
  );
  await output.cancel();
});
