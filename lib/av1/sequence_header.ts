/**
 * The sequence header OBU (AV1 spec section 5.5): every syntax element of `sequence_header_obu()`,
 * decoder model and initial display delay included, as a plain object.
 * @module
 */

import { BitReader, malformed } from "./bit_reader.ts";
import { OBU_SEQUENCE_HEADER, readObu } from "./obu_header.ts";

/** `timing_info()` of a sequence header. */
export interface TimingInfo {
  /** `num_units_in_display_tick`: time units of one display tick. */
  numUnitsInDisplayTick: number;
  /** `time_scale`: time units per second. */
  timeScale: number;
  /** `equal_picture_interval`: pictures are shown at a constant rate. */
  equalPictureInterval: boolean;
  /** `num_ticks_per_picture_minus_1 + 1`, present when `equalPictureInterval`. */
  numTicksPerPicture?: number;
}

/** `decoder_model_info()` of a sequence header. */
export interface DecoderModelInfo {
  /** `buffer_delay_length_minus_1`: bits of the buffer delays, minus one. */
  bufferDelayLengthMinus1: number;
  /** `num_units_in_decoding_tick`: time units of one decoding tick. */
  numUnitsInDecodingTick: number;
  /** `buffer_removal_time_length_minus_1`: bits of `buffer_removal_time`, minus one. */
  bufferRemovalTimeLengthMinus1: number;
  /** `frame_presentation_time_length_minus_1`: bits of `frame_presentation_time`, minus one. */
  framePresentationTimeLengthMinus1: number;
}

/** One operating point of a sequence header. */
export interface OperatingPoint {
  /** `operating_point_idc`: bit i set for temporal layer i, bit 8 + j for spatial layer j; 0 for all. */
  idc: number;
  /** `seq_level_idx`: 0 is level 2.0, 4 level 3.0, ... (major - 2) * 4 + minor; 31 means no level. */
  seqLevelIdx: number;
  /** `seq_tier`: 0 Main, 1 High (only coded for levels above 3.3). */
  seqTier: number;
  /** `decoder_model_present_for_this_op`. */
  decoderModelPresent: boolean;
  /** `operating_parameters_info()`, when `decoderModelPresent`. */
  decoderBufferDelay?: number;
  /** `encoder_buffer_delay`, when `decoderModelPresent`. */
  encoderBufferDelay?: number;
  /** `low_delay_mode_flag`, when `decoderModelPresent`. */
  lowDelayMode?: boolean;
  /** `initial_display_delay_present_flag` (of the sequence, or of this operating point). */
  initialDisplayDelayPresent: boolean;
  /** `initial_display_delay_minus_1 + 1`, when `initialDisplayDelayPresent`. */
  initialDisplayDelay?: number;
}

