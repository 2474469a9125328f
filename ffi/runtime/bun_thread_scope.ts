/**
 * First module of every thread `bun.ts` starts: it listens at once, loads the module the thread is for
 * (named by the thread's first message) and hands that module's `onmessage` every message that came
 * before it set one, in order. Bun's `Worker` dispatches a module thread's messages as soon as its first
 * module starts evaluating: a message that arrives while the thread's modules still wait on a top-level
 * `await` finds no `onmessage` and is dropped. The encoder threads' set-up and first `init` are posted as
 * the thread is created; dropped, the encoder's creation waited for ever (a `--chunked` run then hung on
 * SIGTERM, its second chunk's encoder never created, once a module with a top-level `await`,
 * ffi/runtime/system.ts, was among the thread's imports). Node's and Deno's threads have the same in
 * node_thread_scope.ts.
 * @module
 */

type Handler = (e: MessageEvent) => unknown;

let handler: Handler | null = null;
let entryLoading = false;
const early: MessageEvent[] = [];
const scope = globalThis as unknown as {
  addEventListener(type: "message", listener: (e: MessageEvent) => void): void;
  removeEventListener(type: "message", listener: (e: MessageEvent) => void): void;
};

function listener(e: MessageEvent) {
  if (!entryLoading) {
    entryLoading = true;
    // A module that fails to load fails the thread, as it would as the thread's first module.
    import((e.data as { entry: string }).entry).catch((err) => {
      setTimeout(() => {
        throw err;
      });
    });
    return;
  }
  if (handler) handler(e);
  else early.push(e);
}
scope.addEventListener("message", listener);
let listening = true;

Object.defineProperty(globalThis, "onmessage", {
  configurable: true,
  get: () => handler,
  set(fn: Handler | null) {
    handler = fn;
    // A thread that stops listening (`onmessage = null`, then `close()`) ends once nothing else holds
    // it: a listener left here would keep it alive.
    if (fn === null && listening) scope.removeEventListener("message", listener);
    else if (fn !== null && !listening) scope.addEventListener("message", listener);
    listening = fn !== null;
    while (handler && early.length > 0) handler(early.shift()!);
  },
});

export {};
