// What every library version must do, whichever SVT-AV1 and rav1e the loader takes: the whole suite runs it
// with the system's libraries, and the version matrix of tests/run.mjs again with each of Debian's newer
// builds (SVT-AV1 2.3.0 and 3.1.2, rav1e 0.7.1 and 0.8.1), where AV1_STREAM_EXPECT_SVT_AV1 and
// AV1_STREAM_EXPECT_RAV1E name the version the pass is for, so that a pass cannot run on another library
// unseen. Every frame of each stream is decoded by dav1d; key frames are read back from the bitstream.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import process from "node:process";
import { test } from "node:test";
import { locateRav1e, locateSvtAv1 } from "../ffi/load.ts";
import { isKeyFramePacket } from "../lib/av1/obu.ts";
import { Rav1eEncoder } from "../lib/encoder/rav1e.ts";
import { SvtAv1Encoder } from "../lib/encoder/svt_av1.ts";
import { EncoderError } from "../lib/errors.ts";
import { testSource } from "../lib/io/testsrc.ts";
import type { Encoder, Packet } from "../lib/types.ts";
import { dav1dFrameCount, encodeAll, needs, tempPath } from "./_helpers/encode.ts";

const backends = [
  {
    name: "SVT-AV1",
    expect: process.env.AV1_STREAM_EXPECT_SVT_AV1,
    locate: () => locateSvtAv1(),
    create: (info: object, extra: object = {}): Promise<Encoder> =>
      SvtAv1Encoder.create({ ...info, preset: 12, crf: 40, ...extra } as never),
    bad: { params: { "no-such-option": 1 } },
    lowDelay: { lowDelay: true },
  },
  {
    name: "rav1e",
    expect: process.env.AV1_STREAM_EXPECT_RAV1E,
    locate: () => locateRav1e(),
    create: (info: object, extra: object = {}): Promise<Encoder> =>
      Rav1eEncoder.create({ ...info, speed: 10, quantizer: 120, ...extra } as never),
    bad: { params: { "no-such-option": "1" } },
    lowDelay: { lowLatency: true },
  },
] as const;

function writeObus(name: string, packets: Packet[]): string {
  const path = tempPath(`${name}.obu`);
  writeFileSync(path, Buffer.concat(packets.map((p) => p.data)));
  return path;
}

for (const b of backends) {
  test(`${b.name}: the library loaded is the version this pass is for`, async () => {
    const found = await b.locate();
    if (b.expect) assert.ok(found.version.text.replace(/^v/, "").startsWith(b.expect), found.version.text);
    assert.match(found.version.text, /^v?\d+\.\d+\.\d+/);
  });

  for (const bitDepth of [8, 10] as const) {
    test(
      `${b.name}: ${bitDepth}-bit, forced key frames and the EOS flush: every frame decodes with dav1d`,
      needs("dav1d"),
      async () => {
        const src = testSource({ width: 160, height: 96, frames: 24, bitDepth });
        const enc = await b.create(src.info);
        try {
          const packets = await encodeAll(enc, src.frames(), new Set([9, 17]));
          assert.equal(packets.length, 24, "one packet per frame, all out after the flush");
          assert.deepEqual(packets.map((p) => p.timestamp), [...Array(24).keys()]);
          for (const i of [0, 9, 17]) {
            assert.ok(isKeyFramePacket(packets[i].data), `frame ${i} is a key frame`);
          }
          assert.equal(dav1dFrameCount(writeObus(`versions-${b.name}-${bitDepth}`, packets), "section5"), 24);
        } finally {
          await enc.close();
        }
      },
    );
  }

  test(
    `${b.name}: low delay gives one packet per frame as frames go in, and a forced key frame`,
    needs("dav1d"),
    async () => {
      const src = testSource({ width: 160, height: 96, frames: 16 });
      const enc = await b.create(src.info, b.lowDelay);
      try {
        const packets = await encodeAll(enc, src.frames(), new Set([8]));
        assert.equal(packets.length, 16);
        assert.ok(isKeyFramePacket(packets[8].data));
        assert.equal(dav1dFrameCount(writeObus(`versions-${b.name}-lowdelay`, packets), "section5"), 16);
      } finally {
        await enc.close();
      }
    },
  );

  test(`${b.name}: an unknown setting is refused before any frame, and the next encoder works`, async () => {
    const src = testSource({ width: 160, height: 96, frames: 2 });
    await assert.rejects(b.create(src.info, b.bad), (e: unknown) => {
      assert.ok(e instanceof EncoderError);
      assert.equal(e.code, "UNKNOWN_PARAMETER");
      return true;
    });
    const enc = await b.create(src.info);
    try {
      assert.equal((await encodeAll(enc, src.frames())).length, 2);
    } finally {
      await enc.close();
    }
  });
}
