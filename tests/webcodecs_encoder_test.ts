import assert from "node:assert/strict";
import { test } from "node:test";
import { parseAv1C } from "../lib/av1/codec_string.ts";
import { VideoEncoder, type VideoEncoderConfig, VideoFrame } from "../lib/webcodecs/mod.ts";
import { fastConfig, i420Frame, recordingEncoder, waitFor } from "./_helpers/webcodecs.ts";

const isName = (name: string) => (e: unknown) => e instanceof Error && e.name === name;
const noop = () => {};

test("VideoEncoder constructor needs output and error functions (TypeError)", () => {
  assert.throws(() => new VideoEncoder(undefined as never), TypeError);
  assert.throws(() => new VideoEncoder({ output: noop } as never), TypeError);
  assert.throws(() => new VideoEncoder({ error: noop } as never), TypeError);
  assert.throws(() => new VideoEncoder({ output: 1, error: noop } as never), TypeError);
  const enc = new VideoEncoder({ output: noop, error: noop });
  assert.equal(enc.state, "unconfigured");
  assert.equal(enc.encodeQueueSize, 0);
  assert.ok(enc instanceof EventTarget);
  enc.close();
});

test("VideoEncoder unconfigured: encode throws InvalidStateError and flush rejects with it", async () => {
  const { encoder, errors } = recordingEncoder();
  const frame = i420Frame(0);
  assert.throws(() => encoder.encode(frame), isName("InvalidStateError"));
  await assert.rejects(encoder.flush(), isName("InvalidStateError"));
  encoder.reset(); // allowed while unconfigured
  assert.equal(encoder.state, "unconfigured");
  frame.close();
  encoder.close();
  assert.deepEqual(errors, []);
});

test("VideoEncoder closed: configure, encode, reset and close throw InvalidStateError, flush rejects", async () => {
  const { encoder, errors } = recordingEncoder();
  encoder.close();
  assert.equal(encoder.state, "closed");
  const frame = i420Frame(0);
  assert.throws(() => encoder.configure(fastConfig("svt-av1")), isName("InvalidStateError"));
  assert.throws(() => encoder.encode(frame), isName("InvalidStateError"));
  assert.throws(() => encoder.reset(), isName("InvalidStateError"));
  assert.throws(() => encoder.close(), isName("InvalidStateError"));
  await assert.rejects(encoder.flush(), isName("InvalidStateError"));
  frame.close();
  assert.deepEqual(errors, [], "close() does not call the error callback");
});

const INVALID: [string, Partial<VideoEncoderConfig>][] = [
  ["missing codec", { codec: undefined }],
  ["empty codec", { codec: "" }],
  ["blank codec", { codec: "  " }],
  ["width 0", { width: 0 }],
  ["height 0", { height: 0 }],
  ["displayWidth 0", { displayWidth: 0, displayHeight: 120 }],
  ["displayHeight 0", { displayWidth: 160, displayHeight: 0 }],
  ["displayWidth without displayHeight", { displayWidth: 160 }],
  ["bitrate present but zero", { bitrate: 0 }],
  ["framerate 0", { framerate: 0 }],
  ["unknown bitrateMode", { bitrateMode: "average" as never }],
  ["unknown latencyMode", { latencyMode: "fast" as never }],
];

test("VideoEncoder invalid configs: configure throws TypeError and isConfigSupported rejects with it", async () => {
  for (const [name, change] of INVALID) {
    const config = { ...fastConfig("svt-av1"), ...change };
    await assert.rejects(VideoEncoder.isConfigSupported(config), TypeError, name);
    const enc = new VideoEncoder({ output: noop, error: noop });
    assert.throws(() => enc.configure(config), TypeError, name);
    assert.equal(enc.state, "unconfigured", name);
    enc.close();
  }
});

