/**
 * Private copies of a shared library, each one taken by one user at a time: the same code loaded as an
 * image of its own, with globals of its own. The dynamic linker hands back the image already loaded for
 * a path it has seen or a file it has mapped (same device and inode), so a copy is a new file: an
 * anonymous memory file (`memfd_create`, Linux) named after the library and opened by its
 * `/proc/self/fd/N` name. Nothing is written to disk, and the copy goes with the process.
 *
 * Copies belong to the process, not to a thread or a pool: any thread finds them among the process's
 * open files by their name (`/memfd:av1-stream:<library file>`), and takes one with an open-file-
 * description lock (`F_OFD_SETLK`, a write lock on a description of its own), which the kernel gives to
 * one description at a time and which goes when that description is closed. So copies are reused by
 * whoever needs one next, in whatever thread or pool, and the process holds as many as it ever had users
 * at once; a thread that ends holding one keeps it taken. A copy's descriptor stays open for the
 * process's life: its name keeps naming that one image.
 *
 * Why: SVT-AV1 keeps process-wide state (its function tables, filled again by every encoder's set-up)
 * that an encoder set up beside another encoder of the same image overwrites while the other runs
 * through it (docs/bun-crash.md).
 * @module
 */
import { type Libc, libc } from "./libc.ts";
import { joinPath } from "./posix_path.ts";
import { system } from "./runtime/system.ts";
import type { FfiRuntime } from "./runtime/types.ts";

/** Linux's values (the same on x86-64 and arm64). */
const MFD_CLOEXEC = 1;
const O_RDONLY = 0;
const O_RDWR = 2;
const O_APPEND = 0o2000;
const O_CLOEXEC = 0o2000000;
/**
 * How a taker's own description of a copy is opened. O_APPEND (which nothing here writes through) tells
 * it from the copy's own descriptor: both have the copy's name.
 */
const TAKER_FLAGS = O_RDWR | O_APPEND | O_CLOEXEC;
const F_OFD_GETLK = 36;
const F_OFD_SETLK = 37;
const F_WRLCK = 1;
const F_UNLCK = 2;
/** `struct flock`: l_type (short) at 0, l_whence at 2, l_start at 8, l_len at 16, l_pid at 24; 32 bytes. */
const FLOCK_BYTES = 32;

const cstr = (s: string) => new TextEncoder().encode(s + "\0");

/** Where the dynamic linker looks for a bare soname, as far as a script can tell (no ld.so.cache). */
function searchFolders(libraryDirs: readonly string[]): string[] {
  const fromEnv = (system.env().LD_LIBRARY_PATH ?? "").split(":").filter((d) => d !== "");
  return [...fromEnv, ...libraryDirs, "/usr/local/lib", "/usr/lib", "/lib"];
}

/**
 * The file behind `path` (a path, or a bare soname looked up where the dynamic linker would look), with
 * symbolic links resolved; undefined when it cannot be found.
 */
export function libraryFile(path: string, libraryDirs: readonly string[] = []): string | undefined {
  try {
    if (path.includes("/")) return system.realPathSync(path);
    for (const dir of searchFolders(libraryDirs)) {
      const p = joinPath(dir, path);
      if (system.existsSync(p)) return system.realPathSync(p);
    }
  } catch {
    // Not readable: no copy.
  }
  return undefined;
}

/** The memory file's name for a copy of `file` (at most 249 bytes; a longer path keeps its end). */
function memoryName(file: string): string {
  const name = `av1-stream:${file}`;
  return name.length > 249 ? name.slice(name.length - 249) : name;
}

/** The name to open the copy on descriptor `fd` by. */
export function copyPath(fd: number): string {
  return `/proc/self/fd/${fd}`;
}

/** Whether descriptor `fd` is a taker's own description (see TAKER_FLAGS), from /proc/self/fdinfo. */
function isTakers(fd: number): boolean {
  const flags = /^flags:\s*([0-7]+)/m.exec(system.readTextFileSync(`/proc/self/fdinfo/${fd}`))?.[1];
  return flags === undefined || (parseInt(flags, 8) & O_APPEND) !== 0;
}

