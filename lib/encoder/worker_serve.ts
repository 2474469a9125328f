/**
 * The worker side of an encoder: runs one {@linkcode WorkerBackend} on the worker's thread and answers the
 * caller's messages in order. Packets are batched per message and their buffers transferred.
 * @module
 */
import { EncoderError } from "../errors.ts";
import type { FromWorker, ToWorker, WorkerBackend, WorkerPacket } from "./protocol.ts";

interface WorkerScope {
  onmessage: ((e: MessageEvent<ToWorker>) => void) | null;
  postMessage(message: FromWorker, transfer?: Transferable[]): void;
  close(): void;
}

/** How often to collect packets while the caller is not sending (the encoder works on in its threads). */
const POLL_MS = 2;

/** Serves `backend` on this worker's message port. */
export function serveEncoder(backend: WorkerBackend): void {
  const scope = globalThis as unknown as WorkerScope;
  let batch: WorkerPacket[] = [];
  let timer: ReturnType<typeof setInterval> | undefined;
  let failed = false;

  const emit = (p: WorkerPacket) => void batch.push(p);
  const post = () => {
    if (batch.length === 0) return;
    const packets = batch;
    batch = [];
    scope.postMessage({ t: "packets", packets }, packets.map((p) => p.data.buffer as ArrayBuffer));
  };
  const stopPolling = () => {
    if (timer !== undefined) clearInterval(timer);
    timer = undefined;
  };
  const fail = (e: unknown) => {
    failed = true;
    stopPolling();
    post();
    const code = e instanceof EncoderError ? e.code : "NATIVE_ERROR";
    const message = e instanceof Error ? e.message : String(e);
    scope.postMessage({ t: "error", code, message });
  };

  // Messages are handled strictly one after another, even though init is async.
  let chain: Promise<void> = Promise.resolve();
  scope.onmessage = (e) => {
    const msg = e.data;
    chain = chain.then(() => handle(msg)).catch(fail);
  };

  async function handle(msg: ToWorker): Promise<void> {
    if (failed && msg.t !== "close") return;
    switch (msg.t) {
      case "init": {
        const { sequenceHeader, version } = await backend.init(msg.config);
        scope.postMessage({ t: "ready", sequenceHeader, version }, [sequenceHeader.buffer as ArrayBuffer]);
        return;
      }
      case "frame": {
        backend.send(msg.data, msg.keyFrame, emit);
        // Packets made while sending go out before the acceptance, so that the caller's output-side
        // backpressure already counts them when its encode() resolves.
        post();
        scope.postMessage({ t: "accepted", id: msg.id });
        backend.poll(emit);
        post();
        timer ??= setInterval(() => {
          try {
            backend.poll(emit);
            post();
          } catch (e) {
            fail(e);
          }
        }, POLL_MS);
        return;
      }
      case "flush": {
        stopPolling();
        backend.finish((p) => {
          emit(p);
          // Hand packets over as they come so that a long drain streams instead of arriving at once.
          if (batch.length >= 8) post();
        });
        post();
        scope.postMessage({ t: "flushed" });
        return;
      }
      case "close": {
        stopPolling();
        try {
          backend.close();
        } finally {
          scope.postMessage({ t: "closed" });
          scope.onmessage = null;
        }
        return;
      }
    }
  }
}
