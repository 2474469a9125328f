// Our bitstream must be byte-identical to SvtAv1EncApp's with the same settings: the same Y4M in, the same
// IVF frame payloads out. Runs in whichever runtime runs the tests (npm test runs both).
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { test } from "node:test";
import { type SvtAv1Config, SvtAv1Encoder } from "../lib/encoder/svt_av1.ts";
import { readIvf } from "../lib/io/ivf.ts";
import {
  assertSamePackets as assertSame,
  dav1dFrameCount,
  encodeY4mFileOnEveryHost,
  ivfPayloads as payloads,
  needs,
  referencePayloads,
  run,
  scriptCommand,
  tempPath,
  y4mTestFile,
} from "./_helpers/encode.ts";

function y4mFile(options: { width: number; height: number; frames: number; bitDepth?: 8 | 10 }) {
  return y4mTestFile("src-", options);
}

function ours(input: string, config: Omit<SvtAv1Config, "width" | "height">, keys = new Set<number>()) {
  // In Deno every encode runs on a pooled thread and on the caller's: both must give the same bytes.
  return encodeY4mFileOnEveryHost(
    input,
    (info, host) => SvtAv1Encoder.create({ ...info, ...config, host }),
    keys,
  );
}

function reference(input: string, args: string[]): Promise<Uint8Array[]> {
  const out = tempPath("ref.ivf");
  return referencePayloads("SvtAv1EncApp", ["-i", input, "-b", out, ...args], out);
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
