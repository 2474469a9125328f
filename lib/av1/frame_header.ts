/**
 * The beginning of `uncompressed_header()` (AV1 spec section 5.9.2): enough of a frame header to know
 * whether it shows a frame, which frame type it has and which reference slots it refreshes.
 * @module
 */

import { BitReader } from "./bit_reader.ts";
import type { SequenceHeader } from "./sequence_header.ts";

/** `frame_type` values. */
export const KEY_FRAME = 0;
/** Inter frame type. */
export const INTER_FRAME = 1;
/** Intra-only frame type. */
export const INTRA_ONLY_FRAME = 2;
/** Switch frame type. */
export const SWITCH_FRAME = 3;

/** The spec's names of `frame_type` values. */
export type FrameTypeName = "KEY_FRAME" | "INTER_FRAME" | "INTRA_ONLY_FRAME" | "SWITCH_FRAME";

const FRAME_TYPE_NAMES: readonly FrameTypeName[] = [
  "KEY_FRAME",
  "INTER_FRAME",
  "INTRA_ONLY_FRAME",
  "SWITCH_FRAME",
];

/** What the first syntax elements of a frame header say. */
export type FrameHeaderStart =
  | {
    /** The header shows a frame decoded earlier, from reference slot `frameToShowMapIdx`. */
    showExistingFrame: true;
    frameToShowMapIdx: number;
    /** `frame_presentation_time`, when the decoder model codes it. */
    framePresentationTime?: number;
    /** `display_frame_id`, when frame ids are coded. */
    displayFrameId?: number;
  }
  | {
    /** `show_existing_frame`. */
    showExistingFrame: false;
    /** `frame_type`: 0 KEY_FRAME, 1 INTER_FRAME, 2 INTRA_ONLY_FRAME, 3 SWITCH_FRAME. */
    frameType: number;
    /** The spec's name of `frameType`. */
    frameTypeName: FrameTypeName;
    /** `show_frame`: the frame is output once decoded. */
    showFrame: boolean;
    /** `showable_frame`: a later `show_existing_frame` may output it. */
    showableFrame: boolean;
    /** `error_resilient_mode` (inferred true for shown key frames and switch frames). */
    errorResilientMode: boolean;
    framePresentationTime?: number;
    /** `current_frame_id`, when frame ids are coded. */
    currentFrameId?: number;
    /** `frame_size_override_flag`. */
    frameSizeOverride: boolean;
    /** `order_hint`: 0 without order hints. */
    orderHint: number;
    /** Bit i set when the frame is stored in reference slot i. */
    refreshFrameFlags: number;
    /**
     * `allow_screen_content_tools`: the frame may use palette and intra block copy (from the frame header
     * when the sequence lets each frame choose, else the sequence's `seq_force_screen_content_tools`).
     */
    allowScreenContentTools: boolean;
  };

/** Ids from the OBU extension header, which select the `buffer_removal_time` fields to read. */
export interface FrameHeaderContext {
  /** `temporal_id` of the OBU carrying the frame header (default 0). */
  temporalId?: number;
  /** `spatial_id` of the OBU carrying the frame header (default 0). */
  spatialId?: number;
}

/**
 * Parses the beginning of a frame header (the payload of an `OBU_FRAME_HEADER` or `OBU_FRAME`) up to
 * `refresh_frame_flags`, with the sequence header that governs it.
 * Throws an {@linkcode EncoderError} with code `"INVALID_INPUT"` when the payload ends too early.
 *
 * @example
 * ```ts
 * import { parseFrameHeaderStart, parseSequenceHeader } from "./mod.ts";
 * const seq = parseSequenceHeader(
 *   new Uint8Array([0x0a, 0x0a, 0x00, 0x00, 0x00, 0x03, 0xb4, 0xfd, 0x93, 0xef, 0xe4, 0x01]),
 * );
 * // show_existing_frame = 0, frame_type = KEY_FRAME, show_frame = 1, ...
 * const header = parseFrameHeaderStart(new Uint8Array([0x10, 0x00]), seq);
 * console.log(header.showExistingFrame ? "existing" : header.frameTypeName); // "KEY_FRAME"
 * ```
 */
