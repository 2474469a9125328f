/**
 * AV1 bitstream helpers: OBU parsing, temporal units, sequence headers, key-frame detection, codec strings
 * and the `av1C` configuration record that containers need.
 *
 * @example
 * ```ts
 * import { codecString, findSequenceHeader, isKeyFramePacket, parseSequenceHeader } from "./mod.ts";
 * const packet = new Uint8Array([
 *   0x12, 0x00,
 *   0x0a, 0x0a, 0x00, 0x00, 0x00, 0x03, 0xb4, 0xfd, 0x93, 0xef, 0xe4, 0x01,
 *   0x1a, 0x02, 0x10, 0x00,
 * ]);
 * const seq = parseSequenceHeader(findSequenceHeader(packet)!);
 * console.log(codecString(seq), isKeyFramePacket(packet)); // "av01.0.00M.08" true
 * ```
 * @module
 */

export * from "./codec_string.ts";
export * from "./frame_header.ts";
export * from "./obu.ts";
export * from "./sequence_header.ts";
