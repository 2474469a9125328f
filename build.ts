#!/usr/bin/env -S deno run -A
/**
 * Locates the native libraries av1-stream needs and installs what is missing.
 *
 * ```sh
 * deno run -A build.ts          # libSvtAv1Enc and librav1e
 * deno run -A build.ts --dev    # also SvtAv1EncApp, rav1e, dav1d and ffmpeg for tests and benchmarks
 * deno run -A build.ts --svt-av1 3 --rav1e 0.8   # newer builds from Debian into build/, without root
 * ```
 *
 * Where something is missing and apt-get is available as root, it is installed; otherwise the exact
 * command to run is printed and the exit code is 1. Prints the versions and paths it found.
 * @module
 */
import { spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { fetchDebianPackages, sharedLibraryIn } from "./ffi/fetch_debian.ts";
import * as load from "./ffi/load.ts";
import {
  debianBuild,
  glibcAtLeast,
  installHint,
  LIBRARY_PACKAGE_PATTERNS,
  pickLibraryPackages,
} from "./ffi/platform.ts";

function aptLibraryPackages(): string[] {
  const names = (prefix: string) =>
    String(spawnSync("apt-cache", ["pkgnames", prefix]).stdout ?? "").split("\n").filter(Boolean);
  const installable = (pkg: string) => {
    const out = String(spawnSync("apt-cache", ["policy", pkg]).stdout ?? "");
    const m = /Candidate:\s*(\S+)/.exec(out);
    return m !== null && m[1] !== "(none)";
  };
  return pickLibraryPackages([...names("libsvtav1enc"), ...names("librav1e")], installable);
}
/**
 * What tests and benchmarks need besides the libraries (`--dev`): a binary on PATH that shows each
 * package is there. Packages without a binary to look for are checked with dpkg.
 */
const TOOLS: [binary: string | null, pkg: string][] = [
  ["SvtAv1EncApp", "svt-av1"],
  ["rav1e", "rav1e"],
  ["dav1d", "dav1d"],
  ["ffmpeg", "ffmpeg"],
  ["ffprobe", "ffmpeg"],
  ["redis-server", "redis-server"],
  // The browser end-to-end test decodes the live stream in headless chromium (playwright-core drives it).
  ["chromium", "chromium"],
  // The SRT sink loads libsrt over FFI; its tests receive with srt-live-transmit.
  ["srt-live-transmit", "srt-tools"],
  [null, "libsrt1.5-gnutls"],
];

function which(binary: string): string | undefined {
  for (const dir of (process.env.PATH ?? "/usr/bin:/bin").split(":")) {
    const p = `${dir}/${binary}`;
    if (dir && existsSync(p)) return p;
  }
  return undefined;
}

function run(cmd: string, args: string[]): number {
  const r = spawnSync(cmd, args, {
    stdio: ["ignore", "inherit", "inherit"],
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
  });
  return r.status ?? 1;
}

function isRoot(): boolean {
  return typeof process.getuid === "function" && process.getuid() === 0;
}

interface Found {
  name: string;
  ok: boolean;
  detail: string;
}

async function findLibraries(): Promise<Found[]> {
  const out: Found[] = [];
  try {
    const svt = await load.locateSvtAv1();
    out.push({
      name: "SVT-AV1",
      ok: true,
      detail: `${svt.version.text} at ${svt.path} (layout ${svt.layout.range})`,
    });
  } catch (e) {
    out.push({ name: "SVT-AV1", ok: false, detail: (e as Error).message.split("\n")[0] });
  }
  // The rav1e loader lives beside SVT-AV1's; it is looked up by name so this script runs before it exists.
  const locateRav1e = (load as Record<string, unknown>).locateRav1e as
    | (() => Promise<{ path: string; version: string | { text: string } }>)
    | undefined;
  if (locateRav1e) {
    try {
      const r = await locateRav1e();
      const v = typeof r.version === "string" ? r.version : r.version.text;
      out.push({ name: "rav1e", ok: true, detail: `${v} at ${r.path}` });
    } catch (e) {
      out.push({ name: "rav1e", ok: false, detail: (e as Error).message.split("\n")[0] });
    }
  } else {
    const p = ["/usr/lib/x86_64-linux-gnu/librav1e.so.0", "/usr/lib/aarch64-linux-gnu/librav1e.so.0"].find(
      existsSync,
    );
    out.push({ name: "rav1e", ok: Boolean(p), detail: p ?? "librav1e.so.0 not found" });
  }
  return out;
}

function dpkgInstalled(pkg: string): boolean {
  const r = spawnSync("dpkg-query", ["-W", "-f=${Status}", pkg]);
  return r.status === 0 && String(r.stdout).includes("install ok installed");
}

function findTools(): Found[] {
  return TOOLS.map(([bin, pkg]) => {
    if (bin === null) {
      const ok = dpkgInstalled(pkg);
      return { name: pkg, ok, detail: ok ? "installed" : "not installed" };
    }
    const p = which(bin);
    return { name: bin, ok: Boolean(p), detail: p ?? "not found" };
  });
}

function report(title: string, found: Found[]) {
  console.log(title);
  for (const f of found) console.log(`  ${f.ok ? "ok     " : "missing"} ${f.name.padEnd(13)} ${f.detail}`);
}

function glibcVersion(): string | undefined {
  const out = String(spawnSync("getconf", ["GNU_LIBC_VERSION"]).stdout ?? "");
  return /glibc (\d+\.\d+)/.exec(out)?.[1];
}

/**
 * Fetches a pinned newer build from Debian's archive into `build/` (no root, system sources untouched;
 * the checked `.deb`s stay in the per-machine cache, see ffi/fetch_debian.ts). The library goes into
 * `build/`, where the loader looks first; the library's own tool, where Debian has one that runs here,
 * into `build/bin/` (the tests' reference encoders are looked up there first).
 */
function fetchDebianBuild(library: "svt-av1" | "rav1e", select: string): number {
  const b = debianBuild(library, select);
  const glibc = glibcVersion();
  if (!glibc || !glibcAtLeast(glibc, b.glibc)) {
    console.error(
      `${library} ${b.version} from Debian needs glibc ${b.glibc} or later; this system has ${
        glibc ?? "no glibc"
      }. `
        + `Install your distribution's package instead (deno run -A build.ts), or build ${library} from source.`,
    );
    return 1;
  }
  let fetched;
  try {
    fetched = fetchDebianPackages(b.packages, join(load.BUILD_DIR, ".debian", "root"));
  } catch (e) {
    console.error((e as Error).message);
    return 1;
  }
  // Libraries of the same kind already in build/ go: the loader takes the newest soname it finds there.
  const prefix = library === "svt-av1" ? "libSvtAv1Enc.so" : "librav1e.so";
  for (const f of readdirSync(load.BUILD_DIR)) if (f.startsWith(prefix)) rmSync(join(load.BUILD_DIR, f));
  const tool = library === "svt-av1" ? "SvtAv1EncApp" : "rav1e";
  const bin = join(load.BUILD_DIR, "bin");
  rmSync(join(bin, tool), { force: true });
  for (const f of fetched) {
    if (f.pkg.kind === "library") {
      const lib = sharedLibraryIn(f, prefix);
      copyFileSync(lib.path, join(load.BUILD_DIR, lib.soname));
    } else {
      mkdirSync(join(bin, ".real"), { recursive: true });
      copyFileSync(join(f.root, "usr/bin", tool), join(bin, ".real", tool));
      chmodSync(join(bin, ".real", tool), 0o755);
      // The tool links the library by soname: it runs against the copy in build/.
      writeFileSync(
        join(bin, tool),
        `#!/bin/sh\nLD_LIBRARY_PATH="${load.BUILD_DIR}\${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "${
          join(bin, ".real", tool)
        }" "$@"\n`,
      );
      chmodSync(join(bin, tool), 0o755);
    }
  }
  console.log(
    `${library} ${b.version} is in ${load.BUILD_DIR}`
      + (b.packages.some((p) => p.kind === "tool")
        ? ` and its ${tool} in ${bin}`
        : ` (Debian has no ${tool} of it that runs here)`),
  );
  return 0;
}

function flagValue(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<number> {
  for (const library of ["svt-av1", "rav1e"] as const) {
    const select = flagValue(`--${library}`);
    if (select === undefined) continue;
    mkdirSync(load.BUILD_DIR, { recursive: true });
    try {
      if (fetchDebianBuild(library, select) !== 0) return 1;
    } catch (e) {
      console.error((e as Error).message);
      return 1;
    }
  }
  const dev = process.argv.includes("--dev");
  let libs = await findLibraries();
  let tools = dev ? findTools() : [];
  const missing = new Set<string>();
  const needLibraries = libs.some((l) => !l.ok);
  for (const t of tools) if (!t.ok) missing.add(TOOLS.find(([b, p]) => (b ?? p) === t.name)![1]);
  if (missing.size > 0 || needLibraries) {
    const apt = isRoot() && which("apt-get");
    // Package lists first: the library packages' names are read from them.
    if (apt && run("apt-get", ["update", "-qq"]) !== 0) console.error("apt-get update failed");
    if (needLibraries) {
      for (
        const p of which("apt-cache")
          ? aptLibraryPackages()
          : LIBRARY_PACKAGE_PATTERNS.map((l) => l.fallback)
      ) {
        missing.add(p);
      }
    }
    const pkgs = [...missing];
    const command = `apt-get update && apt-get install -y ${pkgs.join(" ")}`;
    if (apt) {
      console.log(`Installing ${pkgs.join(" ")} with apt-get`);
      if (run("apt-get", ["install", "-y", "-qq", ...pkgs]) !== 0) {
        console.error(`apt-get failed: run \`${command}\` yourself`);
        return 1;
      }
      libs = await findLibraries();
      tools = dev ? findTools() : [];
    } else if (!which("apt-get")) {
      // Not Debian or Ubuntu: the system's own package manager, in its words.
      report("Native libraries:", libs);
      const kind = load.hostSystem().kind;
      for (const l of libs.filter((l) => !l.ok)) {
        console.error(
          `\n${l.name} is missing. ${installHint(l.name === "SVT-AV1" ? "svt-av1" : "rav1e", kind)}.`,
        );
      }
      if (dev) console.error("\n--dev installs the reference tools with apt-get only (Debian and Ubuntu).");
      return 1;
    } else {
      report("Native libraries:", libs);
      if (dev) report("Reference tools:", tools);
      console.error(`\nMissing: ${pkgs.join(" ")}. Install them with:\n  sudo ${command}`);
      return 1;
    }
  }
  report("Native libraries:", libs);
  if (dev) report("Reference tools:", tools);
  return libs.every((l) => l.ok) && tools.every((t) => t.ok) ? 0 : 1;
}

process.exitCode = await main();
