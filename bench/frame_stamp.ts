/**
 * A frame's index written into its picture as a bar code of flat luma blocks, for measuring latency
 * through paths that keep no timestamp of ours (WebRTC rewrites it into a 90 kHz RTP clock with a random
 * start). Two rows of 16 blocks at the top left: the index's bits (most significant first, white for
 * 1) and below them the same bits inverted, so a reading is taken only when every block of both rows
 * is clearly black or white and the rows disagree everywhere. Blocks are 32x32 at 640 px wide (smaller
 * on narrower pictures, never under 8x8) and aligned to the 8x8 grid, so each is a flat transform block
 * that survives any quantizer a live stream uses; each is read from its middle half, away from edge
 * ringing.
 *
 * {@linkcode readFrameIndex} uses nothing outside itself so that it runs in a browser page too, as
 * {@linkcode READ_FRAME_INDEX_SOURCE}.
 * @module
 */

/** Bits of the index: indices 0 to 65535. */
export const STAMP_BITS = 16;
const BLACK = 16;
const WHITE = 235;

/** Side of one block in pixels for a picture `width` wide: 32 at 640 and over, at least 8. */
export function stampBlock(width: number): number {
  return Math.min(32, Math.floor(width / STAMP_BITS / 8) * 8);
}

/** Writes `index` into the 8-bit luma plane `luma` (stride `width`) of a `width`x`height` picture. */
export function stampFrameIndex(luma: Uint8Array, width: number, height: number, index: number): void {
  const block = stampBlock(width);
  if (block < 8 || height < 2 * block) {
    throw new RangeError(`a ${width}x${height} picture is too small for the frame stamp (128x16 at least)`);
  }
  if (!Number.isInteger(index) || index < 0 || index >= 2 ** STAMP_BITS) {
    throw new RangeError(
      `frame stamp index must be an integer from 0 to ${2 ** STAMP_BITS - 1}, got ${index}`,
    );
  }
  for (let bit = 0; bit < STAMP_BITS; bit++) {
    const one = (index >> (STAMP_BITS - 1 - bit)) & 1;
    for (let y = 0; y < 2 * block; y++) {
      const value = (y < block ? one : 1 - one) ? WHITE : BLACK;
      const start = y * width + bit * block;
      luma.fill(value, start, start + block);
    }
  }
}

/**
 * The index stamped into a picture, from its 8-bit luma samples (`stride` bytes a row, at least the top
 * two block rows of a picture `width` wide); `null` when no stamp reads cleanly (a block neither dark
 * nor light, or the two rows agreeing somewhere).
 */
export function readFrameIndex(luma: Uint8Array, stride: number, width: number): number | null {
  const bits = 16;
  const block = Math.min(32, Math.floor(width / bits / 8) * 8);
  if (block < 8) return null;
  const from = block >> 2, to = block - (block >> 2);
  const mean = (x0: number, y0: number) => {
    let sum = 0;
    for (let y = y0 + from; y < y0 + to; y++) {
      for (let x = x0 + from; x < x0 + to; x++) sum += luma[y * stride + x];
    }
    return sum / ((to - from) * (to - from));
  };
  let index = 0;
  for (let bit = 0; bit < bits; bit++) {
    const top = mean(bit * block, 0), bottom = mean(bit * block, block);
    // Between black (16) and white (235): anything in the middle third is no bit at all.
    const dark = (v: number) => v < 90, light = (v: number) => v > 160;
    if (light(top) && dark(bottom)) index = index * 2 + 1;
    else if (dark(top) && light(bottom)) index = index * 2;
    else return null;
  }
  return index;
}

/** {@linkcode readFrameIndex} as JavaScript source, for a page: `(${READ_FRAME_INDEX_SOURCE})(luma, stride, width)`. */
export const READ_FRAME_INDEX_SOURCE: string = readFrameIndex.toString();
