import assert from "node:assert/strict";
import { test } from "node:test";
import {
  encodeLeb128,
  findSequenceHeader,
  isKeyFramePacket,
  OBU_FRAME_HEADER,
  OBU_PADDING,
  OBU_SEQUENCE_HEADER,
  OBU_TEMPORAL_DELIMITER,
  OBU_TILE_GROUP,
  obuTypeName,
  parseFrameHeaderStart,
  parseObus,
  parseSequenceHeader,
  readLeb128,
  type SequenceHeader,
  splitTemporalUnits,
  stripTemporalDelimiters,
} from "../lib/av1/mod.ts";
import { EncoderError } from "../lib/errors.ts";
import {
  av1FixtureFrames,
  av1FixtureNames,
  BitWriter,
  concat,
  ffmpegMp4,
  missingTool,
  obu,
  readAv1Fixture,
  traceHeaders,
} from "./_helpers/av1_fixtures.ts";

/** Asserts `fn` throws an INVALID_INPUT EncoderError whose message matches `pattern`. */
function assertInvalid(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof EncoderError, `expected EncoderError, got ${err}`);
    assert.equal(err.code, "INVALID_INPUT");
    assert.match(err.message, pattern);
    return true;
  });
}

// Key frames per temporal unit, as ffmpeg's AV1 parser flags them ("K" key, "." not).
const KEY_FRAMES: Record<string, string> = {
  "aom_64x64_decmodel.ivf": "K..",
  "aom_64x64_timing.ivf": "K..",
  "rav1e_160x90_10bit.ivf": "K....",
  "rav1e_160x90_8bit.ivf": "K....",
  "rav1e_64x64_422_12bit.ivf": "K..",
  "rav1e_64x64_444.ivf": "K..",
  "rav1e_64x64_color.ivf": "K..",
  "rav1e_64x64_hdr.ivf": "K..",
  "rav1e_64x64_mono.ivf": "K..",
  "rav1e_64x64_still.ivf": "K",
  "svt_160x90_10bit.ivf": "K....",
  "svt_160x90_10bit_keyint2.ivf": "K.K.K",
  "svt_160x90_8bit.ivf": "K....",
  "svt_160x90_grain.ivf": "K....",
  "svt_160x90_level30_color.ivf": "K....",
};

test("readLeb128 decodes single and multi-byte values, padded ones included", () => {
  assert.deepEqual(readLeb128(new Uint8Array([0x00])), { value: 0, length: 1 });
  assert.deepEqual(readLeb128(new Uint8Array([0x7f])), { value: 127, length: 1 });
  assert.deepEqual(readLeb128(new Uint8Array([0x80, 0x01])), { value: 128, length: 2 });
  assert.deepEqual(readLeb128(new Uint8Array([9, 0xe5, 0x8e, 0x26]), 1), { value: 624485, length: 3 });
  assert.deepEqual(readLeb128(new Uint8Array([0x80, 0x80, 0x00])), { value: 0, length: 3 });
  assert.deepEqual(readLeb128(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f])), {
    value: 2 ** 32 - 1,
    length: 5,
  });
  assert.deepEqual(readLeb128(new Uint8Array([0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00])), {
    value: 1,
    length: 8,
  });
});

test("readLeb128 rejects truncated, over-long and too large values with the byte offset", () => {
  assertInvalid(() => readLeb128(new Uint8Array([0x00, 0x80, 0x80]), 1), /at byte 1 is truncated at byte 3/);
  assertInvalid(() => readLeb128(new Uint8Array([]), 0), /truncated/);
  assertInvalid(() => readLeb128(new Uint8Array(9).fill(0x80)), /longer than the spec's 8 bytes/);
  assertInvalid(() => readLeb128(new Uint8Array([0x80, 0x80, 0x80, 0x80, 0x10])), /above the spec's limit/);
});

test("encodeLeb128 writes the shortest form and round-trips through readLeb128", () => {
  assert.deepEqual(encodeLeb128(0), new Uint8Array([0]));
  assert.deepEqual(encodeLeb128(300), new Uint8Array([0xac, 0x02]));
  assert.deepEqual(encodeLeb128(2 ** 32 - 1), new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f]));
  for (const n of [1, 127, 128, 16383, 16384, 2 ** 21, 123456789, 2 ** 31, 2 ** 32 - 2]) {
    const bytes = encodeLeb128(n);
    assert.deepEqual(readLeb128(bytes), { value: n, length: bytes.length });
  }
  assert.throws(() => encodeLeb128(-1), RangeError);
  assert.throws(() => encodeLeb128(2 ** 32), RangeError);
  assert.throws(() => encodeLeb128(1.5), RangeError);
});

