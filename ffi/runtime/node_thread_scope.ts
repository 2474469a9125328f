/**
 * First module of every Node worker thread started by `node_thread.ts`: it gives the thread the web
 * worker scope (`onmessage`, `postMessage`, `close` on `globalThis`) over `parentPort`, then loads the
 * module the thread is for. Messages that come before that module sets `onmessage` wait in the port.
 * @module
 */
import { parentPort, workerData } from "node:worker_threads";

const port = parentPort!;
let handler: ((e: MessageEvent) => void) | null = null;
let listening = false;

Object.defineProperty(globalThis, "onmessage", {
  configurable: true,
  get: () => handler,
  set(fn: ((e: MessageEvent) => void) | null) {
    handler = fn;
    if (fn && !listening) {
      listening = true;
      port.on("message", (data: unknown) => handler?.({ data } as MessageEvent));
    }
  },
});
Object.assign(globalThis, {
  postMessage: (message: unknown, transfer: Transferable[] = []) =>
    port.postMessage(message, transfer as unknown as ArrayBuffer[]),
  close: () => port.close(),
});

await import((workerData as { entry: string }).entry);
