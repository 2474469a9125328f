import assert from "node:assert/strict";
import { test } from "node:test";
import { parseSvtVersion, svtAv1LayoutFor } from "../ffi/layouts/svt_av1.ts";
import { candidatePaths, SVT_AV1_SONAMES } from "../ffi/load.ts";

const layout = (v: string) => svtAv1LayoutFor(parseSvtVersion(v)!);

test("parseSvtVersion reads the strings SVT-AV1 reports", () => {
  assert.deepEqual(parseSvtVersion("v1.4.1"), { major: 1, minor: 4, patch: 1, text: "v1.4.1" });
  assert.equal(parseSvtVersion("v2.3.0-dirty")?.minor, 3);
  assert.equal(parseSvtVersion("3.0.2")?.major, 3);
  assert.equal(parseSvtVersion("unknown"), undefined);
});

test("SVT-AV1 before 1.4 and from 5.0 has no layout", () => {
  assert.equal(layout("v1.3.0"), undefined);
  assert.equal(layout("v0.9.1"), undefined);
  assert.equal(layout("v5.0.0"), undefined);
});

test("SVT-AV1 1.4.x layout: 136-byte buffer header and the 88-byte picture descriptor", () => {
  const l = layout("v1.4.1")!;
  assert.equal(l.initHandleHasAppData, true);
  assert.deepEqual(
    [l.bufferHeader.size, l.bufferHeader.pBuffer, l.bufferHeader.nFilledLen, l.bufferHeader.nAllocLen],
    [136, 8, 16, 20],
  );
  assert.deepEqual([l.bufferHeader.pts, l.bufferHeader.picType, l.bufferHeader.flags], [56, 68, 96]);
  assert.deepEqual(
    [l.ioFormat.size, l.ioFormat.yStride, l.ioFormat.crStride, l.ioFormat.cbStride, l.ioFormat.width],
    [88, 48, 52, 56, 60],
  );
  assert.deepEqual([l.ioFormat.height, l.ioFormat.colorFmt, l.ioFormat.bitDepth], [64, 76, 80]);
  assert.equal(l.keyPictureNeedsFlag, true);
  assert.equal(l.separateEosPacket, false);
  assert.ok(l.configBytes >= 1720, "the 1.4.1 configuration struct is 1720 bytes");
});

test("SVT-AV1 1.5 to 2.3 layout: 64-byte picture descriptor, 2.0 changes EOS and filled length", () => {
  const l15 = layout("v1.5.0")!;
  assert.deepEqual(
    [
      l15.ioFormat.size,
      l15.ioFormat.yStride,
      l15.ioFormat.width,
      l15.ioFormat.colorFmt,
      l15.ioFormat.bitDepth,
    ],
    [64, 24, 36, 52, 56],
  );
  assert.equal(l15.bufferHeader.size, 136);
  assert.equal(l15.keyPictureNeedsFlag, true);
  assert.equal(layout("v1.8.0")!.keyPictureNeedsFlag, false);
  const l2 = layout("v2.3.0")!;
  assert.equal(l2.separateEosPacket, true);
  assert.equal(l2.filledLenIsFrameSize, true);
  assert.equal(l2.initHandleHasAppData, true);
});

test("SVT-AV1 3.x and 4.x layout: 144-byte header, 40-byte descriptor, init_handle without app data", () => {
  for (const v of ["v3.0.2", "v4.1.0"]) {
    const l = layout(v)!;
    assert.equal(l.initHandleHasAppData, false);
    assert.deepEqual(
      [
        l.bufferHeader.size,
        l.bufferHeader.qp,
        l.bufferHeader.picType,
        l.bufferHeader.flags,
        l.bufferHeader.metadata,
      ],
      [144, 68, 76, 104, 136],
    );
    assert.deepEqual([l.ioFormat.size, l.ioFormat.yStride, l.ioFormat.crStride, l.ioFormat.cbStride], [
      40,
      24,
      28,
      32,
    ]);
    assert.equal(l.ioFormat.width, undefined);
    assert.ok(l.configBytes >= 664);
  }
});

test("the loader tries an explicit path alone, otherwise every soname", () => {
  assert.deepEqual(candidatePaths(SVT_AV1_SONAMES, "/opt/x/libSvtAv1Enc.so.1"), ["/opt/x/libSvtAv1Enc.so.1"]);
  const all = candidatePaths(SVT_AV1_SONAMES, undefined);
  for (const soname of ["libSvtAv1Enc.so.1", "libSvtAv1Enc.so.2", "libSvtAv1Enc.so.3"]) {
    assert.ok(all.some((p) => p.endsWith(soname)), `${soname} is tried`);
  }
});
