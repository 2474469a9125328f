import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { test } from "node:test";
import { EncoderError } from "../lib/errors.ts";
import {
  isTestSourceSpec,
  parseFrameRate,
  parseTestSourceSpec,
  testSource,
  testSourceY4m,
} from "../lib/io/testsrc.ts";
import { Y4mReader } from "../lib/io/y4m.ts";
import { frameByteLength } from "../lib/types.ts";
import { collect, tempPath } from "./_helpers/io_streams.ts";

async function all<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

function differingBytes(a: Uint8Array, b: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) n++;
  return n;
}

test("testSource describes its frames and yields the requested count with timestamps", async () => {
  const source = testSource({ width: 64, height: 48, frames: 5 });
  assert.deepEqual(source.info.fps, { num: 30, den: 1 });
  assert.equal(source.info.bitDepth, 8);
  assert.equal(source.info.chroma, "420");
  assert.equal(source.info.frameCount, 5);
  assert.equal(source.frameSize, frameByteLength(source.info));
  const frames = await all(source.frames());
  assert.equal(frames.length, 5);
  assert.deepEqual(frames.map((f) => f.timestamp), [0, 1, 2, 3, 4]);
  for (const f of frames) {
    assert.equal(f.data.length, 64 * 48 * 3 / 2);
    assert.equal(f.duration, 1);
    assert.equal(f.data.buffer.byteLength, f.data.length);
  }
  assert.equal(testSource({ width: 8, height: 8 }).info.frameCount, 60);
});

test("testSource is deterministic for a seed and differs between seeds", async () => {
  const a = await all(testSource({ width: 96, height: 64, frames: 4, seed: 7 }).frames());
  const b = await all(testSource({ width: 96, height: 64, frames: 4, seed: 7 }).frames());
  const c = await all(testSource({ width: 96, height: 64, frames: 4, seed: 8 }).frames());
  assert.deepEqual(a, b);
  assert.ok(differingBytes(a[0].data, c[0].data) > 1000);
  // frames() restarts from frame 0 on every call.
  const source = testSource({ width: 96, height: 64, frames: 2, seed: 7 });
  assert.deepEqual((await all(source.frames()))[0], (await all(source.frames()))[0]);
});

test("testSource frames move: consecutive frames differ in luma and chroma", () => {
  const source = testSource({ width: 160, height: 120, frames: 10 });
  const lumaSize = 160 * 120;
  for (let t = 0; t < 9; t++) {
    const a = source.frame(t).data, b = source.frame(t + 1).data;
    const luma = differingBytes(a.subarray(0, lumaSize), b.subarray(0, lumaSize));
    const chroma = differingBytes(a.subarray(lumaSize), b.subarray(lumaSize));
    assert.ok(luma > lumaSize / 10, `frame ${t}: only ${luma} luma samples changed`);
    assert.ok(chroma > 0, `frame ${t}: chroma did not change`);
  }
});

test("testSource frames have detail: many distinct luma values and limited range", () => {
  const data = testSource({ width: 128, height: 96 }).frame(3).data;
  const luma = data.subarray(0, 128 * 96);
  assert.ok(new Set(luma).size > 100, `only ${new Set(luma).size} distinct luma values`);
  assert.ok(Math.min(...luma) >= 16 && Math.max(...luma) <= 235);
  assert.ok(Math.min(...data.subarray(128 * 96)) >= 16 && Math.max(...data.subarray(128 * 96)) <= 240);
});

test("testSource at 10 bits writes 16-bit little-endian samples within 0..1023 using the range", () => {
  const source = testSource({ width: 64, height: 48, bitDepth: 10, frames: 2 });
  assert.equal(source.info.bitDepth, 10);
  const data = source.frame(1).data;
  assert.equal(data.length, 64 * 48 * 3);
  const view = new DataView(data.buffer);
  let max = 0, min = 1023, odd = 0;
  for (let i = 0; i < data.length; i += 2) {
    const v = view.getUint16(i, true);
    max = Math.max(max, v);
    min = Math.min(min, v);
    if (v & 3) odd++;
  }
  assert.ok(max <= 1023 && max > 255, `max ${max}`);
  assert.ok(min >= 64, `min ${min}`);
  // Same picture as 8 bits, scaled by 4.
  const eight = testSource({ width: 64, height: 48, frames: 2 }).frame(1).data;
  for (let i = 0; i < eight.length; i += 97) assert.equal(view.getUint16(2 * i, true), eight[i] << 2);
  assert.equal(odd, 0);
});

