/**
 * Pixel conversions the encoder needs: packed RGB to planar 4:2:0 (BT.601, limited range), NV12 to I420
 * and 8 ↔ 10 bit. Each works on whole rows of typed arrays; none calls a function per pixel.
 * @module
 */

/** Where a region of a plane is: its bytes, row stride, and the top-left sample of the region. */
export interface PlaneRegion {
  /** The plane's samples. */
  data: Uint8Array;
  /** Bytes from the start of one row to the next. */
  stride: number;
  /** Byte offset of the region's first sample. */
  offset: number;
}

/**
 * Converts a `width`x`height` region of packed RGBA/RGBX (`order` "rgb") or BGRA/BGRX (`order` "bgr") into
 * tightly packed I420 at `out` (Y, then U, then V; chroma planes are ceil(width/2) x ceil(height/2)).
 * BT.601 limited range with integer coefficients; chroma from the average of each 2x2 block.
 *
 * @example
 * ```ts
 * import { rgbToI420 } from "./pixel_convert.ts";
 * const red = new Uint8Array([255, 0, 0, 255, 255, 0, 0, 255, 255, 0, 0, 255, 255, 0, 0, 255]);
 * const out = new Uint8Array(6);
 * rgbToI420({ data: red, stride: 8, offset: 0 }, 2, 2, "rgb", out);
 * console.log(out); // Uint8Array(6) [ 82, 82, 82, 82, 90, 240 ]
 * ```
 */
export function rgbToI420(
  src: PlaneRegion,
  width: number,
  height: number,
  order: "rgb" | "bgr",
  out: Uint8Array,
) {
  const { data, stride } = src;
  const ri = order === "rgb" ? 0 : 2;
  const bi = 2 - ri;
  const cw = (width + 1) >> 1;
  const ch = (height + 1) >> 1;
  const uBase = width * height;
  const vBase = uBase + cw * ch;
  for (let y = 0; y < height; y += 2) {
    const row0 = src.offset + y * stride;
    const hasRow1 = y + 1 < height;
    const row1 = hasRow1 ? row0 + stride : row0;
    const y0 = y * width;
    const y1 = y0 + width;
    let c = uBase + (y >> 1) * cw;
    for (let x = 0; x < width; x += 2) {
      const a = row0 + x * 4;
      const hasCol1 = x + 1 < width;
      const b = hasCol1 ? a + 4 : a;
      const d = row1 + x * 4;
      const e = hasCol1 ? d + 4 : d;
      const r00 = data[a + ri], g00 = data[a + 1], b00 = data[a + bi];
      const r01 = data[b + ri], g01 = data[b + 1], b01 = data[b + bi];
      const r10 = data[d + ri], g10 = data[d + 1], b10 = data[d + bi];
      const r11 = data[e + ri], g11 = data[e + 1], b11 = data[e + bi];
      out[y0 + x] = ((66 * r00 + 129 * g00 + 25 * b00 + 128) >> 8) + 16;
      if (hasCol1) out[y0 + x + 1] = ((66 * r01 + 129 * g01 + 25 * b01 + 128) >> 8) + 16;
      if (hasRow1) {
        out[y1 + x] = ((66 * r10 + 129 * g10 + 25 * b10 + 128) >> 8) + 16;
        if (hasCol1) out[y1 + x + 1] = ((66 * r11 + 129 * g11 + 25 * b11 + 128) >> 8) + 16;
      }
      const r = (r00 + r01 + r10 + r11 + 2) >> 2;
      const g = (g00 + g01 + g10 + g11 + 2) >> 2;
      const bl = (b00 + b01 + b10 + b11 + 2) >> 2;
      out[c] = ((-38 * r - 74 * g + 112 * bl + 128) >> 8) + 128;
      out[c + vBase - uBase] = ((112 * r - 94 * g - 18 * bl + 128) >> 8) + 128;
      c++;
    }
  }
}

/**
 * Copies `rows` rows of `rowBytes` bytes from a strided region into `out` at `outOffset`, tightly packed.
 * A row is one `set()` of a subarray.
 */
export function copyRows(
  src: PlaneRegion,
  rowBytes: number,
  rows: number,
  out: Uint8Array,
  outOffset: number,
) {
  if (src.stride === rowBytes) {
    out.set(src.data.subarray(src.offset, src.offset + rowBytes * rows), outOffset);
    return;
  }
  for (let y = 0; y < rows; y++) {
    const from = src.offset + y * src.stride;
    out.set(src.data.subarray(from, from + rowBytes), outOffset + y * rowBytes);
  }
}

/**
 * Splits an interleaved UV region (NV12's second plane) of `cw`x`ch` chroma samples into the U and V planes
 * of `out`, at `uOffset` and `vOffset`.
 */
export function deinterleaveUV(
  src: PlaneRegion,
  cw: number,
  ch: number,
  out: Uint8Array,
  uOffset: number,
  vOffset: number,
) {
  const { data, stride } = src;
  for (let y = 0; y < ch; y++) {
    let s = src.offset + y * stride;
    let u = uOffset + y * cw;
    let v = vOffset + y * cw;
    const end = u + cw;
    while (u < end) {
      out[u++] = data[s++];
      out[v++] = data[s++];
    }
  }
}

/** 8-bit samples to 10-bit little-endian 16-bit samples (value << 2), whole buffer. */
export function widenTo10Bit(src: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(src.length * 2);
  const words = new Uint16Array(out.buffer);
  const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
  for (let i = 0; i < src.length; i++) words[i] = src[i] << 2;
  if (!littleEndian) swapBytes(out);
  return out;
}

/** 10-bit little-endian 16-bit samples to 8-bit samples (rounded), whole buffer. */
export function narrowTo8Bit(src: Uint8Array): Uint8Array<ArrayBuffer> {
  const n = src.length >> 1;
  const out = new Uint8Array(n);
  for (let i = 0, j = 0; i < n; i++, j += 2) {
    const v = (src[j] | (src[j + 1] << 8)) & 0x3ff;
    out[i] = Math.min(255, (v + 2) >> 2);
  }
  return out;
}

function swapBytes(bytes: Uint8Array) {
  for (let i = 0; i + 1 < bytes.length; i += 2) {
    const t = bytes[i];
    bytes[i] = bytes[i + 1];
    bytes[i + 1] = t;
  }
}
