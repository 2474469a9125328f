/**
 * Running as root, SVT-AV1's `init_handle` switches the calling thread to SCHED_FIFO 99 and creates its
 * worker threads real-time too; they then starve the JavaScript event loop (stalls of 800-900 ms were
 * measured). Two measures keep it from happening:
 * - while the encoder is created, the creating thread (the encoder's worker) runs with a non-root
 *   effective user id, so SVT-AV1 does not try to go real-time, and the threads it creates keep that id;
 * - afterwards its new threads go to SCHED_BATCH at nice 10 and any real-time thread left back to
 *   SCHED_OTHER.
 * Without the first, the window between `init_handle` and the demotion alone stalled the loop 120-140 ms.
 * @module
 */
import { libc } from "../../ffi/libc.ts";
import { system } from "../../ffi/runtime/system.ts";
import type { FfiRuntime } from "../../ffi/runtime/types.ts";
import { PRIO_PROCESS, SchedPolicy, SYS_SETRESUID } from "../../ffi/symbols/libc.ts";

/**
 * Runs `fn` with this thread's effective user id set to nobody (65534) when it is root, then back to root.
 * SVT-AV1 checks `geteuid() == 0` before it makes the calling thread and its own threads real-time, so
 * under another effective id it does not try at all. (Dropping CAP_SYS_NICE instead lets it try, fail,
 * print a warning per thread and create its threads through its fallback path.) The raw system call
 * changes only this thread;
 * threads created meanwhile keep the id, which only SVT-AV1's own threads are.
 */
export function asNonRoot<T>(rt: FfiRuntime, fn: () => T): T {
  const c = libc(rt);
  const nr = SYS_SETRESUID[system.arch()];
  if (!c || nr === undefined || c.symbols.geteuid() !== 0) return fn();
  const keep = -1n;
  const switched = c.symbols.syscall(BigInt(nr), keep, 65534n, keep) === 0n;
  try {
    return fn();
  } finally {
    if (switched) c.symbols.syscall(BigInt(nr), keep, 0n, keep);
  }
}

/** Thread ids of this process. */
export function threadIds(): Set<number> {
  try {
    return new Set(system.readDirSync("/proc/self/task").map(Number).filter((n) => Number.isInteger(n)));
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
 * Moves threads created since `before` to SCHED_BATCH nice 10 (unless `batch` is false: they then keep
 * the normal policy they were created with) and resets any real-time thread to SCHED_OTHER. Does nothing
 * unless the process runs as root (only then does SVT-AV1 go real-time).
 */
export function demoteRealtimeThreads(
  rt: FfiRuntime,
  before: Set<number>,
  options: { batch?: boolean } = {},
): SchedulingFix {
  const batch = options.batch ?? true;
  const fix = { batched: 0, reset: 0 };
  const c = libc(rt);
  if (!c || c.symbols.geteuid() !== 0) return fix;
  const param = new Uint8Array(8); // struct sched_param { int sched_priority; } = 0
  for (const tid of threadIds()) {
    const policy = c.symbols.sched_getscheduler(tid);
    if (!before.has(tid) && batch) {
      if (c.symbols.sched_setscheduler(tid, SchedPolicy.batch, param) === 0) fix.batched++;
      c.symbols.setpriority(PRIO_PROCESS, tid, 10);
    } else if (policy === SchedPolicy.fifo || policy === SchedPolicy.rr) {
      if (c.symbols.sched_setscheduler(tid, SchedPolicy.other, param) === 0) fix.reset++;
    }
  }
  return fix;
}
