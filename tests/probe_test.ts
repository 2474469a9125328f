import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { test } from "node:test";
import { codecString, findSequenceHeader } from "../lib/av1/mod.ts";
import { CONTAINER_FORMATS, openContainerWriter } from "../lib/container/open.ts";
import { formatProbe, probeBytes, probeFile } from "../lib/container/probe.ts";
import { EncoderError } from "../lib/errors.ts";
import type { Packet } from "../lib/types.ts";
import { type Clip, clip, memorySink, tempPath } from "./_helpers/container_media.ts";

async function written(format: (typeof CONTAINER_FORMATS)[number], c: Clip): Promise<Uint8Array> {
  const sink = memorySink();
  const w = openContainerWriter(format, sink, c.info);
  for (const p of c.packets) await w.writePacket(p);
  await w.close();
  return sink.bytes();
}

function isInvalidInput(e: unknown) {
  assert.ok(e instanceof EncoderError, `expected EncoderError, got ${e}`);
  assert.equal(e.code, "INVALID_INPUT");
  return true;
}

test("probe reports format, codec, size, bit depth, frames, key frames, duration, bitrate and frame rate of every format", async () => {
  const c = await clip();
  const codec = codecString(findSequenceHeader(c.packets[0].data)!);
  const payload = c.packets.reduce((n, p) => n + p.data.length, 0);
  for (const format of CONTAINER_FORMATS) {
    const bytes = await written(format, c);
    const r = await probeBytes(bytes, format === "obu" ? { fps: { num: 30, den: 1 } } : {});
    assert.equal(r.format, format);
    assert.equal(r.codec, codec, format);
    assert.equal(r.width, 160);
    assert.equal(r.height, 120);
    assert.equal(r.bitDepth, 8);
    assert.equal(r.frames, 30, format);
    assert.equal(r.keyFrames, 3, format);
    if (format !== "ivf" && format !== "obu") assert.equal(r.containerKeyFrames, 3, format);
    assert.ok(Math.abs(r.durationSeconds! - 1) < 1e-9, `${format}: duration ${r.durationSeconds}`);
    assert.deepEqual(r.fps, { num: 30, den: 1 }, format);
    assert.equal(r.bytes, bytes.length);
    // Payload bits over the duration; MP4 samples lost their 2-byte temporal delimiters.
    const bits = (format === "mp4" || format === "fmp4" ? payload - 2 * 30 : payload) * 8;
    assert.ok(Math.abs(r.bitrateKbps! - bits / 1000) < 0.01, `${format}: ${r.bitrateKbps} kbit/s`);
  }
});

test("probe of an OBU stream without timing info reports no duration, bitrate or frame rate", async () => {
  const r = await probeBytes(await written("obu", await clip()));
  assert.equal(r.durationSeconds, null);
  assert.equal(r.bitrateKbps, null);
  assert.equal(r.fps, null);
  assert.equal(r.frames, 30);
});

test("probe reads 30000/1001 back as a rational from IVF, WebM and MP4", async () => {
  const c = await clip({ fps: { num: 30000, den: 1001 }, frames: 20 });
  for (const format of ["ivf", "webm", "mp4", "fmp4"] as const) {
    const r = await probeBytes(await written(format, c));
    assert.deepEqual(r.fps, { num: 30000, den: 1001 }, format);
    assert.ok(Math.abs(r.durationSeconds! - (20 * 1001) / 30000) < 1e-3, `${format}: ${r.durationSeconds}`);
  }
});

test("probeFile and formatProbe: aligned lines people can read", async () => {
  const path = tempPath("probe.webm");
  await writeFile(path, await written("webm", await clip()));
  const r = await probeFile(path);
  const text = formatProbe(r);
  assert.match(text, /^format\s+webm$/m);
  assert.match(text, new RegExp(`^codec\\s+${r.codec.replace(/\./g, "\\.")}$`, "m"));
  assert.match(text, /^size\s+160x120$/m);
  assert.match(text, /^frame rate\s+30$/m);
  assert.match(text, /^frames\s+30$/m);
  assert.match(text, /^key frames\s+3$/m);
  assert.match(text, /^duration\s+1\.000 s$/m);
  assert.match(text, /^bitrate\s+\d+\.\d kbit\/s$/m);
  assert.deepEqual(JSON.parse(JSON.stringify(r)), r, "the result is plain JSON for --json");
});

test("probe rejects empty, unknown and random input with INVALID_INPUT", async () => {
  await assert.rejects(probeBytes(new Uint8Array(0)), isInvalidInput);
  await assert.rejects(
    probeBytes(new TextEncoder().encode("RIFF....WAVEfmt ")),
    (e) => isInvalidInput(e) && /not IVF, OBU/.test((e as Error).message),
  );
  let seed = 7;
  const random = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) & 0xff;
  for (let i = 0; i < 50; i++) {
    const bytes = new Uint8Array(16 + (i * 37) % 500).map(random);
    await assert.rejects(probeBytes(bytes), (e) => e instanceof EncoderError, `random input ${i}`);
  }
});

test("probe of a truncated file of every format is a clear EncoderError or a shorter, consistent result", async () => {
  const c = await clip();
  for (const format of CONTAINER_FORMATS) {
    const bytes = await written(format, c);
    for (const keep of [0.05, 0.5, 0.97]) {
      const cut = bytes.subarray(0, Math.floor(bytes.length * keep));
      try {
        const r = await probeBytes(cut, { fps: { num: 30, den: 1 } });
        // Some readers stop at the last whole packet: then what they report must hold.
        assert.ok(r.frames < 30, `${format} cut to ${keep}: ${r.frames} frames`);
      } catch (e) {
        assert.ok(e instanceof EncoderError, `${format} cut to ${keep}: ${e}`);
        assert.ok(e.message.length > 10);
      }
    }
  }
});

test("probe rejects an IVF file that is not AV1, and a container whose stream has no sequence header", async () => {
  const c = await clip();
  const ivf = await written("ivf", c);
  const vp9 = ivf.slice();
  vp9.set([0x56, 0x50, 0x39, 0x30], 8); // "VP90"
  await assert.rejects(probeBytes(vp9), (e) => isInvalidInput(e) && /not AV1/.test((e as Error).message));
  const noSeq: Packet[] = c.packets.map((p) => {
    const sh = findSequenceHeader(p.data);
    if (!sh) return p;
    const at = sh.byteOffset - p.data.byteOffset;
    return { ...p, data: new Uint8Array([...p.data.subarray(0, at), ...p.data.subarray(at + sh.length)]) };
  });
  const bytes = await written("webm", { ...c, packets: [c.packets[0], ...noSeq.slice(1)] });
  assert.equal((await probeBytes(bytes)).frames, 30, "one sequence header is enough");
  const obu = await written("obu", { ...c, packets: noSeq });
  await assert.rejects(
    probeBytes(obu),
    (e) => isInvalidInput(e) && /sequence header/.test((e as Error).message),
  );
});

test("probeFile on a missing path is an IO_ERROR naming it", async () => {
  await assert.rejects(
    probeFile("/nonexistent/clip.webm"),
    (e) => e instanceof EncoderError && e.code === "IO_ERROR" && /\/nonexistent\/clip\.webm/.test(e.message),
  );
});
