// Every bad rav1e setting is refused in TypeScript with its own message, before rav1e could panic (a
// Rust panic aborts the whole process); what passes the checks encodes.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  cliRdoLookahead,
  type Rav1eConfig,
  rav1eConfigFromFlags,
  Rav1eEncoder,
  rav1eSettings,
} from "../lib/encoder/rav1e.ts";
import { EncoderError } from "../lib/errors.ts";
import { testSource } from "../lib/io/testsrc.ts";
import { encodeAll } from "./_helpers/encode.ts";

const base = { width: 64, height: 48 };

function refused(config: Record<string, unknown>, pattern: RegExp, code = "INVALID_CONFIG") {
  assert.throws(() => rav1eSettings(config as unknown as Rav1eConfig), (e: unknown) => {
    assert.ok(e instanceof EncoderError, `expected EncoderError, got ${e}`);
    assert.equal(e.code, code);
    assert.match(e.message, pattern);
    return true;
  }, JSON.stringify(config));
}

test("rav1e bad settings each get their own message", () => {
  refused({ ...base, speed: 11 }, /^rav1e speed must be 0 to 10, got 11$/);
  refused({ ...base, speed: 2.5 }, /speed must be an integer 0 to 10, got 2.5/);
  refused({ ...base, quantizer: 256 }, /quantizer must be 0 to 255, got 256/);
  refused({ ...base, minQuantizer: -1 }, /minQuantizer must be 0 to 255, got -1/);
  refused(
    { ...base, quantizer: 50, minQuantizer: 60 },
    /minQuantizer \(60\) must not exceed quantizer \(50\)/,
  );
  refused({ ...base, bitrate: 0 }, /bitrate \(kbps\) must be 1 to 2000000, got 0/);
  refused({ ...base, keyint: 70000 }, /keyint must be 0 to 65535, got 70000/);
  refused({ ...base, minKeyint: -3 }, /minKeyint must be 0 to 65535, got -3/);
  refused({ ...base, rdoLookahead: 0 }, /rdoLookahead must be 1 to 1000, got 0/);
  refused({ ...base, tiles: 5000 }, /tiles must be 0 to 4096, got 5000/);
  refused({ ...base, threads: 100000 }, /threads must be 0 to 256, got 100000/);
  refused({ ...base, lowLatency: "yes" }, /lowLatency must be true or false, got "yes"/);
  refused({ ...base, tune: "fast" }, /tune must be "psnr" or "psychovisual", got "fast"/);
  refused({ ...base, chromaPosition: "left" }, /chromaPosition must be "unknown", "vertical" or "colocated"/);
  refused({ ...base, chroma: "444", chromaPosition: "vertical" }, /chromaPosition applies to 4:2:0 only/);
  refused({ ...base, colorRange: "tv" }, /colorRange must be "limited" or "full", got "tv"/);
  refused({ ...base, primaries: "bt999" }, /primaries must be one of bt709, unspecified/);
  refused({ ...base, transfer: 3 }, /transfer must be one of .* got 3/);
  refused({ ...base, matrix: "identity" }, /matrix "identity" \(RGB\) needs 4:4:4 input, got 420/);
  refused({ width: 8, height: 8 }, /needs at least 16x16 pixels, got 8x8/);
  refused({ width: 65, height: 48 }, /Width and height must be even for 4:2:0 input, got 65x48/);
  refused({ ...base, bitDepth: 9 }, /Bit depth must be 8, 10 or 12, got 9/);
  refused({ ...base, fps: { num: 0, den: 1 } }, /Frame rate must be positive integers/);
  refused({ ...base, params: { speed: 3 } }, /Set rav1e speed with the speed option, not params/);
  refused({ ...base, params: { tile_cols: 3 } }, /tile_cols must be 0 or a power of two up to 64, got 3/);
  refused(
    { ...base, params: { reservoir_frame_delay: 5 } },
    /reservoir_frame_delay must be 12 to 131072, got 5/,
  );
  refused({ ...base, params: { switch_frame_interval: 4 } }, /switch_frame_interval needs lowLatency: true/);
  refused({ ...base, params: { still_picture: true } }, /still_picture is not supported for streams/);
  refused({ ...base, params: { "Bad-Key": 1 } }, /Unknown rav1e parameter 'Bad-Key'/, "UNKNOWN_PARAMETER");
  refused({ ...base, params: { tile_rows_x: "1\0" } }, /NUL byte/);
  refused({ ...base, params: { tile_rows_x: { a: 1 } } }, /must be a string, number or boolean/);
});

test("rav1e settings follow the rav1e CLI: lookahead from speed, min keyint capped by keyint, time base", () => {
  const pairs = (c: Partial<Rav1eConfig>) =>
    Object.fromEntries(rav1eSettings({ ...base, ...c }).settings.params);
  assert.deepEqual([0, 2, 3, 5, 6, 8, 9, 10].map(cliRdoLookahead), [40, 40, 30, 30, 20, 20, 10, 10]);
  assert.equal(pairs({}).speed, "6");
  assert.equal(pairs({}).rdo_lookahead_frames, "20");
  assert.equal(pairs({ speed: 10 }).rdo_lookahead_frames, "10");
  assert.equal(pairs({ speed: 10, rdoLookahead: 3 }).rdo_lookahead_frames, "3");
  assert.equal(pairs({}).min_key_frame_interval, "12");
  assert.equal(pairs({ keyint: 8 }).min_key_frame_interval, "8");
  assert.equal(pairs({ keyint: 60, minKeyint: 30 }).min_key_frame_interval, "30");
  assert.equal(pairs({ bitrate: 500 }).bitrate, "500000");
  assert.equal(pairs({ tune: "psnr" }).tune, "Psnr");
  assert.equal(pairs({ lowLatency: true }).low_latency, "true");
  const s = rav1eSettings({ ...base, fps: { num: 30000, den: 1001 }, bitDepth: 10, chroma: "422" }).settings;
  assert.deepEqual(s.timeBase, { num: 1001, den: 30000 });
  assert.equal(s.bytesPerSample, 2);
  assert.deepEqual(s.planes.map((p) => p.stride), [128, 64, 64]);
});

