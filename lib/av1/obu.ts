/**
 * OBU streams (AV1 spec section 5, "low-overhead bitstream format"): listing OBUs, cutting a stream into
 * temporal units, dropping temporal delimiters for MP4, and finding sequence headers and key frames.
 * @module
 */

import { malformed } from "./bit_reader.ts";
import { KEY_FRAME, parseFrameHeaderStart } from "./frame_header.ts";
import {
  type Obu,
  OBU_FRAME,
  OBU_FRAME_HEADER,
  OBU_SEQUENCE_HEADER,
  OBU_TEMPORAL_DELIMITER,
  OBU_TILE_GROUP,
  readObu,
} from "./obu_header.ts";
import { parseSequenceHeader } from "./sequence_header.ts";

export {
  encodeLeb128,
  OBU_FRAME,
  OBU_FRAME_HEADER,
  OBU_METADATA,
  OBU_PADDING,
  OBU_REDUNDANT_FRAME_HEADER,
  OBU_SEQUENCE_HEADER,
  OBU_TEMPORAL_DELIMITER,
  OBU_TILE_GROUP,
  OBU_TILE_LIST,
  obuTypeName,
  readLeb128,
} from "./obu_header.ts";
export type { Obu, ObuTypeName } from "./obu_header.ts";

/**
 * Lists the OBUs of a buffer of concatenated OBUs (a temporal unit, or a whole Section 5 stream).
 * Every OBU but the last needs a size field; one without takes the rest of the buffer.
 * Throws an {@linkcode EncoderError} with code `"INVALID_INPUT"` saying at which byte the data is wrong.
 *
 * @example
 * ```ts
 * import { parseObus } from "./obu.ts";
 * // A temporal delimiter, then a 1-byte padding OBU.
 * const obus = parseObus(new Uint8Array([0x12, 0x00, 0x7a, 0x01, 0xff]));
 * console.log(obus.map((o) => o.typeName)); // [ "OBU_TEMPORAL_DELIMITER", "OBU_PADDING" ]
 * ```
 */
export function parseObus(bytes: Uint8Array): Obu[] {
  const obus: Obu[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    const obu = readObu(bytes, offset);
    obus.push(obu);
    offset += obu.size;
  }
  return obus;
}

/**
 * Cuts a Section 5 low-overhead stream (what `ffmpeg -f obu` writes) into temporal units, each starting
 * with its temporal delimiter. Bytes before the first temporal delimiter form a unit of their own.
 * The units are views into `bytes`, not copies.
 *
 * @example
 * ```ts
 * import { splitTemporalUnits } from "./obu.ts";
 * const stream = new Uint8Array([0x12, 0x00, 0x7a, 0x01, 0xff, 0x12, 0x00]);
 * console.log(splitTemporalUnits(stream).map((tu) => tu.length)); // [ 5, 2 ]
 * ```
 */
export function splitTemporalUnits<T extends ArrayBufferLike>(bytes: Uint8Array<T>): Uint8Array<T>[] {
  const units: Uint8Array<T>[] = [];
  let start = 0;
  for (const obu of parseObus(bytes)) {
    if (obu.type === OBU_TEMPORAL_DELIMITER && obu.offset > start) {
      units.push(bytes.subarray(start, obu.offset));
      start = obu.offset;
    }
  }
  if (bytes.length > start) units.push(bytes.subarray(start));
  return units;
}

/**
 * Returns the packet without its temporal delimiter OBUs, as the AV1-in-ISOBMFF binding wants MP4
 * samples. A packet without any comes back as the same array, uncopied.
 *
 * @example
 * ```ts
 * import { stripTemporalDelimiters } from "./obu.ts";
 * const sample = stripTemporalDelimiters(new Uint8Array([0x12, 0x00, 0x7a, 0x01, 0xff]));
 * console.log(sample); // Uint8Array(3) [ 122, 1, 255 ]
 * ```
 */
