// The package as a user installs it: `npm pack`, install the tarball into a fresh project, and from there
// import it by name in Bun, Deno and Node (`.` and `./webcodecs`), encode 10 frames each way and decode
// them with dav1d; then the JSR side: `deno publish --dry-run` and `deno doc --lint` over every entry.
// It builds and installs once, so it runs in the Deno runner only (the other runners skip it).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { dav1dFrameCount, needs } from "./_helpers/encode.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const bin = (name: string) => join(root, "node_modules", ".bin", name);
const onlyHere = "Deno" in globalThis
  ? {}
  : { skip: "runs once, in the Deno runner (it packs and installs the package)" };
const TIMEOUT = 240_000;

function sh(cmd: string, args: string[], cwd: string, env: Record<string, string> = {}) {
  const r = spawnSync(cmd, args, {
    cwd,
    env: { ...process.env, NO_COLOR: "1", ...env },
    timeout: TIMEOUT,
    maxBuffer: 64 << 20,
  });
  return { code: r.status ?? -1, out: `${r.stdout ?? ""}${r.stderr ?? ""}${r.error ? String(r.error) : ""}` };
}

// The program a user writes against the installed package (README's first program, and the WebCodecs facade).
const PROGRAM = `
import { IvfWriter, ivfFileSink, SvtAv1Encoder, testSource } from "av1-stream";
import { VideoEncoder, VideoFrame } from "av1-stream/webcodecs";
const out = process.argv[2] ?? Deno.args[0];
const source = testSource({ width: 160, height: 96, frames: 10 });
const enc = await SvtAv1Encoder.create({ ...source.info, preset: 12, crf: 40 });
const ivf = new IvfWriter(await ivfFileSink(out), source.info);
const pump = (async () => {
  for await (const frame of source.frames()) await enc.encode(frame);
  await enc.flush();
})();
for await (const packet of enc.packets()) await ivf.writePacket(packet);
await pump;
await ivf.close();
await enc.close();
let chunks = 0;
const wc = new VideoEncoder({ output: () => void chunks++, error: (e) => { throw e; } });
wc.configure({ codec: "av01.0.04M.08", width: 64, height: 64, bitrate: 200_000, framerate: 30 });
for (let i = 0; i < 10; i++) {
  const frame = new VideoFrame(new Uint8Array(64 * 64 * 4).fill(i * 20), {
    format: "RGBA", codedWidth: 64, codedHeight: 64, timestamp: i * 33_333,
  });
  wc.encode(frame, { keyFrame: i === 0 });
  frame.close();
}
await wc.flush();
wc.close();
console.log(JSON.stringify({ packets: ivf.frameCount, chunks }));
`;

let work = "";
let project = "";

before(() => {
  if (onlyHere.skip) return;
  work = mkdtempSync(join(tmpdir(), "av1-stream-package-"));
  project = join(work, "consumer");
  mkdirSync(project);
});
after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

test(
  "npm pack gives a package with JavaScript, declarations and no tests",
  { ...onlyHere, timeout: TIMEOUT },
  () => {
    const build = sh(process.execPath === bin("deno") ? "node" : "node", ["scripts/build_dist.mjs"], root);
    assert.equal(build.code, 0, build.out);
    const pack = sh("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", work], root);
    assert.equal(pack.code, 0, pack.out);
    const info = JSON.parse(pack.out.slice(pack.out.indexOf("[")))[0] as {
      files: { path: string }[];
      filename: string;
    };
    const paths = info.files.map((f) => f.path);
    for (
      const p of [
        "dist/mod.js",
        "dist/mod.d.ts",
        "dist/cli.js",
        "dist/lib/webcodecs/mod.js",
        "LICENSE",
        "README.md",
      ]
    ) {
      assert.ok(paths.includes(p), `${p} is in the tarball`);
    }
    assert.ok(
      paths.some((p) => p.endsWith("svt_av1_worker.js")),
      "the encoder thread's module ships compiled",
    );
    assert.equal(
      paths.filter((p) => /^(tests|bench|examples)\/|\.ts$/.test(p) && !p.endsWith(".d.ts")).length,
      0,
    );
    writeFileSync(
      join(project, "package.json"),
      JSON.stringify({
        name: "consumer",
        private: true,
        type: "module",
        dependencies: { "av1-stream": `file:${join(work, info.filename)}` },
      }),
    );
    const install = sh("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline"], project);
    assert.equal(install.code, 0, install.out);
    const installed = readdirSync(join(project, "node_modules"));
    // Optional peers stay out of an install that does not ask for them.
    for (const peer of ["bullmq", "ioredis", "werift", "node-media-server"]) {
      assert.ok(
        !installed.includes(peer),
        `${peer} not installed`,
      );
    }
    writeFileSync(
      join(project, "encode.mjs"),
      PROGRAM.replace("process.argv[2] ?? Deno.args[0]", "globalThis.Deno ? Deno.args[0] : process.argv[2]"),
    );
  },
);

