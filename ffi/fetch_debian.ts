/**
 * Fetches pinned binary packages from Debian's archive without root and without touching the system's
 * apt sources: apt-get runs with a private configuration (its own sources list, lists and cache), each
 * `.deb` is checked against its pinned SHA-256 and unpacked with `dpkg-deb -x`. The checked `.deb`s are
 * kept in a per-machine cache outside any checkout (`$AV1_STREAM_CACHE`, else `$XDG_CACHE_HOME/av1-stream`,
 * else `~/.cache/av1-stream`), so a second fetch needs no network. Used by `build.ts --svt-av1/--rav1e`
 * and by the script that makes the prebuilt platform package.
 * @module
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import type { DebianBuildPackage } from "./platform.ts";

/** The per-machine cache folder for fetched packages. */
export function debianCacheDir(env: Record<string, string | undefined> = process.env): string {
  if (env.AV1_STREAM_CACHE) return join(env.AV1_STREAM_CACHE, "debian");
  return join(env.XDG_CACHE_HOME || join(homedir(), ".cache"), "av1-stream", "debian");
}

function sha256(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

function debFile(p: DebianBuildPackage): string {
  // Debian's file names drop the epoch and write the version as is.
  return `${p.name}_${p.version.replace(/^\d+:/, "")}_amd64.deb`;
}

/** One fetched package: its checked `.deb` and the folder it was unpacked into. */
export interface FetchedPackage {
  /** The package as pinned. */
  pkg: DebianBuildPackage;
  /** The checked `.deb` in the cache. */
  deb: string;
  /** The unpacked file tree (`usr/lib/…`, `usr/share/doc/…`). */
  root: string;
}

/**
 * Fetches (or takes from the cache) and unpacks the packages into `workDir/<name>/`. Throws an Error
 * that says what failed and what to do: no apt-get or dpkg-deb, the archive unreachable, a SHA-256
 * that is not the pinned one (nothing is unpacked from such a file).
 */
export function fetchDebianPackages(
  packages: DebianBuildPackage[],
  workDir: string,
  log: (line: string) => void = console.log,
): FetchedPackage[] {
  const cache = debianCacheDir();
  const debs = join(cache, "debs");
  mkdirSync(debs, { recursive: true });
  const cached = (p: DebianBuildPackage) => {
    const path = join(debs, debFile(p));
    return existsSync(path) && sha256(path) === p.sha256;
  };
  const missing = packages.filter((p) => !cached(p));
  if (missing.length > 0) {
    for (const tool of ["apt-get", "dpkg-deb"]) {
      if (spawnSync(tool, ["--version"]).status !== 0) {
        throw new Error(`Fetching Debian's packages needs ${tool} (Debian or Ubuntu); it is not on PATH`);
      }
    }
    const state = join(cache, "apt");
    for (const d of ["lists/partial", "cache/archives/partial", "download"]) {
      mkdirSync(join(state, d), { recursive: true });
    }
    const keyring = "/usr/share/keyrings/debian-archive-keyring.gpg";
    const signed = existsSync(keyring) ? `[signed-by=${keyring}] ` : "";
    const suites = [...new Set(missing.map((p) => p.suite))];
    writeFileSync(
      join(state, "sources.list"),
      suites.map((s) => `deb ${signed}http://deb.debian.org/debian ${s} main\n`).join(""),
    );
    const apt = [
      "-o",
      `Dir::Etc::sourcelist=${join(state, "sources.list")}`,
      "-o",
      "Dir::Etc::sourceparts=-",
      "-o",
      `Dir::State::Lists=${join(state, "lists")}`,
      "-o",
      `Dir::Cache=${join(state, "cache")}`,
    ];
    log(
      `Fetching ${missing.map((p) => `${p.name} ${p.version}`).join(", ")} from Debian ${
        suites.join(" and ")
      }`,
    );
    const update = spawnSync("apt-get", [...apt, "update", "-qq"], {
      stdio: ["ignore", "inherit", "inherit"],
    });
    if (update.status !== 0) {
      throw new Error("apt-get update with Debian's archive failed: is deb.debian.org reachable?");
    }
    const download = join(state, "download");
    for (const f of readdirSync(download)) rmSync(join(download, f), { force: true });
    const r = spawnSync("apt-get", [...apt, "download", ...missing.map((p) => `${p.name}=${p.version}`)], {
      cwd: download,
      stdio: ["ignore", "inherit", "inherit"],
    });
    if (r.status !== 0) {
      throw new Error(`apt-get download failed for ${missing.map((p) => p.name).join(", ")}`);
    }
    for (const p of missing) {
      const got = readdirSync(download).find((f) => f.startsWith(`${p.name}_`) && f.endsWith("_amd64.deb"));
      if (!got) throw new Error(`${p.name} ${p.version}: apt-get download left no .deb`);
      const sum = sha256(join(download, got));
      if (sum !== p.sha256) {
        rmSync(join(download, got), { force: true });
        throw new Error(
          `${got}: SHA-256 ${sum} is not the pinned ${p.sha256}; nothing was installed from it`,
        );
      }
      renameSync(join(download, got), join(debs, debFile(p)));
    }
  } else {
    log(`Using Debian's ${packages.map((p) => `${p.name} ${p.version}`).join(", ")} from ${debs}`);
  }
  return packages.map((pkg) => {
    const deb = join(debs, debFile(pkg));
    const root = join(workDir, pkg.name);
    rmSync(root, { recursive: true, force: true });
    mkdirSync(root, { recursive: true });
    const x = spawnSync("dpkg-deb", ["-x", deb, root], { stdio: ["ignore", "inherit", "inherit"] });
    if (x.status !== 0) throw new Error(`dpkg-deb -x ${deb} failed`);
    return { pkg, deb, root };
  });
}

/** The shared library a fetched library package holds: the file named by its soname (the shortest name). */
export function sharedLibraryIn(fetched: FetchedPackage, prefix: string): { soname: string; path: string } {
  const dir = join(fetched.root, "usr/lib/x86_64-linux-gnu");
  const soname = readdirSync(dir).filter((f) => f.startsWith(prefix)).sort((a, z) => a.length - z.length)[0];
  if (!soname) throw new Error(`${fetched.pkg.name} holds no ${prefix}* in usr/lib/x86_64-linux-gnu`);
  return { soname, path: join(dir, soname) };
}