/** Every field of `sequence_header_obu()`, with the values the spec infers when they are not coded. */
export interface SequenceHeader {
  /** `seq_profile`: 0 Main (4:2:0, mono), 1 High (4:4:4), 2 Professional (4:2:2, 12-bit). */
  seqProfile: number;
  /** `still_picture`: the stream holds one picture. */
  stillPicture: boolean;
  /** `reduced_still_picture_header`: the short header of still pictures (AVIF). */
  reducedStillPictureHeader: boolean;
  /** `timing_info()`, when `timing_info_present_flag`. */
  timingInfo?: TimingInfo;
  /** `decoder_model_info_present_flag`. */
  decoderModelInfoPresent: boolean;
  /** `decoder_model_info()`, when `decoderModelInfoPresent`. */
  decoderModelInfo?: DecoderModelInfo;
  /** `initial_display_delay_present_flag` (of the sequence, or of this operating point). */
  initialDisplayDelayPresent: boolean;
  /** Operating points, at least one; index 0 gives the codec string's level and tier. */
  operatingPoints: OperatingPoint[];
  /** `frame_width_bits_minus_1 + 1`. */
  frameWidthBits: number;
  /** `frame_height_bits_minus_1 + 1`. */
  frameHeightBits: number;
  /** `max_frame_width_minus_1 + 1`: the largest frame width in the stream. */
  maxFrameWidth: number;
  /** `max_frame_height_minus_1 + 1`: the largest frame height in the stream. */
  maxFrameHeight: number;
  /** `frame_id_numbers_present_flag`. */
  frameIdNumbersPresent: boolean;
  /** `delta_frame_id_length_minus_2 + 2`, when `frameIdNumbersPresent`. */
  deltaFrameIdLength?: number;
  /** `additional_frame_id_length_minus_1 + 1`, when `frameIdNumbersPresent`. */
  additionalFrameIdLength?: number;
  /** `use_128x128_superblock`. */
  use128x128Superblock: boolean;
  /** `enable_filter_intra`. */
  enableFilterIntra: boolean;
  /** `enable_intra_edge_filter`. */
  enableIntraEdgeFilter: boolean;
  /** `enable_interintra_compound`. */
  enableInterintraCompound: boolean;
  /** `enable_masked_compound`. */
  enableMaskedCompound: boolean;
  /** `enable_warped_motion`. */
  enableWarpedMotion: boolean;
  /** `enable_dual_filter`. */
  enableDualFilter: boolean;
  /** `enable_order_hint`. */
  enableOrderHint: boolean;
  /** `enable_jnt_comp`. */
  enableJntComp: boolean;
  /** `enable_ref_frame_mvs`. */
  enableRefFrameMvs: boolean;
  /** `seq_force_screen_content_tools`: 0, 1, or 2 (SELECT_SCREEN_CONTENT_TOOLS: chosen per frame). */
  seqForceScreenContentTools: number;
  /** `seq_force_integer_mv`: 0, 1, or 2 (SELECT_INTEGER_MV: chosen per frame). */
  seqForceIntegerMv: number;
  /** `OrderHintBits`: 0 without order hints. */
  orderHintBits: number;
  /** `enable_superres`. */
  enableSuperres: boolean;
  /** `enable_cdef`. */
  enableCdef: boolean;
  /** `enable_restoration`. */
  enableRestoration: boolean;
  /** `high_bitdepth`: 10 or 12 bits per sample. */
  highBitdepth: boolean;
  /** `twelve_bit`: 12 bits per sample (profile 2 only). */
  twelveBit: boolean;
  /** 8, 10 or 12. */
  bitDepth: number;
  /** `mono_chrome`: luma only. */
  monochrome: boolean;
  /** `color_description_present_flag`: primaries, transfer and matrix are coded. */
  colorDescriptionPresent: boolean;
  /** ISO/IEC 23091-4 colour primaries; 2 (unspecified) when not coded. */
  colorPrimaries: number;
  /** Transfer characteristics; 2 (unspecified) when not coded. */
  transferCharacteristics: number;
  /** Matrix coefficients; 2 (unspecified) when not coded. */
  matrixCoefficients: number;
  /** 0 studio (limited) range, 1 full range. */
  colorRange: number;
  /** `subsampling_x`: 1 when chroma has half the width. */
  subsamplingX: number;
  /** `subsampling_y`: 1 when chroma has half the height. */
  subsamplingY: number;
  /** 0 unknown, 1 vertical, 2 colocated (only coded for 4:2:0). */
  chromaSamplePosition: number;
  /** `separate_uv_delta_q`. */
  separateUvDeltaQ: boolean;
  /** `film_grain_params_present`: frames may carry film grain synthesis parameters. */
  filmGrainParamsPresent: boolean;
}

/** Options of {@linkcode parseSequenceHeader}. */
export interface ParseSequenceHeaderOptions {
  /**
   * What the bytes are: `"obu"` a whole sequence header OBU (header included), `"payload"` only its
   * payload, `"auto"` (the default) an OBU when the first byte is a sequence header OBU header with a
   * size field whose size fits the buffer, else a payload.
   */
  format?: "auto" | "obu" | "payload";
}

