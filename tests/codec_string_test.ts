import assert from "node:assert/strict";
import { test } from "node:test";
import {
  av1CodecConfigurationRecord,
  codecString,
  findSequenceHeader,
  parseAv1C,
  parseCodecString,
  parseObus,
  parseSequenceHeader,
} from "../lib/av1/mod.ts";
import { EncoderError } from "../lib/errors.ts";
import {
  av1FixtureFrames,
  av1FixtureNames,
  concat,
  ffmpegMp4,
  ffprobeStream,
  missingTool,
  readAv1Fixture,
} from "./_helpers/av1_fixtures.ts";

const firstSequenceHeader = (name: string): Uint8Array => findSequenceHeader(av1FixtureFrames(name)[0])!;

// Short and full codec strings of every fixture; levels and colours checked against ffprobe below.
const CODECS: Record<string, [string, string]> = {
  "aom_64x64_decmodel.ivf": ["av01.0.00M.08", "av01.0.00M.08.0.110.02.02.02.0"],
  "aom_64x64_timing.ivf": ["av01.0.00M.08", "av01.0.00M.08.0.110.02.02.02.0"],
  "rav1e_160x90_10bit.ivf": ["av01.0.31M.10", "av01.0.31M.10.0.112.02.02.02.0"],
  "rav1e_160x90_8bit.ivf": ["av01.0.31M.08", "av01.0.31M.08.0.110.02.02.02.0"],
  "rav1e_64x64_422_12bit.ivf": ["av01.2.31M.12", "av01.2.31M.12.0.100.02.02.02.0"],
  "rav1e_64x64_444.ivf": ["av01.1.31M.08", "av01.1.31M.08.0.000.02.02.02.0"],
  "rav1e_64x64_color.ivf": ["av01.0.31M.08", "av01.0.31M.08.0.110.01.01.01.1"],
  "rav1e_64x64_hdr.ivf": ["av01.0.31M.08", "av01.0.31M.08.0.110.09.16.09.0"],
  "rav1e_64x64_mono.ivf": ["av01.0.31M.08", "av01.0.31M.08.1.110.02.02.02.0"],
  "rav1e_64x64_still.ivf": ["av01.0.31M.08", "av01.0.31M.08.0.110.02.02.02.0"],
  "svt_160x90_10bit.ivf": ["av01.0.00M.10", "av01.0.00M.10.0.110.02.02.02.0"],
  "svt_160x90_10bit_keyint2.ivf": ["av01.0.13M.10", "av01.0.13M.10.0.110.02.02.02.0"],
  "svt_160x90_8bit.ivf": ["av01.0.00M.08", "av01.0.00M.08.0.110.02.02.02.0"],
  "svt_160x90_grain.ivf": ["av01.0.00M.08", "av01.0.00M.08.0.110.02.02.02.0"],
  "svt_160x90_level30_color.ivf": ["av01.0.04M.08", "av01.0.04M.08.0.110.01.01.01.1"],
};

test("codecString gives the short and full codec strings of streams from every encoder", () => {
  assert.deepEqual(Object.keys(CODECS), av1FixtureNames());
  for (const name of av1FixtureNames()) {
    const seq = parseSequenceHeader(firstSequenceHeader(name));
    assert.equal(codecString(seq), CODECS[name][0], name);
    assert.equal(codecString(seq, { full: false }), CODECS[name][0], name);
    assert.equal(codecString(seq, { full: true }), CODECS[name][1], name);
  }
});

test("codecString follows the levels SVT-AV1 picks by frame size", () => {
  const fromFile = (file: string) => codecString(findSequenceHeader(readAv1Fixture(file))!);
  assert.equal(fromFile("svt_320x240_seqhdr.obu"), "av01.0.00M.08");
  assert.equal(fromFile("svt_640x360_seqhdr.obu"), "av01.0.01M.08");
  assert.equal(fromFile("svt_1280x720_seqhdr.obu"), "av01.0.05M.08");
  const seq = parseSequenceHeader(findSequenceHeader(readAv1Fixture("svt_1280x720_seqhdr.obu"))!);
  assert.deepEqual([seq.maxFrameWidth, seq.maxFrameHeight], [1280, 720]);
});

