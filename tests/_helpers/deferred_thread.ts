/**
 * Thread module for the FFI runtime tests: keeps every payload it is sent without reading it, and when
 * asked reports (each payload is acknowledged as it is kept), for each, whether all its bytes still hold the value it was sent with. A handler that
 * queues work and returns at once, as the SRT thread does: its payloads must stay intact.
 */
const scope = globalThis as unknown as {
  onmessage: ((e: MessageEvent<{ data?: Uint8Array; value?: number; report?: true }>) => void) | null;
  postMessage(message: unknown): void;
};

const kept: { data: Uint8Array; value: number }[] = [];
scope.onmessage = (e) => {
  if (e.data.report) {
    scope.postMessage(kept.map(({ data, value }) => data.every((b) => b === value)));
    return;
  }
  kept.push({ data: e.data.data!, value: e.data.value! });
  scope.postMessage({ kept: kept.length });
};
export {};
