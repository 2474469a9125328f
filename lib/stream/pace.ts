/**
 * {@linkcode paceFrames}: plays a frame source at its frame rate, so a file or the test source behaves
 * like a live camera (the CLI's `--realtime`, the live examples).
 * @module
 */

import { EncoderError } from "../errors.ts";
import type { Rational } from "../types.ts";

/** Options of {@linkcode paceFrames}. */
export interface PaceOptions {
  /** Stops pacing: the generator returns at once. */
  signal?: AbortSignal;
  /**
   * When the consumer fell behind by more than this many seconds (it was held by backpressure), the
   * clock restarts from now instead of letting the late frames out in a burst. Default 1; `Infinity`
   * catches up on every late frame.
   */
  maxLag?: number;
}

function wait(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/**
 * Yields the frames of `source` no faster than `fps`: frame `n` (counted from the first) not before
 * `n / fps` seconds after the first one. A consumer that is slower than real time gets frames as fast as
 * it takes them; after a lag of more than `maxLag` seconds the schedule starts again from that frame.
 *
 * @example
 * ```ts
 * import { paceFrames } from "./pace.ts";
 * import { testSource } from "../io/testsrc.ts";
 * const source = testSource({ width: 64, height: 64, frames: 6, fps: { num: 60, den: 1 } });
 * const started = performance.now();
 * for await (const frame of paceFrames(source.frames(), source.info.fps)) void frame;
 * console.log(performance.now() - started >= 5 * 1000 / 60 - 1); // true: about 83 ms or more
 * ```
 */
export async function* paceFrames<T>(
  source: AsyncIterable<T> | Iterable<T>,
  fps: Rational | number,
  options: PaceOptions = {},
): AsyncGenerator<T, void, undefined> {
  const rate = typeof fps === "number" ? fps : fps.num / fps.den;
  if (!(rate > 0) || !Number.isFinite(rate)) {
    throw new EncoderError(
      "INVALID_CONFIG",
      `paceFrames needs a positive frame rate, got ${JSON.stringify(fps)}`,
    );
  }
  const maxLag = options.maxLag ?? 1;
  const { signal } = options;
  const period = 1000 / rate;
  let start = -1;
  let n = 0;
  for await (const frame of source) {
    if (signal?.aborted) return;
    const now = performance.now();
    if (start < 0) start = now;
    let due = start + n * period;
    if (now - due > maxLag * 1000) {
      start = now;
      n = 0;
      due = now;
    }
    // A timer may fire before its time by the clock here (Node's runs on the event loop's cached time,
    // measured 1.1 ms early at 100 fps): wait again until the frame is due, never yield it early.
    for (let t = now; due > t && !signal?.aborted; t = performance.now()) await wait(due - t, signal);
    if (signal?.aborted) return;
    n++;
    yield frame;
  }
}
