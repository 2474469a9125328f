// The AV1 WebCodecs Registration's members in the facade: av1.forceScreenContentTools, the quantizer
// bitrate mode with encode()'s av1.quantizer, latencyMode "realtime" and scalabilityMode.
import assert from "node:assert/strict";
import { test } from "node:test";
import { locateSvtAv1 } from "../ffi/load.ts";
import {
  findSequenceHeader,
  type FrameHeaderStart,
  OBU_FRAME,
  OBU_FRAME_HEADER,
  parseFrameHeaderStart,
  parseObus,
  parseSequenceHeader,
  type SequenceHeader,
} from "../lib/av1/mod.ts";
import { Rav1eEncoder } from "../lib/encoder/rav1e.ts";
import { SvtAv1Encoder } from "../lib/encoder/svt_av1.ts";
import { ivfFileSink, IvfWriter } from "../lib/io/mod.ts";
import { testSource } from "../lib/io/testsrc.ts";
import { VideoEncoder, type VideoEncoderConfig } from "../lib/webcodecs/mod.ts";
import { dav1dFrameCount, encodeAll, needs, rejectsWith, tempPath } from "./_helpers/encode.ts";
import { fastConfig, i420Frame, type Recorded, recordingEncoder } from "./_helpers/webcodecs.ts";

const W = 160, H = 120;

/** Every frame header of a stream's chunks, with the OBU extension ids of the OBU that carried it. */
function frameHeaders(chunks: Recorded["chunks"]): { header: FrameHeaderStart; temporalId: number }[] {
  let seq: SequenceHeader | undefined;
  const out: { header: FrameHeaderStart; temporalId: number }[] = [];
  for (const { bytes } of chunks) {
    const sh = findSequenceHeader(bytes);
    if (sh) seq = parseSequenceHeader(sh, { format: "obu" });
    assert.ok(seq, "the stream starts with a sequence header");
    for (const o of parseObus(bytes)) {
      if (o.type !== OBU_FRAME && o.type !== OBU_FRAME_HEADER) continue;
      const payload = bytes.subarray(o.payloadOffset, o.payloadOffset + o.payloadSize);
      out.push({ header: parseFrameHeaderStart(payload, seq, o), temporalId: o.temporalId });
    }
  }
  return out;
}

async function encodeFrames(
  config: VideoEncoderConfig,
  frames: number,
  options: (i: number) => Parameters<VideoEncoder["encode"]>[1] = () => ({}),
): Promise<Recorded> {
  const rec = recordingEncoder();
  rec.encoder.configure(config);
  for (let i = 0; i < frames; i++) {
    const frame = i420Frame(i, W, H, { duration: 33_333 });
    rec.encoder.encode(frame, options(i));
    frame.close();
  }
  await rec.encoder.flush();
  rec.encoder.close();
  assert.deepEqual(rec.errors, []);
  assert.equal(rec.chunks.length, frames, "one chunk per frame");
  return rec;
}

/** Writes the chunks to IVF and gives the number of frames dav1d decodes from it. */
async function dav1dDecodes(chunks: Recorded["chunks"], name: string): Promise<number> {
  const path = tempPath(`${name}.ivf`);
  const ivf = new IvfWriter(await ivfFileSink(path), { width: W, height: H, fps: { num: 30, den: 1 } });
  for (const c of chunks) {
    await ivf.writePacket({ data: c.bytes, timestamp: Math.round(c.chunk.timestamp / 33_333) });
  }
  await ivf.close();
  return dav1dFrameCount(path);
}

/** SVT-AV1 1.x forces screen content tools with scm=1; 2.0 and later only choose them frame by frame. */
const svtForcesScreenContent = (await locateSvtAv1().then((l) => l.version.major, () => 1)) < 2;

test("VideoEncoder.isConfigSupported echoes av1.forceScreenContentTools: SVT-AV1 1.x takes it, rav1e cannot", async () => {
  const svt = await VideoEncoder.isConfigSupported(
    fastConfig("svt-av1", { av1: { forceScreenContentTools: true } }),
  );
  assert.equal(svt.supported, svtForcesScreenContent, "SVT-AV1 2.0 and later cannot force the tools");
  assert.deepEqual(svt.config.av1, { forceScreenContentTools: true });
  // The dictionary's default is filled in when av1 is given without it.
  const empty = await VideoEncoder.isConfigSupported(fastConfig("svt-av1", { av1: {} }));
  assert.deepEqual(empty.config.av1, { forceScreenContentTools: false });
  assert.equal(empty.supported, true);
  const rav1e = await VideoEncoder.isConfigSupported(
    fastConfig("rav1e", { av1: { forceScreenContentTools: true } }),
  );
  assert.equal(rav1e.supported, false, "rav1e has no setting that forces screen content tools");
  assert.deepEqual(rav1e.config.av1, { forceScreenContentTools: true });
  const rav1eOff = await VideoEncoder.isConfigSupported(
    fastConfig("rav1e", { av1: { forceScreenContentTools: false } }),
  );
  assert.equal(rav1eOff.supported, true);
  await assert.rejects(
    VideoEncoder.isConfigSupported(fastConfig("svt-av1", { av1: 5 as unknown as VideoEncoderConfig["av1"] })),
    TypeError,
  );
});

