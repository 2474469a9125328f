/**
 * What a sink needs from a transport: open a connection ({@linkcode Link}), write with backpressure,
 * see whether writes make progress, end cleanly, and learn when the connection is lost and why.
 * @module
 */

/** An error from a link, with a POSIX-style `code` such as `"ECONNRESET"`, `"EPIPE"` or `"ETIMEDOUT"`. */
export interface LinkError extends Error {
  code?: string;
}

/** Makes a {@linkcode LinkError}. */
export function linkError(code: string, message: string, cause?: unknown): LinkError {
  const err: LinkError = new Error(message, cause === undefined ? undefined : { cause });
  err.code = code;
  return err;
}

/** Gives any thrown value as an Error, keeping its `code`. */
export function asError(e: unknown): LinkError {
  return e instanceof Error ? e : new Error(String(e));
}

/** One connection (or one open file). */
export interface Link {
  /** Resolves when the transport took the bytes and has room for more; rejects once the link failed. */
  write(bytes: Uint8Array): Promise<void>;
  /**
   * The write watchdog's view: `pending` bytes handed over but not yet passed on (to the kernel, or the
   * network), and a running count of bytes passed on. No change in `flushed` for `writeTimeout` while
   * `pending` is above zero is a stalled peer.
   */
  progress(): { pending: number; flushed: number };
  /** Ends cleanly and resolves once the peer confirmed it (its FIN, a close handshake, an HTTP response). */
  end(): Promise<void>;
  /** Seekable outputs only (files): overwrites bytes at `offset`, before `end()`. */
  patch?(offset: number, bytes: Uint8Array): Promise<void>;
  /** Tears the connection down at once; `lost` resolves with `cause`. */
  destroy(cause: Error): void;
  /** Resolves with the cause when the connection is lost other than by a clean `end()`. Never rejects. */
  readonly lost: Promise<LinkError>;
}

/** Opens links to one destination. */
export interface Transport {
  /** Where it connects, for messages: `tcp://127.0.0.1:9000`, a file path, `stdout`. */
  readonly name: string;
  /** False for files and stdout: their errors are final. */
  readonly reconnects: boolean;
  /** Opens a connection; rejects with the cause (ECONNREFUSED, a timeout) on failure. */
  connect(options: { timeout: number; contentType: string }): Promise<Link>;
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
