/**
 * {@linkcode PacketSink}: a `WritableStream<Packet>` over any {@linkcode Transport}, with reconnection,
 * exponential backoff, a write watchdog, and the `block` / `buffer` / `drop` / `reinit` policies for a peer
 * that is gone or slower than real time. The network sinks (TCP, WebSocket, HTTP) and the local ones (file,
 * stdout) are all this class with a different transport.
 *
 * Why the `block` policy keeps more than one keyframe group: a write that succeeded only means the
 * kernel has the bytes (docs/transport.md). A group stays until `retainBytes` have followed it on the same
 * connection — more than the socket buffers hold — and a new connection resends from the oldest kept key
 * frame.
 * @module
 */

import { EncoderError } from "../errors.ts";
import type { Transport } from "../transport/link.ts";
import type { Packet, Rational, VideoInfo } from "../types.ts";
import type { BackoffOptions } from "./backoff.ts";
import { ivfFormat, obuFormat, type StreamFormat } from "./format.ts";
import { SinkCore } from "./sink/core.ts";

/** What a sink does while its peer is gone or slower than real time. */
export type DisconnectPolicy = "block" | "buffer" | "drop" | "reinit";

/** Options every sink takes. */
export interface PacketSinkOptions extends BackoffOptions {
  /**
   * How packets become bytes: a {@linkcode StreamFormat}, or `"ivf"` (default; needs `info`) or `"obu"`.
   */
  format?: StreamFormat | "ivf" | "obu";
  /** Size and frame rate of the video: the IVF header, and the time base of `maxBufferDuration`. */
  info?: Pick<VideoInfo, "width" | "height" | "fps">;
  /** The encoder's sequence header, for `format: "obu"` (see {@linkcode obuFormat}). */
  sequenceHeader?: Uint8Array;
  /** Seconds per timestamp unit. Default the inverse of `info.fps`, else 1/30. */
  timeBase?: Rational;
  /**
   * While the peer is gone or slow: `"block"` (default) holds the writer — and through backpressure the
   * encoder and the source — and loses nothing; `"buffer"` keeps up to `maxBufferBytes` /
   * `maxBufferDuration` and then drops to the next key frame; `"drop"` discards packets until a key frame;
   * `"reinit"` discards packets like `drop` while the peer is gone, and when a connection returns calls
   * `onReinit` so that a fresh encoder starts the new connection's stream (new sequence header, a key
   * frame first, timestamps continuing).
   */
  onDisconnect?: DisconnectPolicy;
  /** Bound of what `buffer` keeps (and of the queue of `drop` while connected), in bytes. Default 16 MiB for buffer, 1 MiB for drop. */
  maxBufferBytes?: number;
  /** Bound of what `buffer` keeps, in seconds of video. Default 10 for buffer, 2 for drop. */
  maxBufferDuration?: number;
  /**
   * `block` and `buffer` keep a sent keyframe group until this many bytes followed it on the same
   * connection, then consider it read. Default 16 MiB: more than a socket's send buffer (Linux caps it at
   * 4 MiB) and what a slowly read receive buffer holds. Raise it for links with a large bandwidth-delay product.
   */
  retainBytes?: number;
  /** Hard cap on what `block` keeps for resending, in bytes. Default 64 MiB. */
  maxRetainBytes?: number;
  /** A write that makes no progress for this long is a stalled peer: reconnect. In ms, default 10 000. */
  writeTimeout?: number;
  /** Connection timeout in ms. Default 10 000. */
  connectTimeout?: number;
  /**
   * Called when the sink needs a key frame sooner than the encoder would make one (the link dropped, a
   * new connection, packets dropped): pass `() => encoder.requestKeyFrame()`.
   */
  onKeyFrameNeeded?: () => void;
  /**
   * Required by `onDisconnect: "reinit"`: called when a connection opens after the stream was interrupted
   * (a lost connection, or packets dropped before the first one). It replaces the encoder with a fresh
   * one and resolves with the timestamp of the first frame the fresh encoder gets; the sink drops every
   * packet before it (the old encoder's) and every packet until then. Pass `() => encode.reinit()`
   * ({@linkcode createEncodeStream}). Resolving with nothing means: drop until the next key frame.
   */
  onReinit?: () => Promise<number | void> | number | void;
  /** Aborts the sink: it errors with an `ABORTED` error. */
  signal?: AbortSignal;
}

/** Link state, as the progress line shows it. */
export type SinkState = "connecting" | "connected" | "reconnecting" | "ending" | "closed" | "failed";

