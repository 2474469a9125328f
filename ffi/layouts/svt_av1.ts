/**
 * Struct layouts of SVT-AV1 by library version (LP64: x86-64 and aarch64). The configuration struct is
 * never written field by field (`svt_av1_enc_parse_parameter` sets it by name); only the buffer header
 * and the input picture descriptor are, and their offsets moved in 1.5 and 3.0.
 * @module
 */

/** Offsets of `EbBufferHeaderType`. */
export interface SvtBufferHeaderLayout {
  /** Byte size of the struct, which the caller also writes into its first field (`size`). */
  size: number;
  /** Offset of `p_buffer`: the input picture descriptor on send, the packet's bytes on receive. */
  pBuffer: number;
  /** Offset of `n_filled_len`, the number of valid bytes at `p_buffer`. */
  nFilledLen: number;
  /** Offset of `n_alloc_len`, the bytes allocated at `p_buffer`. */
  nAllocLen: number;
  /** Offset of `p_app_private`, an opaque pointer handed back with the packet. */
  pAppPrivate: number;
  /** Offset of `n_tick_count`, SVT-AV1's own timing field (unused here). */
  nTickCount: number;
  /** Offset of `dts`, the decode timestamp of an output packet. */
  dts: number;
  /** Offset of `pts`, the presentation timestamp (the frame's index in timebase units). */
  pts: number;
  /** Offset of `qp`, the quantiser the encoder used for an output frame. */
  qp: number;
  /** Offset of `pic_type`: `EB_AV1_KEY_PICTURE` requests a key frame on input and marks one on output. */
  picType: number;
  /** Offset of `flags` (`EB_BUFFERFLAG_EOS` and the other buffer flags). */
  flags: number;
  /** Offset of `metadata`, a pointer to attached metadata (always null here). */
  metadata: number;
}

/** Offsets of `EbSvtIOFormat`, the planes an input picture points to. */
export interface SvtIoFormatLayout {
  /** Byte size of the struct. */
  size: number;
  /** Offset of `luma`, the pointer to the Y plane. */
  luma: number;
  /** Offset of `cb`, the pointer to the U plane. */
  cb: number;
  /** Offset of `cr`, the pointer to the V plane. */
  cr: number;
  /** Offset of `y_stride`, the luma stride in samples. */
  yStride: number;
  /** Offset of `cr_stride`, the V plane's stride in samples. */
  crStride: number;
  /** Offset of `cb_stride`, the U plane's stride in samples. */
  cbStride: number;
  /** Absent from 3.0: the picture size comes from the configuration. */
  width?: number;
  /** Offset of `height` (before 3.0). */
  height?: number;
  /** Offset of `origin_x` (before 3.0), the left of the picture inside its planes. */
  originX?: number;
  /** Offset of `origin_y` (before 3.0), the top of the picture inside its planes. */
  originY?: number;
  /** Offset of `color_fmt` (before 3.0), the `EbColorFormat` of the planes. */
  colorFmt?: number;
  /** Offset of `bit_depth` (before 3.0). */
  bitDepth?: number;
}

/** Everything version-dependent about SVT-AV1's ABI. */
export interface SvtAv1Layout {
  /** Human-readable range, e.g. "1.4.x". */
  range: string;
  /** `init_handle` takes `(handle**, app_data*, config*)` before 3.0 and `(handle**, config*)` from it. */
  initHandleHasAppData: boolean;
  /** Bytes reserved for `EbSvtAv1EncConfiguration` (the largest known is 1720, in 1.4.1). */
  configBytes: number;
  /** Offsets of `EbBufferHeaderType` in this version. */
  bufferHeader: SvtBufferHeaderLayout;
  /** Offsets of `EbSvtIOFormat` in this version. */
  ioFormat: SvtIoFormatLayout;
  /** From 2.0 the input `n_filled_len` must be the real frame size in bytes. */
  filledLenIsFrameSize: boolean;
  /** 1.x flags EOS on the last real packet; 2.0+ send a separate empty EOS packet. */
  separateEosPacket: boolean;
  /** 1.8+ honour a KEY picture type without `enable-force-key-frames`. */
  keyPictureNeedsFlag: boolean;
}

