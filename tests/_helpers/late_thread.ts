/**
 * Thread module for the FFI runtime tests: sets `onmessage` only after a top-level `await` (as a thread
 * whose imports include a module with one does), then echoes each message's `n`.
 */
await new Promise((resolve) => setTimeout(resolve, 100));

const scope = globalThis as unknown as {
  onmessage: ((e: MessageEvent<{ n: number }>) => void) | null;
  postMessage(message: unknown): void;
};

scope.onmessage = (e) => scope.postMessage({ n: e.data.n });

export {};
