import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { encodeChunked } from "../lib/chunked/local.ts";
import type { Manifest } from "../lib/chunked/work_dir.ts";
import { spillY4m } from "../lib/chunked/y4m_file.ts";
import { EncoderError } from "../lib/errors.ts";
import { testSource } from "../lib/io/testsrc.ts";
import { writeHardCutY4m } from "./_helpers/chunked_media.ts";
import { dav1dFrameCount, needs, run, scriptCommand, tempPath } from "./_helpers/encode.ts";

const PLAN = { minLength: 8, maxLength: 8 };

test("encodeChunked aborted mid-way resumes only the unfinished chunks and gives the uninterrupted bytes", {
  timeout: 120_000,
}, async () => {
  const input = await writeHardCutY4m(tempPath("in.y4m"));
  const cfg = { preset: 12, crf: 45 };
  const reference = tempPath("ref.ivf");
  await encodeChunked(input, cfg, {
    output: reference,
    workDir: tempPath("ref-work"),
    workers: 1,
    plan: PLAN,
  });

  const work = tempPath("work");
  const out = tempPath("out.ivf");
  const stop = new AbortController();
  await assert.rejects(
    encodeChunked(input, cfg, {
      output: out,
      workDir: work,
      workers: 1,
      plan: PLAN,
      signal: stop.signal,
      onProgress: (p) => {
        if (p.chunksDone >= 2) stop.abort();
      },
    }),
    (e) => e instanceof EncoderError && e.code === "ABORTED",
  );
  assert.ok(!existsSync(out), "no output before the join");
  const [dir] = readdirSync(work).filter((d) => !d.startsWith("spill"));
  const manifest = JSON.parse(readFileSync(join(work, dir, "manifest.json"), "utf8")) as Manifest;
  const finished = Object.values(manifest.done);
  assert.equal(finished.length, 2);
  const mtimes = finished.map((r) => statSync(join(work, dir, r.file)).mtimeMs);
  assert.ok(!readdirSync(join(work, dir)).some((f) => f.endsWith(".tmp")), "no temporary files left");

  const started: number[] = [];
  const r = await encodeChunked(input, cfg, {
    output: out,
    workDir: work,
    workers: 2,
    plan: PLAN,
    resume: true,
    onProgress: (p) => started.push(p.chunksResumed),
  });
  assert.equal(r.chunksResumed, 2);
  assert.equal(r.frames, 40);
  assert.deepEqual(
    finished.map((f) => statSync(join(work, dir, f.file)).mtimeMs),
    mtimes,
    "finished chunks not redone",
  );
  assert.deepEqual(readFileSync(out), readFileSync(reference));

  // Without resume, the same work directory starts over.
  const fresh = await encodeChunked(input, cfg, {
    output: tempPath("fresh.ivf"),
    workDir: work,
    workers: 2,
    plan: PLAN,
  });
  assert.equal(fresh.chunksResumed, 0);
});

test("cli --chunked killed mid-run, then --resume finishes it with every frame", {
  ...needs("dav1d"),
  timeout: 120_000,
}, async () => {
  const input = tempPath("big.y4m");
  const src = testSource({ width: 320, height: 240, frames: 96 });
  await spillY4m(src.frames(), src.info, input);
  const work = tempPath("cli-work");
  const out = tempPath("cli.ivf");
  const args = [
    "-i",
    input,
    "-o",
    out,
    "--chunked",
    "--workers",
    "1",
    "--work-dir",
    work,
    "--codec",
    "rav1e",
    "--speed",
    "9",
    "--keyint",
    "8",
    "--quiet",
  ];
  const [cmd, argv] = scriptCommand("cli.ts", args);
  const child = spawn(cmd, argv, { stdio: "ignore" });
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  // Kill it as soon as the manifest records a finished chunk.
  let killedAt = -1;
  for (let i = 0; i < 600 && child.exitCode === null; i++) {
    await new Promise((r) => setTimeout(r, 25));
    const dir = existsSync(work) ? readdirSync(work).find((d) => !d.startsWith("spill")) : undefined;
    const path = dir && join(work, dir, "manifest.json");
    if (!path || !existsSync(path)) continue;
    const m = JSON.parse(readFileSync(path, "utf8")) as Manifest;
    if (Object.keys(m.done).length >= 1) {
      child.kill("SIGKILL");
      killedAt = Object.keys(m.done).length;
      break;
    }
  }
  await exited;
  assert.ok(killedAt >= 1, "the run was killed after a chunk finished");
  const r = run(cmd, [...argv.slice(0, -1), "--resume", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const summary = JSON.parse(r.stdout);
  assert.ok(
    summary.chunksResumed >= killedAt,
    `resumed ${summary.chunksResumed} chunks, ${killedAt} were done`,
  );
  assert.equal(summary.chunks, 12);
  assert.equal(summary.frames, 96);
  assert.equal(dav1dFrameCount(out), 96);
});
