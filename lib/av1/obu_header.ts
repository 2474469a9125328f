/**
 * OBU headers and LEB128 sizes (AV1 spec sections 4.10.5 and 5.3). `obu.ts` re-exports these; they live
 * apart so the sequence-header parser can read an OBU header without importing the packet helpers.
 * @module
 */

import { malformed } from "./bit_reader.ts";

/** OBU type numbers of the AV1 spec, section 6.2.2. */
export const OBU_SEQUENCE_HEADER = 1;
/** Temporal delimiter OBU type: starts every temporal unit of a low-overhead stream. */
export const OBU_TEMPORAL_DELIMITER = 2;
/** Frame header OBU type. */
export const OBU_FRAME_HEADER = 3;
/** Tile group OBU type. */
export const OBU_TILE_GROUP = 4;
/** Metadata OBU type (HDR, scalability, timecode, ITU-T T.35). */
export const OBU_METADATA = 5;
/** Frame OBU type: a frame header and its first tile group. */
export const OBU_FRAME = 6;
/** Redundant frame header OBU type: a copy of the frame header for error resilience. */
export const OBU_REDUNDANT_FRAME_HEADER = 7;
/** Tile list OBU type (large scale tile decoding). */
export const OBU_TILE_LIST = 8;
/** Padding OBU type. */
export const OBU_PADDING = 15;

const OBU_TYPE_NAMES: readonly ObuTypeName[] = [
  "OBU_RESERVED_0",
  "OBU_SEQUENCE_HEADER",
  "OBU_TEMPORAL_DELIMITER",
  "OBU_FRAME_HEADER",
  "OBU_TILE_GROUP",
  "OBU_METADATA",
  "OBU_FRAME",
  "OBU_REDUNDANT_FRAME_HEADER",
  "OBU_TILE_LIST",
  "OBU_RESERVED_9",
  "OBU_RESERVED_10",
  "OBU_RESERVED_11",
  "OBU_RESERVED_12",
  "OBU_RESERVED_13",
  "OBU_RESERVED_14",
  "OBU_PADDING",
];

/** The spec's name of an OBU type, reserved types included (`"OBU_RESERVED_9"`). */
export type ObuTypeName =
  | "OBU_RESERVED_0"
  | "OBU_SEQUENCE_HEADER"
  | "OBU_TEMPORAL_DELIMITER"
  | "OBU_FRAME_HEADER"
  | "OBU_TILE_GROUP"
  | "OBU_METADATA"
  | "OBU_FRAME"
  | "OBU_REDUNDANT_FRAME_HEADER"
  | "OBU_TILE_LIST"
  | "OBU_RESERVED_9"
  | "OBU_RESERVED_10"
  | "OBU_RESERVED_11"
  | "OBU_RESERVED_12"
  | "OBU_RESERVED_13"
  | "OBU_RESERVED_14"
  | "OBU_PADDING";

/**
 * The spec's name of an OBU type number (0–15).
 *
 * @example
 * ```ts
 * import { obuTypeName } from "./obu.ts";
 * console.log(obuTypeName(2)); // "OBU_TEMPORAL_DELIMITER"
 * ```
 */
export function obuTypeName(type: number): ObuTypeName {
  const name = OBU_TYPE_NAMES[type];
  if (name === undefined) throw new RangeError(`OBU type must be 0 to 15, got ${type}`);
  return name;
}

/** One OBU located in a buffer: where its header, payload and end are, and what its header says. */
export interface Obu {
  /** `obu_type`, 0–15. */
  type: number;
  /** The spec's name of `type`. */
  typeName: ObuTypeName;
  /** `obu_extension_flag`: the header has a second byte with temporal and spatial ids. */
  hasExtension: boolean;
  /** `temporal_id` from the extension header, 0 without one. */
  temporalId: number;
  /** `spatial_id` from the extension header, 0 without one. */
  spatialId: number;
  /** `obu_has_size_field`. Without it the OBU runs to the end of the buffer. */
  hasSizeField: boolean;
  /** Bytes before the payload: the header, the extension and the LEB128 size. */
  headerSize: number;
  /** Byte offset of the payload in the parsed buffer. */
  payloadOffset: number;
  /** Bytes of payload. */
  payloadSize: number;
  /** Byte offset of the OBU's first header byte in the parsed buffer. */
  offset: number;
  /** Bytes of the whole OBU, header included. */
  size: number;
}

