// bench/latency.ts end to end, briefly: a few frames over each path into chromium, where every decoded
// frame's stamped index is read back from the VideoFrame. Checks what the figures rest on (each frame found
// again by its stamp, the clock offset measured, every stage timed), never the timings themselves.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { needsChromium } from "./_helpers/browser_chromium.ts";
import { denoOrBun, scriptCommand, tempPath } from "./_helpers/encode.ts";

const WARMUP = 4, FRAMES = 16;

interface Run {
  path: string;
  sent: Record<string, { encodeIn?: number; packetOut?: number; sinkIn?: number }>;
  page: { frames: { index: number }[]; misses: number; errors: string[] };
  clockBefore: { offset: number; rtt: number };
  clockAfter: { offset: number; rtt: number };
}

function runBench(args: string[]): Promise<{ code: number | null; stderr: string }> {
  const [cmd, argv] = scriptCommand("bench/latency.ts", args);
  return new Promise((resolve) => {
    const child = spawn(cmd, argv, { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr!.on("data", (d) => (stderr += d));
    // Bounded: the bench's own waits are; this is the last resort.
    const timer = setTimeout(() => child.kill("SIGKILL"), 150_000);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

test(
  "latency bench: every frame sent over the WebSocket and over WHIP is found again in chromium by its stamp",
  { ...needsChromium(), ...denoOrBun("the bench serves with Deno.serve or Bun.serve"), timeout: 180_000 },
  async () => {
    const json = tempPath("latency_bench.json");
    const { code, stderr } = await runBench([
      ...["--paths", "ws,whip-pd0", "--backends", "svt-av1"],
      ...["--frames", String(FRAMES), "--warmup", String(WARMUP), "--json", json],
    ]);
    assert.equal(code, 0, stderr);
    const { runs } = JSON.parse(readFileSync(json, "utf8")) as { runs: Run[] };
    assert.deepEqual(runs.map((r) => r.path), ["ws", "whip-pd0"]);
    for (const r of runs) {
      assert.deepEqual(r.page.errors, [], `${r.path}: page errors`);
      assert.equal(r.page.misses, 0, `${r.path}: decoded frames whose stamp did not read`);
      const indices = [...new Set(r.page.frames.map((f) => f.index))].sort((a, b) => a - b);
      const all = Array.from({ length: WARMUP + FRAMES }, (_, i) => i);
      if (r.path === "ws") {
        // VideoDecoder drops nothing: each frame comes out once, under its own index.
        assert.deepEqual(r.page.frames.map((f) => f.index), all);
      } else {
        // libwebrtc may drop frames that are late on a loaded machine; whatever it shows was sent.
        assert.ok(indices.length >= (WARMUP + FRAMES) / 2, `${r.path}: ${indices.length} frames decoded`);
        for (const i of indices) assert.ok(all.includes(i), `${r.path}: index ${i} was never sent`);
      }
      for (const i of all) {
        const s = r.sent[i];
        assert.ok(s?.encodeIn && s.packetOut && s.sinkIn, `${r.path}: frame ${i} timed at every stage`);
        assert.ok(s.encodeIn <= s.packetOut && s.packetOut <= s.sinkIn, `${r.path}: frame ${i} in order`);
      }
      for (const c of [r.clockBefore, r.clockAfter]) {
        assert.ok(Number.isFinite(c.offset) && Number.isFinite(c.rtt) && c.rtt >= 0, JSON.stringify(c));
      }
    }
  },
);