function runsByName(runtime: string, cmd: string, args: (out: string) => string[]) {
  test(`${runtime} imports the installed package by name, encodes 10 frames that dav1d decodes`, {
    ...onlyHere,
    ...needs("dav1d"),
    timeout: TIMEOUT,
  }, () => {
    const out = join(work, `${runtime}.ivf`);
    const r = sh(cmd, args(out), project);
    assert.equal(r.code, 0, r.out);
    const result = JSON.parse(r.out.trim().split("\n").filter((l) => l.startsWith("{")).at(-1)!);
    assert.deepEqual(result, { packets: 10, chunks: 10 });
    assert.equal(dav1dFrameCount(out), 10);
  });
}
runsByName("bun", bin("bun"), (out) => ["encode.mjs", out]);
runsByName("deno", bin("deno"), (out) => ["run", "-A", "encode.mjs", out]);
runsByName("node", "node", (out) => ["encode.mjs", out]);

// What an install with the prebuilt platform package runs: both libraries from node_modules, encoding.
const PREBUILT_PROGRAM = `
import { IvfWriter, ivfFileSink, locateRav1e, locateSvtAv1, Rav1eEncoder, SvtAv1Encoder, testSource } from "av1-stream";
const out = process.argv[2] ?? Deno.args[0];
const libs = { svt: await locateSvtAv1(), rav1e: await locateRav1e() };
const packets = {};
for (const [name, Encoder] of [["svt", SvtAv1Encoder], ["rav1e", Rav1eEncoder]]) {
  const source = testSource({ width: 160, height: 96, frames: 10 });
  const enc = await Encoder.create({ ...source.info, speed: 10, preset: 12 });
  const ivf = new IvfWriter(await ivfFileSink(out + "." + name + ".ivf"), source.info);
  const pump = (async () => {
    for await (const frame of source.frames()) await enc.encode(frame);
    await enc.flush();
  })();
  for await (const packet of enc.packets()) await ivf.writePacket(packet);
  await pump;
  await ivf.close();
  await enc.close();
  packets[name] = ivf.frameCount;
}
console.log(JSON.stringify({
  svt: { version: libs.svt.version.text, path: libs.svt.path },
  rav1e: { version: libs.rav1e.version.text, path: libs.rav1e.path },
  packets,
}));
`;

let prebuiltProject = "";

test(
  "the prebuilt platform package: made from Debian's pinned builds, pulled in by the release manifest's optionalDependencies",
  { ...onlyHere, timeout: TIMEOUT },
  () => {
    const made = sh(bin("deno"), [
      "run",
      "-A",
      "scripts/platform_package.ts",
      "--out",
      join(work, "platform"),
      "--pack",
      "--release-manifest",
      join(work, "release.json"),
    ], root);
    assert.equal(made.code, 0, made.out);
    const tarball = readdirSync(join(work, "platform")).find((f) => f.endsWith(".tgz"))!;
    assert.equal(tarball, "av1-stream-linux-x64-gnu-0.1.0.tgz");
    const release = JSON.parse(readFileSync(join(work, "release.json"), "utf8"));
    assert.deepEqual(release.optionalDependencies, { "@av1-stream/linux-x64-gnu": release.version });
    const platformPkg = JSON.parse(
      readFileSync(join(work, "platform", "@av1-stream+linux-x64-gnu", "package.json"), "utf8"),
    );
    assert.deepEqual([platformPkg.os, platformPkg.cpu, platformPkg.libc], [["linux"], ["x64"], ["glibc"]]);
    for (const f of ["licenses/svt-av1/copyright", "licenses/rav1e/copyright"]) {
      const text = readFileSync(join(work, "platform", "@av1-stream+linux-x64-gnu", f), "utf8");
      assert.match(text, /Alliance for Open Media Patent License 1\.0/, `${f} carries the patent licence`);
    }
    // The release tarball: the main package with that manifest (dist/ was built by the first test).
    const staged = join(work, "release");
    mkdirSync(staged);
    writeFileSync(join(staged, "package.json"), JSON.stringify(release, null, 2));
    for (const f of ["dist", "README.md", "LICENSE", "docs"]) {
      cpSync(join(root, f), join(staged, f), { recursive: true });
    }
    const pack = sh("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", work, staged], work);
    assert.equal(pack.code, 0, pack.out);
    const main = JSON.parse(pack.out.slice(pack.out.indexOf("[")))[0].filename as string;
    prebuiltProject = join(work, "consumer-prebuilt");
    mkdirSync(prebuiltProject);
    // The platform package is not on the registry: an override points av1-stream's own optional
    // dependency at the tarball just made, which is what npm resolves from the registry after a release.
    writeFileSync(
      join(prebuiltProject, "package.json"),
      JSON.stringify({
        name: "consumer-prebuilt",
        private: true,
        type: "module",
        dependencies: { "av1-stream": `file:${join(work, main)}` },
        overrides: { "@av1-stream/linux-x64-gnu": `file:${join(work, "platform", tarball)}` },
      }),
    );
    const install = sh("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline"], prebuiltProject);
    assert.equal(install.code, 0, install.out);
    const lib = join(prebuiltProject, "node_modules", "@av1-stream", "linux-x64-gnu", "lib");
    assert.deepEqual(readdirSync(lib).sort(), ["libSvtAv1Enc.so.3", "librav1e.so.0.8"]);
    writeFileSync(
      join(prebuiltProject, "encode.mjs"),
      PREBUILT_PROGRAM.replace(
        "process.argv[2] ?? Deno.args[0]",
        "globalThis.Deno ? Deno.args[0] : process.argv[2]",
      ),
    );
  },
);

