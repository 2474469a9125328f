/**
 * What the WebM and MP4 writers share: a sink, a muxer, `writePacket()` and an idempotent `close()`.
 * @module
 */

import { EncoderError } from "../errors.ts";
import { type ByteSink, toByteSink } from "../io/sink.ts";
import type { Packet, VideoInfo } from "../types.ts";
import { ContainerMuxer, type MuxerKind, type MuxerOptions, sinkWriter } from "./muxer.ts";

/** A container writer: the shape of `IvfWriter`, `ObuWriter`, `WebmWriter` and `Mp4Writer`. */
export interface ContainerWriter extends AsyncDisposable {
  /** Writes one packet (a temporal unit) in decode order; resolves when the sink took its bytes. */
  writePacket(packet: Packet): Promise<void>;
  /** Finishes the container and closes the sink; idempotent. */
  close(): Promise<void>;
}

/** The writer behind {@linkcode WebmWriter} and {@linkcode Mp4Writer}. */
export class MuxingWriter implements ContainerWriter {
  #sink: ByteSink;
  #muxer: ContainerMuxer;
  #name: string;
  #closing: Promise<void> | null = null;

  /** @internal Use {@linkcode WebmWriter} or {@linkcode Mp4Writer}. */
  constructor(
    name: string,
    kind: MuxerKind,
    target: ByteSink | WritableStream<Uint8Array>,
    info: Pick<VideoInfo, "width" | "height" | "fps">,
    options: MuxerOptions & { appendOnlyWhenForwardOnly?: boolean },
  ) {
    this.#name = name;
    this.#sink = toByteSink(target);
    const appendOnly = options.appendOnly ?? (options.appendOnlyWhenForwardOnly && !this.#sink.seekWrite);
    this.#muxer = new ContainerMuxer(kind, sinkWriter(this.#sink), info, { ...options, appendOnly });
  }

  /** Packets written so far. */
  get packetCount(): number {
    return this.#muxer.packetCount;
  }

  /** The codec string in the container, known after the first packet: `av01.P.LLT.DD.M.CCC.cp.tc.mc.F`. */
  get codec(): string | undefined {
    return this.#muxer.codec;
  }

  /** True once `close()` was called. */
  get closed(): boolean {
    return this.#closing !== null;
  }

  /**
   * Writes one packet. The first must be a key frame carrying the sequence header; timestamps and
   * durations are in the time base (frames of `info.fps` unless `timeBase` was given).
   */
  writePacket(packet: Packet): Promise<void> {
    if (this.#closing) {
      return Promise.reject(new EncoderError("CLOSED", `${this.#name} is closed: create a new writer`));
    }
    return this.#muxer.add(packet);
  }

  /** Writes the end of the container (index, sizes) and closes the sink; idempotent. With no packet written, the sink is closed empty. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      try {
        await this.#muxer.finish();
      } catch (err) {
        await this.#muxer.cancel();
        throw err;
      } finally {
        await this.#sink.close();
      }
    })();
    return this.#closing;
  }

  /** Closes the writer, as {@linkcode close} does, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