const UNSUPPORTED: [string, Partial<VideoEncoderConfig>][] = [
  ["unrecognized codec", { codec: "bogus" }],
  ["another codec", { codec: "vp8" }],
  ["malformed AV1 codec", { codec: "av01.0.4M.08" }],
  ["profile 1", { codec: "av01.1.04M.08" }],
  ["12-bit", { codec: "av01.2.04M.12" }],
  ["width too large", { width: 1_000_000 }],
  ["odd width", { width: 161 }],
  ["scalability mode L1T2", { scalabilityMode: "L1T2" }],
  ["invalid scalability mode", { scalabilityMode: "bogus" }],
  ["alpha keep", { alpha: "keep" }],
  ["SVT-AV1 below 64 pixels", { width: 32, height: 32 }],
];

test("VideoEncoder.isConfigSupported answers false for unsupported configs", async () => {
  for (const [name, change] of UNSUPPORTED) {
    const support = await VideoEncoder.isConfigSupported({ ...fastConfig("svt-av1"), ...change });
    assert.equal(support.supported, false, name);
  }
});

test("VideoEncoder configure with an unsupported config closes it with NotSupportedError", async () => {
  const { encoder, errors } = recordingEncoder();
  encoder.configure({ ...fastConfig("svt-av1"), scalabilityMode: "L3T3" });
  assert.equal(encoder.state, "configured");
  const flushed = encoder.flush();
  await assert.rejects(flushed, isName("NotSupportedError"));
  await waitFor(() => errors.length > 0);
  assert.equal(errors.length, 1);
  assert.equal(errors[0].name, "NotSupportedError");
  assert.ok(errors[0] instanceof DOMException);
  assert.equal(encoder.state, "closed");
});

test("VideoEncoder.isConfigSupported accepts valid configs and echoes only the members it knows", async () => {
  for (const backend of ["svt-av1", "rav1e"] as const) {
    const config = {
      ...fastConfig(backend),
      bitrate: 300_000,
      bitrateMode: "constant",
      framerate: 30,
      latencyMode: "realtime",
      scalabilityMode: "L1T1",
      hardwareAcceleration: "prefer-software",
      alpha: "discard",
      futureMember: "dropped",
    } as VideoEncoderConfig;
    const support = await VideoEncoder.isConfigSupported(config);
    assert.equal(support.supported, true, backend);
    assert.equal(support.config.codec, "av01.0.04M.08");
    assert.equal(support.config.bitrate, 300_000);
    assert.equal(support.config.latencyMode, "realtime");
    assert.equal((support.config as unknown as Record<string, unknown>).futureMember, undefined);
    assert.notEqual(support.config, config);
  }
  for (const codec of ["av01.0.08M.08", "av01.0.04M.10", "av01.0.31M.08", "av01.0.04M.08.0.110.01.01.01.0"]) {
    assert.equal(
      (await VideoEncoder.isConfigSupported(fastConfig("svt-av1", { codec }))).supported,
      true,
      codec,
    );
  }
  for (const bitrateMode of ["variable", "quantizer"] as const) {
    const support = await VideoEncoder.isConfigSupported(fastConfig("rav1e", { bitrateMode }));
    assert.equal(support.supported, true, bitrateMode);
  }
});

test("VideoEncoder encode of a closed frame throws TypeError", () => {
  const { encoder } = recordingEncoder();
  encoder.configure(fastConfig("svt-av1"));
  const frame = i420Frame(0);
  frame.close();
  assert.throws(() => encoder.encode(frame), TypeError);
  assert.throws(() => encoder.encode("frame" as never), TypeError);
  assert.throws(() => encoder.encode(i420Frame(1), { av1: { quantizer: 64 } }), TypeError);
  encoder.close();
});

