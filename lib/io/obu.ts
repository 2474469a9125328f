/**
 * The AV1 low-overhead bitstream format (spec Section 5, the `.obu` files of aomdec and `ffmpeg -f obu`):
 * temporal units written back to back, each a run of OBUs that carry their own size fields.
 * @module
 */

import { EncoderError } from "../errors.ts";
import type { Packet } from "../types.ts";
import { type ByteSink, toByteSink } from "./sink.ts";

/** OBU type of a temporal delimiter. */
const OBU_TEMPORAL_DELIMITER = 2;

/** A temporal delimiter OBU with its (zero) size field. */
export const TEMPORAL_DELIMITER: Uint8Array<ArrayBuffer> = new Uint8Array([0x12, 0x00]);

/**
 * True when `bytes` start with a temporal delimiter OBU, as every temporal unit of the low-overhead
 * format should.
 *
 * @example
 * ```ts
 * import { startsWithTemporalDelimiter } from "./obu.ts";
 * console.log(startsWithTemporalDelimiter(new Uint8Array([0x12, 0x00, 0x0a]))); // true
 * ```
 */
export function startsWithTemporalDelimiter(bytes: Uint8Array): boolean {
  if (bytes.length === 0) return false;
  const header = bytes[0];
  const forbidden = header >> 7;
  const type = (header >> 3) & 0x0f;
  return forbidden === 0 && type === OBU_TEMPORAL_DELIMITER;
}

/**
 * True when the first OBU of `bytes` has `obu_has_size_field` set, which the low-overhead format requires.
 *
 * @example
 * ```ts
 * import { firstObuHasSizeField } from "./obu.ts";
 * console.log(firstObuHasSizeField(new Uint8Array([0x12, 0x00]))); // true
 * ```
 */
export function firstObuHasSizeField(bytes: Uint8Array): boolean {
  return bytes.length > 0 && (bytes[0] & 0x02) !== 0;
}

/** Options of {@linkcode ObuWriter}. */
export interface ObuWriterOptions {
  /** Put a temporal delimiter before each packet that lacks one (packets stripped for MP4). Default false. */
  insertTemporalDelimiters?: boolean;
}

/**
 * Writes packets as a Section 5 low-overhead bitstream: their bytes back to back, as they are.
 *
 * @example
 * ```ts
 * import { ObuWriter, fileSink } from "./mod.ts";
 * const obu = new ObuWriter(await fileSink("/tmp/example.obu"));
 * await obu.writePacket({ data: new Uint8Array([0x12, 0x00]) });
 * await obu.close();
 * ```
 */
export class ObuWriter implements AsyncDisposable {
  #sink: ByteSink;
  #insert: boolean;
  #count = 0;
  #bytes = 0;
  #closing: Promise<void> | null = null;

  /** `target` is a {@linkcode ByteSink} or a `WritableStream`. */
  constructor(target: ByteSink | WritableStream<Uint8Array>, options: ObuWriterOptions = {}) {
    this.#sink = toByteSink(target);
    this.#insert = options.insertTemporalDelimiters ?? false;
  }

  /** Packets written so far. */
  get packetCount(): number {
    return this.#count;
  }

  /** Bytes written so far. */
  get byteLength(): number {
    return this.#bytes;
  }

  /** Appends one packet's OBUs. */
  writePacket(packet: Pick<Packet, "data">): Promise<void> {
    if (this.#closing) {
      return Promise.reject(new EncoderError("CLOSED", "ObuWriter is closed: create a new writer"));
    }
    const data = packet.data;
    if (data.length > 0 && !firstObuHasSizeField(data)) {
      return Promise.reject(
        new EncoderError(
          "INVALID_INPUT",
          "Packet OBUs have no size fields, which the low-overhead (.obu) format needs: write Annex B or IVF instead",
        ),
      );
    }
    let bytes = data;
    if (this.#insert && !startsWithTemporalDelimiter(data)) {
      bytes = new Uint8Array(TEMPORAL_DELIMITER.length + data.length);
      bytes.set(TEMPORAL_DELIMITER);
      bytes.set(data, TEMPORAL_DELIMITER.length);
    }
    this.#count++;
    this.#bytes += bytes.length;
    return this.#sink.write(bytes);
  }

  /** Closes the sink; idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#sink.close();
    return this.#closing;
  }

  /** Closes the writer, as {@linkcode close} does, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
