// TCP sink to a real peer: ffmpeg listening on TCP (`-listen 1`) receives the stream of an SVT-AV1
// encode stream, copies it to IVF or decodes it; and in block mode, an ffmpeg that loses its connection
// (cut by the fault proxy) and a second ffmpeg started on the same port get every frame between them.
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import * as net from "node:net";
import { test } from "node:test";
import { SvtAv1Encoder } from "../lib/encoder/svt_av1.ts";
import { testSource } from "../lib/io/testsrc.ts";
import { createEncodeStream } from "../lib/stream/encode_stream.ts";
import { tcpSink } from "../lib/stream/sinks.ts";
import type { Frame, Packet } from "../lib/types.ts";
import { dav1dFrameCount, needs, tempPath } from "./_helpers/encode.ts";
import { FaultProxy } from "./_helpers/fault_proxy.ts";
import { dedupe, parseIvfStream, type Received, sameBytes } from "./_helpers/stream_servers.ts";

const source = testSource({ width: 160, height: 120, frames: 60 });
const config = {
  ...source.info,
  preset: 12,
  lowDelay: true,
  keyint: 15,
  threads: 1,
  logLevel: "error",
} as const;
// ffmpeg takes a moment to listen: the sink retries until it does (bounded by maxAttempts).
const retry = { initialDelay: 20, factor: 1.5, maxDelay: 200, jitter: 0, maxAttempts: 100 } as const;

async function fileEncode(): Promise<Packet[]> {
  await using enc = await SvtAv1Encoder.create({ ...config, maxQueuedPackets: 1000 });
  for await (const f of source.frames()) await enc.encode(f);
  await enc.flush();
  const out: Packet[] = [];
  for await (const p of enc.packets()) out.push(p);
  return out;
}

function frames(): ReadableStream<Frame> {
  let n = 0;
  return new ReadableStream<Frame>({
    pull(c) {
      if (n >= source.info.frameCount!) return c.close();
      c.enqueue(source.frame(n++));
    },
  }, { highWaterMark: 0 });
}

