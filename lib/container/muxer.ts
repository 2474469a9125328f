/**
 * The engine under the WebM and MP4 writers and the live stream formats: one mediabunny `Output` with one
 * AV1 track, set up from the first key frame's sequence header, fed packets in order, writing positioned
 * chunks to a callback.
 * @module
 */

import { codecString } from "../av1/codec_string.ts";
import { findSequenceHeader, stripTemporalDelimiters } from "../av1/obu.ts";
import { parseSequenceHeader, type SequenceHeader } from "../av1/sequence_header.ts";
import { EncoderError } from "../errors.ts";
import type { ByteSink } from "../io/sink.ts";
import type { Packet, Rational, VideoInfo } from "../types.ts";
import { loadMediabunny } from "./mediabunny.ts";

/** The containers mediabunny writes for us. */
export type MuxerKind = "webm" | "mkv" | "mp4" | "fmp4";

/** Options of a {@linkcode ContainerMuxer}. */
export interface MuxerOptions {
  /** WebM/Matroska: write strictly forward with unknown sizes (live). */
  appendOnly?: boolean;
  /** Fragmented MP4: shortest fragment in seconds; a fragment always starts at a key frame. Default 0. */
  fragmentDuration?: number;
  /** Seconds per timestamp unit. Default `fps.den / fps.num` (timestamps count frames). */
  timeBase?: Rational;
  /** A sequence header OBU to use when the first key frame lacks one. */
  sequenceHeader?: Uint8Array;
}

/** Where a muxer's bytes go: `position` is the absolute offset of `data` in the output. */
export type PositionedWrite = (position: number, data: Uint8Array) => Promise<void>;

/** The codec string, and what else a track needs, from the first key frame. */
export interface TrackSetup {
  /** Full codec string `av01.P.LLT.DD.M.CCC.cp.tc.mc.F`: mediabunny builds `av1C` from it alone. */
  codec: string;
  sequenceHeader: SequenceHeader;
}

/**
 * The codec string of a stream from a key frame packet (or the fallback sequence header), as a clear
 * error when there is none.
 */
export function trackSetup(packet: Packet, fallback?: Uint8Array): TrackSetup {
  if (!packet.keyFrame) {
    throw new EncoderError(
      "INVALID_INPUT",
      "The first packet of a WebM or MP4 stream must be a key frame: start the container at a key frame",
    );
  }
  const obu = findSequenceHeader(packet.data) ?? (fallback?.length ? findSequenceHeader(fallback) : null);
  if (!obu) {
    throw new EncoderError(
      "INVALID_INPUT",
      "The first key frame carries no sequence header OBU, which WebM and MP4 need for the codec string: "
        + "pass sequenceHeader: encoder.sequenceHeader()",
    );
  }
  const sequenceHeader = parseSequenceHeader(obu, { format: "obu" });
  return { codec: codecString(sequenceHeader, { full: true }), sequenceHeader };
}

/** Positioned writes onto a sink that appends, rewriting earlier bytes through `seekWrite` when it can. */
export function sinkWriter(sink: ByteSink): PositionedWrite {
  let end = 0;
  return async (position, data) => {
    if (position === end) {
      end += data.length;
      return sink.write(data);
    }
    if (position > end) {
      // mediabunny pads gaps itself; a gap here would be a bug, not something to paper over.
      throw new EncoderError("INVALID_STATE", `Container write at ${position} leaves a gap after ${end}`);
    }
    if (!sink.seekWrite) {
      throw new EncoderError(
        "INVALID_STATE",
        "This container rewrites earlier bytes, which a stream cannot: write to a file, or use live output",
      );
    }
    const overlap = Math.min(data.length, end - position);
    await sink.seekWrite(position, data.subarray(0, overlap));
    if (overlap < data.length) {
      const rest = data.subarray(overlap);
      end += rest.length;
      await sink.write(rest);
    }
  };
}

function wrap(err: unknown, action: string): EncoderError {
  if (err instanceof EncoderError) return err;
  const detail = (err as Error)?.message ?? String(err);
  return new EncoderError("INVALID_INPUT", `${action}: ${detail}`, { cause: err });
}

type Mb = typeof import("mediabunny");
type Output = InstanceType<Mb["Output"]>;
type VideoSource = InstanceType<Mb["EncodedVideoPacketSource"]>;

/**
 * One container stream: packets in decode order go in, positioned bytes come out through `write`.
 * Calls run one after another even when callers do not await each one.
 */
export class ContainerMuxer {
  #kind: MuxerKind;
  #write: PositionedWrite;
  #info: Pick<VideoInfo, "width" | "height" | "fps">;
  #options: MuxerOptions;
  #secondsPerUnit: number;
  #output: Output | undefined;
  #source: VideoSource | undefined;
  #setup: TrackSetup | undefined;
  #chain: Promise<void> = Promise.resolve();
  #failed: EncoderError | undefined;
  #count = 0;