test(
  "VideoEncoder (svt-av1) av1.forceScreenContentTools turns screen content tools on in every frame header",
  svtForcesScreenContent
    ? needs("dav1d")
    : { skip: "SVT-AV1 2.0 and later cannot force them (the next test)" },
  async () => {
    const forced = await encodeFrames(fastConfig("svt-av1", { av1: { forceScreenContentTools: true } }), 6);
    const headers = frameHeaders(forced.chunks).filter((h) => !h.header.showExistingFrame);
    assert.ok(headers.length >= 6);
    for (const { header } of headers) {
      assert.equal(!header.showExistingFrame && header.allowScreenContentTools, true);
    }
    // The gradient test picture is not screen content: left to itself SVT-AV1 does not use the tools.
    const auto = await encodeFrames(fastConfig("svt-av1", { av1: { forceScreenContentTools: false } }), 6);
    const autoHeaders = frameHeaders(auto.chunks).filter((h) => !h.header.showExistingFrame);
    assert.ok(
      autoHeaders.every(({ header }) => !header.showExistingFrame && !header.allowScreenContentTools),
    );
    assert.equal(await dav1dDecodes(forced.chunks, "webcodecs_scm"), 6);
  },
);

test(
  "VideoEncoder (svt-av1 2.0 and later) configure with av1.forceScreenContentTools closes it with NotSupportedError",
  svtForcesScreenContent ? { skip: "SVT-AV1 1.x forces them (the test before)" } : {},
  async () => {
    const { encoder, errors } = recordingEncoder();
    encoder.configure(fastConfig("svt-av1", { av1: { forceScreenContentTools: true } }));
    await assert.rejects(
      encoder.flush(),
      (e: unknown) => e instanceof DOMException && e.name === "NotSupportedError",
    );
    assert.match(errors[0].message, /chooses screen content tools frame by frame/);
    assert.equal(encoder.state, "closed");
  },
);

test("VideoEncoder configure with rav1e and av1.forceScreenContentTools closes it with NotSupportedError", async () => {
  const { encoder, errors } = recordingEncoder();
  encoder.configure(fastConfig("rav1e", { av1: { forceScreenContentTools: true } }));
  await assert.rejects(
    encoder.flush(),
    (e: unknown) => e instanceof DOMException && e.name === "NotSupportedError",
  );
  assert.equal(errors.length, 1);
  assert.match(errors[0].message, /rav1e cannot force screen content tools/);
  assert.equal(encoder.state, "closed");
});

