/**
 * Messages between an encoder object on the caller's thread and the Worker that owns the native encoder.
 * Frame and packet bytes are transferred, never copied, across the boundary.
 * @module
 */
import type { EncoderErrorCode } from "../errors.ts";
import type { LibraryImage } from "../types.ts";

/** The backends an encoder thread can host. */
export type BackendName = "svt-av1" | "rav1e";

/** Caller → worker. A thread hosts one encoder at a time: `init`, frames, `flush`, `close`, then the next. */
export type ToWorker =
  /** First message to a new thread: the lock its SVT-AV1 set-up and tear-down share with the pool's threads. */
  | { t: "setup"; lock: SharedArrayBuffer }
  | { t: "init"; backend: BackendName; config: unknown }
  | { t: "frame"; id: number; data: Uint8Array; keyFrame: boolean; qp?: number }
  | { t: "flush" }
  /**
   * Frees the encoder; with `releaseMemory` the thread then hands the native heap's free pages back to
   * the system (see `EncoderThreadOptions.releaseMemory`).
   */
  | { t: "close"; releaseMemory?: boolean }
  /** Hands the native heap's free pages back to the system; answers nothing (sent to an idle thread). */
  | { t: "release-memory" }
  /** Blocks the thread in a native call for `ms` (tests of stall detection). */
  | { t: "block"; ms: number }
  /** Ends the idle thread. */
  | { t: "exit" };

/** One encoded packet as the worker posts it. Packets are in decode order, one per shown frame. */
export interface WorkerPacket {
  data: Uint8Array;
  keyFrame: boolean;
  /**
   * Position of the packet's frame in input order, from 0, when the library reports it (rav1e's
   * `input_frameno`). Without it packets are matched to frames in the order they come.
   */
  frameIndex?: number;
}

/** Worker → caller. */
export type FromWorker =
  | {
    t: "ready";
    sequenceHeader: Uint8Array;
    version: string;
    /** Milliseconds in the library's own set-up calls (SVT-AV1 init_handle to init; rav1e config to context). */
    nativeMs: number;
    /** Milliseconds on the thread from the `init` message to this reply (library loading included). */
    threadMs: number;
    /** Which image of the library the encoder runs on (SVT-AV1; rav1e has no process-wide state). */
    libraryImage?: LibraryImage;
  }
  | { t: "accepted"; id: number }
  | { t: "packets"; packets: WorkerPacket[] }
  | { t: "flushed" }
  | { t: "closed" }
  | { t: "unblocked" }
  | { t: "error"; code: EncoderErrorCode; message: string };

/**
 * What a backend does inside its worker. Calls may block: they run on the worker's own thread (or, with
 * `host: "caller"`, are Deno's nonblocking calls); each may return a promise, which the thread awaits
 * before it handles the next message.
 */
export interface WorkerBackend {
  /** Opens the library and creates the encoder; returns the sequence header and library version. */
  init(
    config: unknown,
  ): Promise<{ sequenceHeader: Uint8Array; version: string; nativeMs: number; libraryImage?: LibraryImage }>;
  /**
   * Hands one frame to the encoder; returns once the encoder holds it. `emit` receives packets. `qp` is
   * the frame's quantizer where the backend takes one per frame.
   */
  send(
    data: Uint8Array,
    keyFrame: boolean,
    emit: (p: WorkerPacket) => void,
    qp?: number,
  ): void | Promise<void>;
  /** Collects packets that are ready without blocking. */
  poll(emit: (p: WorkerPacket) => void): void | Promise<void>;
  /** Signals end of stream and blocks until every packet is out. */
  finish(emit: (p: WorkerPacket) => void): void | Promise<void>;
  /** Frees the native encoder. */
  close(): void | Promise<void>;
  /**
   * A `close` has arrived while earlier messages are still being handled: stop making long calls, since
   * whatever they would encode is dropped. Only where messages arrive during a long call (the caller's
   * thread, whose loop turns between calls); what is under way returns early, and `close` follows.
   */
  abandon?(): void;
}
