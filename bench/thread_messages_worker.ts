/**
 * The thread side of bench/thread_messages.ts: answers the pooled encoders' messages as an encoder thread
 * does (`ready`, `packets` with transferred bytes, `accepted`, a 2 ms poll timer, `flushed`, `closed`),
 * with no native library behind them. `close` with `gc: true` runs a full GC in this thread first.
 * @module
 */
export {};

interface Scope {
  onmessage: ((e: MessageEvent<{ t: string }>) => void) | null;
  postMessage(message: unknown, transfer?: Transferable[]): void;
}
const scope = globalThis as unknown as Scope;
let timer: ReturnType<typeof setInterval> | undefined;
const packets = (n: number) => {
  const list = Array.from({ length: n }, () => ({ data: new Uint8Array(200), keyFrame: false }));
  scope.postMessage({ t: "packets", packets: list }, list.map((p) => p.data.buffer));
};
scope.onmessage = (e) => {
  switch (e.data.t) {
    case "init": {
      const header = new Uint8Array(16);
      scope.postMessage({ t: "ready", sequenceHeader: header, version: "none" }, [header.buffer]);
      return;
    }
    case "frame":
      packets(1);
      scope.postMessage({ t: "accepted" });
      timer ??= setInterval(() => {}, 2);
      return;
    case "flush":
      clearInterval(timer);
      timer = undefined;
      scope.postMessage({ t: "flushed" });
      return;
    case "close":
      // With --worker-gc (and a runtime that exposes gc): collect this thread's garbage first.
      if ((e.data as { gc?: boolean }).gc) (globalThis as unknown as { gc?: () => void }).gc?.();
      scope.postMessage({ t: "closed" });
      return;
  }
};
