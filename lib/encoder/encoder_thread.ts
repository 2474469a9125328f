/**
 * Entry module of a pooled encoder thread: hosts SVT-AV1 and rav1e encoders, one after another, with
 * their libraries kept open between them. Native calls that block (SVT-AV1's `send_picture` while its
 * input pool is full, `get_packet(…, 1)`, rav1e's `receive_packet` that encodes) run here, never on the
 * caller's thread.
 * @module
 */
import { libc, trimNativeHeap } from "../../ffi/libc.ts";
import { ffiRuntime } from "../../ffi/runtime/mod.ts";
import { serveEncoders } from "./worker_serve.ts";

// Each backend's module loads when its first encoder comes: SVT-AV1's (the default) starts loading with
// the thread, as the module itself did before, rav1e's only on demand.
const svtAv1 = import("./svt_av1_worker.ts");
svtAv1.catch(() => {}); // a failure is reported to the encoder that needs the module

/**
 * V8's full garbage collection for this thread (Deno and Node; `node:v8` and `node:vm` load only there), or
 * undefined. An encoder thread's heap only grows between encoders: each leaves a little garbage (its
 * messages, descriptors, packets handed over) that V8 collects late, as the thread is mostly inside native
 * calls. That was most of Deno's RSS growth over 1000 short encodes once the native heap was released
 * (bench/results.md, "Encoder cycles"). `--expose-gc` set at run time exposes `gc` to new contexts only,
 * hence the one-line context. Bun's threads stayed flat and are left alone.
 */
async function fullCollection(): Promise<(() => void) | undefined> {
  if ("Bun" in globalThis) return undefined;
  try {
    const [{ default: v8 }, { default: vm }] = await Promise.all([import("node:v8"), import("node:vm")]);
    v8.setFlagsFromString("--expose-gc");
    const gc = vm.runInNewContext("gc");
    return typeof gc === "function" ? gc as () => void : undefined;
  } catch {
    return undefined;
  }
}
let collect: (() => void) | undefined;
void fullCollection().then((gc) => (collect = gc));

serveEncoders(
  {
    "svt-av1": async () => new (await svtAv1).SvtAv1Backend(),
    rav1e: async () => new (await import("./rav1e_worker.ts")).Rav1eBackend(),
  },
  {
    block: async (ms) => void libc(await ffiRuntime())?.symbols.usleep(Math.min(ms, 3_600_000) * 1000),
    releaseMemory: async () => {
      // Garbage first: what it frees goes back to the native heap, which malloc_trim then hands back (off
      // glibc, musl, there is no malloc_trim: nothing more to do). A thread that never hosted an encoder
      // has not loaded the runtime yet (the quiet-moment release may come to one).
      collect?.();
      await trimNativeHeap(await ffiRuntime());
    },
  },
);
