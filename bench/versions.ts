/**
 * One table per library version: our CLI in Deno and Bun against the library's own tool, same clip and
 * settings, alternated run by run (best wall time, worst peak RSS). SVT-AV1 1.4.1 and rav1e 0.5.1 are the
 * system's (Debian 12); 2.3.0, 3.1.2, 0.7.1 and 0.8.1 are Debian's pinned builds (ffi/platform.ts),
 * fetched without root through the per-machine cache and handed to the CLI with SVTAV1_LIB_PATH /
 * RAV1E_LIB_PATH. SvtAv1EncApp 2.3.0 and the rav1e 0.7.1 CLI run here; 3.1.2's and 0.8.1's need a newer
 * glibc, so those rows have no reference. Writes the "Library versions" section of bench/results.md.
 *
 * Usage: deno run -A bench/versions.ts [--runs N] [--quick]
 * @module
 */
import { spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { fetchDebianPackages, sharedLibraryIn } from "../ffi/fetch_debian.ts";
import { debianBuild } from "../ffi/platform.ts";
import { bestOf, clip, type Contender, libraryVersion, writeResultsSection } from "./harness.ts";

const root = new URL("../", import.meta.url).pathname;
const tmp = `${root}bench/tmp`;
const libs = `${tmp}/libs`;
mkdirSync(libs, { recursive: true });
const bin = (name: string) => `${root}node_modules/.bin/${name}`;
const quick = process.argv.includes("--quick");
const runsArg = process.argv.indexOf("--runs");
const runs = runsArg > 0 ? Number(process.argv[runsArg + 1]) : quick ? 1 : 2;

interface Version {
  library: "svt-av1" | "rav1e";
  version: string;
  /** The library file, or undefined for the system's. */
  path?: string;
  /** The library's own tool and the environment it runs with, where one runs here. */
  tool?: { cmd: string; env: string[] };
}

/** Debian's build of a version: the library (and its tool, if Debian has one that runs here). */
function fetched(library: "svt-av1" | "rav1e", select: string): Version {
  const b = debianBuild(library, select);
  const dir = join(libs, `${library}-${b.version}`);
  const got = fetchDebianPackages(b.packages, join(dir, "unpacked"), (l) => process.stderr.write(l + "\n"));
  const lib = sharedLibraryIn(
    got.find((f) => f.pkg.kind === "library")!,
    library === "svt-av1" ? "libSvtAv1Enc.so" : "librav1e.so",
  );
  const path = join(dir, lib.soname);
  copyFileSync(lib.path, path);
  const toolPkg = got.find((f) => f.pkg.kind === "tool");
  const name = library === "svt-av1" ? "SvtAv1EncApp" : "rav1e";
  let tool: Version["tool"];
  if (toolPkg) {
    const cmd = join(dir, name);
    copyFileSync(join(toolPkg.root, "usr/bin", name), cmd);
    chmodSync(cmd, 0o755);
    tool = { cmd, env: [`LD_LIBRARY_PATH=${dir}`] };
  }
  return { library, version: b.version, path, tool };
}

function systemVersion(library: "svt-av1" | "rav1e"): Version {
  const out =
    spawnSync(bin("deno"), ["run", "-A", `${root}cli.ts`, "--version"], { encoding: "utf8" }).stdout;
  const line = out.split("\n").find((l) => l.startsWith(library === "svt-av1" ? "SVT-AV1 " : "rav1e "))!;
  const version = line.split(" ")[1].replace(/^v/, "");
  const name = library === "svt-av1" ? "SvtAv1EncApp" : "rav1e";
  return { library, version, tool: { cmd: name, env: [] } };
}

interface Case {
  name: string;
  width: number;
  height: number;
  frames: number;
}
const svtCase: Case = { name: "720p preset 10 crf 35", width: 1280, height: 720, frames: quick ? 30 : 60 };
const rav1eCase: Case = {
  name: "360p speed 10 quantizer 100",
  width: 640,
  height: 360,
  frames: quick ? 15 : 30,
};

function contenders(v: Version): Contender<Case>[] {
  const env = v.path ? [`${v.library === "svt-av1" ? "SVTAV1_LIB_PATH" : "RAV1E_LIB_PATH"}=${v.path}`] : [];
  const ours = v.library === "svt-av1"
    ? ["--preset", "10", "--crf", "35"]
    : ["--codec", "rav1e", "--speed", "10", "--quantizer", "100", "--tune", "psnr"];
  const out: Contender<Case>[] = [];
  if (v.tool) {
    const t = v.tool;
    out.push({
      name: v.library === "svt-av1" ? "SvtAv1EncApp" : "rav1e CLI",
      command: (i) =>
        v.library === "svt-av1"
          ? ["env", [...t.env, t.cmd, "-i", i, "-b", `${tmp}/v-app.ivf`, "--preset", "10", "--crf", "35"]]
          : ["env", [
            ...t.env,
            t.cmd,
            i,
            "-o",
            `${tmp}/v-rav1e.ivf`,
            "-y",
            "--speed",
            "10",
            "--quantizer",
            "100",
            "--tune",
            "Psnr",
          ]],
    });
  }
  out.push({
    name: "CLI (Deno)",
    command: (
      i,
    ) => ["env", [
      ...env,
      bin("deno"),
      "run",
      "-A",
      `${root}cli.ts`,
      "-i",
      i,
      "-o",
      `${tmp}/v-deno.ivf`,
      ...ours,
      "-q",
    ]],
  });
  out.push({
    name: "CLI (Bun)",
    command: (
      i,
    ) => ["env", [...env, bin("bun"), `${root}cli.ts`, "-i", i, "-o", `${tmp}/v-bun.ivf`, ...ours, "-q"]],
  });
  return out;
}

const versions: Version[] = [
  systemVersion("svt-av1"),
  fetched("svt-av1", "2"),
  fetched("svt-av1", "3"),
  systemVersion("rav1e"),
  fetched("rav1e", "0.7"),
  fetched("rav1e", "0.8"),
];

const load = () => readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
const loadBefore = load();
const sections: string[] = [];
for (const v of versions) {
  const c = v.library === "svt-av1" ? svtCase : rav1eCase;
  const input = await clip(tmp, c);
  const best = await bestOf(contenders(v), input, c, runs);
  const ref = [...best.entries()].find(([k]) => !k.startsWith("CLI"))?.[1];
  const rows = [...best.entries()].map(([name, m]) =>
    `| ${name} | ${m.seconds.toFixed(2)} | ${ref ? (m.seconds / ref.seconds).toFixed(2) + "×" : "—"} | ${
      m.peakRssMB.toFixed(0)
    } | ${
      ref ? (m.peakRssMB - ref.peakRssMB >= 0 ? "+" : "") + (m.peakRssMB - ref.peakRssMB).toFixed(0) : "—"
    } |`
  );
  sections.push(
    `### ${v.library === "svt-av1" ? "SVT-AV1" : "rav1e"} ${v.version} (${
      v.path ? "Debian's build" : "system"
    })`
      + `, ${c.name}, ${c.frames} frames\n\n`
      + "| contender | wall s (best) | × tool | peak RSS MB | RSS − tool |\n| --- | --- | --- | --- | --- |\n"
      + rows.join("\n")
      + (ref ? "" : "\n\nNo reference tool of this version runs here (Debian's needs glibc 2.43)."),
  );
}
const body =
  `av1-stream ${libraryVersion(root)}; best of ${runs} runs per contender, alternated; clips from ffmpeg's `
  + `testsrc2. Load average ${loadBefore} before and ${load()} after (the machine was shared: ratios are `
  + `within one run, absolute times are not comparable between tables run at different loads). `
  + `deno run -A bench/versions.ts.\n\n${sections.join("\n\n")}`;
writeResultsSection(`${root}bench/results.md`, "Library versions", body);
console.log(body);
if (!existsSync(`${tmp}/v-deno.ivf`)) process.exitCode = 1;
