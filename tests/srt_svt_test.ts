// End to end with SVT-AV1: encode stream → SRT sink → srt-live-transmit killed and restarted mid-stream,
// every connection decoded by dav1d.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { SvtAv1Encoder } from "../lib/encoder/svt_av1.ts";
import { testSource } from "../lib/io/testsrc.ts";
import { createEncodeStream } from "../lib/stream/encode_stream.ts";
import { srtSink } from "../lib/transport/srt/srt.ts";
import type { Frame, Packet } from "../lib/types.ts";
import { dav1dFrameCount, needs } from "./_helpers/encode.ts";
import { gatedFrames, milestones } from "./_helpers/sink_harness.ts";
import { splitIvfStreams, SrtReceiver } from "./_helpers/srt_receiver.ts";
import { dedupe, joined, parseIvfStream, type Received, sameBytes } from "./_helpers/stream_servers.ts";

const source = testSource({ width: 96, height: 64, frames: 120 });
const config = { ...source.info, preset: 12, lowDelay: true, keyint: 10, crf: 40, threads: 1 };
const fast = {
  initialDelay: 20,
  maxDelay: 200,
  jitter: 0,
  connectTimeout: 500,
  peerIdleTimeout: 1000,
} as const;
const opts = { ...needs("srt-live-transmit", "dav1d"), timeout: 90_000 };

async function fileEncode(): Promise<Packet[]> {
  await using enc = await SvtAv1Encoder.create({ ...config, maxQueuedPackets: 1000 });
  for await (const f of source.frames()) await enc.encode(f);
  await enc.flush();
  const out: Packet[] = [];
  for await (const p of enc.packets()) out.push(p);
  return out;
}

/** Frames of the test source, one every `ms`, waiting for `gates[n]()` before frame `n`. */
function frames(ms: number, gates: Record<number, () => Promise<unknown>> = {}): ReadableStream<Frame> {
  return gatedFrames(source.info.frameCount!, (n) => source.frame(n), gates, ms);
}

function connections(rx: SrtReceiver): Received[] {
  return rx.runs.flatMap((run) =>
    splitIvfStreams(joined(run)).map((bytes) => ({ chunks: [bytes], bytes: bytes.length, ended: run.ended }))
  );
}

/** Frames dav1d decodes from one connection's IVF stream (a frame cut short at the end is left out). */
function decodedFrames(conn: Received): { decoded: number; frames: number } {
  const { frames } = parseIvfStream(joined(conn));
  if (!frames.length) return { decoded: 0, frames: 0 };
  const last = frames.at(-1)!;
  const end = last.data.byteOffset - joined(conn).byteOffset + last.data.length;
  const dir = mkdtempSync(join(tmpdir(), "srt-svt-"));
  try {
    const file = join(dir, "conn.ivf");
    writeFileSync(file, joined(conn).subarray(0, end));
    return { decoded: dav1dFrameCount(file), frames: frames.length };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test(
  "svt-av1 → srt block: a listener killed mid-stream; deduplicated frames equal the file encode and every connection decodes",
  opts,
  async () => {
    const expected = await fileEncode();
    const rx = await SrtReceiver.start();
    let killed = false;
    rx.onData = (run, index) => {
      if (index === 0 && run.bytes > 15_000 && !killed) {
        killed = true;
        void rx.kill("SIGKILL");
      }
    };
    const encode = createEncodeStream(config);
    const sink = srtSink(rx.url, { info: source.info, ...fast });
    sink.on("reconnect", (e) => {
      if (e.attempt >= 2 && !rx.listening) void rx.listen();
    });
    await frames(10).pipeThrough(encode).pipeTo(sink);
    await rx.close();
    assert.ok(killed);
    const conns = connections(rx);
    assert.ok(conns.length >= 2, `${conns.length} connection(s)`);
    const got = dedupe(conns);
    assert.deepEqual([...got.keys()].sort((a, b) => a - b), expected.map((p) => p.timestamp));
    for (const p of expected) {
      assert.ok(
        sameBytes(got.get(p.timestamp)!, p.data),
        `frame ${p.timestamp} differs`,
      );
    }
    for (const [i, conn] of conns.entries()) {
      const { decoded, frames } = decodedFrames(conn);
      assert.equal(decoded, frames, `connection ${i}: dav1d decoded ${decoded} of ${frames}`);
    }
    assert.equal(decodedFrames(conns.at(-1)!).frames > 0, true);
  },
);

test("svt-av1 → srt drop: every connection decodes with dav1d from its first frame", opts, async () => {
  const rx = await SrtReceiver.start();
  const encode = createEncodeStream(config);
  const sink = srtSink(rx.url, {
    info: source.info,
    onDisconnect: "drop",
    onKeyFrameNeeded: () => encode.requestKeyFrame(),
    ...fast,
  });
  const { connected, disconnected, reconnected } = milestones(sink);
  await frames(0, {
    0: () => connected,
    45: async () => {
      await new Promise((r) => setTimeout(r, 300));
      await rx.kill("SIGTERM");
      await disconnected;
    },
    75: () => (rx.listen(), reconnected),
  }).pipeThrough(encode).pipeTo(sink);
  await rx.close();
  const conns = connections(rx);
  assert.equal(conns.length, 2);
  assert.ok(sink.stats.dropped > 0);
  for (const [i, conn] of conns.entries()) {
    const { decoded, frames } = decodedFrames(conn);
    assert.ok(frames > 0, `connection ${i} carried frames`);
    assert.equal(decoded, frames, `connection ${i}: dav1d decoded ${decoded} of ${frames}`);
  }
  // Nothing made during the outage is sent late: the second connection starts at a key frame after it.
  const first = parseIvfStream(joined(conns[1])).frames[0].timestamp;
  assert.ok(first >= 45, `the second connection starts at frame ${first}`);
});