test("obuTypeName names every type, reserved ones included", () => {
  assert.equal(obuTypeName(1), "OBU_SEQUENCE_HEADER");
  assert.equal(obuTypeName(2), "OBU_TEMPORAL_DELIMITER");
  assert.equal(obuTypeName(3), "OBU_FRAME_HEADER");
  assert.equal(obuTypeName(4), "OBU_TILE_GROUP");
  assert.equal(obuTypeName(5), "OBU_METADATA");
  assert.equal(obuTypeName(6), "OBU_FRAME");
  assert.equal(obuTypeName(7), "OBU_REDUNDANT_FRAME_HEADER");
  assert.equal(obuTypeName(8), "OBU_TILE_LIST");
  assert.equal(obuTypeName(15), "OBU_PADDING");
  assert.equal(obuTypeName(0), "OBU_RESERVED_0");
  assert.equal(obuTypeName(9), "OBU_RESERVED_9");
  assert.equal(obuTypeName(14), "OBU_RESERVED_14");
});

test("parseObus reads header, extension and size fields", () => {
  // TD; then a padding OBU with an extension (temporal_id 5, spatial_id 2) and a 2-byte payload.
  const bytes = new Uint8Array([0x12, 0x00, 0x7e, (5 << 5) | (2 << 3), 0x02, 0xaa, 0xbb]);
  const [td, pad] = parseObus(bytes);
  assert.deepEqual(td, {
    type: OBU_TEMPORAL_DELIMITER,
    typeName: "OBU_TEMPORAL_DELIMITER",
    hasExtension: false,
    temporalId: 0,
    spatialId: 0,
    hasSizeField: true,
    headerSize: 2,
    payloadOffset: 2,
    payloadSize: 0,
    offset: 0,
    size: 2,
  });
  assert.deepEqual(pad, {
    type: OBU_PADDING,
    typeName: "OBU_PADDING",
    hasExtension: true,
    temporalId: 5,
    spatialId: 2,
    hasSizeField: true,
    headerSize: 3,
    payloadOffset: 5,
    payloadSize: 2,
    offset: 2,
    size: 5,
  });
  assert.deepEqual(parseObus(new Uint8Array(0)), []);
});

test("parseObus lets an OBU without a size field take the rest of the buffer", () => {
  const obus = parseObus(new Uint8Array([0x12, 0x00, 0x78, 1, 2, 3, 4]));
  assert.equal(obus.length, 2);
  assert.equal(obus[1].hasSizeField, false);
  assert.equal(obus[1].payloadOffset, 3);
  assert.equal(obus[1].payloadSize, 4);
  assert.equal(obus[1].size, 5);
});

test("parseObus reports a forbidden bit, a truncated size and an overrun at their byte offsets", () => {
  assertInvalid(() => parseObus(new Uint8Array([0x12, 0x00, 0x92, 0x00])), /forbidden bit .* at byte 2/);
  assertInvalid(
    () => parseObus(new Uint8Array([0x12, 0x00, 0x7a, 0x80])),
    /at byte 3 is truncated at byte 4/,
  );
  assertInvalid(
    () => parseObus(new Uint8Array([0x12, 0x00, 0x7a, 0x05, 1, 2])),
    /OBU_PADDING at byte 2 says its payload has 5 bytes but only 2 remain/,
  );
  assertInvalid(() => parseObus(new Uint8Array([0x12, 0x00, 0x7e])), /extension header .* ends at byte 3/);
});

