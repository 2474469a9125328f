/**
 * Running as root, SVT-AV1's `init_handle` switches the calling thread to SCHED_FIFO 99 and creates its
 * worker threads real-time too; they then starve the JavaScript event loop (stalls of 800-900 ms were
 * measured). Two measures keep it from happening:
 * - while the encoder is created, the creating thread (the encoder's worker) drops CAP_SYS_NICE from its
 *   effective capabilities, so SVT-AV1's calls to go real-time fail as they do for any unprivileged user,
 *   and the threads it creates inherit the missing capability (capabilities are per thread on Linux);
 * - afterwards its new threads go to SCHED_BATCH at nice 10 and any real-time thread left back to
 *   SCHED_OTHER.
 * Without the first, the window between `init_handle` and the demotion alone stalled the loop 120-140 ms.
 * @module
 */
import { readdirSync } from "node:fs";
import type { FfiRuntime } from "../../ffi/runtime/types.ts";
import {
  CAP_SYS_NICE,
  CAPABILITY_VERSION_3,
  libcSymbols,
  PRIO_PROCESS,
  SchedPolicy,
} from "../../ffi/symbols/libc.ts";

/**
 * Runs `fn` with CAP_SYS_NICE removed from the calling thread's effective set (kept in its permitted
 * set), then raises it again. Runs `fn` as it is where capabilities cannot be read.
 */
export function withoutRealtimePrivilege<T>(rt: FfiRuntime, fn: () => T): T {
  let libc;
  try {
    libc = rt.open("libc.so.6", libcSymbols);
  } catch {
    return fn();
  }
  const header = new Uint8Array(8);
  const hv = new DataView(header.buffer);
  hv.setUint32(0, CAPABILITY_VERSION_3, true); // pid 0: this thread
  const data = new Uint8Array(24); // two __user_cap_data_struct { effective, permitted, inheritable }
  const dv = new DataView(data.buffer);
  const bit = 1 << CAP_SYS_NICE;
  let dropped = false;
  try {
    if (libc.symbols.capget(header, data) === 0 && (dv.getUint32(0, true) & bit) !== 0) {
      dv.setUint32(0, dv.getUint32(0, true) & ~bit, true);
      hv.setUint32(0, CAPABILITY_VERSION_3, true);
      dropped = libc.symbols.capset(header, data) === 0;
    }
    return fn();
  } finally {
    if (dropped) {
      dv.setUint32(0, dv.getUint32(0, true) | bit, true);
      hv.setUint32(0, CAPABILITY_VERSION_3, true);
      libc.symbols.capset(header, data);
    }
    libc.close();
  }
}

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