/** A port nobody listens on now. */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/** Runs ffmpeg; `exited` gives its code and output. `kill()` is the safety net of a test that failed. */
function ffmpeg(
  args: string[],
): { child: ChildProcess; exited: Promise<{ code: number; stdout: string; stderr: string }> } {
  const child = spawn("ffmpeg", ["-hide_banner", "-nostdin", "-loglevel", "error", "-y", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "", stderr = "";
  child.stdout!.on("data", (c) => (stdout += c));
  child.stderr!.on("data", (c) => (stderr += c));
  // Bounded: an ffmpeg still waiting after a minute (nobody connected) is killed, and its test fails.
  const guard = setTimeout(() => kill(child), 60_000);
  const exited = new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    child.on("close", (code) => {
      clearTimeout(guard);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
  return { child, exited };
}

function kill(child: ChildProcess) {
  if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
}

function ivfFrames(path: string): Received {
  const bytes = new Uint8Array(readFileSync(path));
  return { chunks: [bytes], bytes: bytes.length, ended: true };
}

test(
  "ffmpeg -listen copies our TCP stream to IVF: every frame arrives, bit-exact, and decodes",
  needs("ffmpeg", "dav1d"),
  async () => {
    const expected = await fileEncode();
    const port = await freePort();
    const out = tempPath("ffmpeg-rx.ivf");
    const ff = ffmpeg([
      "-f",
      "ivf",
      "-listen",
      "1",
      "-i",
      `tcp://127.0.0.1:${port}`,
      "-c",
      "copy",
      "-f",
      "ivf",
      out,
    ]);
    try {
      const sink = tcpSink(`tcp://127.0.0.1:${port}`, { info: source.info, ...retry });
      await frames().pipeThrough(createEncodeStream(config)).pipeTo(sink);
      const r = await ff.exited;
      assert.equal(r.code, 0, r.stderr);
      assert.equal(sink.stats.connections, 1);
      const got = parseIvfStream(ivfFrames(out).chunks[0]).frames;
      assert.deepEqual(got.map((f) => f.timestamp), expected.map((p) => p.timestamp));
      for (const [i, p] of expected.entries()) {
        assert.ok(sameBytes(got[i].data, p.data), `frame ${i} differs`);
      }
      assert.equal(dav1dFrameCount(out), expected.length);
    } finally {
      kill(ff.child);
      await ff.exited;
    }
  },
);

test(
  "ffmpeg -listen decodes our TCP stream: the frame CRCs equal those of the file encode",
  needs("ffmpeg"),
  async () => {
    const expected = await fileEncode();
    const ref = tempPath("ffmpeg-ref.ivf");
    {
      const { IvfWriter } = await import("../lib/io/ivf.ts");
      const { ivfFileSink } = await import("../lib/io/sink.ts");
      const w = new IvfWriter(await ivfFileSink(ref), source.info);
      for (const p of expected) await w.writePacket(p);
      await w.close();
    }
    const crcs = (text: string) =>
      text.split("\n").filter((l) => /^\d+,/.test(l)).map((l) => l.split(",").at(-1)!.trim());
    const refDecode = spawnSync("ffmpeg", [
      "-hide_banner",
      "-loglevel",
      "error",
      "-i",
      ref,
      "-f",
      "framecrc",
      "-",
    ], {
      encoding: "utf8",
    });
    const want = crcs(refDecode.stdout);
    assert.equal(want.length, expected.length, refDecode.stderr);

    const port = await freePort();
    const ff = ffmpeg(["-f", "ivf", "-listen", "1", "-i", `tcp://127.0.0.1:${port}`, "-f", "framecrc", "-"]);
    try {
      const sink = tcpSink(`tcp://127.0.0.1:${port}`, { info: source.info, ...retry });
      await frames().pipeThrough(createEncodeStream(config)).pipeTo(sink);
      const r = await ff.exited;
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(crcs(r.stdout), want);
    } finally {
      kill(ff.child);
      await ff.exited;
    }
  },
);

test(
  "block to ffmpeg through the fault proxy: an ffmpeg cut off mid-stream and its successor get every frame between them",
  needs("ffmpeg", "dav1d"),
  async () => {
    const expected = await fileEncode();
    const port = await freePort();
    // Cut the first connection after 25 whole frames (ffmpeg would pass a torn last frame on as it is).
    const at = 32 + expected.slice(0, 25).reduce((n, p) => n + 12 + p.data.length, 0);
    const proxy = await FaultProxy.start({ port }, [{ kind: "cut", at }]);
    const outs = [tempPath("ffmpeg-rx1.ivf"), tempPath("ffmpeg-rx2.ivf")];
    const listen = (out: string) =>
      ffmpeg(["-f", "ivf", "-listen", "1", "-i", `tcp://127.0.0.1:${port}`, "-c", "copy", "-f", "ivf", out]);
    const first = listen(outs[0]);
    let second: ReturnType<typeof ffmpeg> | undefined;
    try {
      // The second ffmpeg starts once the first has written its file and exited.
      const secondStarted = first.exited.then((r) => {
        assert.equal(r.code, 0, r.stderr);
        second = listen(outs[1]);
      });
      const sink = tcpSink(`tcp://127.0.0.1:${proxy.port}`, { info: source.info, ...retry });
      await frames().pipeThrough(createEncodeStream(config)).pipeTo(sink);
      await secondStarted;
      const r = await second!.exited;
      assert.equal(r.code, 0, r.stderr);

      const received = outs.map(ivfFrames);
      const firstFrames = parseIvfStream(received[0].chunks[0]).frames;
      assert.equal(firstFrames.length, 25);
      const got = dedupe(received);
      assert.deepEqual([...got.keys()].sort((a, b) => a - b), expected.map((p) => p.timestamp));
      for (const p of expected) {
        assert.ok(
          sameBytes(got.get(p.timestamp)!, p.data),
          `frame ${p.timestamp} differs`,
        );
      }
      for (const [i, out] of outs.entries()) {
        assert.equal(dav1dFrameCount(out), parseIvfStream(received[i].chunks[0]).frames.length, `file ${i}`);
      }
      assert.ok(sink.stats.resent > 0);
    } finally {
      kill(first.child);
      await first.exited;
      if (second) {
        kill(second.child);
        await second.exited;
      }
      await proxy.close();
    }
  },
);