test("testSource supports 4:2:2, 4:4:4 and monochrome, with odd sizes", () => {
  for (const chroma of ["422", "444", "mono"] as const) {
    const source = testSource({ width: 33, height: 17, chroma, frames: 1 });
    assert.equal(
      source.frame(0).data.length,
      frameByteLength({ width: 33, height: 17, bitDepth: 8, chroma }),
    );
  }
  assert.equal(testSource({ width: 33, height: 17 }).frame(0).data.length, 33 * 17 + 2 * 17 * 9);
  assert.equal(testSource({ width: 1, height: 1 }).frame(5).data.length, 3);
});

test("testSource renders a 1280x720 frame in well under 5 ms", () => {
  const source = testSource({ width: 1280, height: 720, frames: 60 });
  for (let t = 0; t < 10; t++) source.frame(t);
  // The fastest of many runs: the machine may be busy with other work, which is not what this measures.
  let best = Infinity;
  for (let t = 10; t < 60; t++) {
    const start = performance.now();
    source.frame(t);
    best = Math.min(best, performance.now() - start);
  }
  assert.ok(best < 5, `${best.toFixed(2)} ms per frame`);
});

test("testSource rejects bad options with INVALID_CONFIG", () => {
  const bad = (options: Parameters<typeof testSource>[0], pattern: RegExp) =>
    assert.throws(
      () => testSource(options),
      (err: unknown) =>
        err instanceof EncoderError && err.code === "INVALID_CONFIG" && pattern.test(err.message),
    );
  bad({ width: 0, height: 10 }, /width must be an integer from 1 to 16384, got 0/);
  bad({ width: 10, height: 20000 }, /height must be an integer from 1 to 16384, got 20000/);
  bad({ width: 10.5, height: 10 }, /width/);
  bad({ width: 10, height: 10, fps: { num: 0, den: 1 } }, /fps must be two positive integers/);
  bad({ width: 10, height: 10, frames: -1 }, /frames must be a non-negative integer/);
  bad({ width: 10, height: 10, bitDepth: 9 as 8 }, /bitDepth must be 8, 10 or 12/);
});

test("testSource with Infinity frames is endless and has no frameCount", async () => {
  const source = testSource({ width: 8, height: 8, frames: Infinity });
  assert.equal(source.info.frameCount, undefined);
  let n = 0;
  for await (const _ of source.frames()) if (++n === 100) break;
  assert.equal(n, 100);
});

test("testSourceY4m reads back through Y4mReader as the same frames", async () => {
  const options = { width: 48, height: 32, frames: 6, bitDepth: 10 as const, fps: { num: 25, den: 1 } };
  const reader = await Y4mReader.open(testSourceY4m(options));
  assert.equal(reader.info.width, 48);
  assert.equal(reader.info.bitDepth, 10);
  assert.deepEqual(reader.info.fps, { num: 25, den: 1 });
  const read = [];
  for await (const frame of reader.frames()) read.push(frame.data);
  const direct = (await all(testSource(options).frames())).map((f) => f.data);
  assert.deepEqual(read, direct);
});

test("testSourceY4m is produced on demand, not all at once", async () => {
  const stream = testSourceY4m({ width: 16, height: 16, frames: Infinity });
  const reader = stream.getReader();
  const header = await reader.read();
  assert.match(new TextDecoder().decode(header.value), /^YUV4MPEG2 W16 H16 F30:1 Ip A0:0 C420jpeg/);
  const frame = await reader.read();
  assert.equal(frame.value!.length, 6 + 16 * 16 * 3 / 2);
  await reader.cancel();
});

