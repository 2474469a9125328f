/**
 * A private copy of a shared library: the same code, loaded a second (third…) time as an image of its
 * own, with globals of its own. The dynamic linker hands back the image already loaded for a path it
 * has seen, or for a file it has mapped (same device and inode), so the copy is a new file: an anonymous
 * memory file (`memfd_create`) on Linux, opened by its `/proc/self/fd/N` name, else a file in the
 * temporary folder, deleted once opened. Either way nothing is left behind once the image is open: the
 * mapping keeps the contents alive, and they go with the process.
 *
 * Why: SVT-AV1 keeps process-wide state (its function tables, filled again by every encoder's set-up)
 * that an encoder set up beside another encoder of the same image overwrites while the other runs
 * through it (docs/bun-crash.md).
 * @module
 */
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import type { FfiRuntime, NativeLibrary, SymbolTable } from "./runtime/types.ts";

const memfdSymbols = {
  // int memfd_create(const char *name, unsigned int flags); glibc 2.27 and later, musl 1.1.20
  memfd_create: { parameters: ["buffer", "u32"], result: "i32", optional: true },
  // ssize_t write(int fd, const void *buf, size_t count);
  write: { parameters: ["i32", "buffer", "usize"], result: "i64" },
  // int close(int fd);
  close: { parameters: ["i32"], result: "i32" },
} as const satisfies SymbolTable;

const MFD_CLOEXEC = 1;

let libcHandle: NativeLibrary<typeof memfdSymbols> | null | undefined;

/** libc's few calls, opened once per thread and kept (opening and closing per use is needless work). */
function libc(rt: FfiRuntime): NativeLibrary<typeof memfdSymbols> | null {
  if (libcHandle === undefined) {
    try {
      libcHandle = rt.open("libc.so.6", memfdSymbols);
    } catch {
      libcHandle = null; // not glibc (musl's libc has another name): the temporary folder is used
    }
  }
  return libcHandle;
}

/** Where the dynamic linker looks for a bare soname, as far as a script can tell (no ld.so.cache). */
function searchFolders(libraryDirs: readonly string[]): string[] {
  const env = (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env ?? {};
  const fromEnv = (env.LD_LIBRARY_PATH ?? "").split(":").filter((d) => d !== "");
  return [...fromEnv, ...libraryDirs, "/usr/local/lib", "/usr/lib", "/lib"];
}

/**
 * The file behind `path` (a path, or a bare soname looked up where the dynamic linker would look), with
 * symbolic links resolved; undefined when it cannot be found.
 */
export function libraryFile(path: string, libraryDirs: readonly string[] = []): string | undefined {
  try {
    if (path.includes("/")) return realpathSync(path);
    for (const dir of searchFolders(libraryDirs)) {
      const p = join(dir, path);
      if (existsSync(p)) return realpathSync(p);
    }
  } catch {
    // Not readable: no copy.
  }
  return undefined;
}

/** Writes all of `bytes` to `fd` with libc's write; false on an error. */
function writeAll(
  c: { write(fd: number, buf: Uint8Array, n: bigint): bigint },
  fd: number,
  bytes: Uint8Array,
) {
  for (let at = 0; at < bytes.byteLength;) {
    const n = Number(c.write(fd, bytes.subarray(at), BigInt(bytes.byteLength - at)));
    if (n <= 0) return false;
    at += n;
  }
  return true;
}

/**
 * Makes a private copy of the library file `file` and calls `open` with the path to pass to the
 * runtime's `dlopen` (call it as often as needed: every table opened from that path is the same new
 * image). The path is valid only during the call. Throws if no copy can be made. `via` "file" skips the
 * memory file (for tests of the other way).
 */
export function withPrivateCopy<T>(
  rt: FfiRuntime,
  file: string,
  open: (path: string) => T,
  via: "memory" | "file" = "memory",
): T {
  const bytes = readFileSync(file);
  const c = libc(rt);
  const fd = via === "memory" && c?.symbols.memfd_create
    ? c.symbols.memfd_create(new TextEncoder().encode(`av1-stream:${basename(file)}\0`), MFD_CLOEXEC)
    : -1;
  if (c && fd >= 0) {
    try {
      if (!writeAll(c.symbols, fd, bytes)) throw new Error(`writing a copy of ${file} to memory failed`);
      return open(`/proc/self/fd/${fd}`);
    } finally {
      c.symbols.close(fd);
    }
  }
  const dir = mkdtempSync(join(tmpdir(), "av1-stream-lib-"));
  try {
    const path = join(dir, basename(file));
    writeFileSync(path, bytes, { mode: 0o500 });
    return open(path);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