const header136: SvtBufferHeaderLayout = {
  size: 136,
  pBuffer: 8,
  nFilledLen: 16,
  nAllocLen: 20,
  pAppPrivate: 24,
  nTickCount: 40,
  dts: 48,
  pts: 56,
  qp: 64,
  picType: 68,
  flags: 96,
  metadata: 128,
};

const header144: SvtBufferHeaderLayout = {
  size: 144,
  pBuffer: 8,
  nFilledLen: 16,
  nAllocLen: 20,
  pAppPrivate: 24,
  nTickCount: 40,
  dts: 48,
  pts: 56,
  qp: 68,
  picType: 76,
  flags: 104,
  metadata: 136,
};

const io14: SvtIoFormatLayout = {
  size: 88,
  luma: 0,
  cb: 8,
  cr: 16,
  yStride: 48,
  crStride: 52,
  cbStride: 56,
  width: 60,
  height: 64,
  originX: 68,
  originY: 72,
  colorFmt: 76,
  bitDepth: 80,
};

const io15: SvtIoFormatLayout = {
  size: 64,
  luma: 0,
  cb: 8,
  cr: 16,
  yStride: 24,
  crStride: 28,
  cbStride: 32,
  width: 36,
  height: 40,
  originX: 44,
  originY: 48,
  colorFmt: 52,
  bitDepth: 56,
};

const io30: SvtIoFormatLayout = { size: 40, luma: 0, cb: 8, cr: 16, yStride: 24, crStride: 28, cbStride: 32 };

/** A parsed `vMAJOR.MINOR.PATCH` version. */
export interface LibraryVersion {
  /** Major version, the first number (1 in 1.4.1). */
  major: number;
  /** Minor version, the second number. */
  minor: number;
  /** Patch version, the third number. */
  patch: number;
  /** The string the library reported. */
  text: string;
}

/** Parses what `svt_av1_get_version()` returns ("v1.4.1", "v2.3.0-dirty", "3.0.2"). */
export function parseSvtVersion(text: string): LibraryVersion | undefined {
  const m = /^v?(\d+)\.(\d+)\.(\d+)/.exec(text.trim());
  if (!m) return undefined;
  return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]), text: text.trim() };
}

/** The versions this project has layouts for. */
export const SUPPORTED_SVT_AV1 = "1.4.0 to 4.x";

/** Picks the layout for a library version, or undefined when the version is not supported. */
export function svtAv1LayoutFor(v: LibraryVersion): SvtAv1Layout | undefined {
  const at = (major: number, minor: number) => v.major > major || (v.major === major && v.minor >= minor);
  if (!at(1, 4) || v.major >= 5) return undefined;
  if (v.major === 1 && v.minor === 4) {
    return {
      range: "1.4.x",
      initHandleHasAppData: true,
      configBytes: 4096,
      bufferHeader: header136,
      ioFormat: io14,
      filledLenIsFrameSize: false,
      separateEosPacket: false,
      keyPictureNeedsFlag: true,
    };
  }
  if (v.major < 3) {
    return {
      range: "1.5 to 2.3",
      initHandleHasAppData: true,
      configBytes: 4096,
      bufferHeader: header136,
      ioFormat: io15,
      filledLenIsFrameSize: v.major >= 2,
      separateEosPacket: v.major >= 2,
      keyPictureNeedsFlag: !at(1, 8),
    };
  }
  return {
    range: "3.x and 4.x",
    initHandleHasAppData: false,
    configBytes: 4096,
    bufferHeader: header144,
    ioFormat: io30,
    filledLenIsFrameSize: true,
    separateEosPacket: true,
    keyPictureNeedsFlag: false,
  };
}
