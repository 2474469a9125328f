// SVT-AV1 encoders that are live at the same time run on different images of the library (a private
// copy for each one beside the shared image: lib/encoder/svt_av1_images.ts), give the same bytes as on
// the shared image, and give their image back when closed, also when their set-up failed. The copy
// itself (ffi/private_copy.ts) works from memory and from the temporary folder and leaves no file.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { test } from "node:test";
import { locateSvtAv1 } from "../ffi/load.ts";
import { libraryFile, withPrivateCopy } from "../ffi/private_copy.ts";
import { ffiRuntime } from "../ffi/runtime/mod.ts";
import { svtAv1VersionSymbols } from "../ffi/symbols/svt_av1.ts";
import { Rav1eEncoder } from "../lib/encoder/rav1e.ts";
import { SvtAv1Encoder } from "../lib/encoder/svt_av1.ts";
import { testSource } from "../lib/io/testsrc.ts";
import { encodeAll, HOSTS, rejectsWith } from "./_helpers/encode.ts";

const src = testSource({ width: 96, height: 64, frames: 8 });
const settings = { ...src.info, preset: 10 };

for (const host of HOSTS) {
  test(`SVT-AV1 (${host}): an encoder created while another is live runs on a private copy, with the same bytes`, async () => {
    const a = await SvtAv1Encoder.create({ ...settings, host });
    let b: SvtAv1Encoder | undefined;
    try {
      assert.deepEqual(a.libraryImage, { kind: "shared", isolated: true });
      b = await SvtAv1Encoder.create({ ...settings, host });
      assert.deepEqual(b.libraryImage, { kind: "private", isolated: true });
      // Both encode at once, each on its image.
      const [pa, pb] = await Promise.all([encodeAll(a, src.frames()), encodeAll(b, src.frames())]);
      assert.equal(pa.length, 8);
      assert.deepEqual(pb.map((p) => p.data), pa.map((p) => p.data));
    } finally {
      await b?.close();
      await a.close();
    }
    // Both given back: the next encoder runs on the shared image again, the one after it on a copy.
    const c = await SvtAv1Encoder.create({ ...settings, host });
    const d = await SvtAv1Encoder.create({ ...settings, host });
    try {
      assert.equal(c.libraryImage.kind, "shared");
      assert.equal(d.libraryImage.kind, "private");
    } finally {
      await d.close();
      await c.close();
    }
  });

  test(`SVT-AV1 (${host}): an encoder whose set-up failed gives its image back`, async () => {
    await rejectsWith(
      SvtAv1Encoder.create({ ...settings, host, params: { "film-grain": 99 } }),
      "INVALID_CONFIG",
      /film-grain/,
    );
    const a = await SvtAv1Encoder.create({ ...settings, host });
    try {
      assert.equal(a.libraryImage.kind, "shared");
    } finally {
      await a.close();
    }
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

for (const via of ["memory", "file"] as const) {
  test(`a private copy of SVT-AV1 made in ${via} opens, answers and leaves nothing behind`, async () => {
    const rt = await ffiRuntime();
    const where = await locateSvtAv1();
    const file = libraryFile(where.path);
    assert.ok(file, `the file behind ${where.path}`);
    let opened = "";
    const version = withPrivateCopy(rt, file, (path) => {
      opened = path;
      assert.ok(existsSync(path), path);
      const lib = rt.open(path, svtAv1VersionSymbols);
      // The copy stays loaded (its image is never closed while an encoder may run on it); this one is
      // only asked its version.
      return rt.readCString(lib.symbols.svt_av1_get_version());
    }, via);
    assert.equal(version, where.version.text);
    if (via === "memory") assert.match(opened, /^\/proc\/self\/fd\/\d+$/);
    assert.ok(!existsSync(opened), `${opened} is gone`);
  });
}

test("libraryFile resolves a path's links and finds a bare soname where the dynamic linker looks", async () => {
  const where = await locateSvtAv1();
  const file = libraryFile(where.path)!;
  assert.ok(file.startsWith("/") && existsSync(file), file);
  assert.equal(libraryFile(file), file);
  const name = file.slice(file.lastIndexOf("/") + 1);
  assert.equal(libraryFile(name, [file.slice(0, file.lastIndexOf("/"))]), file);
  assert.equal(libraryFile("libno-such-library.so.1"), undefined);
});
