/**
 * The one error class of av1-stream. Every failure, from a bad option to a native status code, is an
 * `EncoderError` whose message says what is wrong and what to do about it.
 * @module
 */

/** Machine-readable reason of an {@linkcode EncoderError}. */
export type EncoderErrorCode =
  | "LIBRARY_NOT_FOUND"
  | "LIBRARY_UNSUPPORTED"
  | "INVALID_CONFIG"
  | "UNKNOWN_PARAMETER"
  | "INVALID_FRAME"
  | "INVALID_INPUT"
  | "INVALID_STATE"
  | "CLOSED"
  | "NATIVE_ERROR"
  | "WORKER_ERROR"
  | "STALLED"
  | "IO_ERROR"
  | "ABORTED"
  | "DEPENDENCY_MISSING";

/** Options of an {@linkcode EncoderError}. */
export interface EncoderErrorOptions {
  /** Which native library the error came from, if any. */
  library?: "svt-av1" | "rav1e" | "srt";
  /** The underlying error. */
  cause?: unknown;
}

/**
 * An error raised by av1-stream, with a `code` for programs and a sentence for people.
 *
 * @example
 * ```ts
 * import { EncoderError } from "./mod.ts";
 * const err = new EncoderError("INVALID_CONFIG", "Width must be even for 4:2:0 input, got 641");
 * console.log(err.code, err.message);
 * ```
 */
export class EncoderError extends Error {
  /** Machine-readable reason. */
  readonly code: EncoderErrorCode;
  /** The native library involved, if any. */
  readonly library?: "svt-av1" | "rav1e" | "srt";

  /** Makes an error with a code from {@linkcode EncoderErrorCode}, a message that says what to do, and its details. */
  constructor(code: EncoderErrorCode, message: string, options: EncoderErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "EncoderError";
    this.code = code;
    if (options.library) this.library = options.library;
  }
}

/**
 * True when `err` (or an error it wraps) is a write to a pipe whose reader went away (EPIPE), as when
 * the output goes to `| head -c 100`.
 */
export function isBrokenPipe(err: unknown): boolean {
  for (let e = err, depth = 0; e && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    if ((e as { code?: string }).code === "EPIPE") return true;
  }
  return false;
}