for (const backend of ["svt-av1", "rav1e"] as const) {
  test(
    `VideoEncoder (${backend}) latencyMode "realtime" encodes without reordering; "quality" reorders`,
    needs("dav1d"),
    async () => {
      const frames = 12;
      const realtime = await encodeFrames(fastConfig(backend, { latencyMode: "realtime" }), frames);
      const timestamps = realtime.chunks.map((c) => c.chunk.timestamp);
      assert.deepEqual(timestamps, [...timestamps].sort((a, b) => a - b), "output in presentation order");
      const rtHeaders = frameHeaders(realtime.chunks);
      // Low delay: every frame is shown as it is decoded, none is held back for later display.
      assert.equal(rtHeaders.length, frames);
      for (const { header } of rtHeaders) assert.equal(!header.showExistingFrame && header.showFrame, true);
      assert.equal(await dav1dDecodes(realtime.chunks, `webcodecs_realtime_${backend}`), frames);

      const quality = await encodeFrames(fastConfig(backend, { latencyMode: "quality" }), frames);
      const hidden = frameHeaders(quality.chunks).filter(({ header }) =>
        header.showExistingFrame || !header.showFrame
      );
      assert.ok(hidden.length > 0, "random access codes frames out of order (hidden frames shown later)");
    },
  );

  test(`VideoEncoder (${backend}) answers scalabilityMode truthfully: L1T1 only, one layer in the bitstream`, async () => {
    for (const mode of ["L1T2", "L1T3", "L2T1", "L2T2", "L3T3", "S2T1", "L2T2_KEY"]) {
      const support = await VideoEncoder.isConfigSupported(fastConfig(backend, { scalabilityMode: mode }));
      assert.equal(support.supported, false, mode);
      assert.equal(support.config.scalabilityMode, mode, "echoed");
    }
    const one = await VideoEncoder.isConfigSupported(fastConfig(backend, { scalabilityMode: "L1T1" }));
    assert.equal(one.supported, true);
    const rec = await encodeFrames(fastConfig(backend, { scalabilityMode: "L1T1" }), 4);
    for (const c of rec.chunks) assert.deepEqual(c.metadata?.svc, { temporalLayerId: 0 });
    assert.ok(frameHeaders(rec.chunks).every((h) => h.temporalId === 0));
  });

  test(
    `VideoEncoder (${backend}) quantizer mode: a frame's av1.quantizer sets its size, the stream decodes`,
    needs("dav1d"),
    async () => {
      const q = [10, 10, 55, 55, 55, 10];
      const rec = await encodeFrames(fastConfig(backend, { bitrateMode: "quantizer" }), q.length, (i) => ({
        av1: { quantizer: q[i] },
      }));
      const size = (i: number) => rec.chunks[i].chunk.byteLength;
      const types = rec.chunks.map((c) => c.chunk.type);
      if (backend === "rav1e") {
        // rav1e's quantizer is per session: each new quantizer starts one, with a key frame.
        assert.deepEqual(types, ["key", "delta", "key", "delta", "delta", "key"]);
        assert.ok(size(0) > 2 * size(2), `quantizer 10 key frame ${size(0)} bytes, 55 key frame ${size(2)}`);
      } else {
        // SVT-AV1 takes the quantizer per picture: one session, one key frame.
        assert.deepEqual(types, ["key", "delta", "delta", "delta", "delta", "delta"]);
      }
      assert.equal(await dav1dDecodes(rec.chunks, `webcodecs_quantizer_${backend}`), q.length);
    },
  );
}

test("VideoEncoder (svt-av1) realtime quantizer mode changes the quantizer from one picture to the next", async () => {
  const q = [20, 20, 20, 20, 60, 60, 60, 60, 20, 20, 20, 20];
  const rec = await encodeFrames(
    fastConfig("svt-av1", { bitrateMode: "quantizer", latencyMode: "realtime" }),
    q.length,
    (i) => ({ av1: { quantizer: q[i] } }),
  );
  assert.deepEqual(rec.chunks.map((c) => c.chunk.type), ["key", ...Array(q.length - 1).fill("delta")]);
  const bytes = (from: number, to: number) =>
    rec.chunks.slice(from, to).reduce((n, c) => n + c.chunk.byteLength, 0);
  assert.ok(
    bytes(1, 4) > 2 * bytes(5, 8),
    `quantizer 20: ${bytes(1, 4)} bytes, quantizer 60: ${bytes(5, 8)}`,
  );
  assert.ok(bytes(9, 12) > 2 * bytes(5, 8), "back at quantizer 20");
});

test("SvtAv1Encoder perFrameQp takes encode()'s qp; without it, and in rav1e, a per-frame qp is refused", async () => {
  const input = testSource({ width: W, height: H, frames: 2 });
  await using svt = await SvtAv1Encoder.create({ ...input.info, preset: 12, qp: 30, perFrameQp: true });
  await rejectsWith(
    svt.encode(input.frame(0), { qp: 64 }),
    "INVALID_FRAME",
    /qp must be an integer from 1 to 63/,
  );
  const packets = await encodeAll(svt, [input.frame(0), input.frame(1)]);
  assert.equal(packets.length, 2);
  await using plain = await SvtAv1Encoder.create({ ...input.info, preset: 12, qp: 30 });
  await rejectsWith(plain.encode(input.frame(0), { qp: 20 }), "INVALID_STATE", /perFrameQp: true/);
  await rejectsWith(
    SvtAv1Encoder.create({ ...input.info, preset: 12, crf: 30, perFrameQp: true }),
    "INVALID_CONFIG",
    /perFrameQp needs qp/,
  );
  await using rav1e = await Rav1eEncoder.create({ ...input.info, speed: 10 });
  await rejectsWith(
    rav1e.encode(input.frame(0), { qp: 20 }),
    "INVALID_CONFIG",
    /rav1e takes no per-frame quantizer/,
  );
});
