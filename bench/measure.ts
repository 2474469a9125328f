/**
 * What the benchmarks measure inside a process: event-loop lag and peak RSS.
 * @module
 */
import { readFileSync } from "node:fs";

/** Peak resident set of this process in MB (VmHWM from /proc). */
export function peakRssMB(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** Current resident set of this process in MB (VmRSS from /proc). */
export function rssMB(): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** A 1 ms interval timer that records how late it fires: the event loop's worst stall. */
export class LagMeter {
  max = 0;
  #last = performance.now();
  #timer: ReturnType<typeof setInterval>;

  constructor() {
    this.#timer = setInterval(() => {
      const now = performance.now();
      this.max = Math.max(this.max, now - this.#last - 1);
      this.#last = now;
    }, 1);
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