  constructor(
    kind: MuxerKind,
    write: PositionedWrite,
    info: Pick<VideoInfo, "width" | "height" | "fps">,
    options: MuxerOptions = {},
  ) {
    const { num, den } = info.fps;
    if (!(Number.isInteger(num) && num > 0 && Number.isInteger(den) && den > 0)) {
      throw new EncoderError("INVALID_CONFIG", `Frame rate must be a positive rational, got ${num}/${den}`);
    }
    const tb = options.timeBase ?? { num: den, den: num };
    if (!(tb.num > 0 && tb.den > 0)) {
      throw new EncoderError("INVALID_CONFIG", `Time base must be positive, got ${tb.num}/${tb.den}`);
    }
    const fd = options.fragmentDuration ?? 0;
    if (!(fd >= 0) || !Number.isFinite(fd)) {
      throw new EncoderError("INVALID_CONFIG", `fragmentDuration must be 0 or more seconds, got ${fd}`);
    }
    this.#kind = kind;
    this.#write = write;
    this.#info = info;
    this.#options = options;
    this.#secondsPerUnit = tb.num / tb.den;
  }

  /** Packets added so far. */
  get packetCount(): number {
    return this.#count;
  }

  /** The track's codec string once the first packet went in. */
  get codec(): string | undefined {
    return this.#setup?.codec;
  }

  #serial(step: () => Promise<void>): Promise<void> {
    const run = this.#chain.then(() => {
      if (this.#failed) throw this.#failed;
      return step();
    }).catch((err) => {
      this.#failed ??= wrap(err, `Writing ${this.#kind.toUpperCase()} failed`);
      throw this.#failed;
    });
    this.#chain = run.catch(() => {});
    return run;
  }

  async #start(packet: Packet): Promise<void> {
    this.#setup = trackSetup(packet, this.#options.sequenceHeader);
    const mb = await loadMediabunny();
    const format = this.#kind === "webm"
      ? new mb.WebMOutputFormat({ appendOnly: this.#options.appendOnly ?? false })
      : this.#kind === "mkv"
      ? new mb.MkvOutputFormat({ appendOnly: this.#options.appendOnly ?? false })
      : new mb.Mp4OutputFormat(
        this.#kind === "mp4"
          ? { fastStart: "in-memory" }
          : { fastStart: "fragmented", minimumFragmentDuration: this.#options.fragmentDuration ?? 0 },
      );
    const write = this.#write;
    const target = new mb.StreamTarget(
      new WritableStream({ write: (chunk) => write(chunk.position, chunk.data) }),
    );
    const output = new mb.Output({ format, target });
    const source = new mb.EncodedVideoPacketSource("av1");
    output.addVideoTrack(source, { frameRate: this.#info.fps.num / this.#info.fps.den });
    await output.start();
    this.#output = output;
    this.#source = source;
  }

  /** Adds one packet; resolves when the container took it (backpressure from the sink included). */
  add(packet: Packet): Promise<void> {
    // A bad packet is refused without breaking the stream: the caller may skip it.
    for (const [name, v] of [["timestamp", packet.timestamp], ["duration", packet.duration ?? 0]] as const) {
      if (!Number.isFinite(v) || (name === "duration" && v < 0)) {
        return Promise.reject(
          new EncoderError("INVALID_FRAME", `Packet ${name} must be a finite number of 0 or more, got ${v}`),
        );
      }
    }
    if (!(packet.data instanceof Uint8Array)) {
      return Promise.reject(new EncoderError("INVALID_FRAME", "Packet data must be a Uint8Array"));
    }
    return this.#serial(async () => {
      const first = !this.#output;
      if (first) await this.#start(packet);
      const mb = await loadMediabunny();
      const mp4 = this.#kind === "mp4" || this.#kind === "fmp4";
      // The AV1-in-ISOBMFF binding forbids temporal delimiters in samples; Matroska keeps them as they are.
      const data = mp4 ? stripTemporalDelimiters(packet.data) : packet.data;
      const s = this.#secondsPerUnit;
      const encoded = new mb.EncodedPacket(
        data,
        packet.keyFrame ? "key" : "delta",
        packet.timestamp * s,
        (packet.duration ?? 0) * s,
      );
      const meta = first
        ? {
          decoderConfig: {
            codec: this.#setup!.codec,
            codedWidth: this.#info.width,
            codedHeight: this.#info.height,
          },
        }
        : undefined;
      await this.#source!.add(encoded, meta);
      this.#count++;
    });
  }

  /** Writes what the container keeps until the end (MP4's index, WebM's sizes and cues). */
  finish(): Promise<void> {
    return this.#serial(async () => {
      if (this.#output && this.#output.state !== "finalized") await this.#output.finalize();
    });
  }

  /** Stops without finishing the container; idempotent, never throws. */
  async cancel(): Promise<void> {
    this.#failed ??= new EncoderError("CLOSED", `The ${this.#kind.toUpperCase()} stream was cancelled`);
    await this.#chain;
    const output = this.#output;
    if (output && output.state !== "finalized" && output.state !== "canceled") {
      await output.cancel().catch(() => {});
    }
  }
}
