/**
 * Finds and opens the native libraries: the environment override first, then `./build/`, then a
 * prebuilt platform package in `node_modules` (`@av1-stream/linux-x64-gnu`), then the system's names
 * for each supported soname. A failure lists every path tried and why, and says how to install the
 * library on the system it runs on.
 * @module
 */
import { EncoderError } from "../lib/errors.ts";
import { parseRav1eVersion, rav1eVersionSupported, SUPPORTED_RAV1E } from "./layouts/rav1e.ts";
import {
  type LibraryVersion,
  parseSvtVersion,
  SUPPORTED_SVT_AV1,
  type SvtAv1Layout,
  svtAv1LayoutFor,
} from "./layouts/svt_av1.ts";
import {
  installHint,
  type NativeLibraryName,
  prebuiltPackageFor,
  SYSTEM_RECIPES,
  type SystemKind,
  systemKind,
} from "./platform.ts";
import { joinPath, parentPath } from "./posix_path.ts";
import { libraryFile } from "./private_copy.ts";
import { ffiRuntime } from "./runtime/mod.ts";
import { system } from "./runtime/system.ts";
import type { FfiRuntime, NativeLibrary } from "./runtime/types.ts";
import { rav1eSymbols, rav1eVersionSymbols } from "./symbols/rav1e.ts";
import { srtSymbols, srtVersionSymbols } from "./symbols/srt.ts";
import { svtAv1Symbols1, svtAv1Symbols3, svtAv1VersionSymbols } from "./symbols/svt_av1.ts";

/** The project's own `build/` folder, where a locally built library may be placed. */
export const BUILD_DIR: string = import.meta.url.startsWith("file:")
  ? system.pathFromUrl(new URL("../build/", import.meta.url))
  : ""; // imported over https (JSR): there is no build/ folder to look in

/** One place the loader looked, and what it found there. */
export interface LoadAttempt {
  path: string;
  error: string;
}

/** Where a library was found, its version and the layouts chosen for it. */
export interface SvtAv1Location {
  /** The file that was opened: an absolute path, or a soname the dynamic linker resolved. */
  path: string;
  /** The version the library reports (`svt_av1_get_version`). */
  version: LibraryVersion;
  /** The struct layout used for that version. */
  layout: SvtAv1Layout;
}

/** Options of {@linkcode locateSvtAv1}. */
export interface LocateOptions {
  /** Use exactly this file (like `SVTAV1_LIB_PATH`); nothing else is tried. */
  libraryPath?: string;
  /** Environment to read overrides from; defaults to the process environment. */
  env?: Record<string, string | undefined>;
}

/** The system this process runs on, as the loader's tables name it. */
export interface HostSystem {
  /** The family (package manager, library names and folders). */
  kind: SystemKind;
  /** `os.platform()` and `os.arch()`. */
  platform: string;
  arch: string;
  /** The C library on Linux. */
  libc?: "glibc" | "musl";
}

let host: HostSystem | undefined;

/** Reads the platform, `/etc/os-release` and the C library once. */
export function hostSystem(): HostSystem {
  if (host) return host;
  let osRelease: string | undefined;
  try {
    osRelease = system.readTextFileSync("/etc/os-release");
  } catch {
    osRelease = undefined;
  }
  const p = system.platform();
  const musl = p === "linux"
    && ["/lib/ld-musl-x86_64.so.1", "/lib/ld-musl-aarch64.so.1"].some((f) => system.existsSync(f));
  host = {
    kind: systemKind(p, osRelease),
    platform: p,
    arch: system.arch(),
    ...(p === "linux" ? { libc: musl ? "musl" as const : "glibc" as const } : {}),
  };
  return host;
}

/** Sonames of SVT-AV1's encoder library on this system, newest major first. */
export const SVT_AV1_SONAMES: string[] = SYSTEM_RECIPES[hostSystem().kind].files["svt-av1"];

/**
 * The folders of the platform package for this machine (`@av1-stream/linux-x64-gnu`…), found the way
 * a runtime resolves a dependency of this module, then by walking up from this module to each
 * `node_modules`. Empty when none is installed.
 */
