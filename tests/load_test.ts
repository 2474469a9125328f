import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { test } from "node:test";
import { locateSvtAv1, SVT_AV1_SONAMES } from "../ffi/load.ts";
import { SvtAv1Encoder } from "../lib/encoder/svt_av1.ts";
import { EncoderError } from "../lib/errors.ts";
import { needs, run, tempPath } from "./_helpers/encode.ts";

test("a missing SVT-AV1 library is an EncoderError that lists the path tried and how to install", async () => {
  await assert.rejects(
    SvtAv1Encoder.create({ width: 160, height: 120, libraryPath: "/nonexistent/libSvtAv1Enc.so.1" }),
    (e: unknown) => {
      assert.ok(e instanceof EncoderError);
      assert.equal(e.code, "LIBRARY_NOT_FOUND");
      assert.equal(e.library, "svt-av1");
      assert.match(e.message, /\/nonexistent\/libSvtAv1Enc\.so\.1: /);
      assert.match(e.message, /apt-get install libsvtav1enc1/);
      return true;
    },
  );
});

test("SVTAV1_LIB_PATH is used alone when set", async () => {
  await assert.rejects(
    locateSvtAv1({ env: { SVTAV1_LIB_PATH: "/nonexistent/other.so" } }),
    /Tried:\n {2}\/nonexistent\/other\.so: /,
  );
});

test("the system SVT-AV1 is found with its version and layout", async () => {
  const found = await locateSvtAv1({ env: {} });
  assert.match(found.version.text, /^v?\d+\.\d+\.\d+/);
  assert.ok(found.layout.bufferHeader.size === 136 || found.layout.bufferHeader.size === 144);
});

test("an unsupported SVT-AV1 version is refused before any encoder call", needs("cc"), async () => {
  const src = tempPath("old_svt.c");
  const lib = tempPath("libSvtAv1Enc.so.1");
  writeFileSync(src, 'const char *svt_av1_get_version(void) { return "v1.2.0"; }\n');
  const cc = run("cc", ["-shared", "-fPIC", "-o", lib, src]);
  assert.equal(cc.code, 0, cc.stderr);
  await assert.rejects(
    SvtAv1Encoder.create({ width: 160, height: 120, libraryPath: lib }),
    (e: unknown) => {
      assert.ok(e instanceof EncoderError);
      assert.equal(e.code, "LIBRARY_UNSUPPORTED");
      assert.match(e.message, /version "v1\.2\.0" is older than supported/);
      assert.match(e.message, /supported: 1\.4\.0 to 4\.x/);
      return true;
    },
  );
});

test(
  "SVT-AV1 0.9 (Ubuntu 22.04's) is found by its soname and refused as too old, with how to get a newer one",
  needs("cc"),
  async () => {
    const src = tempPath("svt_09.c");
    const lib = tempPath("libSvtAv1Enc.so.0");
    writeFileSync(src, 'const char *svt_av1_get_version(void) { return "v0.9.1"; }\n');
    const cc = run("cc", ["-shared", "-fPIC", "-o", lib, src]);
    assert.equal(cc.code, 0, cc.stderr);
    await assert.rejects(locateSvtAv1({ env: { SVTAV1_LIB_PATH: lib } }), (e: unknown) => {
      assert.ok(e instanceof EncoderError);
      assert.equal(e.code, "LIBRARY_UNSUPPORTED");
      assert.match(e.message, /version "v0\.9\.1" is older than supported \(supported: 1\.4\.0 to 4\.x\)/);
      assert.match(e.message, /deno run -A build\.ts --svt-av1 3/);
      assert.match(e.message, /@av1-stream\/linux-x64-gnu/);
      return true;
    });
    assert.ok(SVT_AV1_SONAMES.includes("libSvtAv1Enc.so.0"));
  },
);
