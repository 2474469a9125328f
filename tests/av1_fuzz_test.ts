import assert from "node:assert/strict";
import { test } from "node:test";
import {
  av1CodecConfigurationRecord,
  codecString,
  findSequenceHeader,
  isKeyFramePacket,
  parseAv1C,
  parseCodecString,
  parseFrameHeaderStart,
  parseObus,
  parseSequenceHeader,
  readLeb128,
  splitTemporalUnits,
  stripTemporalDelimiters,
} from "../lib/av1/mod.ts";
import { EncoderError } from "../lib/errors.ts";
import { av1FixtureFrames, av1FixtureNames } from "./_helpers/av1_fixtures.ts";

/** A small seeded generator (mulberry32), so a failure replays the same inputs. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

const hex = (bytes: Uint8Array) =>
  Array.from(bytes.subarray(0, 64), (b) => b.toString(16).padStart(2, "0")).join("");

/** Tallies how calls ended; anything thrown but an EncoderError fails the test with the input. */
class Outcomes {
  ok = 0;
  rejected = 0;

  run(input: Uint8Array, what: string, fn: () => unknown): void {
    try {
      fn();
      this.ok++;
    } catch (err) {
      if (!(err instanceof EncoderError)) {
        assert.fail(`${what} threw ${err} instead of an EncoderError for input ${hex(input)}`);
      }
      assert.ok(err.code === "INVALID_INPUT" || err.code === "INVALID_CONFIG", err.code);
      assert.ok(
        err.message.length > 20 && /^[A-Z]/.test(err.message),
        `sentence-case message: ${err.message}`,
      );
      this.rejected++;
    }
  }

  /** Feeds one input to every parser that takes arbitrary bytes. */
  all(input: Uint8Array): void {
    this.run(input, "parseObus", () => parseObus(input));
    this.run(input, "splitTemporalUnits", () => splitTemporalUnits(input));
    this.run(input, "stripTemporalDelimiters", () => stripTemporalDelimiters(input));
    this.run(input, "findSequenceHeader", () => findSequenceHeader(input));
    this.run(input, "isKeyFramePacket", () => isKeyFramePacket(input));
    this.run(input, "parseSequenceHeader", () => parseSequenceHeader(input));
    this.run(input, "parseSequenceHeader payload", () => parseSequenceHeader(input, { format: "payload" }));
    this.run(input, "parseSequenceHeader obu", () => parseSequenceHeader(input, { format: "obu" }));
    this.run(input, "codecString", () => codecString(input, { full: true }));
    this.run(input, "av1CodecConfigurationRecord", () => av1CodecConfigurationRecord(input));
    this.run(input, "parseAv1C", () => parseAv1C(input));
    this.run(input, "readLeb128", () => readLeb128(input, input.length >> 1));
  }
}

function timed(fn: () => void): number {
  const started = performance.now();
  fn();
  return performance.now() - started;
}

// A hang guard far above the ~0.1–0.5 s these take, so slow CI machines do not fail them.
const LIMIT_MS = 10_000;

test("AV1 parsers return or throw EncoderError on random bytes", () => {
  const rand = random(1);
  const outcomes = new Outcomes();
  const ms = timed(() => {
    for (let i = 0; i < 3000; i++) {
      const input = new Uint8Array(Math.floor(rand() * 48));
      for (let j = 0; j < input.length; j++) input[j] = Math.floor(rand() * 256);
      // Clear the forbidden bit half the time so the OBU paths get past the first byte.
      if (input.length && i % 2) input[0] &= 0x7f;
      outcomes.all(input);
    }
  });
  assert.ok(
    outcomes.ok > 1000 && outcomes.rejected > 1000,
    `${outcomes.ok} ok, ${outcomes.rejected} rejected`,
  );
  assert.ok(ms < LIMIT_MS, `took ${ms} ms`);
});

test("AV1 parsers return or throw EncoderError on random OBUs with plausible framing", () => {
  const rand = random(2);
  const outcomes = new Outcomes();
  const byte = () => Math.floor(rand() * 256);
  const ms = timed(() => {
    for (let i = 0; i < 2000; i++) {
      // A temporal delimiter, a sequence header and a frame header or frame, each with a random payload.
      const parts: number[] = [0x12, 0x00];
      for (const header of [0x0a, rand() < 0.5 ? 0x1a : 0x32]) {
        const size = Math.floor(rand() * 40);
        parts.push(header, size, ...Array.from({ length: size }, byte));
      }
      outcomes.all(new Uint8Array(parts));
    }
  });
  assert.ok(
    outcomes.ok > 1000 && outcomes.rejected > 100,
    `${outcomes.ok} ok, ${outcomes.rejected} rejected`,
  );
  assert.ok(ms < LIMIT_MS, `took ${ms} ms`);
});

test("AV1 parsers return or throw EncoderError on real packets truncated at every length", () => {
  const outcomes = new Outcomes();
  const ms = timed(() => {
    for (const name of ["rav1e_64x64_mono.ivf", "aom_64x64_decmodel.ivf", "rav1e_64x64_still.ivf"]) {
      const packet = av1FixtureFrames(name)[0];
      for (let n = 0; n <= packet.length; n++) outcomes.all(packet.subarray(0, n));
    }
  });
  assert.ok(
    outcomes.ok > 1000 && outcomes.rejected > 1000,
    `${outcomes.ok} ok, ${outcomes.rejected} rejected`,
  );
  assert.ok(ms < LIMIT_MS, `took ${ms} ms`);
});

