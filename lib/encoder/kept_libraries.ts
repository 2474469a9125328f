/**
 * Libraries opened once per encoder thread and kept open for the thread's life: a pooled thread hosts one
 * encoder after another, and opening and closing a library for each one is needless work (Bun's FFI has
 * also crashed with threads that did it concurrently).
 * @module
 */

const kept = new Map<string, unknown>();

/** The library kept under `key` in this thread, opened with `open` the first time. */
export function keptLibrary<T>(key: string, open: () => T): T {
  if (kept.has(key)) return kept.get(key) as T;
  const lib = open();
  kept.set(key, lib);
  return lib;
}