test("parseTestSourceSpec reads size, rate and frame count with defaults", () => {
  assert.deepEqual(parseTestSourceSpec("testsrc"), {
    width: 320,
    height: 240,
    fps: { num: 30, den: 1 },
    frames: 60,
  });
  assert.deepEqual(parseTestSourceSpec("testsrc:640x360@30:90"), {
    width: 640,
    height: 360,
    fps: { num: 30, den: 1 },
    frames: 90,
  });
  assert.deepEqual(parseTestSourceSpec("testsrc:1280x720"), {
    width: 1280,
    height: 720,
    fps: { num: 30, den: 1 },
    frames: 60,
  });
  assert.deepEqual(parseTestSourceSpec("testsrc:64x48:5").frames, 5);
  assert.deepEqual(parseTestSourceSpec("testsrc:64x48@30000/1001").fps, { num: 30000, den: 1001 });
  assert.deepEqual(parseTestSourceSpec("testsrc:64x48@29.97:10").fps, { num: 30000, den: 1001 });
  assert.deepEqual(parseTestSourceSpec("testsrc:64x48@12.5").fps, { num: 25, den: 2 });
  assert.equal(isTestSourceSpec("testsrc:64x48"), true);
  assert.equal(isTestSourceSpec("testsrc"), true);
  assert.equal(isTestSourceSpec("testsrc.y4m"), false);
});

test("parseFrameRate reads integers, ratios and NTSC decimals", () => {
  assert.deepEqual(parseFrameRate("60"), { num: 60, den: 1 });
  assert.deepEqual(parseFrameRate("24000/1001"), { num: 24000, den: 1001 });
  assert.deepEqual(parseFrameRate("23.976"), { num: 24000, den: 1001 });
  assert.deepEqual(parseFrameRate("59.94"), { num: 60000, den: 1001 });
  assert.deepEqual(parseFrameRate("25.0"), { num: 25, den: 1 });
  for (const bad of ["0", "abc", "30/0", "-5", "", "1e3"]) {
    assert.throws(() => parseFrameRate(bad), /is invalid: write an integer/, bad);
  }
});

test("parseTestSourceSpec rejects malformed specs with the syntax in the message", () => {
  const invalid = (spec: string, pattern: RegExp) =>
    assert.throws(
      () => parseTestSourceSpec(spec),
      (err: unknown) =>
        err instanceof EncoderError && err.code === "INVALID_INPUT" && pattern.test(err.message),
      spec,
    );
  for (
    const spec of [
      "testsrc:",
      "testsrc:640",
      "testsrc:640x",
      "testsrc:ax360",
      "foo:640x360",
      "testsrc:640x360:9:9",
    ]
  ) {
    invalid(spec, /is invalid: write it as testsrc\[:WIDTHxHEIGHT\[@FPS\]\[:FRAMES\]\]/);
  }
  invalid("testsrc:0x360", /width .* must be from 1 to 16384, got 0/);
  invalid("testsrc:640x99999", /height .* must be from 1 to 16384/);
  invalid("testsrc:640x360@fast", /Frame rate "fast" is invalid/);
  invalid("testsrc:640x360@30:many", /frame count "many" .* is not a whole number/);
});

const ffprobe = "/usr/bin/ffprobe";
test(
  "ffprobe reads the test source Y4M with the right size, pixel format and frame count",
  { skip: existsSync(ffprobe) ? false : "ffprobe not installed" },
  async () => {
    const path = tempPath("testsrc.y4m");
    await writeFile(path, await collect(testSourceY4m({ width: 96, height: 64, frames: 7, bitDepth: 10 })));
    const probe = spawnSync(ffprobe, [
      "-v",
      "error",
      "-count_frames",
      "-show_entries",
      "stream=width,height,pix_fmt,nb_read_frames,r_frame_rate",
      "-of",
      "json",
      path,
    ], { encoding: "utf8" });
    assert.equal(probe.status, 0, probe.stderr);
    const stream = JSON.parse(probe.stdout).streams[0];
    assert.equal(stream.width, 96);
    assert.equal(stream.height, 64);
    assert.equal(stream.pix_fmt, "yuv420p10le");
    assert.equal(stream.nb_read_frames, "7");
    assert.equal(stream.r_frame_rate, "30/1");
  },
);