test(
  "parseObus lists the same OBUs as ffmpeg in every fixture packet",
  { skip: missingTool("ffmpeg") },
  async () => {
    const traces = await Promise.all(av1FixtureNames().map(traceHeaders));
    for (const [k, name] of av1FixtureNames().entries()) {
      const traced = traces[k].packets;
      const frames = av1FixtureFrames(name);
      assert.equal(frames.length, traced.length, name);
      frames.forEach((packet, i) => {
        const obus = parseObus(packet);
        assert.deepEqual(obus.map((o) => o.type), traced[i].obuTypes, `${name} packet ${i}`);
        let at = 0;
        for (const o of obus) {
          assert.equal(o.offset, at, `${name} packet ${i}: OBUs are contiguous`);
          assert.equal(o.payloadOffset, o.offset + o.headerSize);
          assert.equal(o.size, o.headerSize + o.payloadSize);
          at += o.size;
        }
        assert.equal(at, packet.length, `${name} packet ${i}: OBUs cover the packet`);
      });
    }
  },
);

test("splitTemporalUnits cuts a Section 5 stream into the same units as its IVF", () => {
  const stream = readAv1Fixture("svt_160x90_8bit.obu");
  const units = splitTemporalUnits(stream);
  const ivf = av1FixtureFrames("svt_160x90_8bit.ivf");
  assert.equal(units.length, 5);
  assert.deepEqual(units, ivf);
  for (const unit of units) assert.equal(unit.buffer, stream.buffer, "units are views, not copies");
});

test("splitTemporalUnits keeps leading OBUs without a temporal delimiter as a unit", () => {
  const units = splitTemporalUnits(new Uint8Array([0x7a, 0x00, 0x12, 0x00, 0x7a, 0x00, 0x12, 0x00]));
  assert.deepEqual(units.map((u) => [...u]), [[0x7a, 0x00], [0x12, 0x00, 0x7a, 0x00], [0x12, 0x00]]);
  assert.deepEqual(splitTemporalUnits(new Uint8Array(0)), []);
});

test("stripTemporalDelimiters drops TD OBUs and leaves packets without any untouched", () => {
  for (const name of av1FixtureNames()) {
    for (const packet of av1FixtureFrames(name)) {
      const stripped = stripTemporalDelimiters(packet);
      const before = parseObus(packet);
      const after = parseObus(stripped);
      const tds = before.filter((o) => o.type === OBU_TEMPORAL_DELIMITER).length;
      assert.equal(tds, 1, `${name}: encoders write one TD per temporal unit`);
      assert.equal(after.filter((o) => o.type === OBU_TEMPORAL_DELIMITER).length, 0);
      assert.deepEqual(after.map((o) => o.type), before.filter((o) => o.type !== 2).map((o) => o.type));
      assert.equal(stripped.length, packet.length - 2 * tds);
      assert.equal(stripTemporalDelimiters(stripped), stripped, "no copy when there is nothing to strip");
    }
  }
  const middle = new Uint8Array([0x7a, 0x01, 0xaa, 0x12, 0x00, 0x7a, 0x00]);
  assert.deepEqual([...stripTemporalDelimiters(middle)], [0x7a, 0x01, 0xaa, 0x7a, 0x00]);
});

test(
  "stripTemporalDelimiters gives the samples ffmpeg writes to MP4",
  { skip: missingTool("ffmpeg") },
  async () => {
    const names = ["svt_160x90_8bit.ivf", "rav1e_160x90_10bit.ivf"];
    const mp4s = await Promise.all(names.map(ffmpegMp4));
    for (const [k, name] of names.entries()) {
      const ours = concat(...av1FixtureFrames(name).map((p) => stripTemporalDelimiters(p)));
      assert.deepEqual(ours, mp4s[k].samples, name);
    }
  },
);

