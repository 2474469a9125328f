/**
 * First module of every worker thread started by `node_thread.ts` (Node's and Deno's): it gives the
 * thread the web worker scope (`onmessage`, `postMessage`, `close` on `globalThis`) over `parentPort`,
 * then loads the module the thread is for. Messages that come before that module sets `onmessage` are
 * kept and handed to it in order.
 * @module
 */
import { parentPort, workerData } from "node:worker_threads";
import { BulkReceiver, BulkSender } from "./bulk_lane.ts";

const port = parentPort!;
const lane = (workerData as { bulkLane?: boolean }).bulkLane === true;
const bulkIn = lane ? new BulkReceiver() : null;
const bulkOut = lane ? new BulkSender() : null;
/**
 * What the thread's `onmessage` receives. `release`, where present, gives the space of the message's
 * byte payloads in the shared ring back to the sender: they are views into it, not copies (see
 * `BulkReceiver.decodeInPlace`). A handler that has read them early may call it; otherwise it is called
 * once the handler returns, or once the promise it returns settles.
 */
export interface ThreadMessageEvent {
  data: unknown;
  release?: () => void;
}

type Handler = (e: ThreadMessageEvent) => unknown;
let handler: Handler | null = null;
const early: ThreadMessageEvent[] = [];

function deliver(event: ThreadMessageEvent) {
  let result: unknown;
  try {
    result = handler!(event);
  } finally {
    if (event.release) {
      if (result instanceof Promise) result.finally(event.release).catch(() => {});
      else event.release();
    }
  }
}

// Listen at once: Deno's worker_threads drops messages that reach a port with no listener yet (a thread
// told to start its first encoder as it was created never heard of it).
port.on("message", (raw: unknown) => {
  const event: ThreadMessageEvent = bulkIn
    ? bulkIn.decodeInPlace(raw)
    : { data: raw };
  if (handler) deliver(event);
  else early.push(event);
});

Object.defineProperty(globalThis, "onmessage", {
  configurable: true,
  get: () => handler,
  set(fn: Handler | null) {
    handler = fn;
    while (handler && early.length > 0) deliver(early.shift()!);
  },
});
// Deno's `parentPort` has no `close()` (a TypeError, so an idle pooled thread told to end lived on, and
// every thread the pool ended kept its ~13 MB: bench/thread_churn.ts); there the thread's own web-worker
// `close()`, which this scope replaces below, ends it.
const workerClose = (globalThis as { close?: () => void }).close;
Object.assign(globalThis, {
  postMessage: (message: unknown, transfer: Transferable[] = []) => {
    if (bulkOut) ({ message, transfer } = bulkOut.encode(message, transfer));
    port.postMessage(message, transfer as unknown as ArrayBuffer[]);
  },
  close: () => {
    const p = port as { close?: () => void };
    if (typeof p.close === "function") p.close();
    else workerClose?.call(globalThis);
  },
});

await import((workerData as { entry: string }).entry);
