/**
 * What a sink needs from a transport: open a connection ({@linkcode Link}), write with backpressure,
 * see whether writes make progress, end cleanly, and learn when the connection is lost and why.
 * @module
 */

/** An error from a link, with a POSIX-style `code` such as `"ECONNRESET"`, `"EPIPE"` or `"ETIMEDOUT"`. */
export interface LinkError extends Error {
  /** The system's error code (`ECONNREFUSED`, `EPIPE`…), when the failure came from the socket. */
  code?: string;
  /**
   * True when reconnecting cannot help (a certificate the client does not trust, credentials the server
   * refused): the sink gives up at once instead of retrying on its backoff schedule.
   */
  final?: boolean;
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

/** What {@linkcode LinkState.drain} waits on: a `node:net` socket's `'drain'` event. */
export interface DrainEmitter {
  once(event: "drain", listener: () => void): unknown;
  off(event: "drain", listener: () => void): unknown;
}

/**
 * The bookkeeping a connection-backed {@linkcode Link} shares (TCP, RTMP, WebSocket): the first cause
 * of failure and `lost`, whether `end()` was called and whether the connection closed, and the waiters
 * (a pending `end()`, a write waiting for room) that wake when it fails or closes.
 */
export class LinkState {
  /** Why the link failed, once it did. */
  cause: LinkError | undefined;
  /** True once `end()` began: a close from then on is the expected one. */
  ending = false;
  readonly lost: Promise<LinkError>;
  #closed = false;
  #resolveLost!: (e: LinkError) => void;
  #waiters: (() => void)[] = [];
  #teardown: () => void;

  /** `teardown` drops the connection at once; it runs on the first failure. */
  constructor(teardown: () => void) {
    this.#teardown = teardown;
    this.lost = new Promise((r) => (this.#resolveLost = r));
  }

  /** Records the first failure: resolves `lost`, tears the connection down, wakes the waiters. */
  fail(err: unknown): void {
    if (this.cause) return;
    this.cause = asError(err);
    this.#resolveLost(this.cause);
    this.#teardown();
    this.#wake();
  }

  /** The connection closed; `cause`, when given, fails the link first. Wakes the waiters. */
  closed(cause?: LinkError): void {
    this.#closed = true;
    if (cause) this.fail(cause);
    this.#wake();
  }

  /**
   * Waits for room after a write the socket did not take whole: resolves on `'drain'`, rejects with the
   * cause once the link failed (after a destroy `'drain'` never comes, so a close wakes it too).
   */
  drain(socket: DrainEmitter): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const done = () => {
        socket.off("drain", done);
        // Leave the waiters too: a long congested connection would otherwise collect one per write.
        const i = this.#waiters.indexOf(done);
        if (i >= 0) this.#waiters.splice(i, 1);
        if (this.cause) reject(this.cause);
        else resolve();
      };
      socket.once("drain", done);
      this.#waiters.push(done);
    });
  }

  /**
   * `Link.end()`: rejects with the cause if the link already failed; otherwise marks it ending, calls
   * `close` (which starts the clean close) and settles once the connection closed.
   */
  end(close: () => void): Promise<void> {
    if (this.cause) return Promise.reject(this.cause);
    this.ending = true;
    return new Promise<void>((resolve, reject) => {
      const done = () => (this.cause ? reject(this.cause) : resolve());
      if (this.#closed) return done();
      this.#waiters.push(done);
      close();
    });
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }
}