test("findSequenceHeader returns the whole sequence header OBU of a key frame, null elsewhere", () => {
  for (const name of av1FixtureNames()) {
    const [first, ...rest] = av1FixtureFrames(name);
    const sh = findSequenceHeader(first);
    assert.ok(sh, name);
    const [shObu] = parseObus(sh);
    assert.equal(shObu.type, OBU_SEQUENCE_HEADER);
    assert.equal(shObu.size, sh.length, "exactly one OBU, header included");
    assert.equal(sh.buffer, first.buffer, "a view into the packet");
    for (const packet of rest) {
      const hasSh = parseObus(packet).some((o) => o.type === OBU_SEQUENCE_HEADER);
      assert.equal(findSequenceHeader(packet) !== null, hasSh);
    }
  }
  assert.equal(findSequenceHeader(new Uint8Array([0x12, 0x00])), null);
});

test(
  "parseFrameHeaderStart reads the same frame header fields as ffmpeg",
  { skip: missingTool("ffmpeg") },
  async () => {
    const traces = await Promise.all(av1FixtureNames().map(traceHeaders));
    let compared = 0;
    for (const [k, name] of av1FixtureNames().entries()) {
      const traced = traces[k].packets;
      let seq: SequenceHeader | undefined;
      av1FixtureFrames(name).forEach((packet, i) => {
        const obus = parseObus(packet);
        const headers = obus.filter((o) => o.type === OBU_FRAME_HEADER || o.type === 6);
        assert.equal(headers.length, traced[i].frames.length, `${name} packet ${i}`);
        headers.forEach((o, j) => {
          const sh = findSequenceHeader(packet);
          if (sh) seq = parseSequenceHeader(sh);
          assert.ok(seq);
          const payload = packet.subarray(o.payloadOffset, o.payloadOffset + o.payloadSize);
          const ours = parseFrameHeaderStart(payload, seq, o);
          const theirs = traced[i].frames[j];
          const where = `${name} packet ${i} frame ${j}`;
          assert.equal(Number(ours.showExistingFrame), theirs.show_existing_frame ?? 0, where);
          if (ours.showExistingFrame) {
            assert.equal(ours.frameToShowMapIdx, theirs.frame_to_show_map_idx, where);
            assert.equal(ours.framePresentationTime, theirs.frame_presentation_time, where);
          } else {
            assert.equal(ours.frameType, theirs.frame_type ?? 0, where);
            assert.equal(Number(ours.showFrame), theirs.show_frame ?? 1, where);
            if ("showable_frame" in theirs) {
              assert.equal(Number(ours.showableFrame), theirs.showable_frame, where);
            }
            if ("error_resilient_mode" in theirs) {
              assert.equal(Number(ours.errorResilientMode), theirs.error_resilient_mode, where);
            }
            assert.equal(ours.orderHint, theirs.order_hint ?? 0, where);
            assert.equal(ours.refreshFrameFlags, theirs.refresh_frame_flags ?? 0xff, where);
            if ("allow_screen_content_tools" in theirs) {
              assert.equal(Number(ours.allowScreenContentTools), theirs.allow_screen_content_tools, where);
            }
            assert.equal(ours.framePresentationTime, theirs.frame_presentation_time, where);
          }
          compared++;
        });
      });
    }
    assert.ok(compared > 40, `compared ${compared} frame headers`);
  },
);

test("isKeyFramePacket finds the key frames ffmpeg flags in every fixture", () => {
  for (const name of av1FixtureNames()) {
    const flags = av1FixtureFrames(name).map((p) => (isKeyFramePacket(p) ? "K" : ".")).join("");
    assert.equal(flags, KEY_FRAMES[name], name);
  }
});

test("isKeyFramePacket agrees with ffmpeg's packet flags", { skip: missingTool("ffmpeg") }, async () => {
  const traces = await Promise.all(av1FixtureNames().map(traceHeaders));
  for (const [k, name] of av1FixtureNames().entries()) {
    const traced = traces[k].packets;
    const frames = av1FixtureFrames(name);
    frames.forEach((p, i) => assert.equal(isKeyFramePacket(p), traced[i].keyFrame, `${name} packet ${i}`));
  }
});

