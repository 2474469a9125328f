/**
 * Reconnection delays: exponential backoff with jitter, counted per outage.
 * @module
 */

import { EncoderError } from "../errors.ts";

/** Options of the reconnection schedule. Every network sink takes them. */
export interface BackoffOptions {
  /** Delay before the first retry after a connection is lost or refused, in ms. Default 250. */
  initialDelay?: number;
  /** Largest delay between two attempts, in ms. Default 10 000. */
  maxDelay?: number;
  /** Each retry waits this many times longer than the previous one. Default 2. */
  factor?: number;
  /**
   * Retries per outage; after the last one fails the sink errors with its cause. Default 10; 0 never
   * retries; `Infinity` retries for ever.
   */
  maxAttempts?: number;
  /**
   * Fraction of each delay taken off at random, 0 to 1, so that many clients do not retry in step.
   * Default 0.2: a delay of 1000 ms becomes 800 to 1000 ms.
   */
  jitter?: number;
}

/** The checked schedule. */
export interface Backoff {
  /** Delay before the first retry, in milliseconds. */
  readonly initialDelay: number;
  /** The longest delay between retries, in milliseconds. */
  readonly maxDelay: number;
  /** What each delay is multiplied by for the next retry. */
  readonly factor: number;
  /** Retries before giving up (`Infinity`: never). */
  readonly maxAttempts: number;
  /** Share of each delay randomised, 0 to 1, so reconnecting clients spread out. */
  readonly jitter: number;
  /** Delay before retry `attempt` (1 for the first retry), with jitter from `random` (0 to 1). */
  delay(attempt: number, random?: number): number;
}

function check(name: string, v: number, ok: boolean, what: string): void {
  if (typeof v !== "number" || Number.isNaN(v) || !ok) {
    throw new EncoderError("INVALID_CONFIG", `${name} must be ${what}, got ${v}`);
  }
}

/**
 * Checks backoff options and fills in defaults. Retry `n` waits
 * `min(maxDelay, initialDelay * factor^(n-1)) * (1 - jitter * random)`.
 *
 * @example
 * ```ts
 * import { backoff } from "./backoff.ts";
 * const b = backoff({ initialDelay: 100, factor: 2, maxDelay: 1000, jitter: 0 });
 * console.log([1, 2, 3, 4, 5].map((n) => b.delay(n))); // [100, 200, 400, 800, 1000]
 * ```
 */
export function backoff(options: BackoffOptions = {}): Backoff {
  const initialDelay = options.initialDelay ?? 250;
  const maxDelay = options.maxDelay ?? 10_000;
  const factor = options.factor ?? 2;
  const maxAttempts = options.maxAttempts ?? 10;
  const jitter = options.jitter ?? 0.2;
  check(
    "initialDelay",
    initialDelay,
    initialDelay >= 0 && Number.isFinite(initialDelay),
    "a number of ms >= 0",
  );
  check("maxDelay", maxDelay, maxDelay >= initialDelay, "a number of ms >= initialDelay");
  check("factor", factor, factor >= 1 && Number.isFinite(factor), "a number >= 1");
  check(
    "maxAttempts",
    maxAttempts,
    maxAttempts >= 0 && (Number.isInteger(maxAttempts) || maxAttempts === Infinity),
    "an integer >= 0 or Infinity",
  );
  check("jitter", jitter, jitter >= 0 && jitter <= 1, "a fraction from 0 to 1");
  return {
    initialDelay,
    maxDelay,
    factor,
    maxAttempts,
    jitter,
    delay(attempt, random = Math.random()) {
      const base = Math.min(maxDelay, initialDelay * Math.pow(factor, Math.max(0, attempt - 1)));
      return Math.round(base * (1 - jitter * random));
    },
  };
}