for (const backend of ["svt-av1", "rav1e"] as const) {
  test(`VideoEncoder (${backend}) outputs one chunk per frame in order with frame timestamps before flush resolves`, async () => {
    const { encoder, chunks, errors } = recordingEncoder();
    encoder.configure(fastConfig(backend, { framerate: 25 }));
    const n = 8;
    for (let i = 0; i < n; i++) {
      // Odd frames carry their own duration; the others get one from the frame rate.
      const frame = i420Frame(i, 160, 120, {
        timestamp: 1_000_000 + i * 40_000,
        duration: i % 2 ? 41_000 : undefined,
      });
      encoder.encode(frame);
      frame.close(); // the encoder holds its own reference
    }
    assert.equal(encoder.encodeQueueSize, n);
    await encoder.flush();
    assert.equal(encoder.encodeQueueSize, 0);
    assert.deepEqual(errors, []);
    assert.equal(chunks.length, n);
    assert.deepEqual(
      chunks.map((c) => c.chunk.timestamp),
      Array.from({ length: n }, (_, i) => 1_000_000 + i * 40_000),
    );
    assert.deepEqual(
      chunks.map((c) => c.chunk.duration),
      Array.from({ length: n }, (_, i) => i % 2 ? 41_000 : 40_000),
    );
    assert.equal(chunks[0].chunk.type, "key");
    assert.ok(chunks.slice(1).every((c) => c.chunk.type === "delta"));
    encoder.close();
  });
}

test("VideoEncoder fires dequeue events (listener and ondequeue) as the queue drains", async () => {
  const { encoder } = recordingEncoder();
  let listened = 0, handled = 0;
  const sizes: number[] = [];
  encoder.addEventListener("dequeue", () => {
    listened++;
    sizes.push(encoder.encodeQueueSize);
  });
  encoder.ondequeue = () => handled++;
  assert.equal(typeof encoder.ondequeue, "function");
  encoder.configure(fastConfig("svt-av1"));
  for (let i = 0; i < 4; i++) encoder.encode(i420Frame(i));
  assert.equal(encoder.encodeQueueSize, 4);
  await encoder.flush();
  await waitFor(() => listened > 0 && encoder.encodeQueueSize === 0);
  await new Promise((r) => setTimeout(r, 20));
  assert.ok(listened >= 1 && listened <= 4, `${listened} dequeue events`);
  assert.equal(handled, listened);
  assert.ok(sizes.every((s) => s < 4));
  encoder.close();
});

test("VideoEncoder flushes resolve in order, each after the chunks of frames before it", async () => {
  const { encoder, chunks, errors } = recordingEncoder();
  encoder.configure(fastConfig("svt-av1"));
  const seen: string[] = [];
  encoder.encode(i420Frame(0));
  encoder.encode(i420Frame(1));
  const first = encoder.flush().then(() => seen.push(`first after ${chunks.length}`));
  encoder.encode(i420Frame(2));
  const second = encoder.flush().then(() => seen.push(`second after ${chunks.length}`));
  await Promise.all([first, second]);
  assert.deepEqual(seen, ["first after 2", "second after 3"]);
  assert.deepEqual(errors, []);
  encoder.close();
});

test("VideoEncoder reset rejects pending flushes with AbortError, empties the queue and can be configured again", async () => {
  const { encoder, chunks, errors } = recordingEncoder();
  encoder.configure(fastConfig("svt-av1"));
  for (let i = 0; i < 5; i++) encoder.encode(i420Frame(i));
  const pending = encoder.flush();
  encoder.reset();
  assert.equal(encoder.state, "unconfigured");
  assert.equal(encoder.encodeQueueSize, 0);
  await assert.rejects(pending, isName("AbortError"));
  assert.throws(() => encoder.encode(i420Frame(0)), isName("InvalidStateError"));
  const before = chunks.length;
  encoder.configure(fastConfig("svt-av1"));
  encoder.encode(i420Frame(9));
  await encoder.flush();
  assert.equal(chunks.length, before + 1);
  assert.equal(chunks[chunks.length - 1].chunk.timestamp, 9 * 33_333);
  assert.ok(
    chunks[chunks.length - 1].metadata?.decoderConfig,
    "a configure after reset reports the decoder config",
  );
  assert.deepEqual(errors, [], "reset does not call the error callback");
  encoder.close();
});

test("VideoEncoder close rejects pending flushes with AbortError without calling error", async () => {
  const { encoder, errors } = recordingEncoder();
  encoder.configure(fastConfig("rav1e"));
  for (let i = 0; i < 3; i++) encoder.encode(i420Frame(i));
  const pending = encoder.flush();
  encoder.close();
  assert.equal(encoder.state, "closed");
  await assert.rejects(pending, isName("AbortError"));
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(errors, []);
});