/** A frame header for the SVT-AV1 fixture's sequence header, built bit by bit. */
function frameHeader(
  seq: SequenceHeader,
  fields: { frameType: number; showFrame: boolean; refresh?: number },
) {
  const w = new BitWriter().f(1, 0).f(2, fields.frameType).f(1, Number(fields.showFrame));
  const keyShown = fields.frameType === 0 && fields.showFrame;
  if (!fields.showFrame) w.f(1, 1); // showable_frame
  if (!keyShown && fields.frameType !== 3) w.f(1, 0); // error_resilient_mode
  w.f(1, 0); // disable_cdf_update
  if (seq.seqForceScreenContentTools === 2) w.f(1, 0); // allow_screen_content_tools
  w.f(1, 0); // frame_size_override_flag
  w.f(seq.orderHintBits, 0);
  if (fields.frameType !== 0 && fields.frameType !== 2) w.f(3, 7); // primary_ref_frame
  if (!keyShown) w.f(8, fields.refresh ?? 0);
  return w.bytes(false);
}

test("isKeyFramePacket accepts show_existing_frame of a key frame decoded in the same unit", () => {
  const sh = findSequenceHeader(av1FixtureFrames("svt_160x90_8bit.ivf")[0])!;
  const seq = parseSequenceHeader(sh);
  const td = obu(OBU_TEMPORAL_DELIMITER);
  const hiddenKey = obu(
    OBU_FRAME_HEADER,
    frameHeader(seq, { frameType: 0, showFrame: false, refresh: 0b100 }),
  );
  const tiles = obu(OBU_TILE_GROUP, [0]);
  const showSlot = (slot: number) => obu(OBU_FRAME_HEADER, new BitWriter().f(1, 1).f(3, slot).bytes(false));
  assert.equal(isKeyFramePacket(concat(td, sh, hiddenKey, tiles, showSlot(2))), true);
  assert.equal(isKeyFramePacket(concat(td, sh, hiddenKey, tiles, showSlot(1))), false, "another slot");
  assert.equal(isKeyFramePacket(concat(td, sh, hiddenKey, tiles)), false, "a hidden key frame alone");
  assert.equal(isKeyFramePacket(concat(td, hiddenKey, tiles, showSlot(2))), false, "no sequence header");
  // An inter frame overwriting the slot before it is shown.
  const inter = obu(OBU_FRAME_HEADER, frameHeader(seq, { frameType: 1, showFrame: false, refresh: 0b100 }));
  assert.equal(isKeyFramePacket(concat(td, sh, hiddenKey, tiles, inter, tiles, showSlot(2))), false);
  const shownKey = obu(OBU_FRAME_HEADER, frameHeader(seq, { frameType: 0, showFrame: true }));
  assert.equal(isKeyFramePacket(concat(td, sh, shownKey, tiles)), true);
  assert.equal(isKeyFramePacket(concat(td, shownKey, tiles)), false, "no sequence header");
  const intraOnly = obu(OBU_FRAME_HEADER, frameHeader(seq, { frameType: 2, showFrame: true, refresh: 1 }));
  assert.equal(isKeyFramePacket(concat(td, sh, intraOnly, tiles)), false, "intra-only is not a key frame");
});

test("isKeyFramePacket reports a truncated frame header as INVALID_INPUT", () => {
  const sh = findSequenceHeader(av1FixtureFrames("svt_160x90_8bit.ivf")[0])!;
  assertInvalid(() => isKeyFramePacket(concat(obu(2), sh, obu(OBU_FRAME_HEADER, [0x00]))), /frame header/);
  assertInvalid(() => isKeyFramePacket(concat(obu(2), sh, obu(OBU_FRAME_HEADER))), /empty payload/);
});
