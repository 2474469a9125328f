// Our bitstream must be byte-identical to SvtAv1EncApp's with the same settings: the same Y4M in, the same
// IVF frame payloads out. Runs in whichever runtime runs the tests (npm test runs both).
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { test } from "node:test";
import { type SvtAv1Config, SvtAv1Encoder } from "../lib/encoder/svt_av1.ts";
import { fileReadable } from "../lib/io/file_stream.ts";
import { readIvf } from "../lib/io/ivf.ts";
import { testSourceY4m } from "../lib/io/testsrc.ts";
import { Y4mReader } from "../lib/io/y4m.ts";
import { dav1dFrameCount, encodeAll, needs, run, scriptCommand, tempPath } from "./_helpers/encode.ts";
import { collect } from "./_helpers/io_streams.ts";

async function y4mFile(options: { width: number; height: number; frames: number; bitDepth?: 8 | 10 }) {
  const path = tempPath(`src-${options.width}x${options.height}-${options.bitDepth ?? 8}.y4m`);
  writeFileSync(path, await collect(testSourceY4m(options)));
  return path;
}

async function payloads(path: string): Promise<Uint8Array[]> {
  return (await readIvf(new Uint8Array(readFileSync(path)))).frames.map((f) => f.data);
}

async function ours(input: string, config: Omit<SvtAv1Config, "width" | "height">, keys = new Set<number>()) {
  const reader = await Y4mReader.open(await fileReadable(input));
  await using enc = await SvtAv1Encoder.create({ ...reader.info, ...config });
  return (await encodeAll(enc, reader.frames(), keys)).map((p) => p.data);
}

function reference(input: string, args: string[]): Promise<Uint8Array[]> {
  const out = tempPath("ref.ivf");
  const r = run("SvtAv1EncApp", ["-i", input, "-b", out, ...args]);
  assert.equal(r.code, 0, r.stderr);
  return payloads(out);
}

function assertSame(a: Uint8Array[], b: Uint8Array[]) {
  assert.equal(a.length, b.length, "packet count");
  for (let i = 0; i < a.length; i++) {
    assert.ok(Buffer.from(a[i]).equals(Buffer.from(b[i])), `packet ${i} differs`);
  }
}

test(
  "8-bit encode is byte-identical to SvtAv1EncApp at preset 10 crf 35",
  needs("SvtAv1EncApp"),
  async () => {
    const input = await y4mFile({ width: 192, height: 128, frames: 20 });
    assertSame(
      await ours(input, { preset: 10, crf: 35 }),
      await reference(input, ["--preset", "10", "--crf", "35"]),
    );
  },
);

test("10-bit encode with keyint is byte-identical to SvtAv1EncApp", needs("SvtAv1EncApp"), async () => {
  const input = await y4mFile({ width: 160, height: 96, frames: 20, bitDepth: 10 });
  assertSame(
    await ours(input, { preset: 12, crf: 40, keyint: 8 }),
    await reference(input, ["--preset", "12", "--crf", "40", "--keyint", "8"]),
  );
});

test(
  "forced key frames match SvtAv1EncApp --force-key-frames and decode with dav1d",
  needs("SvtAv1EncApp", "dav1d"),
  async () => {
    const input = await y4mFile({ width: 160, height: 96, frames: 24 });
    const mine = await ours(input, { preset: 12, crf: 40 }, new Set([9, 17]));
    assertSame(
      mine,
      await reference(input, ["--preset", "12", "--crf", "40", "--force-key-frames", "9f,17f"]),
    );
    const out = tempPath("forced.obu");
    writeFileSync(out, Buffer.concat(mine));
    assert.equal(dav1dFrameCount(out, "section5"), 24);
  },
);

test(
  "the CLI writes the same IVF payloads as SvtAv1EncApp, and ffprobe and dav1d read it",
  needs("SvtAv1EncApp", "dav1d", "ffprobe"),
  async () => {
    const input = await y4mFile({ width: 160, height: 96, frames: 15 });
    const out = tempPath("cli.ivf");
    const [cmd, args] = scriptCommand("cli.ts", [
      "-i",
      input,
      "-o",
      out,
      "--preset",
      "11",
      "--crf",
      "30",
      "--quiet",
    ]);
    const r = run(cmd, args);
    assert.equal(r.code, 0, r.stderr);
    assertSame(await payloads(out), await reference(input, ["--preset", "11", "--crf", "30"]));
    assert.equal((await readIvf(new Uint8Array(readFileSync(out)))).header.frameCount, 15);
    assert.equal(dav1dFrameCount(out), 15);
    const probe = run("ffprobe", [
      "-v",
      "error",
      "-count_frames",
      "-show_entries",
      "stream=codec_name,width,height,nb_read_frames",
      "-of",
      "csv=p=0",
      out,
    ]);
    assert.equal(probe.stdout.trim(), "av1,160,96,15");
  },
);
