import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { test } from "node:test";
import { planChunks, planFromScores } from "../lib/chunked/plan.ts";
import { indexY4mFile, readY4mRange } from "../lib/chunked/y4m_file.ts";
import { EncoderError } from "../lib/errors.ts";
import { encodeY4mHeader } from "../lib/io/y4m.ts";
import { hardCutFrames, writeHardCutY4m } from "./_helpers/chunked_media.ts";
import { tempPath } from "./_helpers/encode.ts";

function assertCovers(chunks: { index: number; start: number; end: number }[], n: number) {
  let at = 0;
  for (const [i, c] of chunks.entries()) {
    assert.equal(c.index, i);
    assert.equal(c.start, at);
    assert.ok(c.end > c.start);
    at = c.end;
  }
  assert.equal(at, n);
}

test("planFromScores cuts at a scene change when both sides keep minLength", () => {
  const scores = new Array(60).fill(3);
  scores[25] = 90;
  scores[4] = 90; // too close to the start: a scene change, but no chunk of 4 frames
  const plan = planFromScores(scores, { minLength: 8, maxLength: 40 });
  assert.deepEqual(plan.sceneChanges, [4, 25]);
  assert.deepEqual(plan.chunks.map((c) => [c.start, c.end]), [[0, 25], [25, 60]]);
});

test("planFromScores keeps every chunk within minLength and maxLength on random scores", () => {
  let seed = 7;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  for (let round = 0; round < 200; round++) {
    const n = 1 + Math.floor(rand() * 300);
    const min = 1 + Math.floor(rand() * 20);
    const max = min * 2 + Math.floor(rand() * 40);
    const scores = Array.from({ length: n }, () => (rand() < 0.05 ? 100 : rand() * 5));
    const plan = planFromScores(scores, { minLength: min, maxLength: max });
    assertCovers(plan.chunks, n);
    for (const [i, c] of plan.chunks.entries()) {
      const len = c.end - c.start;
      assert.ok(len <= max, `chunk ${i} has ${len} > ${max} frames`);
      if (i < plan.chunks.length - 1 || plan.chunks.length === 1) continue;
      assert.ok(len >= min || n < min, `last chunk has ${len} < ${min} frames (n ${n})`);
    }
    for (const c of plan.chunks.slice(0, -1)) assert.ok(c.end - c.start >= min);
  }
});

test("planFromScores with fixed intervals cuts every maxLength frames and never leaves a stub", () => {
  const plan = planFromScores({ frameCount: 100 }, { method: "fixed", minLength: 10, maxLength: 30 });
  assert.deepEqual(plan.chunks.map((c) => c.end - c.start), [30, 30, 30, 10]);
  const stub = planFromScores({ frameCount: 65 }, { method: "fixed", minLength: 10, maxLength: 30 });
  assertCovers(stub.chunks, 65);
  assert.ok(stub.chunks.every((c) => c.end - c.start >= 10 && c.end - c.start <= 30));
});

test("forced key frames always start a chunk, even inside minLength", () => {
  const plan = planFromScores({ frameCount: 50 }, {
    method: "fixed",
    minLength: 10,
    maxLength: 40,
    keyFrames: [5, 30],
  });
  assert.deepEqual(plan.chunks.map((c) => c.start), [0, 5, 30]);
});

test("planChunks finds the hard cut of a synthetic source and starts a chunk there", async () => {
  const src = hardCutFrames(40, 23);
  const plan = await planChunks(src.frames(), src.info, { minLength: 8, maxLength: 30 });
  assert.deepEqual(plan.sceneChanges, [23]);
  assert.deepEqual(plan.chunks.map((c) => [c.start, c.end]), [[0, 23], [23, 40]]);
});

test("indexY4mFile finds the same cut and every frame offset, frame parameters included", async () => {
  const path = await writeHardCutY4m(tempPath("cut.y4m"));
  const index = await indexY4mFile(path, { scores: true });
  assert.equal(index.frameCount, 40);
  const cuts = planFromScores(index.scores!, { minLength: 8, maxLength: 30 }).sceneChanges;
  assert.deepEqual(cuts, [23]);

  const info = { width: 4, height: 2, fps: { num: 25, den: 1 }, bitDepth: 8, chroma: "420" as const };
  const header = encodeY4mHeader(info);
  const parts: Uint8Array[] = [header];
  for (let i = 0; i < 5; i++) {
    parts.push(new TextEncoder().encode(i % 2 ? `FRAME Ixyz${"p".repeat(i)}\n` : "FRAME\n"));
    parts.push(new Uint8Array(12).fill(i));
  }
  const odd = tempPath("params.y4m");
  writeFileSync(odd, Buffer.concat(parts));
  const small = await indexY4mFile(odd);
  assert.equal(small.frameCount, 5);
  const frames = [];
  for await (const f of readY4mRange(odd, small.offsets[2], 3)) frames.push(f);
  assert.deepEqual(frames.map((f) => [f.timestamp, f.data[0], f.data.length]), [[0, 2, 12], [1, 3, 12], [
    2,
    4,
    12,
  ]]);
});

test("bad chunk lengths are an INVALID_CONFIG error", () => {
  assert.throws(
    () => planFromScores({ frameCount: 10 }, { minLength: 0 }),
    (e) => e instanceof EncoderError && e.code === "INVALID_CONFIG",
  );
  assert.throws(() => planFromScores({ frameCount: 10 }, { minLength: 10, maxLength: 5 }), /maxLength/);
  assert.throws(() => planFromScores({ frameCount: 10 }, { minLength: 1, maxLength: 70000 }), /65535/);
});