for (
  const [runtime, cmd, args] of [
    ["bun", bin("bun"), (out: string) => ["encode.mjs", out]],
    ["deno", bin("deno"), (out: string) => ["run", "-A", "encode.mjs", out]],
    ["node", "node", (out: string) => ["encode.mjs", out]],
  ] as const
) {
  test(
    `${runtime}: the installed package encodes with SVT-AV1 3.1.2 and rav1e 0.8.1 from the platform package`,
    {
      ...onlyHere,
      ...needs("dav1d"),
      timeout: TIMEOUT,
    },
    () => {
      const out = join(work, `prebuilt-${runtime}`);
      const r = sh(cmd, args(out), prebuiltProject);
      assert.equal(r.code, 0, r.out);
      const result = JSON.parse(r.out.trim().split("\n").filter((l) => l.startsWith("{")).at(-1)!);
      const dir = join(prebuiltProject, "node_modules", "@av1-stream", "linux-x64-gnu", "lib");
      assert.equal(result.svt.version, "v3.1.2");
      assert.equal(result.svt.path, join(dir, "libSvtAv1Enc.so.3"));
      assert.match(result.rav1e.version, /^0\.8\.1/);
      assert.equal(result.rav1e.path, join(dir, "librav1e.so.0.8"));
      assert.deepEqual(result.packets, { svt: 10, rav1e: 10 });
      assert.equal(dav1dFrameCount(`${out}.svt.ivf`), 10);
      assert.equal(dav1dFrameCount(`${out}.rav1e.ivf`), 10);
    },
  );
}

test("the bin of an install with the platform package names its libraries: av1-stream --version", {
  ...onlyHere,
  timeout: TIMEOUT,
}, () => {
  const r = sh(join(prebuiltProject, "node_modules", ".bin", "av1-stream"), ["--version"], prebuiltProject);
  assert.equal(r.code, 0, r.out);
  assert.match(
    r.out,
    /^SVT-AV1 v3\.1\.2 \(.*node_modules\/@av1-stream\/linux-x64-gnu\/lib\/libSvtAv1Enc\.so\.3\)$/m,
  );
  assert.match(
    r.out,
    /^rav1e 0\.8\.1.*\(.*node_modules\/@av1-stream\/linux-x64-gnu\/lib\/librav1e\.so\.0\.8\)$/m,
  );
});

test("the bin runs from the install: av1-stream --help", { ...onlyHere, timeout: TIMEOUT }, () => {
  const r = sh(join(project, "node_modules", ".bin", "av1-stream"), ["--help"], project);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /Usage: av1-stream/);
});

test("an optional peer that is missing is named in a clear error", { ...onlyHere, timeout: TIMEOUT }, () => {
  writeFileSync(
    join(project, "distributed.mjs"),
    `try { await import("av1-stream/chunked/distributed"); console.log("loaded"); } catch (e) { console.log(e.code, e.message); }`,
  );
  const r = sh("node", ["distributed.mjs"], project);
  assert.match(r.out, /DEPENDENCY_MISSING .*"bullmq".*npm install bullmq/);
});

test(
  "JSR: deno publish --dry-run passes, deno doc --lint finds nothing on any entry point and the examples type-check",
  {
    ...onlyHere,
    timeout: TIMEOUT,
  },
  () => {
    const publish = sh(bin("deno"), ["publish", "--dry-run", "--allow-dirty"], root);
    assert.equal(publish.code, 0, publish.out);
    const exports = Object.values(
      JSON.parse(readFileSync(join(root, "deno.json"), "utf8")).exports as Record<string, string>,
    );
    const lint = sh(bin("deno"), ["doc", "--lint", ...exports], root);
    assert.equal(lint.code, 0, lint.out.slice(-3000));
    // The `@example` blocks type-check against the real API, so that they cannot drift from it.
    const examples = sh(bin("deno"), ["check", "--doc-only", ...exports], root);
    assert.equal(examples.code, 0, examples.out.slice(-3000));
  },
);