export function prebuiltLibraryDirs(): string[] {
  const h = hostSystem();
  const pkg = prebuiltPackageFor(h.platform, h.arch, h.libc);
  if (!pkg) return [];
  const out: string[] = [];
  // Undefined when not resolvable from here (an import over https, or not installed).
  const manifest = system.resolvePackageFile(`${pkg.name}/package.json`);
  if (manifest) out.push(joinPath(parentPath(manifest), "lib"));
  if (!import.meta.url.startsWith("file:")) return out.filter((d) => system.existsSync(d));
  for (let dir = parentPath(system.pathFromUrl(import.meta.url));; dir = parentPath(dir)) {
    out.push(joinPath(dir, "node_modules", ...pkg.name.split("/"), "lib"));
    if (parentPath(dir) === dir) break;
  }
  return [...new Set(out)].filter((d) => system.existsSync(d));
}

function filesIn(dir: string, sonames: string[]): string[] {
  const files = system.readDirSync(dir);
  const out: string[] = [];
  for (const soname of sonames) {
    for (const f of files) if (f === soname || f.startsWith(soname + ".")) out.push(joinPath(dir, f));
  }
  return out;
}

/**
 * The candidate paths for a library, in order: an explicit override (alone), then files in `./build/`
 * matching the sonames, then those in the platform package, then the sonames in the system's library
 * folders or, where no folder has them, as bare names for the dynamic linker.
 */
export function candidatePaths(sonames: string[], override: string | undefined): string[] {
  if (override) return [override];
  const out: string[] = [];
  if (BUILD_DIR && system.existsSync(BUILD_DIR)) out.push(...filesIn(BUILD_DIR, sonames));
  for (const dir of prebuiltLibraryDirs()) out.push(...filesIn(dir, sonames));
  const dirs = SYSTEM_RECIPES[hostSystem().kind].libraryDirs;
  for (const soname of sonames) {
    const inSystem = dirs.map((d) => joinPath(d, soname)).find((p) => system.existsSync(p));
    out.push(inSystem ?? soname);
  }
  return [...new Set(out)];
}

function describe(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split("\n")[0].slice(0, 300);
}

/** How to get SVT-AV1 onto this machine, in its package manager's words. */
export const SVT_AV1_INSTALL_HINT: string = installHint("svt-av1", hostSystem().kind);

/** Why a library that was found is refused, with what to do when it is too old or too new. */
function versionRefusal(library: NativeLibraryName, text: string, supported: string, older: boolean): string {
  if (!older) return `version ${JSON.stringify(text)} is not supported (supported: ${supported})`;
  const get = library === "svt-av1" ? "--svt-av1 3" : "--rav1e 0.8";
  return `version ${
    JSON.stringify(text)
  } is older than supported (supported: ${supported}); get a newer one with `
    + `\`deno run -A build.ts ${get}\` (Debian's build, no root) or the @av1-stream/linux-x64-gnu package`;
}

function failure(code: "LIBRARY_NOT_FOUND" | "LIBRARY_UNSUPPORTED", tried: LoadAttempt[]): EncoderError {
  const list = tried.map((t) => `  ${t.path}: ${t.error}`).join("\n");
  const head = code === "LIBRARY_NOT_FOUND"
    ? "SVT-AV1 library (libSvtAv1Enc) not found"
    : `No supported SVT-AV1 library found (supported: ${SUPPORTED_SVT_AV1})`;
  return new EncoderError(code, `${head}. Tried:\n${list}\n${SVT_AV1_INSTALL_HINT}.`, { library: "svt-av1" });
}

const located = new Map<string, SvtAv1Location>();

