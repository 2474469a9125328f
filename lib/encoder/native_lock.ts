/**
 * One lock shared by every encoder thread of a pool (a `SharedArrayBuffer` the pool hands each thread as
 * it starts), held around SVT-AV1's set-up and tear-down calls.
 *
 * Why: SVT-AV1 (1.4.1 measured) corrupts the C heap when one encoder's `deinit` runs while another
 * encoder's `init_handle`/`enc_init` runs in another thread of the same process: "double free or
 * corruption (!prev)" and segmentation faults, in Bun and in Deno, as root and as an ordinary user
 * (bench/bun_crash.ts, docs/bun-crash.md). With the two never overlapping, the same load ran clean.
 * @module
 */

let lock: Int32Array | undefined;
/** How deep this thread is in withNativeLock: the lock is re-entrant within a thread. */
let depth = 0;

/** Sets the lock this thread shares with the other encoder threads of its pool. */
export function setNativeLock(buffer: SharedArrayBuffer): void {
  lock = new Int32Array(buffer);
}

/** Runs `fn` holding the pool's lock (just runs it on a thread that was given none). */
export function withNativeLock<T>(fn: () => T): T {
  const l = lock;
  if (!l || depth > 0) {
    depth++;
    try {
      return fn();
    } finally {
      depth--;
    }
  }
  // 0 free, 1 held. A thread that finds it held sleeps until the holder lets go.
  while (Atomics.compareExchange(l, 0, 0, 1) !== 0) Atomics.wait(l, 0, 1, 1000);
  depth = 1;
  try {
    return fn();
  } finally {
    depth = 0;
    Atomics.store(l, 0, 0);
    Atomics.notify(l, 0, 1);
  }
}
