/** Thread module for the FFI runtime tests: sums the bytes it is sent and sends back the sum, or throws. */
const scope = globalThis as unknown as {
  onmessage: ((e: MessageEvent<{ data?: Uint8Array; fail?: string }>) => void) | null;
  postMessage(message: unknown): void;
};

scope.onmessage = (e) => {
  if (e.data.fail) throw new Error(e.data.fail);
  const data = e.data.data!;
  scope.postMessage({ sum: data.reduce((a, b) => a + b, 0), length: data.byteLength });
};