/** Finds a supported SVT-AV1 library and reads its version, without keeping it open. */
export async function locateSvtAv1(options: LocateOptions = {}): Promise<SvtAv1Location> {
  const env = options.env ?? system.env();
  const override = options.libraryPath ?? env.SVTAV1_LIB_PATH;
  const key = override ?? "";
  const hit = located.get(key);
  if (hit) return hit;
  const rt = await ffiRuntime();
  const tried: LoadAttempt[] = [];
  let sawUnsupported = false;
  for (const path of candidatePaths(SVT_AV1_SONAMES, override)) {
    let lib: NativeLibrary<typeof svtAv1VersionSymbols>;
    try {
      lib = rt.open(path, svtAv1VersionSymbols);
    } catch (e) {
      tried.push({ path, error: describe(e) });
      continue;
    }
    try {
      const text = rt.readCString(lib.symbols.svt_av1_get_version());
      const version = parseSvtVersion(text);
      const layout = version && svtAv1LayoutFor(version);
      if (!version || !layout) {
        sawUnsupported = true;
        const older = version !== undefined
          && (version.major < 1 || (version.major === 1 && version.minor < 4));
        tried.push({ path, error: versionRefusal("svt-av1", text, SUPPORTED_SVT_AV1, older) });
        continue;
      }
      const found = { path, version, layout };
      located.set(key, found);
      return found;
    } finally {
      lib.close();
    }
  }
  throw failure(sawUnsupported ? "LIBRARY_UNSUPPORTED" : "LIBRARY_NOT_FOUND", tried);
}

/**
 * Opens SVT-AV1 at a located path (or at `path`, a copy of that file) with the symbol table of its
 * version.
 */
export function openSvtAv1(rt: FfiRuntime, where: SvtAv1Location, path: string = where.path) {
  return where.layout.initHandleHasAppData
    ? { kind: 1 as const, lib: rt.open(path, svtAv1Symbols1) }
    : { kind: 3 as const, lib: rt.open(path, svtAv1Symbols3) };
}

/** SVT-AV1 opened by {@linkcode openSvtAv1}. */
export type OpenedSvtAv1 = ReturnType<typeof openSvtAv1>;

/**
 * The file behind a located SVT-AV1 (links resolved; a bare soname looked up where the dynamic linker
 * looks), to make private copies of; undefined when it cannot be found.
 */
export function svtAv1File(where: SvtAv1Location): string | undefined {
  return libraryFile(where.path, SYSTEM_RECIPES[hostSystem().kind].libraryDirs);
}

/**
 * Sonames of librav1e. Its C API is the same from 0.5 to 0.8; upstream's soname is `.so.0`, Debian 13
 * and later name theirs after the minor version (`librav1e.so.0.7` in `librav1e0.7`, `.so.0.8`).
 */
export const RAV1E_SONAMES: string[] = SYSTEM_RECIPES[hostSystem().kind].files.rav1e;

/** How to get rav1e onto this machine, in its package manager's words. */
export const RAV1E_INSTALL_HINT: string = installHint("rav1e", hostSystem().kind);

/** Where librav1e was found and its version. */
export interface Rav1eLocation {
  /** The file that was opened: an absolute path, or a soname the dynamic linker resolved. */
  path: string;
  /** The version the library reports (`rav1e_version_full`). */
  version: LibraryVersion;
}

const locatedRav1e = new Map<string, Rav1eLocation>();

/** Finds a supported librav1e (`RAV1E_LIB_PATH`, then `./build/`, then the system) and reads its version. */
export async function locateRav1e(options: LocateOptions = {}): Promise<Rav1eLocation> {
  const env = options.env ?? system.env();
  const override = options.libraryPath ?? env.RAV1E_LIB_PATH;
  const key = override ?? "";
  const hit = locatedRav1e.get(key);
  if (hit) return hit;
  const rt = await ffiRuntime();
  const tried: LoadAttempt[] = [];
  let sawUnsupported = false;
  for (const path of candidatePaths(RAV1E_SONAMES, override)) {
    let lib: NativeLibrary<typeof rav1eVersionSymbols>;
    try {
      lib = rt.open(path, rav1eVersionSymbols);
    } catch (e) {
      tried.push({ path, error: describe(e) });
      continue;
    }
    try {
      const text = rt.readCString(lib.symbols.rav1e_version_full());
      const version = parseRav1eVersion(text);
      if (!version || !rav1eVersionSupported(version)) {
        sawUnsupported = true;
        const older = version !== undefined && version.major === 0 && version.minor < 5;
        tried.push({ path, error: versionRefusal("rav1e", text, SUPPORTED_RAV1E, older) });
        continue;
      }
      const found = { path, version };
      locatedRav1e.set(key, found);
      return found;
    } finally {
      lib.close();
    }
  }
  const list = tried.map((t) => `  ${t.path}: ${t.error}`).join("\n");
  const head = sawUnsupported
    ? `No supported rav1e library found (supported: ${SUPPORTED_RAV1E})`
    : "rav1e library (librav1e) not found";
  throw new EncoderError(
    sawUnsupported ? "LIBRARY_UNSUPPORTED" : "LIBRARY_NOT_FOUND",
    `${head}. Tried:\n${list}\n${RAV1E_INSTALL_HINT}.`,
    { library: "rav1e" },
  );
}

