/**
 * Stream formats: how packets become the bytes of one connection or one file. A sink asks its format for a
 * header at the start of every connection, so each connection's bytes are a valid stream by themselves;
 * the containers add WebM and MP4 by implementing {@linkcode StreamFormat} without touching transports.
 * @module
 */

import { findSequenceHeader } from "../av1/obu.ts";
import { EncoderError } from "../errors.ts";
import { encodeIvfHeader, IVF_FRAME_HEADER_SIZE } from "../io/ivf.ts";
import { startsWithTemporalDelimiter, TEMPORAL_DELIMITER } from "../io/obu.ts";
import type { Packet, VideoInfo } from "../types.ts";

/**
 * Turns packets into the bytes of a stream. `header()` is called at the start of every connection (or
 * file) and resets any per-connection state; `packet()` is then called for each packet sent on that
 * connection, in order, starting with a key frame; `end()` adds a trailer at a clean end. Each may answer
 * with a promise (the WebM and MP4 formats do, since their muxer is asynchronous); calls never overlap.
 */
export interface StreamFormat {
  /** Short name: `"ivf"`, `"obu"`, `"webm"`, `"mkv"`, `"fmp4"`. */
  readonly name: string;
  /** MIME type for HTTP uploads. */
  readonly contentType: string;
  /** Bytes each connection starts with (may be empty); starts a new connection's state. */
  header(): Uint8Array | Promise<Uint8Array>;
  /** The bytes of one packet on the current connection (may be empty while a container buffers). */
  packet(packet: Packet): Uint8Array | Promise<Uint8Array>;
  /** Bytes to send after the last packet of a clean end. */
  end?(): Uint8Array | Promise<Uint8Array>;
  /**
   * For seekable outputs (files): bytes to overwrite at the end once the number of packets is known,
   * such as the IVF frame count.
   */
  finalize?(packets: number): { offset: number; bytes: Uint8Array } | undefined;
}

/**
 * IVF: the 32-byte file header on each connection (frame count 0: unknown while streaming), then each
 * packet behind its 12-byte frame header with the packet timestamp.
 *
 * @example
 * ```ts
 * import { ivfFormat } from "./format.ts";
 * const ivf = ivfFormat({ width: 64, height: 64, fps: { num: 30, den: 1 } });
 * console.log(ivf.header().length, ivf.packet({ data: new Uint8Array(3), timestamp: 0, duration: 1, keyFrame: true }).length); // 32 15
 * ```
 */
export function ivfFormat(info: Pick<VideoInfo, "width" | "height" | "fps">): StreamFormat {
  const header = encodeIvfHeader(info, 0);
  return {
    name: "ivf",
    contentType: "video/x-ivf",
    header: () => header.slice(),
    packet(packet) {
      const out = new Uint8Array(IVF_FRAME_HEADER_SIZE + packet.data.length);
      const view = new DataView(out.buffer);
      if (!Number.isSafeInteger(packet.timestamp)) {
        throw new EncoderError(
          "INVALID_FRAME",
          `IVF timestamp must be a safe integer, got ${packet.timestamp}`,
        );
      }
      view.setUint32(0, packet.data.length, true);
      view.setBigInt64(4, BigInt(packet.timestamp), true);
      out.set(packet.data, IVF_FRAME_HEADER_SIZE);
      return out;
    },
    finalize(packets) {
      const bytes = new Uint8Array(4);
      new DataView(bytes.buffer).setUint32(0, Math.min(packets, 0xffffffff), true);
      return { offset: 24, bytes };
    },
  };
}

/** Options of {@linkcode obuFormat}. */
export interface ObuFormatOptions {
  /**
   * The encoder's sequence header OBU (`encoder.sequenceHeader()`). When given, a key frame packet that
   * lacks one gets it inserted after its temporal delimiter, so that every connection starts decodable.
   */
  sequenceHeader?: Uint8Array;
}

/**
 * The AV1 low-overhead bitstream (`.obu`): packets back to back. Each connection starts at a key frame
 * packet that carries the sequence header (inserted from `sequenceHeader` when the packet lacks it), which
 * is the stream header of this format; a temporal delimiter is added to packets without one.
 *
 * @example
 * ```ts
 * import { obuFormat } from "./format.ts";
 * const obu = obuFormat();
 * console.log(obu.packet({ data: new Uint8Array([0x12, 0x00]), timestamp: 0, duration: 1, keyFrame: false }).length); // 2
 * ```
 */
export function obuFormat(options: ObuFormatOptions = {}): StreamFormat {
  const sequenceHeader = options.sequenceHeader?.length ? options.sequenceHeader.slice() : undefined;
  return {
    name: "obu",
    contentType: "video/av1",
    header: () => new Uint8Array(0),
    packet(packet) {
      let data = packet.data;
      const hasTd = startsWithTemporalDelimiter(data);
      const body = hasTd ? data.subarray(TEMPORAL_DELIMITER.length) : data;
      const insert = packet.keyFrame && sequenceHeader !== undefined && !hasSequenceHeader(body);
      if (hasTd && !insert) return data;
      const parts = [TEMPORAL_DELIMITER, ...(insert ? [sequenceHeader] : []), body];
      data = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      let at = 0;
      for (const p of parts) {
        data.set(p, at);
        at += p.length;
      }
      return data;
    },
  };
}

function hasSequenceHeader(bytes: Uint8Array): boolean {
  try {
    return findSequenceHeader(bytes) !== null;
  } catch {
    // Unparseable OBUs: leave the packet as it is rather than guess where to insert.
    return true;
  }
}
