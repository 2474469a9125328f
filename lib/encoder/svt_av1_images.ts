/**
 * Which loaded image of SVT-AV1 an encoder runs on. SVT-AV1 keeps process-wide state: every encoder's
 * set-up fills the library's function tables again (the C version of each function first, then the
 * SIMD one), and an encoder set up while another encodes through the same image crashed the process
 * now and then (SIGSEGV, in Node, Bun and Deno, SVT-AV1 1.4.1 and 3.1.2: docs/bun-crash.md).
 *
 * So every SVT-AV1 encoder runs on a private copy of the library that no other live encoder holds
 * (ffi/private_copy.ts): copies are the process's, found and taken by any thread of any pool (a Worker
 * of the user's that creates encoders has a pool of its own), and given back when the encoder is
 * closed, so the process makes as many as it ever had SVT-AV1 encoders live at once. Each costs the
 * library's file size in memory (6.8 MB for 1.4.1, 8 MB for 3.1.2), once. Where no copy can be made
 * (not Linux, Deno without read access to /proc/self/fd or with `--allow-ffi` limited to some paths)
 * the encoder runs on the process's shared image, as every encoder did before, and says so.
 * @module
 */
import { type OpenedSvtAv1, openSvtAv1, svtAv1File, type SvtAv1Location } from "../../ffi/load.ts";
import { copyPath, takeCopy } from "../../ffi/private_copy.ts";
import type { FfiRuntime, NativeLibrary } from "../../ffi/runtime/types.ts";
import { svtAv1BlockingSymbols } from "../../ffi/symbols/svt_av1.ts";
import type { LibraryImage } from "../types.ts";
import { keptLibrary } from "./kept_libraries.ts";

/** An image taken for one encoder, from its set-up to its last native call. */
export interface TakenImage {
  opened: OpenedSvtAv1;
  /** The nonblocking table of the same image (encoders on the caller's thread). */
  blocking?: NativeLibrary<typeof svtAv1BlockingSymbols>;
  image: LibraryImage;
  /** Gives the image back (idempotent). */
  release(): void;
}

/** This thread's tables of each image it has opened, by the path they were opened from. */
interface Tables {
  opened: OpenedSvtAv1;
  blocking?: NativeLibrary<typeof svtAv1BlockingSymbols>;
}
const tables = new Map<string, Tables>();

/** The tables of the image at `path`, opened in this thread the first time (and kept: never closed). */
function tablesOf(rt: FfiRuntime, where: SvtAv1Location, path: string, blocking: boolean): Tables {
  let t = tables.get(path);
  if (!t) tables.set(path, t = { opened: openSvtAv1(rt, where, path) });
  if (blocking && !t.blocking) t.blocking = rt.open(path, svtAv1BlockingSymbols);
  return t;
}

/** The file behind each located library's path, looked up once per thread (a path search and realpath). */
const files = new Map<string, string | undefined>();

/** Why no copy of a located library could be made in this thread (not tried again). */
const copyFailures = new Map<string, string>();

/**
 * Takes an image of the located library for one encoder: a private copy no one else holds, else (no
 * copy possible) the shared image. `blocking` opens Deno's nonblocking table of the same image too.
 */
export function takeSvtAv1Image(rt: FfiRuntime, where: SvtAv1Location, blocking: boolean): TakenImage {
  const key = where.path;
  if (!copyFailures.has(key)) {
    try {
      if (!files.has(key)) files.set(key, svtAv1File(where));
      const file = files.get(key);
      if (!file) throw new Error(`the file behind ${where.path} was not found`);
      const copy = takeCopy(rt, file);
      if (!copy) throw new Error("this system has no memory files (memfd_create) to copy it into");
      try {
        const t = tablesOf(rt, where, copyPath(copy.fd), blocking);
        return { ...t, image: { kind: "private", isolated: true }, release: copy.release };
      } catch (e) {
        copy.release();
        throw e;
      }
    } catch (e) {
      copyFailures.set(key, e instanceof Error ? e.message.split("\n")[0] : String(e));
    }
  }
  // No copy: the shared image, beside any other encoder on it.
  const opened = keptLibrary(`svt-av1:${key}`, () => openSvtAv1(rt, where));
  const table = blocking
    ? keptLibrary(`svt-av1-blocking:${key}`, () => rt.open(key, svtAv1BlockingSymbols))
    : undefined;
  return {
    opened,
    blocking: table,
    image: { kind: "shared", isolated: false, reason: `no private copy: ${copyFailures.get(key)}` },
    release: () => {},
  };
}