for (const backend of ["svt-av1", "rav1e"] as const) {
  test(`VideoEncoder (${backend}) gives decoderConfig with the bitstream's codec string and av1C on the first chunk and after reconfigure`, async () => {
    const { encoder, chunks, errors } = recordingEncoder();
    encoder.configure(fastConfig(backend, { displayWidth: 320, displayHeight: 240 }));
    for (let i = 0; i < 3; i++) encoder.encode(i420Frame(i));
    await encoder.flush();
    const first = chunks[0].metadata?.decoderConfig;
    assert.ok(first);
    assert.match(first.codec, /^av01\.0\.\d\d[MH]\.08$/);
    if (backend === "svt-av1") {
      assert.equal(first.codec, "av01.0.04M.08", "SVT-AV1 is told the codec string's level");
    }
    assert.equal(first.codedWidth, 160);
    assert.equal(first.codedHeight, 120);
    assert.equal(first.displayAspectWidth, 320);
    assert.equal(first.displayAspectHeight, 240);
    const av1C = parseAv1C(first.description!);
    assert.equal(av1C.seqProfile, 0);
    assert.equal(first.codec.slice(7, 9), String(av1C.seqLevelIdx0).padStart(2, "0"));
    assert.ok(chunks.slice(1).every((c) => !c.metadata?.decoderConfig));

    encoder.configure(fastConfig(backend, { width: 192, height: 128 }));
    const big = i420Frame(3, 192, 128);
    encoder.encode(big);
    big.close();
    await encoder.flush();
    assert.equal(chunks.length, 4);
    const second = chunks[3].metadata?.decoderConfig;
    assert.ok(second, "decoderConfig after reconfigure");
    assert.equal(second.codedWidth, 192);
    assert.equal(second.codedHeight, 128);
    assert.equal(second.displayAspectWidth, undefined);
    assert.equal(chunks[3].chunk.type, "key");
    assert.deepEqual(errors, []);
    encoder.close();
  });
}

const KEY_CASES: [string, Partial<VideoEncoderConfig>][] = [
  ["svt-av1", {}],
  ["svt-av1", { bitrate: 200_000 }],
  ["svt-av1", { latencyMode: "realtime" }],
  ["svt-av1", { bitrate: 200_000, bitrateMode: "constant" }],
  ["rav1e", {}],
  ["rav1e", { bitrate: 200_000, latencyMode: "realtime" }],
];

for (const [backend, extra] of KEY_CASES) {
  test(`VideoEncoder (${backend} ${JSON.stringify(extra)}) makes key frames where asked and only there`, async () => {
    const { encoder, chunks, errors } = recordingEncoder();
    encoder.configure(fastConfig(backend as "svt-av1" | "rav1e", extra));
    const keys = new Set([0, 3, 4, 7]);
    for (let i = 0; i < 9; i++) {
      const frame = i420Frame(i);
      encoder.encode(frame, { keyFrame: keys.has(i) });
      frame.close();
    }
    await encoder.flush();
    assert.deepEqual(errors, []);
    assert.equal(chunks.length, 9);
    assert.deepEqual(chunks.map((c) => c.chunk.timestamp), Array.from({ length: 9 }, (_, i) => i * 33_333));
    assert.deepEqual(
      chunks.map((c, i) => `${i}:${c.chunk.type}`),
      Array.from({ length: 9 }, (_, i) => `${i}:${keys.has(i) ? "key" : "delta"}`),
    );
    encoder.close();
  });
}

for (const backend of ["svt-av1", "rav1e"] as const) {
  test(`VideoEncoder (${backend}) encodes after flush: a key frame, timestamps continuing`, async () => {
    const { encoder, chunks, errors } = recordingEncoder();
    encoder.configure(fastConfig(backend));
    encoder.encode(i420Frame(0));
    encoder.encode(i420Frame(1));
    await encoder.flush();
    encoder.encode(i420Frame(2));
    encoder.encode(i420Frame(3));
    await encoder.flush();
    assert.deepEqual(errors, []);
    assert.deepEqual(chunks.map((c) => c.chunk.timestamp), [0, 33_333, 66_666, 99_999]);
    assert.deepEqual(chunks.map((c) => c.chunk.type), ["key", "delta", "key", "delta"]);
    assert.ok(!chunks[2].metadata?.decoderConfig, "the same configuration gives the same decoder config");
    encoder.close();
  });
}