test("rav1eConfigFromFlags maps the CLI flags", () => {
  assert.deepEqual(
    rav1eConfigFromFlags({
      speed: "10",
      quantizer: "100",
      "min-quantizer": "5",
      "min-keyint": "6",
      keyint: "60",
      tiles: "4",
      "low-latency": true,
      tune: "Psnr",
    }),
    {
      speed: 10,
      quantizer: 100,
      minQuantizer: 5,
      minKeyint: 6,
      keyint: 60,
      tiles: 4,
      lowLatency: true,
      tune: "psnr",
    },
  );
  assert.throws(() => rav1eConfigFromFlags({ speed: "fast" }), /--speed must be a number, got "fast"/);
});

/** A small deterministic generator (mulberry32), so a failure names a reproducible seed. */
function random(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const CHOICES: Record<string, unknown[]> = {
  width: [16, 64, 66, 65, 0, -2, 1.5, 16385, "64"],
  height: [16, 48, 50, 33, 0],
  bitDepth: [8, 10, 12, 9, 16, undefined],
  chroma: ["420", "422", "444", "mono", "411", undefined],
  speed: [0, 5, 10, 11, -1, 3.5, undefined, undefined],
  quantizer: [0, 100, 255, 256, -1, undefined, undefined],
  minQuantizer: [0, 50, 255, 300, undefined, undefined],
  bitrate: [1, 300, 0, -5, 2_000_001, undefined, undefined, undefined],
  keyint: [0, 1, 8, 240, 65536, -1, undefined],
  minKeyint: [0, 1, 30, 70000, undefined],
  lowLatency: [true, false, 1, undefined],
  rdoLookahead: [1, 10, 40, 0, 1001, undefined, undefined],
  tiles: [0, 1, 2, 16, 4096, 4097, undefined],
  threads: [0, 1, 2, 257, -1, undefined],
  tune: ["psnr", "psychovisual", "Psnr", undefined],
  chromaPosition: ["unknown", "vertical", "colocated", "left", undefined],
  colorRange: ["limited", "full", "pc", undefined],
  primaries: ["bt709", "bt2020", 9, 3, "nope", undefined, undefined],
  transfer: ["srgb", "smpte2084", 16, 3, undefined, undefined],
  matrix: ["bt709", "identity", 0, 3, undefined, undefined],
  fps: [{ num: 30, den: 1 }, { num: 30000, den: 1001 }, { num: 0, den: 1 }, undefined],
  params: [
    undefined,
    undefined,
    { tile_cols: 2 },
    { tile_rows: 4, tile_cols: 2 },
    { tile_cols: 3 },
    { reservoir_frame_delay: 24 },
    { reservoir_frame_delay: 11 },
    { enable_timing_info: true },
    { switch_frame_interval: 8 },
    { still_picture: true },
    { quantizer: 5 },
  ],
};

function randomConfig(next: () => number): Record<string, unknown> {
  const config: Record<string, unknown> = {};
  for (const [key, values] of Object.entries(CHOICES)) {
    // Most keys stay unset, so that valid configurations are common enough to reach native code.
    if (key !== "width" && key !== "height" && next() < 0.7) continue;
    const v = values[Math.floor(next() * values.length)];
    if (v !== undefined) config[key] = v;
  }
  return config;
}

test("rav1e config fuzz: every combination is refused with an EncoderError or encodes", async () => {
  const next = random(20240405);
  const valid: Record<string, unknown>[] = [];
  for (let i = 0; i < 3000; i++) {
    const config = randomConfig(next);
    try {
      rav1eSettings(config as unknown as Rav1eConfig);
      valid.push(config);
    } catch (e) {
      assert.ok(e instanceof EncoderError, `config ${JSON.stringify(config)} threw ${e}`);
      assert.ok(e.message.length > 10 && /[a-z]/.test(e.message));
    }
  }
  assert.ok(valid.length >= 20, `only ${valid.length} valid combinations`);
  // The native part for a handful: each encodes two frames (speed 10 keeps it quick) or is refused.
  const picks = valid.filter((c) => (c.width as number) * (c.height as number) <= 64 * 66).slice(0, 8);
  for (const config of picks) {
    const c = { ...config, speed: 10 } as unknown as Rav1eConfig;
    const info = rav1eSettings(c).info;
    try {
      await using enc = await Rav1eEncoder.create(c);
      const src = testSource({ ...info, bitDepth: info.bitDepth as 8 | 10 | 12, frames: 2 });
      const packets = await encodeAll(enc, src.frames());
      assert.equal(packets.length, 2, JSON.stringify(config));
    } catch (e) {
      assert.ok(e instanceof EncoderError, `config ${JSON.stringify(config)} threw ${e}`);
    }
  }
});