test(
  "codecString levels match ffprobe's level for every fixture",
  { skip: missingTool("ffprobe") },
  async () => {
    const probes = await Promise.all(av1FixtureNames().map(ffprobeStream));
    for (const [k, name] of av1FixtureNames().entries()) {
      // ffprobe misreports reduced still picture headers: see sequence_header_test.ts.
      if (name === "rav1e_64x64_still.ivf") continue;
      const level = Number(CODECS[name][0].slice(7, 9));
      assert.equal(probes[k].level, level, name);
    }
  },
);

test("codecString takes sequence header bytes as well as a parsed header", () => {
  const sh = firstSequenceHeader("svt_160x90_level30_color.ivf");
  assert.equal(codecString(sh), "av01.0.04M.08");
  assert.equal(codecString(sh.subarray(2), { full: true }), "av01.0.04M.08.0.110.01.01.01.1");
});

test("parseCodecString reads short strings with the binding's defaults", () => {
  assert.deepEqual(parseCodecString("av01.0.04M.08"), {
    profile: 0,
    level: 4,
    tier: "M",
    bitDepth: 8,
    monochrome: false,
    subsamplingX: 1,
    subsamplingY: 1,
    chromaSamplePosition: 0,
    colorPrimaries: 1,
    transferCharacteristics: 1,
    matrixCoefficients: 1,
    fullRange: false,
  });
  assert.deepEqual(parseCodecString("av01.2.19H.12").tier, "H");
});

test("parseCodecString reads full strings, such as the binding's HDR example", () => {
  assert.deepEqual(parseCodecString("av01.0.04M.10.0.112.09.16.09.0"), {
    profile: 0,
    level: 4,
    tier: "M",
    bitDepth: 10,
    monochrome: false,
    subsamplingX: 1,
    subsamplingY: 1,
    chromaSamplePosition: 2,
    colorPrimaries: 9,
    transferCharacteristics: 16,
    matrixCoefficients: 9,
    fullRange: false,
  });
});

test("parseCodecString round-trips every fixture's codec strings", () => {
  for (const name of av1FixtureNames()) {
    const seq = parseSequenceHeader(firstSequenceHeader(name));
    const p = parseCodecString(codecString(seq, { full: true }));
    assert.deepEqual(
      [p.profile, p.level, p.tier, p.bitDepth, p.monochrome, p.subsamplingX, p.subsamplingY],
      [
        seq.seqProfile,
        seq.operatingPoints[0].seqLevelIdx,
        "M",
        seq.bitDepth,
        seq.monochrome,
        seq.subsamplingX,
        seq.subsamplingY,
      ],
      name,
    );
    assert.deepEqual(
      [
        p.chromaSamplePosition,
        p.colorPrimaries,
        p.transferCharacteristics,
        p.matrixCoefficients,
        p.fullRange,
      ],
      [
        seq.chromaSamplePosition,
        seq.colorPrimaries,
        seq.transferCharacteristics,
        seq.matrixCoefficients,
        seq.colorRange === 1,
      ],
      name,
    );
  }
});

test("parseCodecString says which field of a malformed string is wrong", () => {
  const cases: [string, RegExp][] = [
    ["vp09.00.10.08", /must start with "av01"/],
    ["av01", /has 1 dot-separated fields/],
    ["av01.0.04M", /has 3 dot-separated fields/],
    ["av01.0.04M.08.0", /all or none/],
    ["av01.3.04M.08", /profile "3" must be 0, 1 or 2/],
    ["av01.0.4M.08", /level and tier "4M"/],
    ["av01.0.32M.08", /level and tier "32M"/],
    ["av01.0.04X.08", /level and tier "04X"/],
    ["av01.0.04M.09", /bit depth "09"/],
    ["av01.0.04M.12", /bit depth 12 needs profile 2/],
    ["av01.0.04M.08.2.110.01.01.01.0", /monochrome "2"/],
    ["av01.0.04M.08.0.120.01.01.01.0", /chroma "120"/],
    ["av01.1.04M.08.0.002.01.01.01.0", /not 4:2:0/],
    ["av01.0.04M.08.0.110.1.01.01.0", /colour primaries "1"/],
    ["av01.0.04M.08.0.110.01.256.01.0", /transfer "256"/],
    ["av01.0.04M.08.0.110.01.01.01.2", /full range flag "2"/],
  ];
  for (const [codec, pattern] of cases) {
    assert.throws(() => parseCodecString(codec), (err: unknown) => {
      assert.ok(err instanceof EncoderError, codec);
      assert.equal(err.code, "INVALID_CONFIG");
      assert.match(err.message, pattern, codec);
      assert.match(err.message, /use the form av01\.P\.LLT\.DD/);
      return true;
    });
  }
});

