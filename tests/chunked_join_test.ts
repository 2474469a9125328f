import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { isKeyFramePacket } from "../lib/av1/obu.ts";
import { encodeChunk } from "../lib/chunked/encode_chunk.ts";
import { joinChunks } from "../lib/chunked/join.ts";
import { encodeChunked } from "../lib/chunked/local.ts";
import type { Manifest } from "../lib/chunked/work_dir.ts";
import { readY4mFileInfo, readY4mRange } from "../lib/chunked/y4m_file.ts";
import { probeFile } from "../lib/container/probe.ts";
import { EncoderError } from "../lib/errors.ts";
import { encodeIvfFrameHeader, encodeIvfHeader } from "../lib/io/ivf.ts";
import { testSource, testSourceY4m } from "../lib/io/testsrc.ts";
import { ivfPackets, writeHardCutY4m } from "./_helpers/chunked_media.ts";
import { dav1dFrameCount, needs, tempPath } from "./_helpers/encode.ts";

const PLAN = { minLength: 8, maxLength: 16 };

test(
  "encodeChunked SVT-AV1: the joined IVF is the chunks' packets with one running timestamp count",
  { ...needs("dav1d"), timeout: 120_000 },
  async () => {
    const input = await writeHardCutY4m(tempPath("in.y4m"));
    const out = tempPath("svt.ivf");
    const progress: number[] = [];
    const r = await encodeChunked(input, { preset: 12, crf: 40 }, {
      output: out,
      workDir: tempPath("work"),
      workers: 2,
      plan: PLAN,
      onProgress: (p) => progress.push(p.framesDone),
    });
    assert.equal(r.frames, 40);
    assert.deepEqual(r.sceneChanges, [23]);
    const manifest = JSON.parse(readFileSync(join(r.workDir, "manifest.json"), "utf8")) as Manifest;
    assert.ok(manifest.chunks.some((c) => c.start === 23), "a chunk starts at the scene cut");
    assert.equal(r.chunks, manifest.chunks.length);

    // Expected bytes: IVF header with the frame count, then each chunk's packets, timestamps + chunk start.
    const parts: Uint8Array[] = [encodeIvfHeader({ width: 160, height: 120, fps: { num: 30, den: 1 } }, 40)];
    for (const c of manifest.chunks) {
      const packets = await ivfPackets(join(r.workDir, manifest.done[String(c.index)].file));
      assert.equal(packets.length, c.end - c.start);
      for (const p of packets) parts.push(encodeIvfFrameHeader(p.data.length, c.start + p.timestamp), p.data);
    }
    assert.deepEqual(new Uint8Array(readFileSync(out)), new Uint8Array(Buffer.concat(parts)));

    const joined = await ivfPackets(out);
    assert.deepEqual(joined.map((p) => p.timestamp).sort((a, b) => a - b), [...Array(40).keys()]);
    const keys = joined.flatMap((p, i) => (isKeyFramePacket(p.data) ? [i] : []));
    assert.deepEqual(
      keys,
      manifest.chunks.map((c) => c.start),
      "exactly one key frame per chunk, at its start",
    );
    assert.equal(dav1dFrameCount(out), 40);
    assert.equal(progress.at(-1), 40);
  },
);

test(
  "encodeChunked rav1e: IVF decodes frame for frame with dav1d, MP4 has every frame",
  { ...needs("dav1d"), timeout: 120_000 },
  async () => {
    const input = await writeHardCutY4m(tempPath("in.y4m"));
    const work = tempPath("work");
    const ivf = tempPath("rav1e.ivf");
    const r = await encodeChunked(input, { codec: "rav1e", speed: 10, quantizer: 120 }, {
      output: ivf,
      workDir: work,
      workers: 2,
      plan: PLAN,
    });
    assert.equal(r.frames, 40);
    assert.equal(dav1dFrameCount(ivf), 40);
    const mp4 = tempPath("rav1e.mp4");
    // Same input and settings: the chunks are reused (resume), only the join runs again.
    const again = await encodeChunked(input, { codec: "rav1e", speed: 10, quantizer: 120 }, {
      output: mp4,
      format: "mp4",
      workDir: work,
      resume: true,
      plan: PLAN,
    });
    assert.equal(again.chunksResumed, again.chunks);
    const probe = await probeFile(mp4);
    assert.equal(probe.frames, 40);
    assert.equal(probe.keyFrames, r.chunks);
  },
);

test(
  "a Y4M stream (stdin) is spilled and gives the same bytes as the file",
  { timeout: 120_000 },
  async () => {
    const opts = { width: 160, height: 120, frames: 24 };
    const file = tempPath("src.y4m");
    const { spillY4m } = await import("../lib/chunked/y4m_file.ts");
    const src = testSource(opts);
    await spillY4m(src.frames(), src.info, file);
    const a = tempPath("a.ivf");
    const b = tempPath("b.ivf");
    const cfg = { preset: 12 };
    await encodeChunked(file, cfg, {
      output: a,
      workDir: tempPath("wa"),
      workers: 2,
      plan: { minLength: 8, maxLength: 8 },
    });
    await encodeChunked(testSourceY4m(opts), cfg, {
      output: b,
      workDir: tempPath("wb"),
      workers: 1,
      plan: { minLength: 8, maxLength: 8 },
    });
    assert.deepEqual(readFileSync(a), readFileSync(b));
  },
);

test(
  "joinChunks refuses chunks whose sequence headers differ, before writing anything",
  { timeout: 120_000 },
  async () => {
    const input = await writeHardCutY4m(tempPath("in.y4m"), 16, 8);
    const info = await readY4mFileInfo(input);
    const { indexY4mFile } = await import("../lib/chunked/y4m_file.ts");
    const index = await indexY4mFile(input);
    const a = tempPath("a.ivf");
    const b = tempPath("b.ivf");
    await encodeChunk(readY4mRange(input, index.offsets[0], 8), {
      index: 0,
      start: 0,
      end: 8,
      info,
      config: { preset: 12 },
      path: a,
    });
    await encodeChunk(readY4mRange(input, index.offsets[8], 8), {
      index: 1,
      start: 8,
      end: 16,
      info,
      config: { codec: "rav1e", speed: 10 },
      path: b,
    });
    const out = tempPath("mixed.ivf");
    await assert.rejects(
      joinChunks([{ path: a, start: 0, frames: 8 }, { path: b, start: 8, frames: 8 }], out, info),
      (e) =>
        e instanceof EncoderError && e.code === "INVALID_INPUT" && /sequence header differs/.test(e.message),
    );
    assert.throws(() => readFileSync(out), /ENOENT/);
    await assert.rejects(
      joinChunks(
        [{ path: a, start: 0, frames: 8 }, { path: a, start: 9, frames: 8 }],
        tempPath("gap.ivf"),
        info,
      ),
      /missing/,
    );
  },
);
