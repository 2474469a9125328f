// End to end with SVT-AV1: encode stream → TCP sink → a peer killed and restarted mid-stream.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { SvtAv1Encoder } from "../lib/encoder/svt_av1.ts";
import { testSource } from "../lib/io/testsrc.ts";
import { createEncodeStream } from "../lib/stream/encode_stream.ts";
import { tcpSink } from "../lib/stream/sinks.ts";
import type { Frame, Packet } from "../lib/types.ts";
import { gatedFrames, milestones } from "./_helpers/sink_harness.ts";
import { dedupe, joined, parseIvfStream, sameBytes, TcpReceiver } from "./_helpers/stream_servers.ts";

const source = testSource({ width: 96, height: 64, frames: 120 });
const config = { ...source.info, preset: 12, lowDelay: true, keyint: 10, crf: 40, threads: 1 };
const fast = { initialDelay: 20, maxDelay: 200, jitter: 0 } as const;

async function fileEncode(): Promise<Packet[]> {
  await using enc = await SvtAv1Encoder.create({ ...config, maxQueuedPackets: 1000 });
  for await (const f of source.frames()) await enc.encode(f);
  await enc.flush();
  const out: Packet[] = [];
  for await (const p of enc.packets()) out.push(p);
  return out;
}

/** Frames of the test source, waiting for `gates[n]()` before frame `n`. */
function frames(gates: Record<number, () => Promise<unknown>> = {}): ReadableStream<Frame> {
  return gatedFrames(source.info.frameCount!, (n) => source.frame(n), gates);
}

/** How many frames dav1d decodes from an IVF file and how many it holds. */
function dav1dCount(bytes: Uint8Array): { decoded: number; total: number } {
  const dir = mkdtempSync(join(tmpdir(), "sink-svt-"));
  try {
    const file = join(dir, "in.ivf");
    writeFileSync(file, bytes);
    const r = spawnSync("dav1d", ["-i", file, "-o", join(dir, "out.y4m")], { encoding: "utf8" });
    // dav1d rewrites its progress line: the last count is the final one.
    const m = [...`${r.stderr}${r.stdout}`.matchAll(/Decoded (\d+)\/(\d+) frames/g)].at(-1);
    assert.ok(m, `dav1d said: ${r.stderr}`);
    return { decoded: Number(m[1]), total: Number(m[2]) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("svt-av1 → tcp block: deduplicated frames over all connections equal the file encode", async () => {
  const expected = await fileEncode();
  const rx = await TcpReceiver.start();
  rx.onData = (conn, _s, index) => {
    if (index === 0 && conn.bytes > 15_000 && rx.listening) void rx.kill();
  };
  const encode = createEncodeStream(config);
  const sink = tcpSink(`tcp://127.0.0.1:${rx.port}`, { info: source.info, ...fast });
  sink.on("reconnect", (e) => {
    if (e.attempt >= 2 && !rx.listening) void rx.listen();
  });
  await frames().pipeThrough(encode).pipeTo(sink);
  await rx.close();
  assert.ok(rx.connections.length >= 2);
  const got = dedupe(rx.connections);
  assert.deepEqual([...got.keys()].sort((a, b) => a - b), expected.map((p) => p.timestamp));
  for (const p of expected) {
    assert.ok(sameBytes(got.get(p.timestamp)!, p.data), `frame ${p.timestamp} differs`);
  }
  for (const conn of rx.connections) {
    const { frames } = parseIvfStream(joined(conn));
    if (frames.length) assert.equal(dav1dCount(joined(conn)).decoded, frames.length);
  }
});

test("svt-av1 → tcp drop: every connection decodes with dav1d, no frame missing a reference", async () => {
  const rx = await TcpReceiver.start();
  rx.onData = (conn, _s, index) => {
    if (index === 0 && conn.bytes > 15_000 && rx.listening) void rx.kill();
  };
  const encode = createEncodeStream(config);
  const sink = tcpSink(`tcp://127.0.0.1:${rx.port}`, {
    info: source.info,
    onDisconnect: "drop",
    onKeyFrameNeeded: () => encode.requestKeyFrame(),
    ...fast,
  });
  const { connected, disconnected, reconnected } = milestones(sink);
  await frames({ 0: () => connected, 45: () => disconnected, 75: () => (rx.listen(), reconnected) })
    .pipeThrough(encode).pipeTo(sink);
  await rx.close();
  assert.equal(rx.connections.length, 2);
  assert.ok(sink.stats.dropped > 0);
  for (const [i, conn] of rx.connections.entries()) {
    const { frames } = parseIvfStream(joined(conn));
    assert.ok(frames.length > 0, `connection ${i} carried frames`);
    const { decoded, total } = dav1dCount(joined(conn));
    assert.equal(decoded, frames.length, `connection ${i}: dav1d decoded ${decoded} of ${total}`);
  }
});