/** Opens librav1e at a located path with its full symbol table. */
export function openRav1e(rt: FfiRuntime, where: Rav1eLocation): NativeLibrary<typeof rav1eSymbols> {
  return rt.open(where.path, rav1eSymbols);
}

/**
 * Sonames of libsrt, GnuTLS flavour first (Debian's `libsrt1.5-gnutls`), then OpenSSL and upstream builds;
 * 1.4 has every call the sink uses.
 */
export const SRT_SONAMES = [
  "libsrt-gnutls.so.1.5",
  "libsrt-openssl.so.1.5",
  "libsrt.so.1.5",
  "libsrt-gnutls.so.1.4",
  "libsrt-openssl.so.1.4",
  "libsrt.so.1.4",
  "libsrt.so",
];

/** How to get libsrt onto this machine. */
export const SRT_INSTALL_HINT =
  "Install it with `sudo apt-get install libsrt1.5-gnutls` (Debian/Ubuntu), or set SRT_LIB_PATH to the path of libsrt.so";

/** Where libsrt was found and its version. */
export interface SrtLocation {
  path: string;
  version: LibraryVersion;
}

const locatedSrt = new Map<string, SrtLocation>();

/** Finds libsrt 1.4 or later (`SRT_LIB_PATH`, then `./build/`, then the system) and reads its version. */
export async function locateSrt(options: LocateOptions = {}): Promise<SrtLocation> {
  const env = options.env ?? system.env();
  const override = options.libraryPath ?? env.SRT_LIB_PATH;
  const key = override ?? "";
  const hit = locatedSrt.get(key);
  if (hit) return hit;
  const rt = await ffiRuntime();
  const tried: LoadAttempt[] = [];
  let sawUnsupported = false;
  for (const path of candidatePaths(SRT_SONAMES, override)) {
    let lib: NativeLibrary<typeof srtVersionSymbols>;
    try {
      lib = rt.open(path, srtVersionSymbols);
    } catch (e) {
      tried.push({ path, error: describe(e) });
      continue;
    }
    try {
      // SRT_VERSION_VALUE: major << 16 | minor << 8 | patch.
      const v = lib.symbols.srt_getversion() >>> 0;
      const version = { major: v >>> 16, minor: (v >>> 8) & 0xff, patch: v & 0xff, text: "" };
      version.text = `${version.major}.${version.minor}.${version.patch}`;
      if (version.major !== 1 || version.minor < 4) {
        sawUnsupported = true;
        tried.push({ path, error: `version ${version.text} is not supported` });
        continue;
      }
      const found = { path, version };
      locatedSrt.set(key, found);
      return found;
    } finally {
      lib.close();
    }
  }
  const list = tried.map((t) => `  ${t.path}: ${t.error}`).join("\n");
  const head = sawUnsupported
    ? "No supported SRT library found (supported: 1.4 and 1.5)"
    : "SRT library (libsrt) not found";
  throw new EncoderError(
    sawUnsupported ? "LIBRARY_UNSUPPORTED" : "LIBRARY_NOT_FOUND",
    `${head}. Tried:\n${list}\n${SRT_INSTALL_HINT}.`,
    { library: "srt" },
  );
}

/** Opens libsrt at a located path with the sink's symbol table. */
export function openSrt(rt: FfiRuntime, where: SrtLocation): NativeLibrary<typeof srtSymbols> {
  return rt.open(where.path, srtSymbols);
}
