/**
 * Struct layouts, status codes and enums of librav1e's C API (0.5 to 0.8; LP64: x86-64 and aarch64).
 * These did not change across the supported versions, so there is one table.
 * @module
 */

/** Offsets of `RaPacket` (size 56). */
export const RaPacketLayout = {
  size: 56,
  /** `const uint8_t *data` */
  data: 0,
  /** `size_t len` */
  len: 8,
  /** `uint64_t input_frameno`: the frame's position in input order, from 0. */
  inputFrameno: 16,
  /** `RaFrameType frame_type` (i32) */
  frameType: 24,
  /** `void *opaque` */
  opaque: 32,
  /** `RaFrame *rec` */
  rec: 40,
  /** `RaFrame *source` */
  source: 48,
} as const;

/** Offsets of `RaData` (size 16). */
export const RaDataLayout = { size: 16, data: 0, len: 8 } as const;

/** `RaEncoderStatus`. */
export const RaStatus = {
  success: 0,
  /** receive_packet wants another frame: the only time we send one. */
  needMoreData: 1,
  /** send_frame after the flush began. */
  enoughData: 2,
  /** receive_packet after the last packet of a flushed stream. */
  limitReached: 3,
  /** A frame was encoded but no packet is out yet: call receive_packet again. */
  encoded: 4,
  failure: -1,
  notReady: -2,
} as const;

/** `RaFrameType` of a packet. */
export const RaFrameType = { key: 0, inter: 1, intraOnly: 2, switch: 3 } as const;

/** `RaFrameTypeOverride` for `rav1e_frame_set_type`. */
export const RaFrameTypeOverride = { no: 0, key: 1 } as const;

/** `RaChromaSampling`. */
export const RaChromaSampling = { cs420: 0, cs422: 1, cs444: 2, cs400: 3 } as const;

/** `RaChromaSamplePosition`. */
export const RaChromaSamplePosition = { unknown: 0, vertical: 1, colocated: 2 } as const;

/** `RaPixelRange`. */
export const RaPixelRange = { limited: 0, full: 1 } as const;

/** `RaColorPrimaries` (the values of ISO/IEC 23091-4 / H.273 that AV1 allows). */
export const RaColorPrimaries = {
  bt709: 1,
  unspecified: 2,
  bt470m: 4,
  bt470bg: 5,
  bt601: 6,
  smpte240: 7,
  film: 8,
  bt2020: 9,
  xyz: 10,
  smpte431: 11,
  smpte432: 12,
  ebu3213: 22,
} as const;

/** `RaTransferCharacteristics`. */
export const RaTransferCharacteristics = {
  bt709: 1,
  unspecified: 2,
  bt470m: 4,
  bt470bg: 5,
  bt601: 6,
  smpte240: 7,
  linear: 8,
  log100: 9,
  log100sqrt10: 10,
  iec61966: 11,
  bt1361: 12,
  srgb: 13,
  bt2020_10bit: 14,
  bt2020_12bit: 15,
  smpte2084: 16,
  smpte428: 17,
  hlg: 18,
} as const;

/** `RaMatrixCoefficients`. */
export const RaMatrixCoefficients = {
  identity: 0,
  bt709: 1,
  unspecified: 2,
  fcc: 4,
  bt470bg: 5,
  bt601: 6,
  smpte240: 7,
  ycgco: 8,
  bt2020ncl: 9,
  bt2020cl: 10,
  smpte2085: 11,
  chromatNcl: 12,
  chromatCl: 13,
  ictcp: 14,
} as const;

/** Versions whose C API and layouts these tables describe. */
export const SUPPORTED_RAV1E = "0.5 to 0.8";

/** Parses `rav1e_version_full()` ("0.5.1 (v0.5.1)" or "0.7.1 (p20240101-…)"). */
export function parseRav1eVersion(
  text: string,
): { major: number; minor: number; patch: number; text: string } | undefined {
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(text.trim());
  if (!m) return undefined;
  return { major: +m[1], minor: +m[2], patch: +m[3], text: text.trim() };
}

/** Whether a parsed version has the C API these tables describe. */
export function rav1eVersionSupported(v: { major: number; minor: number }): boolean {
  return v.major === 0 && v.minor >= 5 && v.minor <= 8;
}
