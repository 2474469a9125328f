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

/** Sets the lock this thread shares with the other encoder threads of its pool. */
export function setNativeLock(buffer: SharedArrayBuffer): void {
  lock = new Int32Array(buffer);
}

/**
 * Runs `fn` holding the pool's lock until the promise it returns settles (just runs it on a thread that
 * was given none). Not re-entrant: `fn` must not take the lock again. On an encoder thread (`block`
 * true) a thread that finds the lock held sleeps until the holder lets go; on the caller's thread
 * (encoders with `host: "caller"`, several of which share it) it waits without blocking the event loop.
 */
export async function withNativeLock<T>(fn: () => T | Promise<T>, block = true): Promise<T> {
  const l = lock;
  if (!l) return await fn();
  // 0 free, 1 held.
  while (Atomics.compareExchange(l, 0, 0, 1) !== 0) {
    if (block) Atomics.wait(l, 0, 1, 1000);
    else await waitUnblocked(l);
  }
  try {
    return await fn();
  } finally {
    Atomics.store(l, 0, 0);
    Atomics.notify(l, 0);
  }
}

type WaitAsync = (a: Int32Array, i: number, v: number, t: number) => { async: boolean; value: unknown };

/** Waits until the lock's word may have changed, without blocking the thread. */
async function waitUnblocked(l: Int32Array): Promise<void> {
  const waitAsync = (Atomics as unknown as { waitAsync?: WaitAsync }).waitAsync;
  if (waitAsync) {
    const r = waitAsync(l, 0, 1, 50);
    if (r.async) await r.value;
    return;
  }
  await new Promise((resolve) => setTimeout(resolve, 1));
}
