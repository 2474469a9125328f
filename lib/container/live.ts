/**
 * Live WebM and fragmented MP4 as {@linkcode StreamFormat}s for the network sinks: every connection gets a
 * complete stream of its own — WebM's EBML header, segment and tracks, or fMP4's `ftyp` and `moov` — that
 * starts at a key frame, so a peer that connects (or reconnects) plays from its first byte.
 * @module
 */

import { findSequenceHeader } from "../av1/obu.ts";
import { EncoderError } from "../errors.ts";
import type { StreamFormat } from "../stream/format.ts";
import type { Packet, Rational, VideoInfo } from "../types.ts";
import { ContainerMuxer, type MuxerKind } from "./muxer.ts";

/** Options of {@linkcode webmStreamFormat} and {@linkcode fmp4StreamFormat}. */
export interface LiveFormatOptions {
  /** The encoder's sequence header OBU (`encoder.sequenceHeader()`), for key frames that lack one. */
  sequenceHeader?: Uint8Array;
  /** Seconds per timestamp unit. Default `fps.den / fps.num`: timestamps count frames. */
  timeBase?: Rational;
}

/** Options of {@linkcode fmp4StreamFormat}. */
export interface Fmp4StreamFormatOptions extends LiveFormatOptions {
  /** The shortest fragment in seconds. Default 0: a fragment per key-frame interval. */
  fragmentDuration?: number;
}

/** Options of {@linkcode webmStreamFormat}. */
export interface WebmStreamFormatOptions extends LiveFormatOptions {
  /** Matroska DocType instead of WebM. Default false. */
  matroska?: boolean;
}

const EMPTY = new Uint8Array(0);

function join(chunks: Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

interface Connection {
  muxer: ContainerMuxer;
  chunks: Uint8Array[];
}

function liveFormat(
  kind: MuxerKind,
  contentType: string,
  info: Pick<VideoInfo, "width" | "height" | "fps">,
  options: LiveFormatOptions & { fragmentDuration?: number },
): StreamFormat {
  let connection: Connection | undefined;
  let sequenceHeader = options.sequenceHeader?.length ? options.sequenceHeader.slice() : undefined;
  const open = (): Connection => {
    const chunks: Uint8Array[] = [];
    let end = 0;
    const write = (position: number, data: Uint8Array) => {
      if (position !== end) {
        return Promise.reject(
          new EncoderError("INVALID_STATE", `Live ${kind} output went back from ${end} to ${position}`),
        );
      }
      end += data.length;
      chunks.push(data);
      return Promise.resolve();
    };
    const muxer = new ContainerMuxer(kind, write, info, {
      appendOnly: true,
      fragmentDuration: options.fragmentDuration,
      timeBase: options.timeBase,
      sequenceHeader,
    });
    return { muxer, chunks };
  };
  // Bytes the connection's muxer produced so far; the muxer writes before `add()` resolves.
  const drain = (c: Connection) => c.chunks.length ? join(c.chunks.splice(0)) : EMPTY;
  return {
    name: kind === "fmp4" ? "fmp4" : kind,
    contentType,
    header() {
      // A new connection: the old stream is abandoned, the next packet (a key frame) starts a new one.
      const old = connection;
      connection = undefined;
      if (old) void old.muxer.cancel();
      return EMPTY;
    },
    async packet(packet: Packet) {
      if (packet.keyFrame) {
        // Remember the latest sequence header so a later connection can start at a key frame without one.
        try {
          const sh = findSequenceHeader(packet.data);
          if (sh) sequenceHeader = sh.slice();
        } catch { /* not parseable: the muxer reports it if it matters */ }
      }
      if (!connection) {
        if (!packet.keyFrame) {
          throw new EncoderError(
            "INVALID_STATE",
            `A live ${kind} connection must start at a key frame, got a packet at ${packet.timestamp}`,
          );
        }
        connection = open();
      }
      const c = connection;
      await c.muxer.add(packet);
      return drain(c);
    },
    async end() {
      const c = connection;
      connection = undefined;
      if (!c) return EMPTY;
      await c.muxer.finish();
      return drain(c);
    },
  };
}

/**
 * Live WebM for the sinks: written forward with unknown sizes; each connection starts with the EBML
 * header, segment and tracks, then clusters from a key frame. Content type `video/webm`.
 *
 * @example
 * ```ts
 * import { webmStreamFormat } from "./live.ts";
 * import { tcpSink } from "../stream/sinks.ts";
 * const info = { width: 160, height: 120, fps: { num: 30, den: 1 } };
 * const sink = tcpSink("tcp://127.0.0.1:9000", { format: webmStreamFormat(info), info, maxAttempts: 0 });
 * await sink.close().catch((e) => console.log(e.message)); // nobody listens here
 * ```
 */
export function webmStreamFormat(
  info: Pick<VideoInfo, "width" | "height" | "fps">,
  options: WebmStreamFormatOptions = {},
): StreamFormat {
  return liveFormat(
    options.matroska ? "mkv" : "webm",
    options.matroska ? "video/x-matroska" : "video/webm",
    info,
    options,
  );
}

/**
 * Live fragmented MP4 for the sinks: each connection gets `ftyp` and `moov` (the init segment) with its
 * first fragment, then a `moof`+`mdat` fragment per key-frame interval, each starting at a key frame. A
 * fragment goes out when the next key frame arrives, so latency is one key-frame interval. Content type
 * `video/mp4`.
 *
 * @example
 * ```ts
 * import { fmp4StreamFormat } from "./live.ts";
 * import { httpSink } from "../stream/sinks.ts";
 * const info = { width: 160, height: 120, fps: { num: 30, den: 1 } };
 * const sink = httpSink("http://127.0.0.1:9002/live.mp4", { format: fmp4StreamFormat(info), info, maxAttempts: 0 });
 * await sink.close().catch((e) => console.log(e.message));
 * ```
 */
export function fmp4StreamFormat(
  info: Pick<VideoInfo, "width" | "height" | "fps">,
  options: Fmp4StreamFormatOptions = {},
): StreamFormat {
  return liveFormat("fmp4", "video/mp4", info, options);
}
