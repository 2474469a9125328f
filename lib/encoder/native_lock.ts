/**
 * One lock shared by every encoder thread of a pool (a `SharedArrayBuffer` the pool hands each thread as
 * it starts), held around SVT-AV1's set-up and tear-down calls.
 *
 * Why: SVT-AV1 (1.4.1 measured) corrupts the C heap when one encoder's `deinit` runs while another
 * encoder's `init_handle`/`enc_init` runs in another thread of the same process: "double free or
 * corruption (!prev)" and segmentation faults, in Bun and in Deno, as root and as an ordinary user
 * (bench/bun_crash.ts, docs/bun-crash.md). With the two never overlapping, the same load ran clean.
 *
 * The same buffer holds the claims on the libraries' shared images (see svt_av1_images.ts): which
 * library file an encoder of some thread is running on as the process's one loaded image.
 * @module
 */

let lock: Int32Array | undefined;

/** Words of the shared buffer: the lock, then the claim slots. */
export const NATIVE_LOCK_WORDS = 64;
/** Claims of this thread where no pool gave a buffer (a thread of its own, nothing to share with). */
const localClaims = new Set<string>();

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

/** The claim slot of a library path: a hash, so two paths may share one (the second then takes a copy). */
function claimSlot(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return 1 + ((h >>> 0) % (NATIVE_LOCK_WORDS - 1));
}

/**
 * Claims the process's shared image of the library at `key` for one encoder; false when an encoder of
 * any thread of the pool holds it. Give it back with {@linkcode releaseSharedImage} once that encoder's
 * last native call has returned.
 */
export function claimSharedImage(key: string): boolean {
  const l = lock;
  if (!l || l.length < NATIVE_LOCK_WORDS) {
    if (localClaims.has(key)) return false;
    localClaims.add(key);
    return true;
  }
  return Atomics.compareExchange(l, claimSlot(key), 0, 1) === 0;
}

/** Gives back a claim taken with {@linkcode claimSharedImage}. */
export function releaseSharedImage(key: string): void {
  const l = lock;
  if (!l || l.length < NATIVE_LOCK_WORDS) localClaims.delete(key);
  else Atomics.store(l, claimSlot(key), 0);
}