export function parseFrameHeaderStart(
  payload: Uint8Array,
  seq: SequenceHeader,
  context: FrameHeaderContext = {},
): FrameHeaderStart {
  const r = new BitReader(payload, "frame header");
  const idLen = seq.frameIdNumbersPresent
    ? (seq.additionalFrameIdLength ?? 1) + (seq.deltaFrameIdLength ?? 2)
    : 0;
  const temporalPointInfo = seq.decoderModelInfo !== undefined && !seq.timingInfo?.equalPictureInterval;
  const presentationTimeBits = (seq.decoderModelInfo?.framePresentationTimeLengthMinus1 ?? 0) + 1;
  if (seq.reducedStillPictureHeader) {
    return {
      /** `show_existing_frame`. */
      showExistingFrame: false,
      /** `frame_type`: 0 KEY_FRAME, 1 INTER_FRAME, 2 INTRA_ONLY_FRAME, 3 SWITCH_FRAME. */
      frameType: KEY_FRAME,
      /** The spec's name of `frameType`. */
      frameTypeName: "KEY_FRAME",
      /** `show_frame`: the frame is output once decoded. */
      showFrame: true,
      /** `showable_frame`: a later `show_existing_frame` may output it. */
      showableFrame: false,
      /** `error_resilient_mode` (inferred true for shown key frames and switch frames). */
      errorResilientMode: true,
      ...readAfterErrorResilience(r, seq, context, KEY_FRAME, true, idLen),
    };
  }
  if (r.flag("show_existing_frame")) {
    const header: FrameHeaderStart = {
      /** `show_existing_frame`. */
      showExistingFrame: true,
      frameToShowMapIdx: r.f(3, "frame_to_show_map_idx"),
    };
    if (temporalPointInfo) {
      header.framePresentationTime = r.f(presentationTimeBits, "frame_presentation_time");
    }
    if (seq.frameIdNumbersPresent) header.displayFrameId = r.f(idLen, "display_frame_id");
    return header;
  }
  const frameType = r.f(2, "frame_type");
  const showFrame = r.flag("show_frame");
  let framePresentationTime: number | undefined;
  if (showFrame && temporalPointInfo) {
    framePresentationTime = r.f(presentationTimeBits, "frame_presentation_time");
  }
  const showableFrame = showFrame ? frameType !== KEY_FRAME : r.flag("showable_frame");
  const errorResilientMode = frameType === SWITCH_FRAME || (frameType === KEY_FRAME && showFrame)
    ? true
    : r.flag("error_resilient_mode");
  const rest = readAfterErrorResilience(r, seq, context, frameType, showFrame, idLen, errorResilientMode);
  const header: FrameHeaderStart = {
    /** `show_existing_frame`. */
    showExistingFrame: false,
    frameType,
    /** The spec's name of `frameType`. */
    frameTypeName: FRAME_TYPE_NAMES[frameType],
    showFrame,
    showableFrame,
    errorResilientMode,
    ...rest,
  };
  if (framePresentationTime !== undefined) header.framePresentationTime = framePresentationTime;
  return header;
}

function readAfterErrorResilience(
  r: BitReader,
  seq: SequenceHeader,
  context: FrameHeaderContext,
  /** `frame_type`: 0 KEY_FRAME, 1 INTER_FRAME, 2 INTRA_ONLY_FRAME, 3 SWITCH_FRAME. */
  frameType: number,
  /** `show_frame`: the frame is output once decoded. */
  showFrame: boolean,
  idLen: number,
  errorResilientMode = true,
): {
  currentFrameId?: number;
  frameSizeOverride: boolean;
  orderHint: number;
  refreshFrameFlags: number;
  allowScreenContentTools: boolean;
} {
  const frameIsIntra = frameType === KEY_FRAME || frameType === INTRA_ONLY_FRAME;
  r.f(1, "disable_cdf_update");
  const allowScreenContentTools = seq.seqForceScreenContentTools === 2
    ? r.f(1, "allow_screen_content_tools")
    : seq.seqForceScreenContentTools;
  if (allowScreenContentTools && seq.seqForceIntegerMv === 2) r.f(1, "force_integer_mv");
  let currentFrameId: number | undefined;
  if (seq.frameIdNumbersPresent) currentFrameId = r.f(idLen, "current_frame_id");
  const frameSizeOverride = frameType === SWITCH_FRAME
    ? true
    : seq.reducedStillPictureHeader
    ? false
    : r.flag("frame_size_override_flag");
  const orderHint = r.f(seq.orderHintBits, "order_hint");
  if (!frameIsIntra && !errorResilientMode) r.f(3, "primary_ref_frame");
  if (seq.decoderModelInfo) {
    if (r.flag("buffer_removal_time_present_flag")) {
      const bits = seq.decoderModelInfo.bufferRemovalTimeLengthMinus1 + 1;
      const temporalId = context.temporalId ?? 0;
      const spatialId = context.spatialId ?? 0;
      for (const [i, op] of seq.operatingPoints.entries()) {
        if (!op.decoderModelPresent) continue;
        const inTemporalLayer = (op.idc >> temporalId) & 1;
        const inSpatialLayer = (op.idc >> (spatialId + 8)) & 1;
        if (op.idc === 0 || (inTemporalLayer && inSpatialLayer)) r.f(bits, `buffer_removal_time[${i}]`);
      }
    }
  }
  const refreshFrameFlags = frameType === SWITCH_FRAME || (frameType === KEY_FRAME && showFrame)
    ? 0xff
    : r.f(8, "refresh_frame_flags");
  const out: {
    currentFrameId?: number;
    /** `frame_size_override_flag`. */
    frameSizeOverride: boolean;
    /** `order_hint`: 0 without order hints. */
    orderHint: number;
    refreshFrameFlags: number;
    allowScreenContentTools: boolean;
  } = {
    frameSizeOverride,
    orderHint,
    refreshFrameFlags,
    allowScreenContentTools: allowScreenContentTools === 1,
  };
  if (currentFrameId !== undefined) out.currentFrameId = currentFrameId;
  return out;
}
