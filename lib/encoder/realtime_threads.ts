/**
 * Running as root, SVT-AV1's `init_handle` switches the calling thread to SCHED_FIFO 99 and creates its
 * worker threads real-time too; they then starve the JavaScript event loop (stalls of 800-900 ms were
 * measured). After the encoder is initialised, its new threads go to SCHED_BATCH at nice 10 and any other
 * real-time thread of the process back to SCHED_OTHER.
 * @module
 */
import { readdirSync } from "node:fs";
import type { FfiRuntime } from "../../ffi/runtime/types.ts";
import { libcSymbols, PRIO_PROCESS, SchedPolicy } from "../../ffi/symbols/libc.ts";

/** Thread ids of this process. */
export function threadIds(): Set<number> {
  try {
    return new Set(readdirSync("/proc/self/task").map(Number).filter((n) => Number.isInteger(n)));
  } catch {
    return new Set();
  }
}

/** Counts of threads whose scheduling was changed. */
export interface SchedulingFix {
  batched: number;
  reset: number;
}

/**
 * Moves threads created since `before` to SCHED_BATCH nice 10 and resets other real-time threads to
 * SCHED_OTHER. Does nothing unless the process runs as root (only then does SVT-AV1 go real-time).
 */
export function demoteRealtimeThreads(rt: FfiRuntime, before: Set<number>): SchedulingFix {
  const fix = { batched: 0, reset: 0 };
  let libc;
  try {
    libc = rt.open("libc.so.6", libcSymbols);
  } catch {
    return fix;
  }
  try {
    if (libc.symbols.geteuid() !== 0) return fix;
    const param = new Uint8Array(8); // struct sched_param { int sched_priority; } = 0
    for (const tid of threadIds()) {
      const policy = libc.symbols.sched_getscheduler(tid);
      if (!before.has(tid)) {
        if (libc.symbols.sched_setscheduler(tid, SchedPolicy.batch, param) === 0) fix.batched++;
        libc.symbols.setpriority(PRIO_PROCESS, tid, 10);
      } else if (policy === SchedPolicy.fifo || policy === SchedPolicy.rr) {
        if (libc.symbols.sched_setscheduler(tid, SchedPolicy.other, param) === 0) fix.reset++;
      }
    }
    return fix;
  } finally {
    libc.close();
  }
}