/**
 * Parses a sequence header: either a whole sequence header OBU or its payload.
 * Throws an {@linkcode EncoderError} with code `"INVALID_INPUT"` when the bytes are not a valid one.
 *
 * @example
 * ```ts
 * import { parseSequenceHeader } from "./sequence_header.ts";
 * // The sequence header OBU SVT-AV1 writes for 160x90 8-bit 4:2:0 video.
 * const obu = new Uint8Array([0x0a, 0x0a, 0x00, 0x00, 0x00, 0x03, 0xb4, 0xfd, 0x93, 0xef, 0xe4, 0x01]);
 * const seq = parseSequenceHeader(obu);
 * console.log(seq.maxFrameWidth, seq.maxFrameHeight, seq.bitDepth); // 160 90 8
 * ```
 */
export function parseSequenceHeader(
  obuPayloadOrObu: Uint8Array,
  options: ParseSequenceHeaderOptions = {},
): SequenceHeader {
  const bytes = obuPayloadOrObu;
  const format = options.format ?? "auto";
  let start = 0;
  let end = bytes.length;
  if (format === "obu" || (format === "auto" && looksLikeSequenceHeaderObu(bytes))) {
    const obu = readObu(bytes, 0);
    if (obu.type !== OBU_SEQUENCE_HEADER) {
      throw malformed(
        `Expected a sequence header OBU but got an ${obu.typeName}; pass the OBU found by findSequenceHeader()`,
      );
    }
    start = obu.payloadOffset;
    end = obu.payloadOffset + obu.payloadSize;
  }
  return readSequenceHeader(new BitReader(bytes, "sequence header", start, end));
}

function looksLikeSequenceHeaderObu(bytes: Uint8Array): boolean {
  // Forbidden bit 0, type 1, size field 1: 0x0a, or 0x0e with an extension byte.
  if (bytes.length < 2 || (bytes[0] & 0xfb) !== 0x0a) return false;
  try {
    const obu = readObu(bytes, 0);
    return obu.payloadOffset + obu.payloadSize <= bytes.length;
  } catch {
    return false;
  }
}