test("AV1 parsers return or throw EncoderError on every bit flip of real stream headers", () => {
  const outcomes = new Outcomes();
  let keyFlips = 0;
  const ms = timed(() => {
    for (const name of av1FixtureNames()) {
      const packet = av1FixtureFrames(name)[0].slice();
      // The temporal delimiter, the sequence header and the start of the first frame header.
      const span = Math.min(packet.length, 48);
      for (let bit = 0; bit < span * 8; bit++) {
        packet[bit >> 3] ^= 0x80 >> (bit & 7);
        outcomes.run(packet, "parseObus", () => parseObus(packet));
        outcomes.run(packet, "isKeyFramePacket", () => {
          if (!isKeyFramePacket(packet)) keyFlips++;
        });
        outcomes.run(packet, "codecString", () => codecString(findSequenceHeader(packet) ?? packet));
        outcomes.run(packet, "stripTemporalDelimiters", () => stripTemporalDelimiters(packet));
        packet[bit >> 3] ^= 0x80 >> (bit & 7);
      }
    }
  });
  assert.ok(outcomes.rejected > 100, `${outcomes.rejected} rejected`);
  assert.ok(keyFlips > 0, "some flips turn the key frame into something else");
  assert.ok(ms < LIMIT_MS, `took ${ms} ms`);
});

test("AV1 parsers return or throw EncoderError on randomly mutated real packets", () => {
  const rand = random(3);
  const outcomes = new Outcomes();
  const packets = av1FixtureNames().flatMap((name) => av1FixtureFrames(name));
  const ms = timed(() => {
    for (let i = 0; i < 1500; i++) {
      const packet = packets[i % packets.length].slice();
      const flips = 1 + Math.floor(rand() * 8);
      for (let f = 0; f < flips; f++) {
        packet[Math.floor(rand() * packet.length)] ^= 1 << Math.floor(rand() * 8);
      }
      const cut = rand() < 0.3 ? packet.subarray(0, Math.floor(rand() * packet.length)) : packet;
      outcomes.run(cut, "parseObus", () => parseObus(cut));
      outcomes.run(cut, "isKeyFramePacket", () => isKeyFramePacket(cut));
      outcomes.run(cut, "splitTemporalUnits", () => splitTemporalUnits(cut));
    }
  });
  assert.ok(outcomes.ok > 100 && outcomes.rejected > 100, `${outcomes.ok} ok, ${outcomes.rejected} rejected`);
  assert.ok(ms < LIMIT_MS, `took ${ms} ms`);
});

test("parseFrameHeaderStart returns or throws EncoderError on random payloads under every fixture", () => {
  const rand = random(4);
  const outcomes = new Outcomes();
  const sequences = av1FixtureNames().map((name) =>
    parseSequenceHeader(findSequenceHeader(av1FixtureFrames(name)[0])!)
  );
  for (let i = 0; i < 3000; i++) {
    const payload = new Uint8Array(Math.floor(rand() * 6));
    for (let j = 0; j < payload.length; j++) payload[j] = Math.floor(rand() * 256);
    const seq = sequences[i % sequences.length];
    const context = { temporalId: Math.floor(rand() * 8), spatialId: Math.floor(rand() * 4) };
    outcomes.run(payload, "parseFrameHeaderStart", () => parseFrameHeaderStart(payload, seq, context));
  }
  assert.ok(outcomes.ok > 100 && outcomes.rejected > 100, `${outcomes.ok} ok, ${outcomes.rejected} rejected`);
});

test("parseCodecString returns or throws EncoderError on mutated codec strings", () => {
  const rand = random(5);
  const alphabet = "av01.2345678MHx-_ ";
  const seeds = ["av01.0.04M.08", "av01.0.04M.10.0.112.09.16.09.0", "av01.2.31H.12.0.100.02.02.02.1"];
  let ok = 0;
  let rejected = 0;
  for (let i = 0; i < 3000; i++) {
    const chars = [...seeds[i % seeds.length]];
    const edits = 1 + Math.floor(rand() * 3);
    for (let e = 0; e < edits; e++) {
      const at = Math.floor(rand() * (chars.length + 1));
      const op = rand();
      const c = alphabet[Math.floor(rand() * alphabet.length)];
      if (op < 0.4) chars.splice(at, 1);
      else if (op < 0.7) chars.splice(at, 0, c);
      else chars[at] = c;
    }
    const codec = chars.join("");
    try {
      const p = parseCodecString(codec);
      assert.ok([0, 1, 2].includes(p.profile) && [8, 10, 12].includes(p.bitDepth) && p.level <= 31, codec);
      ok++;
    } catch (err) {
      if (!(err instanceof EncoderError) || err.code !== "INVALID_CONFIG") {
        assert.fail(`parseCodecString("${codec}") threw ${err}`);
      }
      rejected++;
    }
  }
  assert.ok(ok > 50 && rejected > 1000, `${ok} ok, ${rejected} rejected`);
});
