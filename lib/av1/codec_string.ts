/**
 * Codec strings (`av01.P.LLT.DD[.M.CCC.cp.tc.mc.F]`) and the `av1C` configuration record, both as the
 * AV1 Codec ISO Media File Format Binding defines them, built from a sequence header.
 * @module
 */

import { EncoderError } from "../errors.ts";
import { malformed } from "./bit_reader.ts";
import { findSequenceHeader } from "./obu.ts";
import { encodeLeb128, readObu } from "./obu_header.ts";
import { parseSequenceHeader, type SequenceHeader } from "./sequence_header.ts";

/** Options of {@linkcode codecString}. */
export interface CodecStringOptions {
  /**
   * Append the optional fields `.M.CCC.cp.tc.mc.F` (monochrome, chroma subsampling and position, colour
   * primaries, transfer, matrix, full range). Default `false`: the short form `av01.P.LLT.DD`, which
   * is what browsers and mediabunny need.
   */
  full?: boolean;
}

const two = (n: number): string => String(n).padStart(2, "0");

/**
 * The codecs parameter string of a stream, from its sequence header (parsed, or its OBU bytes):
 * profile, `seq_level_idx[0]`, tier of operating point 0, and bit depth.
 *
 * @example
 * ```ts
 * import { codecString, parseSequenceHeader } from "./mod.ts";
 * const seq = parseSequenceHeader(
 *   new Uint8Array([0x0a, 0x0a, 0x00, 0x00, 0x00, 0x03, 0xb4, 0xfd, 0x93, 0xef, 0xe4, 0x01]),
 * );
 * console.log(codecString(seq)); // "av01.0.00M.08"
 * console.log(codecString(seq, { full: true })); // "av01.0.00M.08.0.110.02.02.02.0"
 * ```
 */
export function codecString(seq: SequenceHeader | Uint8Array, options: CodecStringOptions = {}): string {
  const s = seq instanceof Uint8Array ? parseSequenceHeader(seq) : seq;
  const op = s.operatingPoints[0];
  let out = `av01.${s.seqProfile}.${two(op.seqLevelIdx)}${op.seqTier ? "H" : "M"}.${two(s.bitDepth)}`;
  if (options.full) {
    const position = s.subsamplingX && s.subsamplingY ? s.chromaSamplePosition : 0;
    out += `.${s.monochrome ? 1 : 0}.${s.subsamplingX}${s.subsamplingY}${position}`
      + `.${two(s.colorPrimaries)}.${two(s.transferCharacteristics)}.${two(s.matrixCoefficients)}`
      + `.${s.colorRange}`;
  }
  return out;
}

/** The fields of an AV1 codec string, with the binding's defaults for the optional ones. */
export interface Av1CodecParameters {
  /** `seq_profile`: 0 Main, 1 High, 2 Professional. */
  profile: number;
  /** `seq_level_idx[0]`, 0–31. */
  level: number;
  /** `"M"` Main or `"H"` High tier. */
  tier: "M" | "H";
  /** 8, 10 or 12. */
  bitDepth: number;
  /** Default `false`. */
  monochrome: boolean;
  /** Default 1. */
  subsamplingX: number;
  /** Default 1. */
  subsamplingY: number;
  /** Default 0 (unknown). */
  chromaSamplePosition: number;
  /** Default 1 (BT.709). */
  colorPrimaries: number;
  /** Default 1 (BT.709). */
  transferCharacteristics: number;
  /** Default 1 (BT.709). */
  matrixCoefficients: number;
  /** Default `false` (studio range). */
  fullRange: boolean;
}

function badCodecString(codec: string, why: string): EncoderError {
  return new EncoderError(
    "INVALID_CONFIG",
    `Invalid AV1 codec string "${codec}": ${why}; use the form av01.P.LLT.DD, such as "av01.0.04M.08"`,
  );
}

/**
 * Parses an AV1 codec string such as `"av01.0.04M.08"` or `"av01.0.04M.10.0.112.09.16.09.0"`.
 * Throws an {@linkcode EncoderError} with code `"INVALID_CONFIG"` that says which field is wrong.
 *
 * @example
 * ```ts
 * import { parseCodecString } from "./codec_string.ts";
 * const p = parseCodecString("av01.0.04M.08");
 * console.log(p.profile, p.level, p.tier, p.bitDepth); // 0 4 "M" 8
 * ```
 */
