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
 * What the thread's `onmessage` receives. By default each byte payload is a copy of its own and the ring's
 * space is given back as the message arrives. A thread that sets `inPlaceMessages = true` on its scope
 * gets the payloads as views into the shared ring instead (see `BulkReceiver.decodeInPlace`), with
 * `release` to give their space back: the handler must return a promise that settles only once it has
 * read them (or call `release` itself when done); `release` is called once the handler returns, or once
 * that promise settles. A handler that queues the message and returns at once must not opt in: the
 * sender writes its next payloads over the views (the SRT thread did, and Deno's SRT streams arrived with
 * the bytes of later packets).
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
  const event: ThreadMessageEvent = !bulkIn
    ? { data: raw }
    : (globalThis as { inPlaceMessages?: boolean }).inPlaceMessages === true
    ? bulkIn.decodeInPlace(raw)
    : { data: bulkIn.decode(raw) };
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
