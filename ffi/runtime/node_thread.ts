/**
 * Node's threads in the shape of the web `Worker` that the rest of the project uses: the host side wraps
 * `node:worker_threads`' `Worker`, and the thread starts in `node_thread_scope.ts`, which gives the module
 * it runs the web worker scope (`onmessage`, `postMessage`, `close`) over `parentPort`.
 * @module
 */
import { Worker } from "node:worker_threads";
import { bulkLaneNeeded, BulkReceiver, BulkSender } from "./bulk_lane.ts";
import type { NativeThread } from "./types.ts";

/** Compiled to JavaScript (how Node runs this project), a module's sibling is a `.js` file too. */
const compiled = import.meta.url.endsWith(".js");

/** The URL Node must load for a module named by its source URL. */
export function runnableUrl(url: URL): URL {
  if (!compiled || !url.pathname.endsWith(".ts")) return url;
  const out = new URL(url.href);
  out.pathname = url.pathname.slice(0, -3) + ".js";
  return out;
}

const scopeUrl = runnableUrl(new URL("./node_thread_scope.ts", import.meta.url));

class NodeThread implements NativeThread {
  onmessage: ((e: MessageEvent) => void) | null = null;
  onerror: ((e: ErrorEvent) => void) | null = null;
  #worker: Worker;
  // Deno's worker_threads serialise byte payloads slowly: they go through shared rings (bulk_lane.ts).
  #out = bulkLaneNeeded ? new BulkSender() : null;
  #in = bulkLaneNeeded ? new BulkReceiver() : null;

  constructor(url: URL) {
    this.#worker = new Worker(scopeUrl, {
      workerData: { entry: runnableUrl(url).href, bulkLane: bulkLaneNeeded },
    });
    this.#worker.on("message", (raw: unknown) => {
      const data = this.#in ? this.#in.decode(raw) : raw;
      this.onmessage?.({ data } as MessageEvent);
    });
    this.#worker.on("error", (error: Error) => {
      const event = { message: error?.message ?? String(error), error, preventDefault() {} };
      if (this.onerror) this.onerror(event as unknown as ErrorEvent);
    });
  }

  postMessage(message: unknown, transfer: Transferable[] = []): void {
    if (this.#out) ({ message, transfer } = this.#out.encode(message, transfer));
    this.#worker.postMessage(message, transfer as unknown as ArrayBuffer[]);
  }

  terminate(): void {
    void this.#worker.terminate();
  }

  unref(): void {
    this.#worker.unref();
  }

  ref(): void {
    this.#worker.ref();
  }
}

/** Starts the module at `url` on a new worker thread. */
export function startNodeThread(url: URL): NativeThread {
  return new NodeThread(url);
}
