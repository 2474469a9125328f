// Every live SVT-AV1 encoder runs on a private copy of the library that no other live encoder holds
// (lib/encoder/svt_av1_images.ts, ffi/private_copy.ts): the same bytes as the shared image, the copy
// given back when the encoder is closed (also when its set-up failed) and taken again by the next one,
// so the process makes no more copies than it had encoders at once.
import assert from "node:assert/strict";
import { readlinkSync } from "node:fs";
import { test } from "node:test";
import { locateSvtAv1, svtAv1File } from "../ffi/load.ts";
import { copyPath, copyStats, libraryFile, takeCopy } from "../ffi/private_copy.ts";
import { ffiRuntime } from "../ffi/runtime/mod.ts";
import { svtAv1VersionSymbols } from "../ffi/symbols/svt_av1.ts";
import { Rav1eEncoder } from "../lib/encoder/rav1e.ts";
import { SvtAv1Encoder } from "../lib/encoder/svt_av1.ts";
import { testSource } from "../lib/io/testsrc.ts";
import { encodeAll, HOSTS, rejectsWith } from "./_helpers/encode.ts";

const src = testSource({ width: 96, height: 64, frames: 8 });
const settings = { ...src.info, preset: 10 };
const rt = await ffiRuntime();
const where = await locateSvtAv1();
const file = svtAv1File(where)!;
const stats = () => copyStats(rt, file);

for (const host of HOSTS) {
  test(`SVT-AV1 (${host}): encoders live at once run on copies of their own, with the same bytes, and give them back`, async () => {
    const before = stats();
    const a = await SvtAv1Encoder.create({ ...settings, host });
    let b: SvtAv1Encoder | undefined;
    try {
      assert.deepEqual(a.libraryImage, { kind: "private", isolated: true });
      b = await SvtAv1Encoder.create({ ...settings, host });
      assert.deepEqual(b.libraryImage, { kind: "private", isolated: true });
      assert.equal(stats().taken, before.taken + 2);
      // Both encode at once, each on its image.
      const [pa, pb] = await Promise.all([encodeAll(a, src.frames()), encodeAll(b, src.frames())]);
      assert.equal(pa.length, 8);
      assert.deepEqual(pb.map((p) => p.data), pa.map((p) => p.data));
    } finally {
      await b?.close();
      await a.close();
    }
    const after = stats();
    assert.equal(after.taken, before.taken);
    // Two more at once take the copies back: none is made.
    const c = await SvtAv1Encoder.create({ ...settings, host });
    const d = await SvtAv1Encoder.create({ ...settings, host });
    try {
      assert.equal(stats().copies, after.copies);
      assert.equal(stats().taken, before.taken + 2);
    } finally {
      await d.close();
      await c.close();
    }
  });

  test(`SVT-AV1 (${host}): an encoder whose set-up failed gives its copy back`, async () => {
    const before = stats();
    await rejectsWith(
      SvtAv1Encoder.create({ ...settings, host, params: { "film-grain": 99 } }),
      "INVALID_CONFIG",
      /film-grain/,
    );
    assert.equal(stats().taken, before.taken);
  });
}

test("rav1e encoders share the one image of their library", async () => {
  const info = testSource({ width: 64, height: 64, frames: 1 }).info;
  const a = await Rav1eEncoder.create({ ...info, speed: 10 });
  const b = await Rav1eEncoder.create({ ...info, speed: 10 });
  try {
    assert.deepEqual(a.libraryImage, { kind: "shared", isolated: true });
    assert.deepEqual(b.libraryImage, { kind: "shared", isolated: true });
  } finally {
    await b.close();
    await a.close();
  }
});

test("takeCopy: a copy is held by one taker at a time, answers as the library does, and is taken again", () => {
  const first = takeCopy(rt, file)!;
  const second = takeCopy(rt, file)!;
  try {
    assert.notEqual(first.fd, second.fd);
    assert.equal(readlinkSync(copyPath(first.fd)), `/memfd:av1-stream:${file} (deleted)`);
    const lib = rt.open(copyPath(second.fd), svtAv1VersionSymbols);
    assert.equal(rt.readCString(lib.symbols.svt_av1_get_version()), where.version.text);
  } finally {
    second.release();
  }
  const again = takeCopy(rt, file)!;
  try {
    assert.equal(again.made, false);
    assert.notEqual(again.fd, first.fd);
  } finally {
    again.release();
    first.release();
  }
});

test("libraryFile resolves a path's links and finds a bare soname where the dynamic linker looks", () => {
  assert.ok(file.startsWith("/"), file);
  assert.equal(libraryFile(file), file);
  const name = file.slice(file.lastIndexOf("/") + 1);
  assert.equal(libraryFile(name, [file.slice(0, file.lastIndexOf("/"))]), file);
  assert.equal(libraryFile("libno-such-library.so.1"), undefined);
});