function readSequenceHeader(r: BitReader): SequenceHeader {
  const seqProfile = r.f(3, "seq_profile");
  if (seqProfile > 2) {
    throw malformed(
      `Malformed AV1 sequence header: seq_profile is ${seqProfile} but only profiles 0, 1 and 2 exist; `
        + `the data is corrupt or not a sequence header`,
    );
  }
  const stillPicture = r.flag("still_picture");
  const reducedStillPictureHeader = r.flag("reduced_still_picture_header");
  let timingInfo: TimingInfo | undefined;
  let decoderModelInfo: DecoderModelInfo | undefined;
  let initialDisplayDelayPresent = false;
  const operatingPoints: OperatingPoint[] = [];
  if (reducedStillPictureHeader) {
    operatingPoints.push({
      idc: 0,
      seqLevelIdx: r.f(5, "seq_level_idx[0]"),
      seqTier: 0,
      /** `decoder_model_present_for_this_op`. */
      decoderModelPresent: false,
      /** `initial_display_delay_present_flag` (of the sequence, or of this operating point). */
      initialDisplayDelayPresent: false,
    });
  } else {
    if (r.flag("timing_info_present_flag")) {
      const numUnitsInDisplayTick = r.f(32, "num_units_in_display_tick");
      const timeScale = r.f(32, "time_scale");
      const equalPictureInterval = r.flag("equal_picture_interval");
      timingInfo = { numUnitsInDisplayTick, timeScale, equalPictureInterval };
      if (equalPictureInterval) timingInfo.numTicksPerPicture = r.uvlc("num_ticks_per_picture_minus_1") + 1;
      if (r.flag("decoder_model_info_present_flag")) {
        decoderModelInfo = {
          /** `buffer_delay_length_minus_1`: bits of the buffer delays, minus one. */
          bufferDelayLengthMinus1: r.f(5, "buffer_delay_length_minus_1"),
          /** `num_units_in_decoding_tick`: time units of one decoding tick. */
          numUnitsInDecodingTick: r.f(32, "num_units_in_decoding_tick"),
          /** `buffer_removal_time_length_minus_1`: bits of `buffer_removal_time`, minus one. */
          bufferRemovalTimeLengthMinus1: r.f(5, "buffer_removal_time_length_minus_1"),
          /** `frame_presentation_time_length_minus_1`: bits of `frame_presentation_time`, minus one. */
          framePresentationTimeLengthMinus1: r.f(5, "frame_presentation_time_length_minus_1"),
        };
      }
    }
    initialDisplayDelayPresent = r.flag("initial_display_delay_present_flag");
    const count = r.f(5, "operating_points_cnt_minus_1") + 1;
    for (let i = 0; i < count; i++) {
      const idc = r.f(12, `operating_point_idc[${i}]`);
      const seqLevelIdx = r.f(5, `seq_level_idx[${i}]`);
      const seqTier = seqLevelIdx > 7 ? r.f(1, `seq_tier[${i}]`) : 0;
      const op: OperatingPoint = {
        idc,
        seqLevelIdx,
        seqTier,
        /** `decoder_model_present_for_this_op`. */
        decoderModelPresent: false,
        /** `initial_display_delay_present_flag` (of the sequence, or of this operating point). */
        initialDisplayDelayPresent: false,
      };
      if (decoderModelInfo) {
        op.decoderModelPresent = r.flag(`decoder_model_present_for_this_op[${i}]`);
        if (op.decoderModelPresent) {
          const n = decoderModelInfo.bufferDelayLengthMinus1 + 1;
          op.decoderBufferDelay = r.f(n, `decoder_buffer_delay[${i}]`);
          op.encoderBufferDelay = r.f(n, `encoder_buffer_delay[${i}]`);
          op.lowDelayMode = r.flag(`low_delay_mode_flag[${i}]`);
        }
      }
      if (initialDisplayDelayPresent) {
        op.initialDisplayDelayPresent = r.flag(`initial_display_delay_present_for_this_op[${i}]`);
        if (op.initialDisplayDelayPresent) {
          op.initialDisplayDelay = r.f(4, `initial_display_delay_minus_1[${i}]`) + 1;
        }
      }
      operatingPoints.push(op);
    }
  }
  const frameWidthBits = r.f(4, "frame_width_bits_minus_1") + 1;
  const frameHeightBits = r.f(4, "frame_height_bits_minus_1") + 1;
  const maxFrameWidth = r.f(frameWidthBits, "max_frame_width_minus_1") + 1;
  const maxFrameHeight = r.f(frameHeightBits, "max_frame_height_minus_1") + 1;
  const frameIdNumbersPresent = reducedStillPictureHeader ? false : r.flag("frame_id_numbers_present_flag");
  let deltaFrameIdLength: number | undefined;
  let additionalFrameIdLength: number | undefined;
  if (frameIdNumbersPresent) {
    deltaFrameIdLength = r.f(4, "delta_frame_id_length_minus_2") + 2;
    additionalFrameIdLength = r.f(3, "additional_frame_id_length_minus_1") + 1;
  }
  const use128x128Superblock = r.flag("use_128x128_superblock");
  const enableFilterIntra = r.flag("enable_filter_intra");
  const enableIntraEdgeFilter = r.flag("enable_intra_edge_filter");
  let enableInterintraCompound = false;
  let enableMaskedCompound = false;
  let enableWarpedMotion = false;
  let enableDualFilter = false;
  let enableOrderHint = false;
  let enableJntComp = false;
  let enableRefFrameMvs = false;
  let seqForceScreenContentTools = 2;
  let seqForceIntegerMv = 2;
  let orderHintBits = 0;
  if (!reducedStillPictureHeader) {
    enableInterintraCompound = r.flag("enable_interintra_compound");
    enableMaskedCompound = r.flag("enable_masked_compound");
    enableWarpedMotion = r.flag("enable_warped_motion");
    enableDualFilter = r.flag("enable_dual_filter");
    enableOrderHint = r.flag("enable_order_hint");
    if (enableOrderHint) {
      enableJntComp = r.flag("enable_jnt_comp");
      enableRefFrameMvs = r.flag("enable_ref_frame_mvs");
    }
    seqForceScreenContentTools = r.flag("seq_choose_screen_content_tools")
      ? 2
      : r.f(1, "seq_force_screen_content_tools");
    if (seqForceScreenContentTools > 0) {
      seqForceIntegerMv = r.flag("seq_choose_integer_mv") ? 2 : r.f(1, "seq_force_integer_mv");
    }
    if (enableOrderHint) orderHintBits = r.f(3, "order_hint_bits_minus_1") + 1;
  }
  const enableSuperres = r.flag("enable_superres");
  const enableCdef = r.flag("enable_cdef");
  const enableRestoration = r.flag("enable_restoration");

  // color_config()
  const highBitdepth = r.flag("high_bitdepth");
  let twelveBit = false;
  if (seqProfile === 2 && highBitdepth) twelveBit = r.flag("twelve_bit");
  const bitDepth = twelveBit ? 12 : highBitdepth ? 10 : 8;
  const monochrome = seqProfile === 1 ? false : r.flag("mono_chrome");
  const colorDescriptionPresent = r.flag("color_description_present_flag");
  let colorPrimaries = 2;
  let transferCharacteristics = 2;
  let matrixCoefficients = 2;
  if (colorDescriptionPresent) {
    colorPrimaries = r.f(8, "color_primaries");
    transferCharacteristics = r.f(8, "transfer_characteristics");
    matrixCoefficients = r.f(8, "matrix_coefficients");
  }
  let colorRange: number;
  let subsamplingX = 1;
  let subsamplingY = 1;
  let chromaSamplePosition = 0;
  let separateUvDeltaQ = false;
  if (monochrome) {
    colorRange = r.f(1, "color_range");
  } else {
    if (colorPrimaries === 1 && transferCharacteristics === 13 && matrixCoefficients === 0) {
      // sRGB / identity matrix: 4:4:4 full range is implied.
      colorRange = 1;
      subsamplingX = 0;
      subsamplingY = 0;
    } else {
      colorRange = r.f(1, "color_range");
      if (seqProfile === 1) {
        subsamplingX = 0;
        subsamplingY = 0;
      } else if (seqProfile === 2) {
        if (bitDepth === 12) {
          subsamplingX = r.f(1, "subsampling_x");
          subsamplingY = subsamplingX ? r.f(1, "subsampling_y") : 0;
        } else {
          subsamplingY = 0;
        }
      }
      if (subsamplingX && subsamplingY) chromaSamplePosition = r.f(2, "chroma_sample_position");
    }
    separateUvDeltaQ = r.flag("separate_uv_delta_q");
  }
  const filmGrainParamsPresent = r.flag("film_grain_params_present");

  const header: SequenceHeader = {
    seqProfile,
    stillPicture,
    reducedStillPictureHeader,
    /** `decoder_model_info_present_flag`. */
    decoderModelInfoPresent: decoderModelInfo !== undefined,
    initialDisplayDelayPresent,
    operatingPoints,
    frameWidthBits,
    frameHeightBits,
    maxFrameWidth,
    maxFrameHeight,
    frameIdNumbersPresent,
    use128x128Superblock,
    enableFilterIntra,
    enableIntraEdgeFilter,
    enableInterintraCompound,
    enableMaskedCompound,
    enableWarpedMotion,
    enableDualFilter,
    enableOrderHint,
    enableJntComp,
    enableRefFrameMvs,
    seqForceScreenContentTools,
    seqForceIntegerMv,
    orderHintBits,
    enableSuperres,
    enableCdef,
    enableRestoration,
    highBitdepth,
    twelveBit,
    bitDepth,
    monochrome,
    colorDescriptionPresent,
    colorPrimaries,
    transferCharacteristics,
    matrixCoefficients,
    colorRange,
    subsamplingX,
    subsamplingY,
    chromaSamplePosition,
    separateUvDeltaQ,
    filmGrainParamsPresent,
  };
  if (timingInfo) header.timingInfo = timingInfo;
  if (decoderModelInfo) header.decoderModelInfo = decoderModelInfo;
  if (deltaFrameIdLength !== undefined) header.deltaFrameIdLength = deltaFrameIdLength;
  if (additionalFrameIdLength !== undefined) header.additionalFrameIdLength = additionalFrameIdLength;
  return header;
}
