// Our bitstream must be byte-identical to the rav1e CLI's with the same settings: the same Y4M in, the
// same IVF frame payloads out. The CLI's default psychovisual tuning changes a setting the C API cannot
// reach, so both sides use tune psnr. Runs in whichever runtime runs the tests (npm test runs both).
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { test } from "node:test";
import { isKeyFramePacket } from "../lib/av1/obu.ts";
import { type Rav1eConfig, Rav1eEncoder } from "../lib/encoder/rav1e.ts";
import { fileReadable } from "../lib/io/file_stream.ts";
import { Y4mReader } from "../lib/io/y4m.ts";
import {
  assertSamePackets as assertSame,
  dav1dFrameCount,
  encodeAll,
  encodeY4mFileOnEveryHost,
  needs,
  referencePayloads,
  tempPath,
  y4mTestFile,
} from "./_helpers/encode.ts";

function y4mFile(options: { width: number; height: number; frames: number; bitDepth?: 8 | 10 | 12 }) {
  return y4mTestFile("rav1e-src-", options);
}

function ours(input: string, config: Omit<Rav1eConfig, "width" | "height">, keys = new Set<number>()) {
  // In Deno every encode runs on a pooled thread and on the caller's: both must give the same bytes.
  return encodeY4mFileOnEveryHost(
    input,
    (info, host) => Rav1eEncoder.create({ ...info, ...config, host }),
    keys,
  );
}

function reference(input: string, args: string[]): Promise<Uint8Array[]> {
  const out = tempPath("rav1e-ref.ivf");
  return referencePayloads("rav1e", [input, "-o", out, "-y", "--tune", "Psnr", ...args], out);
}

test(
  "rav1e 8-bit encode is byte-identical to the rav1e CLI at speed 10 quantizer 100",
  needs("rav1e"),
  async () => {
    const input = await y4mFile({ width: 160, height: 120, frames: 12 });
    assertSame(
      await ours(input, { speed: 10, quantizer: 100, tune: "psnr" }),
      await reference(input, ["--speed", "10", "--quantizer", "100"]),
    );
  },
);

test("rav1e 10-bit encode with keyint is byte-identical to the rav1e CLI", needs("rav1e"), async () => {
  const input = await y4mFile({ width: 128, height: 96, frames: 20, bitDepth: 10 });
  assertSame(
    await ours(input, { speed: 10, quantizer: 120, keyint: 8, tune: "psnr" }),
    await reference(input, ["--speed", "10", "--quantizer", "120", "--keyint", "8"]),
  );
});

test("rav1e low-latency encode is byte-identical to the rav1e CLI", needs("rav1e"), async () => {
  const input = await y4mFile({ width: 160, height: 120, frames: 12 });
  assertSame(
    await ours(input, { speed: 10, quantizer: 90, lowLatency: true, tune: "psnr" }),
    await reference(input, ["--speed", "10", "--quantizer", "90", "--low-latency"]),
  );
});

// Bitrate mode with a short rate-control reservoir (keyint under 160, or set): the quantizer cap must be the
// CLI's 255, not the C API's default 100 (docs/native-api.md).
for (
  const [label, config, args] of [
    ["keyint 30", { keyint: 30 }, ["--keyint", "30"]],
    ["keyint 60", { keyint: 60 }, ["--keyint", "60"]],
    ["a 45-frame reservoir", { params: { reservoir_frame_delay: 45 } }, ["--reservoir-frame-delay", "45"]],
  ] as const
) {
  test(`rav1e bitrate mode with ${label} is byte-identical to the rav1e CLI`, needs("rav1e"), async () => {
    const input = await y4mFile({ width: 160, height: 128, frames: 24 });
    assertSame(
      await ours(input, { speed: 10, bitrate: 200, tune: "psnr", ...config }),
      await reference(input, ["--speed", "10", "--bitrate", "200", ...args]),
    );
  });
}

test(
  "rav1e bitrate mode with min-keyint and tiles is byte-identical to the rav1e CLI",
  needs("rav1e"),
  async () => {
    const input = await y4mFile({ width: 160, height: 128, frames: 12 });
    assertSame(
      await ours(input, { speed: 10, bitrate: 200, minQuantizer: 20, minKeyint: 5, tiles: 2, tune: "psnr" }),
      await reference(input, [
        "--speed",
        "10",
        "--bitrate",
        "200",
        "--min-quantizer",
        "20",
        "--min-keyint",
        "5",
        "--tiles",
        "2",
      ]),
    );
  },
);

test("rav1e forced key frames come out as key frames that dav1d decodes", needs("dav1d"), async () => {
  const input = await y4mFile({ width: 128, height: 96, frames: 16 });
  const reader = await Y4mReader.open(await fileReadable(input));
  await using enc = await Rav1eEncoder.create({ ...reader.info, speed: 10, lowLatency: true });
  const packets = await encodeAll(enc, reader.frames(), new Set([5, 11]));
  assert.equal(packets.length, 16);
  const keys = packets.flatMap((p, i) => (p.keyFrame ? [i] : []));
  assert.deepEqual(keys, [0, 5, 11]);
  for (const i of keys) assert.ok(isKeyFramePacket(packets[i].data), `packet ${i} is a random access point`);
  const out = tempPath("rav1e-forced.obu");
  writeFileSync(out, Buffer.concat(packets.map((p) => p.data)));
  assert.equal(dav1dFrameCount(out, "section5"), 16);
});