/**
 * Reads an unsigned LEB128 value as the AV1 spec's `leb128()`: at most 8 bytes, value below 2^32.
 *
 * @example
 * ```ts
 * import { readLeb128 } from "./obu.ts";
 * const { value, length } = readLeb128(new Uint8Array([0xe5, 0x8e, 0x26]), 0);
 * console.log(value, length); // 624485 3
 * ```
 */
export function readLeb128(bytes: Uint8Array, offset = 0): { value: number; length: number } {
  let value = 0;
  for (let i = 0; i < 8; i++) {
    const at = offset + i;
    if (at >= bytes.length) {
      throw malformed(
        `Malformed AV1 data: LEB128 value at byte ${offset} is truncated at byte ${at} (the buffer ends); `
          + `pass complete OBUs`,
      );
    }
    const byte = bytes[at];
    value += (byte & 0x7f) * 2 ** (7 * i);
    if ((byte & 0x80) === 0) {
      if (value > 0xffff_ffff) {
        throw malformed(
          `Malformed AV1 data: LEB128 value at byte ${offset} is ${value}, above the spec's limit of 2^32 - 1; `
            + `the data is corrupt or not AV1`,
        );
      }
      return { value, length: i + 1 };
    }
  }
  throw malformed(
    `Malformed AV1 data: LEB128 value at byte ${offset} is longer than the spec's 8 bytes; `
      + `the data is corrupt or not AV1`,
  );
}

/**
 * Encodes a value (an integer from 0 to 2^32 - 1) as the shortest LEB128 byte sequence.
 *
 * @example
 * ```ts
 * import { encodeLeb128 } from "./obu.ts";
 * console.log(encodeLeb128(300)); // Uint8Array(2) [ 172, 2 ]
 * ```
 */
export function encodeLeb128(n: number): Uint8Array<ArrayBuffer> {
  if (!Number.isInteger(n) || n < 0 || n > 0xffff_ffff) {
    throw new RangeError(`LEB128 value must be an integer from 0 to 2^32 - 1, got ${n}`);
  }
  const out: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return new Uint8Array(out);
}

/**
 * Reads the OBU starting at `offset` of `bytes`, checking that its header and payload fit in the buffer.
 * An OBU without a size field takes the rest of the buffer.
 */
export function readObu(bytes: Uint8Array, offset: number): Obu {
  const first = bytes[offset];
  if (first === undefined) {
    throw malformed(`Malformed AV1 data: an OBU header was expected at byte ${offset} but the buffer ends`);
  }
  if (first & 0x80) {
    throw malformed(
      `Malformed AV1 data: the forbidden bit of the OBU header at byte ${offset} is set (byte 0x${
        first.toString(16).padStart(2, "0")
      }); the data is corrupt or not an AV1 OBU stream (remove IVF, WebM or MP4 framing first)`,
    );
  }
  const type = (first >> 3) & 0x0f;
  const hasExtension = (first & 0x04) !== 0;
  const hasSizeField = (first & 0x02) !== 0;
  let temporalId = 0;
  let spatialId = 0;
  let at = offset + 1;
  if (hasExtension) {
    if (at >= bytes.length) {
      throw malformed(
        `Malformed AV1 data: the ${obuTypeName(type)} at byte ${offset} announces an extension header `
          + `but the buffer ends at byte ${at}; pass complete OBUs`,
      );
    }
    temporalId = bytes[at] >> 5;
    spatialId = (bytes[at] >> 3) & 0x03;
    at++;
  }
  let payloadSize: number;
  if (hasSizeField) {
    const leb = readLeb128(bytes, at);
    at += leb.length;
    payloadSize = leb.value;
    if (at + payloadSize > bytes.length) {
      throw malformed(
        `Malformed AV1 data: the ${obuTypeName(type)} at byte ${offset} says its payload has ${payloadSize} `
          + `bytes but only ${bytes.length - at} remain; the data is truncated or corrupt`,
      );
    }
  } else {
    payloadSize = bytes.length - at;
  }
  return {
    type,
    typeName: obuTypeName(type),
    hasExtension,
    temporalId,
    spatialId,
    hasSizeField,
    headerSize: at - offset,
    payloadOffset: at,
    payloadSize,
    offset,
    size: at - offset + payloadSize,
  };
}