/** The descriptors of the process's copies of `file` (not the takers' descriptions of them). */
function copiesOf(file: string): number[] {
  const link = `/memfd:${memoryName(file)} (deleted)`;
  const out: number[] = [];
  for (const name of system.readDirSync("/proc/self/fd")) {
    try {
      if (system.readLinkSync(`/proc/self/fd/${name}`) === link && !isTakers(Number(name))) {
        out.push(Number(name));
      }
    } catch {
      // Closed meanwhile (another thread's file).
    }
  }
  return out.sort((a, b) => a - b);
}

/** Locks (or, with `probe`, asks about) a write lock on a description; true if it is (or could be) had. */
function lockDescription(c: Libc, fd: number, probe = false): boolean {
  const flock = new Uint8Array(FLOCK_BYTES);
  new DataView(flock.buffer).setInt16(0, F_WRLCK, true); // whole file: whence 0, start 0, len 0; pid 0
  if (c.symbols.fcntl(fd, probe ? F_OFD_GETLK : F_OFD_SETLK, flock) !== 0) return false;
  return !probe || new DataView(flock.buffer).getInt16(0, true) === F_UNLCK;
}

/** Opens a description of copy `fd` of the caller's own (see TAKER_FLAGS); its descriptor, or -1. */
function openDescription(c: Libc, fd: number): number {
  return c.symbols.open(cstr(copyPath(fd)), TAKER_FLAGS);
}

/** A copy taken by {@linkcode takeCopy}. */
export interface TakenCopy {
  /** The copy's descriptor: open the library by `copyPath(fd)`. */
  fd: number;
  /** Whether this call made the copy (else it was made before and was free). */
  made: boolean;
  /** Gives the copy back for the next user. */
  release(): void;
}

/**
 * Takes a copy of the library file `file` that no one else holds: a free one of the process's, or a
 * new one. Undefined where copies cannot be made (not Linux, no `memfd_create`); throws when making
 * one fails.
 */
export function takeCopy(rt: FfiRuntime, file: string): TakenCopy | undefined {
  const c = libc(rt);
  if (!c?.symbols.memfd_create) return undefined;
  const s = c.symbols;
  /** Takes copy `fd` through a description of its own; that description's descriptor, or -1. */
  const take = (fd: number): number => {
    const own = openDescription(c, fd);
    if (own < 0) return -1;
    if (lockDescription(c, own)) return own;
    s.close(own);
    return -1;
  };
  const taken = (fd: number, own: number, made: boolean): TakenCopy => {
    let open = true;
    return {
      fd,
      made,
      release: () => {
        if (open) s.close(own); // the lock goes with the description
        open = false;
      },
    };
  };
  for (const fd of copiesOf(file)) {
    const own = take(fd);
    if (own >= 0) return taken(fd, own, false);
  }
  const fd = s.memfd_create(cstr(memoryName(file)), MFD_CLOEXEC);
  if (fd < 0) return undefined;
  try {
    // Take it before it is filled: a thread that finds it meanwhile finds it taken.
    const own = take(fd);
    if (own < 0) throw new Error("could not lock a new copy");
    const source = s.open(cstr(file), O_RDONLY | O_CLOEXEC);
    if (source < 0) {
      s.close(own);
      throw new Error(`could not open ${file} to copy it`);
    }
    try {
      // The kernel copies file to file; a short count only means "go on".
      for (;;) {
        const n = s.sendfile(fd, source, 0n, 1n << 30n);
        if (n === 0n) break;
        if (n < 0n) {
          s.close(own);
          throw new Error(`copying ${file} to memory failed`);
        }
      }
    } finally {
      s.close(source);
    }
    return taken(fd, own, true);
  } catch (e) {
    // A copy that failed half-way must not be found by its name: its descriptor goes.
    s.close(fd);
    throw e;
  }
}

/** The process's copies of `file`: how many there are and how many are taken now. */
export function copyStats(rt: FfiRuntime, file: string): { copies: number; taken: number } {
  const c = libc(rt);
  if (!c) return { copies: 0, taken: 0 };
  const fds = copiesOf(file);
  let taken = 0;
  for (const fd of fds) {
    const own = openDescription(c, fd);
    if (own < 0) continue;
    if (!lockDescription(c, own, true)) taken++;
    c.symbols.close(own);
  }
  return { copies: fds.length, taken };
}
