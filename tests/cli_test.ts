import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { test } from "node:test";
import { parseObus } from "../lib/av1/obu.ts";
import { readIvf } from "../lib/io/ivf.ts";
import { testSourceY4m } from "../lib/io/testsrc.ts";
import { dav1dFrameCount, needs, scriptCommand, tempPath } from "./_helpers/encode.ts";
import { collect } from "./_helpers/io_streams.ts";

function cli(args: string[], input?: Uint8Array) {
  const [cmd, argv] = scriptCommand("cli.ts", args);
  const r = spawnSync(cmd, argv, { input, maxBuffer: 64 << 20 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr.toString() };
}

test("cli: bad flags are a usage error with exit code 2", () => {
  for (
    const args of [
      ["--no-such-flag"],
      ["-i", "testsrc"],
      ["-i", "testsrc", "-o", "x.ivf", "--crf", "abc"],
      ["-i", "testsrc", "-o", "x.mov"],
      ["-i", "testsrc", "-o", "x.ivf", "--codec", "x264"],
      ["-i", "testsrc", "-o", "x.ivf", "--param", "novalue"],
      ["-i", "testsrc", "-o", "x.ivf", "--force-key-frames", "ten"],
    ]
  ) {
    const r = cli(args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, /Usage: av1-stream/);
  }
});

test("cli: a bad value the encoder rejects exits 1 with the encoder's sentence", () => {
  const r = cli(["-i", "testsrc:160x120@30:2", "-o", tempPath("bad.ivf"), "--preset", "99", "--quiet"]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /preset must be an integer from -2 to 13, got 99/);
});

test("cli: --json prints a summary of a test source encode to IVF", () => {
  const out = tempPath("json.ivf");
  const r = cli(["-i", "testsrc:160x120@30:10", "-o", out, "--preset", "12", "--json", "--quiet"]);
  assert.equal(r.code, 0, r.stderr);
  const summary = JSON.parse(r.stdout.toString());
  assert.equal(summary.frames, 10);
  assert.equal(summary.bytes + 32 + 12 * 10, readFileSync(out).length);
  for (const k of ["seconds", "fps", "kbps"]) assert.equal(typeof summary[k], "number");
  assert.equal(summary.library.name, "SVT-AV1");
  assert.equal(summary.library.version, summary.version);
  assert.ok(existsSync(summary.library.path) || !summary.library.path.includes("/"), summary.library.path);
});

test("cli: --version names the package, and each library with its version and file", () => {
  const r = cli(["--version"]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.toString().trim().split("\n");
  // Node runs these tests compiled under .cache/node: the manifests are read from the repository's root.
  const root = [new URL("..", import.meta.url), new URL("../../..", import.meta.url)].find((u) =>
    existsSync(new URL("deno.json", u))
  )!;
  const pkg = JSON.parse(readFileSync(new URL("package.json", root), "utf8"));
  const deno = JSON.parse(readFileSync(new URL("deno.json", root), "utf8"));
  assert.equal(lines[0], `av1-stream ${pkg.version}`);
  assert.equal(deno.version, pkg.version);
  assert.match(lines[1], /^SVT-AV1 v?\d+\.\d+\.\d+\S* \(.*libSvtAv1Enc\.so\.\d.*\)$/);
  assert.match(lines[2], /^rav1e \d+\.\d+\.\d+.* \(.*librav1e\.so.*\)$/);
  // The plain progress line at the end of an encode names the same library.
  const out = tempPath("version.ivf");
  const enc = cli(["-i", "testsrc:64x64@30:2", "-o", out, "--preset", "12"]);
  assert.equal(enc.code, 0, enc.stderr);
  const lib = lines[1].replace(/^SVT-AV1 /, "");
  assert.ok(enc.stderr.toString().trim().endsWith(`with SVT-AV1 ${lib}`), enc.stderr.toString());
});

test("cli: --frames limits the encode and plain progress lines go to stderr", () => {
  const out = tempPath("frames.ivf");
  const r = cli(["-i", "testsrc:160x120@30:50", "-o", out, "--preset", "12", "--frames", "7"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /7\/7 frames .* fps .* kbps/);
  assert.ok(!r.stderr.includes("\r"), "no carriage returns when stderr is not a terminal");
});

test("cli: reads Y4M from stdin and writes IVF to stdout", async () => {
  const y4m = await collect(testSourceY4m({ width: 160, height: 120, frames: 6 }));
  const r = cli(["-i", "-", "-o", "-", "--preset", "12", "--quiet"], y4m);
  assert.equal(r.code, 0, r.stderr);
  const ivf = await readIvf(new Uint8Array(r.stdout));
  assert.equal(ivf.frames.length, 6);
  assert.equal(ivf.header.width, 160);
});

test("cli: writes a low-overhead OBU stream that dav1d decodes", needs("dav1d"), () => {
  const out = tempPath("out.obu");
  const r = cli(["-i", "testsrc:160x120@30:8", "-o", out, "--preset", "12", "--quiet"]);
  assert.equal(r.code, 0, r.stderr);
  const obus = parseObus(new Uint8Array(readFileSync(out)));
  assert.equal(obus[0].typeName, "OBU_TEMPORAL_DELIMITER");
  assert.equal(dav1dFrameCount(out, "section5"), 8);
});

test("cli: a truncated Y4M input fails with a clear error", async () => {
  const y4m = await collect(testSourceY4m({ width: 160, height: 120, frames: 3 }));
  const path = tempPath("cut.y4m");
  writeFileSync(path, y4m.subarray(0, y4m.length - 100));
  const r = cli(["-i", path, "-o", tempPath("cut.ivf"), "--quiet"]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /truncat/i);
});

test("cli: Ctrl-C finishes the frames read so far and closes a valid file", needs("dav1d"), async () => {
  const out = tempPath("sigint.ivf");
  const [cmd, argv] = scriptCommand("cli.ts", [
    "-i",
    "testsrc:160x120@30:100000",
    "-o",
    out,
    "--preset",
    "13",
  ]);
  const { spawn } = await import("node:child_process");
  const child = spawn(cmd, argv, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  // Interrupt once the first progress line shows frames are flowing.
  await new Promise<void>((resolve) => {
    child.stderr.on("data", (d) => {
      stderr += d.toString();
      if (/frames/.test(stderr)) resolve();
    });
  });
  child.kill("SIGINT");
  const [code, signal] = await new Promise<[number | null, string | null]>((resolve) =>
    child.on("close", (c, s) => resolve([c, s]))
  );
  // Deno's child_process reports the signal it sent rather than the exit code the child chose.
  assert.ok(code === 130 || (code === null && signal === "SIGINT"), `exit ${code} ${signal}: ${stderr}`);
  assert.match(stderr, /Interrupted: finishing what was encoded/);
  const ivf = await readIvf(new Uint8Array(readFileSync(out)));
  assert.ok(ivf.frames.length > 0);
  assert.ok(ivf.frames.length < 100000);
  assert.equal(ivf.header.frameCount, ivf.frames.length, "frame count patched");
  assert.equal(dav1dFrameCount(out), ivf.frames.length);
});

test("cli: --codec rav1e gives the rav1e CLI's bytes with --tune psnr", needs("rav1e"), async () => {
  const y4m = tempPath("rav1e-src.y4m");
  writeFileSync(y4m, await collect(testSourceY4m({ width: 160, height: 96, frames: 8 })));
  const ref = tempPath("rav1e-ref.ivf");
  const r0 = spawnSync("rav1e", [y4m, "-o", ref, "--speed", "10", "--quantizer", "100", "--tune", "Psnr"]);
  assert.equal(r0.status, 0, r0.stderr?.toString());
  const out = tempPath("rav1e-ours.ivf");
  const args = [
    "-i",
    y4m,
    "-o",
    out,
    "--codec",
    "rav1e",
    "--speed",
    "10",
    "--quantizer",
    "100",
    "--tune",
    "psnr",
    "-q",
  ];
  const r = cli(args);
  assert.equal(r.code, 0, r.stderr);
  const [a, b] = [
    await readIvf(new Uint8Array(readFileSync(ref))),
    await readIvf(new Uint8Array(readFileSync(out))),
  ];
  assert.equal(b.frames.length, 8);
  assert.deepEqual(
    b.frames.map((f) => Buffer.from(f.data).toString("hex")),
    a.frames.map((f) => Buffer.from(f.data).toString("hex")),
  );
});

test("cli: --thread-priority takes normal, batch or realtime for SVT-AV1 and is a usage error otherwise", () => {
  const bad = cli(["-i", "testsrc:64x64@30:2", "-o", "-", "--thread-priority", "high"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--thread-priority must be normal, batch or realtime, got "high"/);
  const rav1e = cli([
    "-i",
    "testsrc:64x64@30:2",
    "-o",
    "-",
    "--codec",
    "rav1e",
    "--thread-priority",
    "batch",
  ]);
  assert.equal(rav1e.code, 2);
  assert.match(rav1e.stderr, /--thread-priority is an SVT-AV1 option/);
  for (const p of ["normal", "batch"]) {
    const ok = cli(["-i", "testsrc:64x64@30:2", "-o", "-", "--preset", "12", "-q", "--thread-priority", p]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.ok(ok.stdout.length > 32, `an IVF with ${p}`);
  }
});

test("cli: an option of the other codec is a usage error", () => {
  const r = cli(["-i", "testsrc", "-o", "x.ivf", "--codec", "rav1e", "--preset", "3"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--preset is not a rav1e option/);
});

test(
  "cli: the extension picks WebM, MP4 and fragmented MP4, and probe reads each back",
  needs("ffprobe"),
  () => {
    for (
      const [name, extra, format] of [["c.webm", [], "webm"], ["c.mp4", [], "mp4"], ["f.mp4", [
        "--format",
        "fmp4",
      ], "fmp4"]] as const
    ) {
      const out = tempPath(name);
      const r = cli([
        "-i",
        "testsrc:160x120@30:12",
        "-o",
        out,
        "--preset",
        "12",
        "--keyint",
        "6",
        "-q",
        ...extra,
      ]);
      assert.equal(r.code, 0, r.stderr);
      const probe = cli(["probe", out, "--json"]);
      assert.equal(probe.code, 0, probe.stderr);
      const info = JSON.parse(probe.stdout.toString());
      assert.equal(info.format, format);
      assert.equal(info.frames, 12);
      assert.equal(info.width, 160);
      assert.match(info.codec, /^av01\.0\.\d\dM\.08/);
      const ff = spawnSync("ffprobe", [
        "-v",
        "error",
        "-count_frames",
        "-show_entries",
        "stream=codec_name,nb_read_frames",
        "-of",
        "csv=p=0",
        out,
      ]);
      assert.equal(ff.stdout.toString().trim(), "av1,12", name);
    }
  },
);

test("cli: -o tcp:// streams IVF to a live peer and the progress line shows the link", async () => {
  const { createServer } = await import("node:net");
  const chunks: Uint8Array[] = [];
  const server = createServer((socket) => socket.on("data", (d) => chunks.push(new Uint8Array(d))));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  const [cmd, argv] = scriptCommand("cli.ts", [
    ...["-i", "testsrc:160x120@30:20", "-o", `tcp://127.0.0.1:${port}`, "--preset", "12", "--keyint", "10"],
    "--low-delay",
  ]);
  const { spawn } = await import("node:child_process");
  const child = spawn(cmd, argv, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  const [code, signal] = await new Promise<[number | null, string | null]>((resolve) =>
    child.on("close", (c, s) => resolve([c, s]))
  );
  server.close();
  assert.equal(code, 0, `exit ${code ?? signal}, stderr: ${stderr}`);
  assert.match(stderr, /20\/20 frames .*\[closed 1 conn\]/);
  const ivf = await readIvf(new Uint8Array(Buffer.concat(chunks)));
  assert.equal(ivf.frames.length, 20);
});

test("cli: live-peer flags need a live peer, and a peer cannot take progressive MP4", () => {
  let r = cli(["-i", "testsrc", "-o", "x.ivf", "--on-disconnect", "drop"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--on-disconnect applies to live peers/);
  r = cli(["-i", "testsrc", "-o", "tcp://127.0.0.1:1", "--format", "mp4"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /cannot take progressive MP4/);
  r = cli(["-i", "testsrc", "-o", "tcp://127.0.0.1:1", "--on-disconnect", "sometimes"]);
  assert.equal(r.code, 2);
});

test(
  "cli: --on-disconnect reinit starts a fresh stream on each connection to a live peer",
  needs("dav1d"),
  async () => {
    const { createServer } = await import("node:net");
    const connections: Uint8Array[][] = [];
    let cut = false;
    const server = createServer((socket) => {
      const mine: Uint8Array[] = [];
      connections.push(mine);
      socket.on("data", (d) => {
        mine.push(new Uint8Array(d));
        // Reset the first connection once some packets are in: the CLI must come back with a new stream.
        if (!cut && Buffer.concat(mine).length > 8000) {
          cut = true;
          socket.resetAndDestroy();
        }
      });
      socket.on("error", () => {});
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as { port: number }).port;
    const [cmd, argv] = scriptCommand("cli.ts", [
      ...["-i", "testsrc:160x120@30:60", "-o", `tcp://127.0.0.1:${port}`, "--preset", "12", "--keyint", "30"],
      ...["--low-delay", "--realtime", "--on-disconnect", "reinit", "--reconnect-delay", "20", "-q"],
    ]);
    const { spawn } = await import("node:child_process");
    const child = spawn(cmd, argv, { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    server.close();
    assert.equal(code, 0, stderr);
    assert.ok(connections.length >= 2, `${connections.length} connections`);
    const last = tempPath("reinit-last.ivf");
    writeFileSync(last, Buffer.concat(connections[connections.length - 1]));
    const ivf = await readIvf(new Uint8Array(readFileSync(last)));
    assert.ok(ivf.frames.length > 0);
    assert.equal(dav1dFrameCount(last), ivf.frames.length, "the new connection decodes by itself");
    assert.ok(ivf.frames[0].timestamp > 0, "timestamps continue after the reinit");
  },
);
