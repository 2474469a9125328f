/**
 * An edge encode worker: a module Worker that owns one AV1 encoder and speaks nothing but `postMessage`.
 * Frames come in with their buffers transferred (not copied) and encoded chunks go back the same way. The
 * worker answers `accepted` only when its encoder took the frame, and posts a chunk only when the main side
 * has granted credit for it, so a slow reader on the main side holds back the encoder and, through it, the
 * frames. Start it through {@linkcode EdgeEncoder} in `edge_pool.ts`:
 *
 * ```ts
 * new Worker(new URL("./edge_worker.ts", import.meta.url), { type: "module" });
 * ```
 *
 * Messages in: `init { config }` (with `codec: "svt-av1" | "rav1e"`), `frame { id, data, timestamp,
 * duration, keyFrame }`, `credit { n }`, `flush`, `close`. Messages out: `ready { sequenceHeader, version,
 * codec }`, `accepted { id }`, `chunk { data, timestamp, duration, keyFrame }`, `flushed`, `end` (after the last chunk), `closed`,
 * `error { code, message, id? }`. One worker encodes one stream at a time; after `closed` it takes a new
 * `init`.
 * @module
 */
import { EncoderError, type Packet, Rav1eEncoder, SvtAv1Encoder } from "../mod.ts";
import type { Encoder } from "../mod.ts";

/** Messages the main side sends. */
export type ToEdgeWorker =
  | { t: "init"; config: Record<string, unknown> & { codec?: "svt-av1" | "rav1e" } }
  | { t: "frame"; id: number; data: Uint8Array; timestamp: number; duration: number; keyFrame: boolean }
  | { t: "credit"; n: number }
  | { t: "flush" }
  | { t: "close" };

/** Messages the worker sends back. */
export type FromEdgeWorker =
  | { t: "ready"; sequenceHeader: Uint8Array; version: string; codec: "svt-av1" | "rav1e" }
  | { t: "accepted"; id: number }
  | { t: "chunk"; data: Uint8Array; timestamp: number; duration: number; keyFrame: boolean }
  | { t: "flushed" }
  | { t: "end" }
  | { t: "closed" }
  | { t: "error"; code: string; message: string; id?: number };

interface WorkerScope {
  onmessage: ((e: MessageEvent<ToEdgeWorker>) => void) | null;
  postMessage(message: FromEdgeWorker, transfer?: Transferable[]): void;
}

const scope = globalThis as unknown as WorkerScope;

let encoder: Encoder | undefined;
let credits = 0;
let creditWaiter: (() => void) | undefined;
let draining: Promise<void> | undefined;
let closing: Promise<void> | undefined;

function post(message: FromEdgeWorker, transfer: Transferable[] = []) {
  scope.postMessage(message, transfer);
}

function postError(e: unknown, id?: number) {
  const err = e as { code?: string; message?: string };
  post({ t: "error", code: err?.code ?? "WORKER_ERROR", message: err?.message ?? String(e), id });
}

function wakeDrain() {
  const w = creditWaiter;
  creditWaiter = undefined;
  w?.();
}

/** Sends packets as the main side grants credit; ends when the encoder's packets end (flush or close). */
async function drain(enc: Encoder) {
  try {
    for await (const packet of enc.packets()) {
      while (credits <= 0 && !enc.closed) await new Promise<void>((r) => (creditWaiter = r));
      if (enc.closed) return;
      credits--;
      sendChunk(packet);
    }
  } catch (e) {
    if (!enc.closed) postError(e);
  }
}

function sendChunk(packet: Packet) {
  // Transfer the bytes when the packet owns its whole buffer; otherwise copy once into one that it does.
  const own = packet.data.byteOffset === 0 && packet.data.byteLength === packet.data.buffer.byteLength;
  const data = own ? packet.data : packet.data.slice();
  post(
    { t: "chunk", data, timestamp: packet.timestamp, duration: packet.duration, keyFrame: packet.keyFrame },
    [data.buffer as ArrayBuffer],
  );
}

async function init(config: ToEdgeWorker & { t: "init" }) {
  const { codec = "svt-av1", ...rest } = config.config;
  if (encoder && !encoder.closed) {
    throw new EncoderError("INVALID_STATE", "This edge worker already has an encoder: close it first");
  }
  encoder = codec === "rav1e"
    ? await Rav1eEncoder.create(rest as unknown as Parameters<typeof Rav1eEncoder.create>[0])
    : await SvtAv1Encoder.create(rest as unknown as Parameters<typeof SvtAv1Encoder.create>[0]);
  credits = 0;
  closing = undefined;
  draining = drain(encoder);
  post({
    t: "ready",
    sequenceHeader: encoder.sequenceHeader(),
    version: (encoder as SvtAv1Encoder | Rav1eEncoder).version,
    codec: encoder.codec,
  });
}

function close(): Promise<void> {
  closing ??= (async () => {
    const enc = encoder;
    encoder = undefined;
    if (enc) {
      await enc.close();
      wakeDrain();
      await draining;
    }
    draining = undefined;
  })();
  return closing;
}

scope.onmessage = (e: MessageEvent<ToEdgeWorker>) => {
  const msg = e.data;
  switch (msg.t) {
    case "init":
      init(msg).catch((err) => postError(err));
      return;
    case "frame": {
      const enc = encoder;
      if (!enc) return postError(new EncoderError("INVALID_STATE", "No encoder: send init first"), msg.id);
      enc.encode({ data: msg.data, timestamp: msg.timestamp, duration: msg.duration }, {
        keyFrame: msg.keyFrame,
      }).then(
        () => post({ t: "accepted", id: msg.id }),
        (err) => postError(err, msg.id),
      );
      return;
    }
    case "credit":
      credits += msg.n;
      wakeDrain();
      return;
    case "flush": {
      const enc = encoder;
      if (!enc) return postError(new EncoderError("INVALID_STATE", "No encoder: send init first"));
      // "flushed" when the encoder has produced every packet (they may still wait for credit); "end" once
      // the last chunk was posted.
      const drained = draining;
      enc.flush().then(async () => {
        post({ t: "flushed" });
        await drained;
        if (!enc.closed) post({ t: "end" });
      }, (err) => postError(err));
      return;
    }
    case "close":
      close().then(() => post({ t: "closed" }), (err) => postError(err));
      return;
  }
};
