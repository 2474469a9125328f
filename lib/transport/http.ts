/**
 * HTTP links: one long POST or PUT per connection whose body streams the packets (chunked transfer
 * encoding), through `fetch` with a `ReadableStream` body and `duplex: "half"`, which Deno 2.9 and Bun 1.4
 * both send as it is produced. The body is pulled, so `write()` resolves when fetch took the chunk.
 * @module
 */

import { asError, type Link, type LinkError, linkError, type Transport } from "./link.ts";

/** Options of {@linkcode httpTransport}. */
export interface HttpTransportOptions {
  /** `"POST"` (default) or `"PUT"`. */
  method?: "POST" | "PUT";
  /** Extra request headers. */
  headers?: Record<string, string>;
}

/** A transport sending each connection as one streaming HTTP request to `url`. */
export function httpTransport(url: string, options: HttpTransportOptions = {}): Transport {
  return {
    name: url,
    reconnects: true,
    connect: ({ timeout, contentType }) => Promise.resolve(new HttpLink(url, options, timeout, contentType)),
  };
}

class HttpLink implements Link {
  #chunks: { bytes: Uint8Array; taken: () => void }[] = [];
  #pull: (() => void) | undefined;
  #queued = 0;
  #flushed = 0;
  #cause: LinkError | undefined;
  #ending = false;
  #closeBody: (() => void) | undefined;
  #abort = new AbortController();
  #response: Promise<void>;
  #resolveLost!: (e: LinkError) => void;
  readonly lost: Promise<LinkError>;

  constructor(url: string, options: HttpTransportOptions, _timeout: number, contentType: string) {
    this.lost = new Promise((r) => (this.#resolveLost = r));
    const body = new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        while (!this.#chunks.length && !this.#ending && !this.#cause) {
          await new Promise<void>((r) => (this.#pull = r));
        }
        const chunk = this.#chunks.shift();
        if (chunk) {
          this.#queued -= chunk.bytes.length;
          this.#flushed += chunk.bytes.length;
          controller.enqueue(chunk.bytes);
          chunk.taken();
        } else if (this.#ending && !this.#cause) controller.close();
      },
      // fetch cancels the body before it rejects with the real cause: give that a moment to arrive.
      cancel: (reason) => {
        setTimeout(
          () => this.#fail(linkError("ECONNRESET", "The HTTP request body was cancelled", reason)),
          1000,
        );
      },
    }, { highWaterMark: 0 });
    const init: RequestInit & { duplex: "half" } = {
      method: options.method ?? "POST",
      headers: { "content-type": contentType, ...options.headers },
      body,
      duplex: "half",
      signal: this.#abort.signal,
    };
    this.#response = fetch(url, init).then(async (res) => {
      await res.body?.cancel();
      if (!res.ok) throw linkError("EHTTP", `${url} answered ${res.status} ${res.statusText}`);
      if (!this.#ending) throw linkError("EOF", `${url} answered ${res.status} before the end of the stream`);
    }).catch((e) => {
      this.#fail(
        this.#cause
          ?? (e?.code ? e : linkError("ECONNRESET", `HTTP request to ${url} failed: ${e?.message ?? e}`, e)),
      );
      throw this.#cause;
    });
    this.#response.catch(() => {});
  }

  #fail(err: unknown) {
    if (this.#cause) return;
    this.#cause = asError(err);
    this.#resolveLost(this.#cause);
    this.#abort.abort(this.#cause);
    for (const c of this.#chunks.splice(0)) c.taken();
    this.#wake();
  }

  #wake() {
    const p = this.#pull;
    this.#pull = undefined;
    p?.();
  }

  write(bytes: Uint8Array): Promise<void> {
    if (this.#cause) return Promise.reject(this.#cause);
    this.#queued += bytes.length;
    return new Promise<void>((resolve, reject) => {
      this.#chunks.push({ bytes, taken: () => (this.#cause ? reject(this.#cause) : resolve()) });
      this.#wake();
    });
  }

  progress() {
    return { pending: this.#queued, flushed: this.#flushed };
  }

  end(): Promise<void> {
    if (this.#cause) return Promise.reject(this.#cause);
    this.#ending = true;
    this.#wake();
    return this.#response;
  }

  destroy(cause: Error): void {
    this.#fail(cause);
  }
}
