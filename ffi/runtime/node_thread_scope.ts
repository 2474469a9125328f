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
let handler: ((e: MessageEvent) => void) | null = null;
const early: unknown[] = [];

// Listen at once: Deno's worker_threads drops messages that reach a port with no listener yet (a thread
// told to start its first encoder as it was created never heard of it).
port.on("message", (raw: unknown) => {
  // Payloads come out of the shared ring as the message arrives, in order, which frees their space.
  const data = bulkIn ? bulkIn.decode(raw) : raw;
  if (handler) handler({ data } as MessageEvent);
  else early.push(data);
});

Object.defineProperty(globalThis, "onmessage", {
  configurable: true,
  get: () => handler,
  set(fn: ((e: MessageEvent) => void) | null) {
    handler = fn;
    while (handler && early.length > 0) handler({ data: early.shift() } as MessageEvent);
  },
});
Object.assign(globalThis, {
  postMessage: (message: unknown, transfer: Transferable[] = []) => {
    if (bulkOut) ({ message, transfer } = bulkOut.encode(message, transfer));
    port.postMessage(message, transfer as unknown as ArrayBuffer[]);
  },
  close: () => port.close(),
});

await import((workerData as { entry: string }).entry);