test("VideoEncoder 10-bit codec string takes I420P10 and RGBA frames and writes a 10-bit stream", async () => {
  const { encoder, chunks, errors } = recordingEncoder();
  encoder.configure(fastConfig("svt-av1", { codec: "av01.0.04M.10" }));
  const p10 = new Uint8Array((160 * 120 * 3 / 2) * 2);
  new Uint16Array(p10.buffer).fill(512);
  const a = new VideoFrame(p10, { format: "I420P10", codedWidth: 160, codedHeight: 120, timestamp: 0 });
  const b = new VideoFrame(new Uint8Array(160 * 120 * 4).fill(90), {
    format: "RGBA",
    codedWidth: 160,
    codedHeight: 120,
    timestamp: 33_333,
  });
  encoder.encode(a);
  encoder.encode(b);
  await encoder.flush();
  assert.deepEqual(errors, []);
  assert.equal(chunks.length, 2);
  assert.equal(chunks[0].metadata?.decoderConfig?.codec, "av01.0.04M.10");
  assert.equal(parseAv1C(chunks[0].metadata!.decoderConfig!.description!).highBitdepth, true);
  encoder.close();
});

test("VideoEncoder maps the codec string's level to SVT-AV1", async () => {
  const { encoder, chunks } = recordingEncoder();
  encoder.configure(fastConfig("svt-av1", { codec: "av01.0.08M.08" }));
  encoder.encode(i420Frame(0));
  await encoder.flush();
  assert.equal(chunks[0].metadata?.decoderConfig?.codec, "av01.0.08M.08");
  encoder.close();
});

for (const backend of ["svt-av1", "rav1e"] as const) {
  test(`VideoEncoder (${backend}) quantizer mode follows encode()'s av1.quantizer`, async () => {
    const { encoder, chunks, errors } = recordingEncoder();
    encoder.configure(fastConfig(backend, { bitrateMode: "quantizer" }));
    encoder.encode(i420Frame(0), { av1: { quantizer: 5 } });
    encoder.encode(i420Frame(1), { keyFrame: true, av1: { quantizer: 60 } });
    await encoder.flush();
    assert.deepEqual(errors, []);
    assert.equal(chunks.length, 2);
    assert.deepEqual(chunks.map((c) => c.chunk.type), ["key", "key"]);
    assert.ok(
      chunks[0].chunk.byteLength > 2 * chunks[1].chunk.byteLength,
      `quantizer 5 gives ${chunks[0].chunk.byteLength} bytes, 60 gives ${chunks[1].chunk.byteLength}`,
    );
    encoder.close();
  });
}

test("VideoEncoder closes with EncodingError when a frame's size differs from the config", async () => {
  const { encoder, errors } = recordingEncoder();
  encoder.configure(fastConfig("svt-av1"));
  const flushed = encoder.flush();
  await flushed;
  encoder.encode(i420Frame(0, 64, 64));
  await waitFor(() => errors.length > 0);
  assert.equal(errors[0].name, "EncodingError");
  assert.equal(encoder.state, "closed");
});

test("VideoEncoder visibleRect selects the encoded region of a larger frame", async () => {
  const { encoder, chunks, errors } = recordingEncoder();
  encoder.configure(fastConfig("rav1e"));
  const big = new Uint8Array(200 * 140 * 4).fill(60);
  const frame = new VideoFrame(big, {
    format: "BGRA",
    codedWidth: 200,
    codedHeight: 140,
    timestamp: 7,
    visibleRect: { x: 20, y: 10, width: 160, height: 120 },
  });
  encoder.encode(frame);
  frame.close();
  await encoder.flush();
  assert.deepEqual(errors, []);
  assert.equal(chunks.length, 1);
  assert.equal(chunks[0].chunk.timestamp, 7);
  encoder.close();
});
