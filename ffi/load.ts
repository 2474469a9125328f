/**
 * Finds and opens the native libraries: the environment override first, then `./build/`, then the
 * system's names for each supported soname. A failure lists every path tried and why, and says how to
 * install the library.
 * @module
 */
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { EncoderError } from "../lib/errors.ts";
import { parseRav1eVersion, rav1eVersionSupported, SUPPORTED_RAV1E } from "./layouts/rav1e.ts";
import {
  type LibraryVersion,
  parseSvtVersion,
  SUPPORTED_SVT_AV1,
  type SvtAv1Layout,
  svtAv1LayoutFor,
} from "./layouts/svt_av1.ts";
import { ffiRuntime } from "./runtime/mod.ts";
import type { FfiRuntime, NativeLibrary } from "./runtime/types.ts";
import { rav1eSymbols, rav1eVersionSymbols } from "./symbols/rav1e.ts";
import { srtSymbols, srtVersionSymbols } from "./symbols/srt.ts";
import { svtAv1Symbols1, svtAv1Symbols3, svtAv1VersionSymbols } from "./symbols/svt_av1.ts";

/** The project's own `build/` folder, where a locally built library may be placed. */
export const BUILD_DIR: string = fileURLToPath(new URL("../build/", import.meta.url));

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

/** Sonames of SVT-AV1's encoder library, newest major first. */
export const SVT_AV1_SONAMES = [
  "libSvtAv1Enc.so.4",
  "libSvtAv1Enc.so.3",
  "libSvtAv1Enc.so.2",
  "libSvtAv1Enc.so.1",
  "libSvtAv1Enc.so",
];

const SYSTEM_DIRS = ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/local/lib", "/usr/lib"];

function processEnv(): Record<string, string | undefined> {
  return (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env ?? {};
}

/**
 * The candidate paths for a library, in order: an explicit override (alone), then files in `./build/`
 * matching the sonames, then the sonames themselves (found by the dynamic linker).
 */
export function candidatePaths(sonames: string[], override: string | undefined): string[] {
  if (override) return [override];
  const out: string[] = [];
  if (existsSync(BUILD_DIR)) {
    const files = readdirSync(BUILD_DIR);
    for (const soname of sonames) {
      for (const f of files) if (f === soname || f.startsWith(soname + ".")) out.push(join(BUILD_DIR, f));
    }
  }
  for (const soname of sonames) {
    const inSystem = SYSTEM_DIRS.map((d) => join(d, soname)).find((p) => existsSync(p));
    out.push(inSystem ?? soname);
  }
  return [...new Set(out)];
}

function describe(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split("\n")[0].slice(0, 300);
}

/** How to get SVT-AV1 onto this machine. */
export const SVT_AV1_INSTALL_HINT =
  "Install it with `sudo apt-get install libsvtav1enc1` (Debian 12; `libsvtav1enc2` on Debian 13), or run `deno run -A build.ts` (it asks apt for the right package), or set SVTAV1_LIB_PATH to the path of libSvtAv1Enc.so";

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
  const env = options.env ?? processEnv();
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
        tried.push({ path, error: `version ${JSON.stringify(text)} is not supported` });
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

/** Opens SVT-AV1 at a located path with the symbol table of its version. */
export function openSvtAv1(rt: FfiRuntime, where: SvtAv1Location) {
  return where.layout.initHandleHasAppData
    ? { kind: 1 as const, lib: rt.open(where.path, svtAv1Symbols1) }
    : { kind: 3 as const, lib: rt.open(where.path, svtAv1Symbols3) };
}

/**
 * Sonames of librav1e. Its C API is the same from 0.5 to 0.8; upstream's soname is `.so.0`, Debian 13
 * and later name theirs after the minor version (`librav1e.so.0.7` in `librav1e0.7`, `.so.0.8`).
 */
export const RAV1E_SONAMES = ["librav1e.so.0.8", "librav1e.so.0.7", "librav1e.so.0", "librav1e.so"];

/** How to get rav1e onto this machine. */
export const RAV1E_INSTALL_HINT =
  "Install it with `sudo apt-get install librav1e0` (Debian 12; `librav1e0.7` on Debian 13), or run `deno run -A build.ts`, or `cargo cinstall` from rav1e's sources, or set RAV1E_LIB_PATH to the path of librav1e.so";

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
  const env = options.env ?? processEnv();
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
        tried.push({ path, error: `version ${JSON.stringify(text)} is not supported` });
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
  const env = options.env ?? processEnv();
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
