/**
 * Entry module of a pooled encoder thread: hosts SVT-AV1 and rav1e encoders, one after another, with
 * their libraries kept open between them. Native calls that block (SVT-AV1's `send_picture` while its
 * input pool is full, `get_packet(…, 1)`, rav1e's `receive_packet` that encodes) run here, never on the
 * caller's thread.
 * @module
 */
import { ffiRuntime, loadedRuntime } from "../../ffi/runtime/mod.ts";
import { Rav1eBackend } from "./rav1e_worker.ts";
import { libc } from "./realtime_threads.ts";
import { SvtAv1Backend } from "./svt_av1_worker.ts";
import { serveEncoders } from "./worker_serve.ts";

serveEncoders(
  { "svt-av1": () => new SvtAv1Backend(), rav1e: () => new Rav1eBackend() },
  {
    block: async (ms) => void libc(await ffiRuntime())?.symbols.usleep(Math.min(ms, 3_600_000) * 1000),
    // Off glibc (musl) there is no malloc_trim: nothing to do.
    releaseMemory: () => void libc(loadedRuntime())?.symbols.malloc_trim?.(0),
  },
);