export function parseCodecString(codec: string): Av1CodecParameters {
  const parts = codec.split(".");
  if (parts[0] !== "av01") throw badCodecString(codec, `it must start with "av01"`);
  if (parts.length !== 4 && parts.length !== 10) {
    throw badCodecString(
      codec,
      `it has ${parts.length} dot-separated fields but needs 4, or 10 with all optional fields (all or none)`,
    );
  }
  const [, p, llt, dd, m, ccc, cp, tc, mc, f] = parts;
  if (!/^[0-2]$/.test(p)) throw badCodecString(codec, `profile "${p}" must be 0, 1 or 2`);
  const levelTier = /^(\d\d)([MH])$/.exec(llt);
  if (!levelTier || Number(levelTier[1]) > 31) {
    throw badCodecString(codec, `level and tier "${llt}" must be two digits from 00 to 31 then M or H`);
  }
  if (!/^(08|10|12)$/.test(dd)) throw badCodecString(codec, `bit depth "${dd}" must be 08, 10 or 12`);
  const profile = Number(p);
  const bitDepth = Number(dd);
  if (bitDepth === 12 && profile !== 2) {
    throw badCodecString(codec, `bit depth 12 needs profile 2, got profile ${profile}`);
  }
  const params: Av1CodecParameters = {
    profile,
    level: Number(levelTier[1]),
    tier: levelTier[2] as "M" | "H",
    bitDepth,
    /** `mono_chrome`: luma only. */
    monochrome: false,
    /** `subsampling_x`: 1 when chroma has half the width. */
    subsamplingX: 1,
    /** `subsampling_y`: 1 when chroma has half the height. */
    subsamplingY: 1,
    /** `chroma_sample_position`: 0 unknown, 1 vertical, 2 colocated. */
    chromaSamplePosition: 0,
    colorPrimaries: 1,
    transferCharacteristics: 1,
    matrixCoefficients: 1,
    fullRange: false,
  };
  if (parts.length === 4) return params;
  if (!/^[01]$/.test(m)) throw badCodecString(codec, `monochrome "${m}" must be 0 or 1`);
  const chroma = /^([01])([01])([0-3])$/.exec(ccc);
  if (!chroma) {
    throw badCodecString(
      codec,
      `chroma "${ccc}" must be subsampling_x, subsampling_y and position, such as 110`,
    );
  }
  if (chroma[3] !== "0" && !(chroma[1] === "1" && chroma[2] === "1")) {
    throw badCodecString(codec, `chroma "${ccc}" has a sample position but is not 4:2:0 (11x)`);
  }
  for (const [name, value] of [["colour primaries", cp], ["transfer", tc], ["matrix", mc]]) {
    if (!/^\d\d\d?$/.test(value) || Number(value) > 255) {
      throw badCodecString(codec, `${name} "${value}" must be a two-digit code from 00 to 255`);
    }
  }
  if (!/^[01]$/.test(f)) throw badCodecString(codec, `full range flag "${f}" must be 0 or 1`);
  params.monochrome = m === "1";
  params.subsamplingX = Number(chroma[1]);
  params.subsamplingY = Number(chroma[2]);
  params.chromaSamplePosition = Number(chroma[3]);
  params.colorPrimaries = Number(cp);
  params.transferCharacteristics = Number(tc);
  params.matrixCoefficients = Number(mc);
  params.fullRange = f === "1";
  return params;
}

/** Options of {@linkcode av1CodecConfigurationRecord}. */
export interface Av1CodecConfigurationRecordOptions {
  /**
   * The `configOBUs` to append. Default: the sequence header OBU itself (with a size field, as the
   * binding asks). Pass an empty array for none.
   */
  configOBUs?: Uint8Array;
  /**
   * `initial_presentation_delay_minus_one + 1`, in samples (1–16). Default: not present, which the
   * binding allows and ffmpeg writes too.
   */
  initialPresentationDelay?: number;
}

/**
 * Builds the `av1C` box payload (AV1CodecConfigurationRecord) from a sequence header OBU, or from a
 * temporal unit that contains one.
 *
 * @example
 * ```ts
 * import { av1CodecConfigurationRecord } from "./codec_string.ts";
 * const sh = new Uint8Array([0x0a, 0x0a, 0x00, 0x00, 0x00, 0x03, 0xb4, 0xfd, 0x93, 0xef, 0xe4, 0x01]);
 * const av1C = av1CodecConfigurationRecord(sh);
 * console.log(av1C.subarray(0, 4)); // Uint8Array(4) [ 129, 0, 12, 0 ]
 * ```
 */
export function av1CodecConfigurationRecord(
  seqHeaderObu: Uint8Array,
  options: Av1CodecConfigurationRecordOptions = {},
): Uint8Array<ArrayBuffer> {
  const obuBytes = findSequenceHeader(seqHeaderObu);
  if (!obuBytes) {
    throw malformed("No sequence header OBU found; pass the sequence header OBU or a key frame packet");
  }
  const seq = parseSequenceHeader(obuBytes, { format: "obu" });
  const configOBUs = options.configOBUs ?? withSizeField(obuBytes);
  const delay = options.initialPresentationDelay;
  if (delay !== undefined && (!Number.isInteger(delay) || delay < 1 || delay > 16)) {
    throw new EncoderError(
      "INVALID_CONFIG",
      `Initial presentation delay must be 1 to 16 samples, got ${delay}`,
    );
  }
  const op = seq.operatingPoints[0];
  const out = new Uint8Array(4 + configOBUs.length);
  out[0] = 0x81; // marker 1, version 1
  out[1] = (seq.seqProfile << 5) | op.seqLevelIdx;
  out[2] = (op.seqTier << 7) | (Number(seq.highBitdepth) << 6) | (Number(seq.twelveBit) << 5)
    | (Number(seq.monochrome) << 4) | (seq.subsamplingX << 3) | (seq.subsamplingY << 2)
    | seq.chromaSamplePosition;
  out[3] = delay === undefined ? 0 : 0x10 | (delay - 1);
  out.set(configOBUs, 4);
  return out;
}

