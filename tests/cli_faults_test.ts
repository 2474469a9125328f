import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import process from "node:process";
import { test } from "node:test";
import { probeFile } from "../lib/container/probe.ts";
import { readIvf } from "../lib/io/ivf.ts";
import { testSourceY4m } from "../lib/io/testsrc.ts";
import { dav1dFrameCount, needs, scriptCommand, tempPath } from "./_helpers/encode.ts";
import { collect } from "./_helpers/io_streams.ts";
import { threadStates } from "./_helpers/proc_threads.ts";

// The process-level faults a user of the command line meets: SIGINT and SIGTERM mid-encode, a producer
// of stdin that stops mid-frame, a reader of stdout that goes away. Each run is bounded: a CLI that does
// not exit by its deadline is killed and the test fails.
const EXIT_DEADLINE_MS = 60_000;

interface Ended {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

function started(args: string[], stdin: "ignore" | "pipe" = "ignore"): {
  child: ChildProcess;
  ended: Promise<Ended>;
  stderr: () => string;
  /** The CLI's threads as the deadline killed it (see threadStates), or undefined. */
  atDeadline: () => string | undefined;
} {
  const [cmd, argv] = scriptCommand("cli.ts", args);
  const child = spawn(cmd, argv, { stdio: [stdin, "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  let atDeadline: string | undefined;
  child.stdout!.on("data", (d) => void (stdout += d));
  child.stderr!.on("data", (d) => void (stderr += d));
  const ended = new Promise<Ended>((resolve) => {
    const timer = setTimeout(() => {
      atDeadline = threadStates(child.pid!).join("; ");
      child.kill("SIGKILL");
    }, EXIT_DEADLINE_MS);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
  return { child, ended, stderr: () => stderr, atDeadline: () => atDeadline };
}

/**
 * Waits (bounded: the CLI is killed at its deadline) until the CLI's stderr matches `re`. A CLI that ended
 * first, by an exit code or by a signal (a crash, whose exit code stays null: that waited out the
 * deadline as if it hung), fails at once and says how it ended; one killed at the deadline fails with its
 * threads' states just before.
 */
async function stderrShows(run: ReturnType<typeof started>, re: RegExp): Promise<void> {
  while (!re.test(run.stderr())) {
    const { exitCode, signalCode } = run.child;
    const hung = run.atDeadline();
    if (hung !== undefined) {
      throw new Error(
        `stderr never showed ${re} in ${
          EXIT_DEADLINE_MS / 1000
        } s (the CLI's threads then: ${hung}): ${run.stderr()}`,
      );
    }
    if (exitCode !== null || signalCode !== null) {
      throw new Error(
        `the CLI ended (exit ${exitCode}, signal ${signalCode}) before stderr showed ${re}: ${run.stderr()}`,
      );
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Frames ffprobe decodes from a file (every one, with -count_frames), or -1. */
function ffprobeFrames(path: string): number {
  const r = spawnSync("ffprobe", [
    ...["-v", "error", "-count_frames", "-select_streams", "v:0"],
    ...["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", path],
  ]);
  const n = Number(r.stdout?.toString().trim());
  return r.status === 0 && Number.isInteger(n) ? n : -1;
}

/** Asserts a file the CLI wrote holds `frames` frames and that a decoder decodes every one. */
async function assertPlayable(path: string, format: "ivf" | "webm" | "mp4", frames: number): Promise<void> {
  if (format === "ivf") {
    const ivf = await readIvf(new Uint8Array(readFileSync(path)));
    assert.equal(ivf.frames.length, frames, `${path}: IVF frames`);
    assert.equal(ivf.header.frameCount, frames, `${path}: IVF header frame count patched`);
    assert.equal(dav1dFrameCount(path), frames, `${path}: frames dav1d decodes`);
  } else {
    const probed = await probeFile(path);
    assert.equal(probed.format, format);
    assert.equal(probed.frames, frames, `${path}: frames in the container`);
  }
  assert.equal(ffprobeFrames(path), frames, `${path}: frames ffprobe decodes`);
}

const EXIT_CODES = { SIGINT: 130, SIGTERM: 143 } as const;

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  for (const format of ["ivf", "webm", "mp4"] as const) {
    test(
      `cli: ${signal} mid-encode finishes a playable ${format} file and exits ${EXIT_CODES[signal]}`,
      needs("dav1d", "ffprobe"),
      async () => {
        const out = tempPath(`signal-${signal}.${format}`);
        const run = started(["-i", "testsrc:160x120@30:100000", "-o", out, "--preset", "13", "--json"]);
        await stderrShows(run, /frames/);
        // process.kill, not child.kill: Deno's child_process reports a signal it sent itself instead of
        // the exit code the child chose.
        process.kill(run.child.pid!, signal);
        const r = await run.ended;
        assert.equal(r.code, EXIT_CODES[signal], `exit ${r.code} ${r.signal}: ${r.stderr}`);
        assert.match(
          r.stderr,
          signal === "SIGINT" ? /Interrupted: finishing what was encoded/ : /Terminated: finishing/,
        );
        const summary = JSON.parse(r.stdout);
        assert.equal(summary.interrupted, true);
        assert.equal(summary.signal, signal);
        assert.ok(summary.frames > 0 && summary.frames < 100000, `${summary.frames} frames`);
        await assertPlayable(out, format, summary.frames);
      },
    );
  }
}

test(
  "cli: a second SIGINT gives up the frames inside the encoder and still finishes the MP4",
  needs("ffprobe"),
  async () => {
    const out = tempPath("signal-twice.mp4");
    const run = started(["-i", "testsrc:160x120@30:100000", "-o", out, "--preset", "13", "--json"]);
    await stderrShows(run, /frames/);
    process.kill(run.child.pid!, "SIGINT");
    await stderrShows(run, /Interrupted/);
    process.kill(run.child.pid!, "SIGINT");
    const r = await run.ended;
    assert.equal(r.code, 130, `exit ${r.code} ${r.signal}: ${r.stderr}`);
    const summary = JSON.parse(r.stdout);
    assert.ok(summary.frames > 0, `${summary.frames} frames`);
    await assertPlayable(out, "mp4", summary.frames);
  },
);

const FRAME_BYTES = 160 * 120 * 3 / 2;
const Y4M = await collect(testSourceY4m({ width: 160, height: 120, frames: 8 }));
const HEADER_BYTES = Y4M.indexOf(0x0a) + 1;
/** The header and `frames` whole frames, then `partial` bytes of the next frame's data. */
const cutAfter = (frames: number, partial: number) =>
  Y4M.subarray(0, HEADER_BYTES + frames * (6 + FRAME_BYTES) + (partial ? 6 + partial : 0));

test(
  "cli: SIGTERM while stdin's producer has stopped writing (pipe still open) ends at once with a valid file",
  needs("ffprobe"),
  async () => {
    const out = tempPath("stalled-stdin.webm");
    const run = started(["-i", "-", "-o", out, "--preset", "13", "--json"], "pipe");
    run.child.stdin!.on("error", () => {});
    run.child.stdin!.write(cutAfter(3, 0));
    // The producer goes quiet with the pipe still open. The CLI reads what is there; then the signal, once
    // the output file exists (its signal handlers are in place by then: a fixed wait was shorter than a
    // loaded machine's start-up, and the signal killed the process before it had any).
    const end = Date.now() + EXIT_DEADLINE_MS;
    while (!existsSync(out) && Date.now() < end && run.child.exitCode === null) {
      await new Promise((r) => setTimeout(r, 50));
    }
    await new Promise((r) => setTimeout(r, 500));
    process.kill(run.child.pid!, "SIGTERM");
    const r = await run.ended;
    run.child.stdin!.destroy();
    assert.equal(r.code, 143, `exit ${r.code} ${r.signal}: ${r.stderr}`);
    const summary = JSON.parse(r.stdout);
    assert.ok(summary.frames <= 3, `${summary.frames} frames`);
    if (summary.frames > 0) await assertPlayable(out, "webm", summary.frames);
  },
);

for (const format of ["ivf", "mp4"] as const) {
  test(
    `cli: a stdin producer that dies mid-frame is a clear error, and the frames before it are in the ${format}`,
    needs("dav1d", "ffprobe"),
    async () => {
      const out = tempPath(`cut-stdin.${format}`);
      const run = started(["-i", "-", "-o", out, "--preset", "13", "-q"], "pipe");
      run.child.stdin!.on("error", () => {});
      run.child.stdin!.end(cutAfter(5, 1000));
      const r = await run.ended;
      assert.equal(r.code, 1, `exit ${r.code} ${r.signal}: ${r.stderr}`);
      assert.match(
        r.stderr,
        new RegExp(
          `Y4M frame 5 is truncated: got 1000 of ${FRAME_BYTES} bytes, ${FRAME_BYTES - 1000} missing\\..*`
            + `The 5 frames before it were encoded to ${out.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`,
        ),
      );
      assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
      await assertPlayable(out, format, 5);
    },
  );
}

test("cli: a truncated input written to stdout keeps the frames before the cut", async () => {
  const run = started(["-i", "-", "-o", "-", "--preset", "13", "-q"], "pipe");
  run.child.stdin!.on("error", () => {});
  run.child.stdin!.end(cutAfter(4, 10));
  const chunks: Uint8Array[] = [];
  run.child.stdout!.on("data", (d) => chunks.push(new Uint8Array(d)));
  const r = await run.ended;
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /frame 4 is truncated: got 10 of .*The 4 frames before it were encoded to stdout/);
  const ivf = await readIvf(new Uint8Array(Buffer.concat(chunks)));
  assert.equal(ivf.frames.length, 4);
});

test("cli: a reader of stdout that goes away (| head -c 100) ends the encode quietly", needs("bash"), () => {
  const [cmd, argv] = scriptCommand("cli.ts", ["-i", "testsrc:320x240@30:3000", "-o", "-", "--preset", "13"]);
  const r = spawnSync("bash", [
    "-c",
    '"$@" | head -c 100 > /dev/null; echo "status=${PIPESTATUS[0]}" >&2',
    "bash",
    cmd,
    ...argv,
  ], { timeout: EXIT_DEADLINE_MS });
  const stderr = r.stderr.toString();
  // 141 = 128 + SIGPIPE, what a shell reports for a program that a broken pipe ended.
  assert.match(stderr, /status=141\n$/, stderr);
  assert.doesNotMatch(stderr, /\n\s+at |Error|EPIPE|panic|Segmentation|Could not/, stderr);
});

test("cli faults: a CLI killed by a signal before its progress line fails the wait at once, naming the signal", async () => {
  // A crash ends the child by a signal and leaves its exit code null: the wait once took that for a CLI
  // still running, and a crash before the first progress line read as a minute-long hang with empty stderr.
  const input = tempPath("killed-early.y4m");
  writeFileSync(input, await collect(testSourceY4m({ width: 160, height: 120, frames: 60 })));
  const run = started(["-i", input, "-o", tempPath("killed-early.ivf"), "--chunked", "--preset", "6"]);
  await new Promise<void>((resolve) => run.child.once("spawn", () => resolve()));
  process.kill(run.child.pid!, "SIGKILL");
  await assert.rejects(stderrShows(run, /never printed/), /signal SIGKILL/);
  await run.ended;
});

test(
  "cli --chunked: SIGTERM keeps the finished chunks and exits 143; a broken stdout ends quietly",
  needs("bash"),
  async () => {
    const input = tempPath("chunked-long.y4m");
    writeFileSync(input, await collect(testSourceY4m({ width: 160, height: 120, frames: 900 })));
    // A slow preset: the encode is still going when the first progress line (after 2 s) shows. Preset 6
    // was not slow enough: on an idle machine Bun finished all 900 frames (454 fps) before that line.
    const run = started(["-i", input, "-o", tempPath("chunked.ivf"), "--chunked", "--preset", "3"]);
    await stderrShows(run, /frames, chunks \d+\/\d+ [\d.]+ fps encode/);
    process.kill(run.child.pid!, "SIGTERM");
    const r = await run.ended;
    assert.equal(r.code, 143, `exit ${r.code} ${r.signal}: ${r.stderr}`);
    assert.match(r.stderr, /Terminated: finished chunks are kept, run again with --resume/);

    const [cmd, argv] = scriptCommand("cli.ts", [
      "-i",
      input,
      "-o",
      "-",
      "--format",
      "ivf",
      "--chunked",
      "--preset",
      "13",
      "-q",
    ]);
    const piped = spawnSync("bash", [
      "-c",
      '"$@" | head -c 100 > /dev/null; echo "status=${PIPESTATUS[0]}" >&2',
      "bash",
      cmd,
      ...argv,
    ], { timeout: EXIT_DEADLINE_MS });
    const stderr = piped.stderr.toString();
    assert.match(stderr, /status=141\n$/, stderr);
    assert.doesNotMatch(stderr, /\n\s+at |Error|EPIPE|panic|Segmentation|Could not/, stderr);
  },
);

test(
  "cli: SIGTERM while streaming to a live TCP peer ends the stream on a whole packet and exits 143",
  needs("dav1d"),
  async () => {
    const { createServer } = await import("node:net");
    const chunks: Uint8Array[] = [];
    const server = createServer((socket) => {
      socket.on("data", (d) => chunks.push(new Uint8Array(d)));
      socket.on("error", () => {});
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as { port: number }).port;
    try {
      const run = started([
        ...["-i", "testsrc:160x120@30:100000", "-o", `tcp://127.0.0.1:${port}`, "--preset", "13"],
        ...["--low-delay", "--realtime", "--json"],
      ]);
      await stderrShows(run, /frames .*\[/);
      process.kill(run.child.pid!, "SIGTERM");
      const r = await run.ended;
      assert.equal(r.code, 143, `exit ${r.code} ${r.signal}: ${r.stderr}`);
      const summary = JSON.parse(r.stdout);
      assert.equal(summary.signal, "SIGTERM");
      const received = tempPath("live-sigterm.ivf");
      writeFileSync(received, Buffer.concat(chunks));
      const ivf = await readIvf(new Uint8Array(readFileSync(received)));
      assert.ok(ivf.frames.length > 0);
      assert.equal(ivf.frames.length, summary.frames, "the peer got every packet the CLI counted");
      assert.equal(dav1dFrameCount(received), ivf.frames.length);
    } finally {
      server.close();
    }
  },
);