/** Counters of a sink. */
export interface SinkStats {
  /** Where the sink is in its life: connecting, open, reconnecting, closed or failed. */
  state: SinkState;
  /** Connections opened. */
  connections: number;
  /** Bytes written to links, headers and resends included. */
  bytes: number;
  /** Packets written to links, resends included. */
  packets: number;
  /** Packets written again on a new connection. */
  resent: number;
  /** Packets discarded by `drop` / `buffer`. */
  dropped: number;
  /** Bytes of packets dropped by the disconnect policy so far. */
  droppedBytes: number;
  /** Packets held now: waiting to be sent or kept for resending. */
  buffered: number;
  /** Bytes waiting to be written now. */
  bufferedBytes: number;
  /** Times `onKeyFrameNeeded` was called. */
  keyFramesRequested: number;
  /** Reconnection attempts made, over all outages. */
  reconnects: number;
  /** Times `onReinit` was called (`reinit` policy). */
  reinits: number;
}

/** Events of a sink and what they carry. */
export interface SinkEvents {
  /** A connection is open; its header and `resent` packets were written. */
  connect: { connection: number; resent: number };
  /** A connection was lost. */
  disconnect: { connection: number; cause: Error };
  /** About to retry after `delay` ms: attempt `attempt` of this outage. */
  reconnect: { attempt: number; delay: number; cause: Error };
  /** Packets were discarded. */
  drop: {
    packets: number;
    bytes: number;
    reason: "disconnected" | "buffer-full" | "no-keyframe" | "reinit";
  };
  /** `reinit` policy: a connection opened and the sink asked for a fresh encoder. */
  reinit: { connection: number };
  /** The sink asked for a key frame. */
  keyframe: { reason: "disconnected" | "connected" | "dropped" };
  /** The stream ended and the peer confirmed it. */
  end: Record<string, never>;
  /** The sink failed for good. */
  error: { error: Error };
}

/** Resolves the `format` option. */
export function resolveFormat(options: PacketSinkOptions): StreamFormat {
  const f = options.format ?? "ivf";
  if (typeof f === "object") return f;
  if (f === "obu") return obuFormat({ sequenceHeader: options.sequenceHeader });
  if (f === "ivf") {
    if (!options.info) {
      throw new EncoderError(
        "INVALID_CONFIG",
        "An IVF sink needs info: { width, height, fps } for its header: pass the encoder's info",
      );
    }
    return ivfFormat(options.info);
  }
  throw new EncoderError("INVALID_CONFIG", `Unknown stream format ${JSON.stringify(f)}: use "ivf" or "obu"`);
}

/**
 * A `WritableStream<Packet>` that delivers packets over a {@linkcode Transport}: every connection starts
 * with the format's header and then a key frame; lost connections are retried with backoff; `close()`
 * resolves once the peer confirmed the end. Made by {@linkcode tcpSink}, {@linkcode webSocketSink},
 * {@linkcode httpSink}, {@linkcode fileSink}, {@linkcode stdoutSink} and {@linkcode createSink}.
 *
 * @example
 * ```ts
 * import { PacketSink } from "./packet_sink.ts";
 * import { writableTransport } from "../transport/local.ts";
 * const chunks: Uint8Array[] = [];
 * const sink = new PacketSink(writableTransport(new WritableStream({ write: (c) => void chunks.push(c) })), {
 *   info: { width: 64, height: 64, fps: { num: 30, den: 1 } },
 * });
 * sink.on("connect", (e) => console.log("connection", e.connection));
 * const writer = sink.getWriter();
 * await writer.write({ data: new Uint8Array([0x12, 0x00]), timestamp: 0, duration: 1, keyFrame: true });
 * await writer.close();
 * console.log(sink.stats.packets); // 1
 * ```
 */
export class PacketSink extends WritableStream<Packet> {
  #core: SinkCore;

  /** Makes a sink over a transport; it connects on the first write. */
  constructor(transport: Transport, options: PacketSinkOptions = {}) {
    const core = new SinkCore(transport, options);
    super({
      start: (controller) => core.bindStream((e) => controller.error(e)),
      write: (packet) => core.write(packet),
      close: () => core.close(),
      abort: (reason) => core.abort(reason),
    }, { highWaterMark: 1 });
    this.#core = core;
  }

  /** Counters: a snapshot. */
  get stats(): SinkStats {
    return { ...this.#core.stats };
  }

  /** The link state. */
  get state(): SinkState {
    return this.#core.stats.state;
  }

  /** Where the sink writes. */
  get target(): string {
    return this.#core.transport.name;
  }

  /** The policy in force. */
  get policy(): DisconnectPolicy {
    return this.#core.policy;
  }

  /** Listens to an event; returns a function that removes the listener. */
  on<K extends keyof SinkEvents>(type: K, listener: (event: SinkEvents[K]) => void): () => void {
    return this.#core.on(type, listener);
  }
}

export type { Transport };