/** Rewrites an OBU without a size field into one with it, as `configOBUs` wants. */
function withSizeField(obuBytes: Uint8Array): Uint8Array {
  const obu = readObu(obuBytes, 0);
  if (obu.hasSizeField) return obuBytes.slice(0, obu.size);
  const size = encodeLeb128(obu.payloadSize);
  const header = obu.payloadOffset - obu.offset;
  const out = new Uint8Array(header + size.length + obu.payloadSize);
  out.set(obuBytes.subarray(0, header));
  out[0] |= 0x02;
  out.set(size, header);
  out.set(obuBytes.subarray(obu.payloadOffset, obu.payloadOffset + obu.payloadSize), header + size.length);
  return out;
}

/** The fields of an `av1C` box payload. */
export interface Av1CodecConfiguration {
  /** `version`: 1, the only one defined. */
  version: number;
  /** `seq_profile`: 0 Main (4:2:0, mono), 1 High (4:4:4), 2 Professional (4:2:2, 12-bit). */
  seqProfile: number;
  /** `seq_level_idx[0]`: the `LL` of the codec string. */
  seqLevelIdx0: number;
  /** `seq_tier[0]`: 0 Main, 1 High. */
  seqTier0: number;
  /** `high_bitdepth`: 10 or 12 bits per sample. */
  highBitdepth: boolean;
  /** `twelve_bit`: 12 bits per sample (profile 2 only). */
  twelveBit: boolean;
  /** `mono_chrome`: luma only. */
  monochrome: boolean;
  /** `chroma_subsampling_x`: 1 when chroma has half the width. */
  chromaSubsamplingX: number;
  /** `chroma_subsampling_y`: 1 when chroma has half the height. */
  chromaSubsamplingY: number;
  /** `chroma_sample_position`: 0 unknown, 1 vertical, 2 colocated. */
  chromaSamplePosition: number;
  /** `initial_presentation_delay_minus_one + 1`, when present. */
  initialPresentationDelay?: number;
  /** The configuration OBUs (usually the sequence header), as a view into the input. */
  configOBUs: Uint8Array;
}

/**
 * Parses an `av1C` box payload (AV1CodecConfigurationRecord).
 * Throws an {@linkcode EncoderError} with code `"INVALID_INPUT"` when it is not one.
 *
 * @example
 * ```ts
 * import { parseAv1C } from "./codec_string.ts";
 * const av1C = parseAv1C(new Uint8Array([0x81, 0x04, 0x0c, 0x00]));
 * console.log(av1C.seqProfile, av1C.seqLevelIdx0, av1C.chromaSubsamplingX); // 0 4 1
 * ```
 */
export function parseAv1C(bytes: Uint8Array): Av1CodecConfiguration {
  if (bytes.length < 4) {
    throw malformed(
      `Malformed av1C: it needs at least 4 bytes, got ${bytes.length}; pass the whole box payload`,
    );
  }
  if (!(bytes[0] & 0x80)) {
    throw malformed(
      "Malformed av1C: the marker bit of byte 0 is not set; pass the payload after the box header",
    );
  }
  const version = bytes[0] & 0x7f;
  if (version !== 1) throw malformed(`Unsupported av1C version ${version}; only version 1 is defined`);
  const config: Av1CodecConfiguration = {
    version,
    /** `seq_profile`: 0 Main (4:2:0, mono), 1 High (4:4:4), 2 Professional (4:2:2, 12-bit). */
    seqProfile: bytes[1] >> 5,
    /** `seq_level_idx[0]`: the `LL` of the codec string. */
    seqLevelIdx0: bytes[1] & 0x1f,
    /** `seq_tier[0]`: 0 Main, 1 High. */
    seqTier0: bytes[2] >> 7,
    /** `high_bitdepth`: 10 or 12 bits per sample. */
    highBitdepth: ((bytes[2] >> 6) & 1) === 1,
    /** `twelve_bit`: 12 bits per sample (profile 2 only). */
    twelveBit: ((bytes[2] >> 5) & 1) === 1,
    /** `mono_chrome`: luma only. */
    monochrome: ((bytes[2] >> 4) & 1) === 1,
    /** `chroma_subsampling_x`: 1 when chroma has half the width. */
    chromaSubsamplingX: (bytes[2] >> 3) & 1,
    /** `chroma_subsampling_y`: 1 when chroma has half the height. */
    chromaSubsamplingY: (bytes[2] >> 2) & 1,
    /** `chroma_sample_position`: 0 unknown, 1 vertical, 2 colocated. */
    chromaSamplePosition: bytes[2] & 3,
    configOBUs: bytes.subarray(4),
  };
  if (bytes[3] & 0x10) config.initialPresentationDelay = (bytes[3] & 0x0f) + 1;
  return config;
}