test("av1CodecConfigurationRecord writes the fields of the sequence header, then the OBU", () => {
  const sh = firstSequenceHeader("rav1e_64x64_422_12bit.ivf");
  const av1C = av1CodecConfigurationRecord(sh);
  assert.deepEqual([...av1C.subarray(0, 4)], [0x81, (2 << 5) | 31, 0b0110_1000, 0]);
  assert.deepEqual(av1C.subarray(4), sh);
  assert.deepEqual(parseAv1C(av1C), {
    version: 1,
    seqProfile: 2,
    seqLevelIdx0: 31,
    seqTier0: 0,
    highBitdepth: true,
    twelveBit: true,
    monochrome: false,
    chromaSubsamplingX: 1,
    chromaSubsamplingY: 0,
    chromaSamplePosition: 0,
    configOBUs: sh,
  });
});

test("av1CodecConfigurationRecord takes a packet, other configOBUs and a presentation delay", () => {
  const packet = av1FixtureFrames("rav1e_160x90_10bit.ivf")[0];
  const sh = findSequenceHeader(packet)!;
  assert.deepEqual(av1CodecConfigurationRecord(packet), av1CodecConfigurationRecord(sh));
  const bare = av1CodecConfigurationRecord(sh, {
    configOBUs: new Uint8Array(0),
    initialPresentationDelay: 3,
  });
  assert.deepEqual([...bare], [0x81, 31, 0b0100_1110, 0x12]);
  assert.equal(parseAv1C(bare).initialPresentationDelay, 3);
  assert.equal(parseAv1C(bare).chromaSamplePosition, 2);
  assert.throws(() => av1CodecConfigurationRecord(sh, { initialPresentationDelay: 17 }), EncoderError);
  assert.throws(
    () => av1CodecConfigurationRecord(new Uint8Array([0x12, 0x00])),
    (err: unknown) => err instanceof EncoderError && /No sequence header OBU found/.test(err.message),
  );
});

test("av1CodecConfigurationRecord gives configOBUs a size field", () => {
  const sh = firstSequenceHeader("svt_160x90_8bit.ivf");
  const [o] = parseObus(sh);
  const withoutSize = concat(new Uint8Array([sh[0] & ~0x02]), sh.subarray(o.payloadOffset));
  const av1C = av1CodecConfigurationRecord(withoutSize);
  assert.deepEqual(av1C.subarray(4), sh);
});

test(
  "av1CodecConfigurationRecord writes the av1C box ffmpeg writes to MP4",
  { skip: missingTool("ffmpeg") },
  async () => {
    const names = ["svt_160x90_8bit.ivf", "rav1e_160x90_10bit.ivf", "rav1e_64x64_mono.ivf"];
    const mp4s = await Promise.all(names.map(ffmpegMp4));
    for (const [k, name] of names.entries()) {
      const ffmpeg = mp4s[k].av1C;
      assert.deepEqual(av1CodecConfigurationRecord(firstSequenceHeader(name)), ffmpeg, name);
      assert.equal(
        parseAv1C(ffmpeg).seqLevelIdx0,
        parseSequenceHeader(firstSequenceHeader(name)).operatingPoints[0].seqLevelIdx,
      );
    }
  },
);

test("parseAv1C rejects short records, a missing marker and unknown versions", () => {
  const error = (pattern: RegExp) => (err: unknown) =>
    err instanceof EncoderError && err.code === "INVALID_INPUT" && pattern.test(err.message);
  assert.throws(() => parseAv1C(new Uint8Array([0x81, 0, 0])), error(/at least 4 bytes, got 3/));
  assert.throws(() => parseAv1C(new Uint8Array([0x01, 0, 0, 0])), error(/marker bit/));
  assert.throws(() => parseAv1C(new Uint8Array([0x82, 0, 0, 0])), error(/version 2/));
});
