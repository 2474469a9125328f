/**
 * Which loaded image of SVT-AV1 an encoder runs on. SVT-AV1 keeps process-wide state: every encoder's
 * set-up fills the library's function tables again (the C version of each function first, then the
 * SIMD one), and one encoder set up while another encodes through the same tables crashed the process
 * (SIGSEGV, in Node, Bun and Deno, SVT-AV1 1.4.1 and 3.1.2: docs/bun-crash.md, bench/svt_overlap.ts).
 *
 * So no two live encoders share an image. The first encoder of a library file runs on the process's
 * shared image (what any other user of the library loads too); an encoder that starts while another is
 * live on it gets a private copy of the library (ffi/private_copy.ts), which its thread keeps for the
 * encoders it hosts after it. A pooled thread hosts one encoder at a time, so it holds at most the
 * shared image and one copy; the caller's thread (`host: "caller"`) keeps as many copies as it has had
 * encoders at once. A copy costs the library's file size in memory (6.8 MB for 1.4.1, 8 MB for 3.1.2)
 * and a few milliseconds to make, once per thread.
 * @module
 */
import { type OpenedSvtAv1, openSvtAv1, openSvtAv1Copy, type SvtAv1Location } from "../../ffi/load.ts";
import type { FfiRuntime, NativeLibrary } from "../../ffi/runtime/types.ts";
import { svtAv1BlockingSymbols } from "../../ffi/symbols/svt_av1.ts";
import type { LibraryImage } from "../types.ts";
import { keptLibrary } from "./kept_libraries.ts";
import { claimSharedImage, releaseSharedImage } from "./native_lock.ts";

/** An image taken for one encoder, from its set-up to its last native call. */
export interface TakenImage {
  opened: OpenedSvtAv1;
  /** The nonblocking table of the same image (encoders on the caller's thread). */
  blocking?: NativeLibrary<typeof svtAv1BlockingSymbols>;
  image: LibraryImage;
  /** Gives the image back (idempotent). */
  release(): void;
}

interface Copy {
  opened: OpenedSvtAv1;
  blocking?: NativeLibrary<typeof svtAv1BlockingSymbols>;
  busy: boolean;
}

/** This thread's private copies, by library path. */
const copies = new Map<string, Copy[]>();
/** Why a copy of a path could not be made in this thread (not tried again). */
const copyFailures = new Map<string, string>();

function shared(rt: FfiRuntime, where: SvtAv1Location, blocking: boolean) {
  const opened = keptLibrary(`svt-av1:${where.path}`, () => openSvtAv1(rt, where));
  const table = blocking
    ? keptLibrary(`svt-av1-blocking:${where.path}`, () => rt.open(where.path, svtAv1BlockingSymbols))
    : undefined;
  return { opened, blocking: table };
}

/**
 * Takes an image of the located library for one encoder: the shared one if no encoder of any thread of
 * the pool is live on it, else a private copy (a free one of this thread's, or a new one). `blocking`
 * opens Deno's nonblocking table of the same image too.
 */
export function takeSvtAv1Image(rt: FfiRuntime, where: SvtAv1Location, blocking: boolean): TakenImage {
  const key = where.path;
  if (claimSharedImage(key)) {
    let released = false;
    return {
      ...shared(rt, where, blocking),
      image: { kind: "shared", isolated: true },
      release: () => {
        if (!released) releaseSharedImage(key);
        released = true;
      },
    };
  }
  const list = copies.get(key) ?? [];
  copies.set(key, list);
  let copy = list.find((c) => !c.busy && (!blocking || c.blocking));
  if (!copy && !copyFailures.has(key)) {
    try {
      const made = openSvtAv1Copy(
        rt,
        where,
        (path) => blocking ? rt.open(path, svtAv1BlockingSymbols) : undefined,
      );
      copy = { opened: made.opened, blocking: made.also, busy: false };
      list.push(copy);
    } catch (e) {
      copyFailures.set(key, e instanceof Error ? e.message : String(e));
    }
  }
  if (!copy) {
    // No copy: run on the shared image beside the encoder that holds it, as before copies existed.
    return {
      ...shared(rt, where, blocking),
      image: { kind: "shared", isolated: false, reason: copyFailures.get(key) },
      release: () => {},
    };
  }
  const taken = copy;
  taken.busy = true;
  return {
    opened: taken.opened,
    blocking: taken.blocking,
    image: { kind: "private", isolated: true },
    release: () => void (taken.busy = false),
  };
}
