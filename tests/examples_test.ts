// The streaming examples run as they are, as child processes in the runtime running the tests:
// examples/live_tcp.ts to an in-test TCP peer that is killed and comes back; examples/websocket_relay.ts
// with two viewers, one that never reads and one that must get a decodable stream regardless.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import * as net from "node:net";
import process from "node:process";
import { test } from "node:test";
import { dav1dFrameCount, denoOrBun, needs, scriptCommand, tempPath } from "./_helpers/encode.ts";
import { joined, parseIvfStream, TcpReceiver } from "./_helpers/stream_servers.ts";

/** Runs an example; collects its output; a child still running after two minutes is killed (its test fails). */
function runExample(script: string, args: string[]) {
  const [cmd, argv] = scriptCommand(script, args);
  const child: ChildProcess = spawn(cmd, argv, {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env },
  });
  let stdout = "", stderr = "";
  const lineWaiters: { match: (l: string) => boolean; resolve: (l: string) => void }[] = [];
  let partial = "";
  child.stdout!.on("data", (c) => {
    stdout += c;
    partial += c;
    const lines = partial.split("\n");
    partial = lines.pop()!;
    for (const l of lines) {
      for (const w of [...lineWaiters]) {
        if (w.match(l)) {
          lineWaiters.splice(lineWaiters.indexOf(w), 1);
          w.resolve(l);
        }
      }
    }
  });
  child.stderr!.on("data", (c) => (stderr += c));
  const guard = setTimeout(() => child.kill("SIGKILL"), 120_000);
  const exited = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    child.on("close", (code) => {
      clearTimeout(guard);
      for (const w of lineWaiters.splice(0)) w.resolve("");
      resolve({ code, stdout, stderr });
    });
  });
  return {
    child,
    exited,
    /** The first line from now on that matches; "" if the child exits first. */
    line: (match: (l: string) => boolean) =>
      new Promise<string>((resolve) => lineWaiters.push({ match, resolve })),
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    },
  };
}
test(
  "examples/live_tcp.ts streams at real time to a TCP peer and reconnects when it comes back",
  needs("dav1d"),
  async () => {
    const rx = await TcpReceiver.start();
    // The peer dies once after 20 kB and listens again at once.
    let killed = false;
    rx.onData = (conn, _s, index) => {
      if (index === 0 && conn.bytes > 20_000 && !killed) {
        killed = true;
        void rx.kill().then(() => rx.listen());
      }
    };
    const ex = runExample("examples/live_tcp.ts", [
      `tcp://127.0.0.1:${rx.port}`,
      "--frames=90",
      "--fps=60",
      "--size=160x120",
      "--attempts=30",
      // SVT-AV1 1.4 ignores key frame requests in low-delay mode: the new connection starts at the next scheduled one.
      "--keyint=30",
    ]);
    try {
      const r = await ex.exited;
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.ok(killed);
      assert.match(r.stdout, /\[link\] connected #1/);
      assert.match(r.stdout, /\[link\] disconnected #1/);
      assert.match(r.stdout, /\[link\] reconnecting: attempt 1 in \d+ ms/);
      assert.match(r.stdout, /\[link\] connected #2/);
      assert.match(r.stdout, /\[link\] end of stream confirmed/);
      assert.match(r.stdout, /\[live\] done: 90 frames/);
      assert.ok(rx.connections.length >= 2);
      for (const [i, conn] of rx.connections.entries()) {
        const { frames } = parseIvfStream(joined(conn));
        if (!frames.length) continue;
        const file = tempPath(`live-${i}.ivf`);
        writeFileSync(file, joined(conn));
        assert.equal(dav1dFrameCount(file), frames.length, `connection ${i}`);
      }
      assert.equal(
        parseIvfStream(joined(rx.connections.at(-1)!)).frames.at(-1)?.timestamp,
        89,
        r.stdout
          + JSON.stringify(rx.connections.map((c) => [
            c.bytes,
            parseIvfStream(joined(c)).frames.map((f) => f.timestamp).join(" "),
          ])),
      );
    } finally {
      ex.kill();
      await ex.exited;
      await rx.close();
    }
  },
);

test(
  "examples/websocket_relay.ts: a viewer that never reads is dropped to key frames, the other gets a decodable stream",
  {
    ...needs("dav1d"),
    ...denoOrBun("examples/websocket_relay.ts serves its viewers with Deno.serve or Bun.serve"),
  },
  async () => {
    const maxQueue = 1_000_000;
    // 640x360 at crf 1 makes about 40 kB a frame: enough to fill the loopback buffers of the viewer that never reads.
    const ex = runExample("examples/websocket_relay.ts", [
      "--port=0",
      "--frames=240",
      "--fps=100",
      "--size=640x360",
      "--crf=1",
      "--keyint=30",
      `--max-queue=${maxQueue}`,
      "--wait-viewers=2",
    ]);
    let slow: net.Socket | undefined;
    let fast: WebSocket | undefined;
    try {
      const listening = await ex.line((l) => l.includes('"listening"'));
      assert.ok(listening, "the relay started");
      const url = JSON.parse(listening).url as string;
      const { port } = new URL(url);

      // The slow viewer: a WebSocket handshake over a raw socket that then never reads a byte.
      slow = net.connect({ host: "127.0.0.1", port: Number(port) });
      slow.on("error", () => {});
      await new Promise<void>((r) => slow!.once("connect", () => r()));
      slow.write(
        `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n`
          + `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
      slow.pause();
      await ex.line((l) => l.includes('"join"'));

      // The fast viewer reads everything.
      const messages: Uint8Array[] = [];
      fast = new WebSocket(url);
      fast.binaryType = "arraybuffer";
      const closed = new Promise<number>((resolve) => {
        fast!.onmessage = (e) => messages.push(new Uint8Array(e.data as ArrayBuffer));
        fast!.onclose = (e) => resolve(e.code);
        fast!.onerror = () => resolve(-1);
      });
      const code = await closed;
      const r = await ex.exited;
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.equal(code, 1000);

      const events = r.stdout.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
      const summary = events.find((e) => e.event === "summary");
      assert.ok(summary, r.stdout);
      assert.equal(summary.packets, 240);
      const [slowStats, fastStats] = summary.viewers;
      // The viewer that never read fell behind, was dropped to key frames, and its queue stayed bounded.
      assert.ok(slowStats.resyncs >= 1 && slowStats.dropped > 0, JSON.stringify(slowStats));
      assert.ok(slowStats.peakQueued <= maxQueue, JSON.stringify(slowStats));
      assert.ok(events.some((e) => e.event === "behind" && e.viewer === slowStats.id));
      // The other one got the header, then a stream from a key frame that dav1d decodes whole.
      assert.equal(messages[0].length, 32);
      const stream = new Uint8Array(messages.reduce((n, m) => n + m.length, 0));
      let at = 0;
      for (const m of messages) {
        stream.set(m, at);
        at += m.length;
      }
      const { frames } = parseIvfStream(stream);
      assert.equal(frames.length, fastStats.sent);
      assert.ok(frames.length > slowStats.sent, `fast ${frames.length}, slow ${slowStats.sent}`);
      assert.ok(frames.length >= 120, `${frames.length} frames`);
      assert.equal(frames.at(-1)!.timestamp, 239);
      const file = tempPath("relay-fast.ivf");
      writeFileSync(file, stream);
      assert.equal(dav1dFrameCount(file), frames.length);
    } finally {
      slow?.destroy();
      try {
        fast?.close();
      } catch { /* closed */ }
      ex.kill();
      await ex.exited;
    }
  },
);