export function stripTemporalDelimiters<T extends ArrayBufferLike>(
  packet: Uint8Array<T>,
): Uint8Array<T> | Uint8Array<ArrayBuffer> {
  const obus = parseObus(packet);
  const kept = obus.filter((o) => o.type !== OBU_TEMPORAL_DELIMITER);
  if (kept.length === obus.length) return packet;
  const out = new Uint8Array(kept.reduce((n, o) => n + o.size, 0));
  let at = 0;
  for (const o of kept) {
    out.set(packet.subarray(o.offset, o.offset + o.size), at);
    at += o.size;
  }
  return out;
}

/**
 * Finds the first sequence header OBU of a packet and returns it whole (header included) as a view into
 * `packet`, or `null` when there is none. Copy it with `.slice()` to keep it beyond the packet.
 *
 * @example
 * ```ts
 * import { findSequenceHeader } from "./obu.ts";
 * const packet = new Uint8Array([0x12, 0x00, 0x0a, 0x0a, 0x00, 0x00, 0x00, 0x03, 0xb4, 0xfd, 0x93, 0xef, 0xe4, 0x01]);
 * console.log(findSequenceHeader(packet)?.length); // 12
 * ```
 */
export function findSequenceHeader<T extends ArrayBufferLike>(packet: Uint8Array<T>): Uint8Array<T> | null {
  const obu = parseObus(packet).find((o) => o.type === OBU_SEQUENCE_HEADER);
  return obu ? packet.subarray(obu.offset, obu.offset + obu.size) : null;
}

/**
 * True when a temporal unit is a random access point: it carries a sequence header and a frame header
 * that shows a key frame, either a key frame with `show_frame` or a `show_existing_frame` of a key frame
 * decoded earlier in the same temporal unit. Reads the sequence header and the start of each frame header
 * (`uncompressed_header()`) to find out; malformed headers throw an {@linkcode EncoderError}.
 *
 * @example
 * ```ts
 * import { isKeyFramePacket } from "./obu.ts";
 * const packet = new Uint8Array([
 *   0x12, 0x00, // temporal delimiter
 *   0x0a, 0x0a, 0x00, 0x00, 0x00, 0x03, 0xb4, 0xfd, 0x93, 0xef, 0xe4, 0x01, // sequence header
 *   0x1a, 0x02, 0x10, 0x00, // frame header: KEY_FRAME, show_frame
 * ]);
 * console.log(isKeyFramePacket(packet)); // true
 * ```
 */
export function isKeyFramePacket(packet: Uint8Array): boolean {
  const obus = parseObus(packet);
  const shObu = obus.find((o) => o.type === OBU_SEQUENCE_HEADER);
  if (!shObu) return false;
  const seq = parseSequenceHeader(
    packet.subarray(shObu.payloadOffset, shObu.payloadOffset + shObu.payloadSize),
    {
      format: "payload",
    },
  );
  // Reference slots holding a key frame decoded in this temporal unit, for show_existing_frame.
  let keySlots = 0;
  // A frame header OBU seen before any tile data of its frame is a copy of it (spec 5.9.1).
  let seenFrameHeader = false;
  for (const obu of obus) {
    if (obu.type === OBU_TILE_GROUP) {
      seenFrameHeader = false;
      continue;
    }
    if (obu.type !== OBU_FRAME_HEADER && obu.type !== OBU_FRAME) continue;
    if (obu.type === OBU_FRAME_HEADER && seenFrameHeader) continue;
    if (obu.payloadSize === 0) {
      throw malformed(`Malformed AV1 data: the ${obu.typeName} at byte ${obu.offset} has an empty payload`);
    }
    const header = parseFrameHeaderStart(
      packet.subarray(obu.payloadOffset, obu.payloadOffset + obu.payloadSize),
      seq,
      obu,
    );
    if (header.showExistingFrame) {
      if ((keySlots >> header.frameToShowMapIdx) & 1) return true;
      seenFrameHeader = false;
      continue;
    }
    if (header.frameType === KEY_FRAME) {
      if (header.showFrame) return true;
      keySlots |= header.refreshFrameFlags;
    } else {
      keySlots &= ~header.refreshFrameFlags;
    }
    seenFrameHeader = obu.type === OBU_FRAME_HEADER;
  }
  return false;
}
