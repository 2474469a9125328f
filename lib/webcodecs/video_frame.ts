/**
 * {@linkcode VideoFrame}: the WebCodecs raw picture, built from a buffer. It owns a copy of the pixels,
 * so callers may reuse or transfer their buffer (and close the frame) straight after `encode()`.
 * @module
 */
import {
  copyRows,
  deinterleaveUV,
  narrowTo8Bit,
  type PlaneRegion,
  rgbToI420,
  widenTo10Bit,
} from "./pixel_convert.ts";

/** Pixel formats a {@linkcode VideoFrame} can hold. */
export type VideoPixelFormat = "I420" | "I420P10" | "NV12" | "RGBA" | "RGBX" | "BGRA" | "BGRX";

/** A rectangle as WebCodecs' `DOMRectInit`. */
export interface DOMRectInit {
  /** Left edge in pixels (0 by default). */
  x?: number;
  /** Top edge in pixels (0 by default). */
  y?: number;
  /** Width in pixels. */
  width?: number;
  /** Height in pixels. */
  height?: number;
}

/** A read-only rectangle like `DOMRectReadOnly`. */
export interface VideoFrameRect {
  /** Left edge in pixels. */
  readonly x: number;
  /** Top edge in pixels. */
  readonly y: number;
  /** Width in pixels. */
  readonly width: number;
  /** Height in pixels. */
  readonly height: number;
  /** Same as `y`. */
  readonly top: number;
  /** Same as `x`. */
  readonly left: number;
  /** `x + width`. */
  readonly right: number;
  /** `y + height`. */
  readonly bottom: number;
}

/** Where one plane lives in a buffer. */
export interface PlaneLayout {
  /** Byte offset of the plane in the buffer. */
  offset: number;
  /** Bytes from the start of one row to the next. */
  stride: number;
}

/** Colour description, as WebCodecs' `VideoColorSpaceInit`. */
export interface VideoColorSpaceInit {
  /** Colour primaries (`"bt709"`, `"bt2020"`…), or null when unknown. */
  primaries?: string | null;
  /** Transfer characteristics (`"bt709"`, `"pq"`, `"hlg"`…), or null. */
  transfer?: string | null;
  /** Matrix coefficients (`"bt709"`, `"bt601"`…), or null. */
  matrix?: string | null;
  /** Whether samples use the full range, or null when unknown. */
  fullRange?: boolean | null;
}

/** The second argument of `new VideoFrame(data, init)`. */
export interface VideoFrameBufferInit {
  /** Pixel format of the buffer. */
  format: VideoPixelFormat;
  /** Width of the buffer's picture in pixels. */
  codedWidth: number;
  /** Height of the buffer's picture in pixels. */
  codedHeight: number;
  /** Presentation time in microseconds. */
  timestamp: number;
  /** Duration in microseconds. */
  duration?: number;
  /** Planes' offsets and strides in `data`; default tightly packed. */
  layout?: PlaneLayout[];
  /** The visible region; default the whole coded picture. */
  visibleRect?: DOMRectInit;
  /** Display width (defaults to the visible width). */
  displayWidth?: number;
  /** Display height (defaults to the visible height). */
  displayHeight?: number;
  /** The colour space of the samples. */
  colorSpace?: VideoColorSpaceInit;
  /** Accepted for compatibility; the frame copies `data` either way. */
  transfer?: ArrayBuffer[];
}

/** Options of {@linkcode VideoFrame.copyTo} and {@linkcode VideoFrame.allocationSize}. */
export interface VideoFrameCopyToOptions {
  /** Region to copy; default the visible rectangle. */
  rect?: DOMRectInit;
  /** Where each plane goes in the destination; default tightly packed. */
  layout?: PlaneLayout[];
}

interface PlaneSpec {
  /** Horizontal and vertical subsampling. */
  subX: number;
  subY: number;
  /** Bytes per sample element (2 for 16-bit, 2 for NV12's UV pairs, 4 for RGBA). */
  bytes: number;
}

const PLANES: Record<VideoPixelFormat, PlaneSpec[]> = {
  I420: [{ subX: 1, subY: 1, bytes: 1 }, { subX: 2, subY: 2, bytes: 1 }, { subX: 2, subY: 2, bytes: 1 }],
  I420P10: [{ subX: 1, subY: 1, bytes: 2 }, { subX: 2, subY: 2, bytes: 2 }, { subX: 2, subY: 2, bytes: 2 }],
  NV12: [{ subX: 1, subY: 1, bytes: 1 }, { subX: 2, subY: 2, bytes: 2 }],
  RGBA: [{ subX: 1, subY: 1, bytes: 4 }],
  RGBX: [{ subX: 1, subY: 1, bytes: 4 }],
  BGRA: [{ subX: 1, subY: 1, bytes: 4 }],
  BGRX: [{ subX: 1, subY: 1, bytes: 4 }],
};

interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** The pixels a frame and its clones share: one tightly packed copy per plane of the coded picture. */
interface Resource {
  planes: Uint8Array[];
  strides: number[];
}

function invalidState(what: string): DOMException {
  return new DOMException(`Cannot ${what}: the VideoFrame is closed`, "InvalidStateError");
}

function readRect(rect: Rect): VideoFrameRect {
  return Object.freeze({
    ...rect,
    top: rect.y,
    left: rect.x,
    right: rect.x + rect.width,
    bottom: rect.y + rect.height,
  });
}

function unsignedLong(name: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0 || v > 0xffffffff) {
    throw new TypeError(`${name} must be a non-negative integer, got ${String(v)}`);
  }
  return Math.trunc(v);
}

/** Checks a rectangle against the coded size and the format's sample alignment. */
function parseRect(
  init: DOMRectInit | undefined,
  fallback: Rect,
  codedWidth: number,
  codedHeight: number,
  format: VideoPixelFormat,
): Rect {
  if (init === undefined) return fallback;
  const rect = {
    x: unsignedLong("visibleRect.x", init.x ?? 0),
    y: unsignedLong("visibleRect.y", init.y ?? 0),
    width: unsignedLong("visibleRect.width", init.width ?? 0),
    height: unsignedLong("visibleRect.height", init.height ?? 0),
  };
  if (rect.width === 0 || rect.height === 0) {
    throw new TypeError("The rectangle's width and height must be above 0");
  }
  if (rect.x + rect.width > codedWidth || rect.y + rect.height > codedHeight) {
    throw new TypeError(
      `The rectangle ${rect.width}x${rect.height} at ${rect.x},${rect.y} does not fit the coded size ${codedWidth}x${codedHeight}`,
    );
  }
  for (const plane of PLANES[format]) {
    if (rect.x % plane.subX !== 0 || rect.y % plane.subY !== 0) {
      throw new TypeError(`The rectangle's x and y must be even for ${format}, got ${rect.x},${rect.y}`);
    }
  }
  return rect;
}

/** Offsets, strides and the total size of `rect` in `format`, tightly packed unless `layout` says where. */
function computeLayout(rect: Rect, format: VideoPixelFormat, layout: PlaneLayout[] | undefined) {
  const specs = PLANES[format];
  if (layout !== undefined && (!Array.isArray(layout) || layout.length !== specs.length)) {
    throw new TypeError(`${format} has ${specs.length} planes but the layout gives ${layout?.length}`);
  }
  const planes: { offset: number; stride: number; rowBytes: number; rows: number }[] = [];
  let end = 0;
  let size = 0;
  for (let i = 0; i < specs.length; i++) {
    const { subX, subY, bytes } = specs[i];
    const rowBytes = Math.ceil(rect.width / subX) * bytes;
    const rows = Math.ceil(rect.height / subY);
    let offset = end;
    let stride = rowBytes;
    if (layout) {
      offset = unsignedLong(`layout[${i}].offset`, layout[i]?.offset);
      stride = unsignedLong(`layout[${i}].stride`, layout[i]?.stride);
      if (stride < rowBytes) {
        throw new TypeError(
          `Plane ${i} of ${format} needs a stride of at least ${rowBytes} bytes, got ${stride}`,
        );
      }
    }
    const planeSize = stride * rows;
    end = offset + planeSize;
    for (const p of planes) {
      if (offset < p.offset + p.stride * p.rows && p.offset < end) {
        throw new TypeError(`Plane ${i} overlaps another plane`);
      }
    }
    planes.push({ offset, stride, rowBytes, rows });
    size = Math.max(size, end);
  }
  return { planes, size };
}

function asBytes(data: unknown): Uint8Array {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (typeof SharedArrayBuffer !== "undefined" && data instanceof SharedArrayBuffer) {
    return new Uint8Array(data);
  }
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw new TypeError("VideoFrame data must be an ArrayBuffer or an ArrayBufferView");
}

/** The raw picture the encoder takes: tightly packed I420, 8- or 16-bit samples. */
export interface I420Picture {
  /** The samples: Y, then U, then V, tightly packed. */
  data: Uint8Array<ArrayBuffer>;
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
}

/**
 * A raw video frame made from a buffer, as in WebCodecs: `new VideoFrame(data, { format, codedWidth,
 * codedHeight, timestamp })`. It keeps its own copy of the pixels; `clone()` shares that copy and
 * `close()` releases this handle.
 *
 * @example
 * ```ts
 * import { VideoFrame } from "./video_frame.ts";
 * const rgba = new Uint8Array(4 * 4 * 4).fill(128);
 * const frame = new VideoFrame(rgba, { format: "RGBA", codedWidth: 4, codedHeight: 4, timestamp: 0 });
 * console.log(frame.allocationSize()); // 64
 * frame.close();
 * ```
 */
export class VideoFrame {
  #resource: Resource | null;
  #format: VideoPixelFormat;
  #codedWidth: number;
  #codedHeight: number;
  #visible: Rect;
  #displayWidth: number;
  #displayHeight: number;
  #timestamp: number;
  #duration: number | null;
  #colorSpace: VideoColorSpaceInit;

  /** Wraps a copy of the pixels, or clones another frame; a bad init throws TypeError. */
  constructor(data: AllowSharedBufferSource | VideoFrame, init: VideoFrameBufferInit) {
    if (data instanceof VideoFrame) {
      // Wrapping another frame: same pixels, with this init's timestamp and duration when given.
      if (!data.#resource) throw invalidState("make a VideoFrame from it");
      const source = data;
      const overrides = (init ?? {}) as Partial<VideoFrameBufferInit>;
      this.#resource = source.#resource;
      this.#format = source.#format;
      this.#codedWidth = source.#codedWidth;
      this.#codedHeight = source.#codedHeight;
      this.#visible = parseRect(
        overrides.visibleRect,
        source.#visible,
        source.#codedWidth,
        source.#codedHeight,
        source.#format,
      );
      this.#displayWidth = overrides.displayWidth ?? source.#displayWidth;
      this.#displayHeight = overrides.displayHeight ?? source.#displayHeight;
      this.#timestamp = overrides.timestamp === undefined
        ? source.#timestamp
        : Math.trunc(overrides.timestamp);
      this.#duration = overrides.duration === undefined ? source.#duration : Math.trunc(overrides.duration);
      this.#colorSpace = { ...source.#colorSpace };
      return;
    }
    if (init === null || typeof init !== "object") {
      throw new TypeError(
        "VideoFrame needs an init object with format, codedWidth, codedHeight and timestamp",
      );
    }
    const format = init.format;
    if (!Object.hasOwn(PLANES, format)) {
      throw new TypeError(
        `Unsupported VideoFrame format ${JSON.stringify(format)}: use ${Object.keys(PLANES).join(", ")}`,
      );
    }
    if (init.timestamp === undefined) throw new TypeError("VideoFrame init needs a timestamp (microseconds)");
    if (typeof init.timestamp !== "number" || !Number.isFinite(init.timestamp)) {
      throw new TypeError(`VideoFrame timestamp must be a finite number, got ${String(init.timestamp)}`);
    }
    if (
      init.duration !== undefined
      && (typeof init.duration !== "number" || !Number.isFinite(init.duration) || init.duration < 0)
    ) {
      throw new TypeError(`VideoFrame duration must be a non-negative number, got ${String(init.duration)}`);
    }
    const codedWidth = unsignedLong("codedWidth", init.codedWidth);
    const codedHeight = unsignedLong("codedHeight", init.codedHeight);
    if (codedWidth === 0 || codedHeight === 0) {
      throw new TypeError(`codedWidth and codedHeight must be above 0, got ${codedWidth}x${codedHeight}`);
    }
    const coded = { x: 0, y: 0, width: codedWidth, height: codedHeight };
    const visible = parseRect(init.visibleRect, coded, codedWidth, codedHeight, format);
    if ((init.displayWidth === undefined) !== (init.displayHeight === undefined)) {
      throw new TypeError("Give both displayWidth and displayHeight, or neither");
    }
    const displayWidth = init.displayWidth === undefined
      ? visible.width
      : unsignedLong("displayWidth", init.displayWidth);
    const displayHeight = init.displayHeight === undefined
      ? visible.height
      : unsignedLong("displayHeight", init.displayHeight);
    if (displayWidth === 0 || displayHeight === 0) {
      throw new TypeError("displayWidth and displayHeight must be above 0");
    }
    // The buffer holds the whole coded picture (as browsers read it); the layout says where its planes are.
    const layout = computeLayout(coded, format, init.layout);
    const bytes = asBytes(data);
    if (bytes.byteLength < layout.size) {
      throw new TypeError(
        `${codedWidth}x${codedHeight} ${format} needs ${layout.size} bytes of data, got ${bytes.byteLength}`,
      );
    }
    const planes: Uint8Array[] = [];
    const strides: number[] = [];
    for (const p of layout.planes) {
      const plane = new Uint8Array(p.rowBytes * p.rows);
      copyRows({ data: bytes, stride: p.stride, offset: p.offset }, p.rowBytes, p.rows, plane, 0);
      planes.push(plane);
      strides.push(p.rowBytes);
    }
    this.#resource = { planes, strides };
    this.#format = format;
    this.#codedWidth = codedWidth;
    this.#codedHeight = codedHeight;
    this.#visible = visible;
    this.#displayWidth = displayWidth;
    this.#displayHeight = displayHeight;
    this.#timestamp = Math.trunc(init.timestamp);
    this.#duration = init.duration === undefined ? null : Math.trunc(init.duration);
    const rgb = format.startsWith("RGB") || format.startsWith("BGR");
    this.#colorSpace = {
      primaries: init.colorSpace?.primaries ?? (rgb ? "bt709" : "smpte170m"),
      transfer: init.colorSpace?.transfer ?? (rgb ? "iec61966-2-1" : "smpte170m"),
      matrix: init.colorSpace?.matrix ?? (rgb ? "rgb" : "smpte170m"),
      fullRange: init.colorSpace?.fullRange ?? rgb,
    };
  }

  /** The pixel format, or null once closed. */
  get format(): VideoPixelFormat | null {
    return this.#resource ? this.#format : null;
  }
  /** Width of the buffer's picture in pixels (0 once closed). */
  get codedWidth(): number {
    return this.#resource ? this.#codedWidth : 0;
  }
  /** Height of the buffer's picture in pixels (0 once closed). */
  get codedHeight(): number {
    return this.#resource ? this.#codedHeight : 0;
  }
  /** The whole coded picture (null once closed). */
  get codedRect(): VideoFrameRect | null {
    return this.#resource
      ? readRect({ x: 0, y: 0, width: this.#codedWidth, height: this.#codedHeight })
      : null;
  }
  /** The part of the picture that is shown (null once closed). */
  get visibleRect(): VideoFrameRect | null {
    return this.#resource ? readRect(this.#visible) : null;
  }
  /** Display width in pixels. */
  get displayWidth(): number {
    return this.#resource ? this.#displayWidth : 0;
  }
  /** Display height in pixels. */
  get displayHeight(): number {
    return this.#resource ? this.#displayHeight : 0;
  }
  /** Presentation time in microseconds. */
  get timestamp(): number {
    return this.#timestamp;
  }
  /** Duration in microseconds, or null. */
  get duration(): number | null {
    return this.#duration;
  }
  /** The colour space of the samples. */
  get colorSpace(): VideoColorSpaceInit {
    return { ...this.#colorSpace };
  }

  /** Bytes `copyTo()` writes with these options. */
  allocationSize(options: VideoFrameCopyToOptions = {}): number {
    if (!this.#resource) throw invalidState("get the allocation size");
    const rect = parseRect(options.rect, this.#visible, this.#codedWidth, this.#codedHeight, this.#format);
    return computeLayout(rect, this.#format, options.layout).size;
  }

  /** Copies the visible pixels (or `options.rect`) into `destination`; resolves with each plane's layout. */
  copyTo(
    destination: AllowSharedBufferSource,
    options: VideoFrameCopyToOptions = {},
  ): Promise<PlaneLayout[]> {
    try {
      if (!this.#resource) throw invalidState("copy");
      const rect = parseRect(options.rect, this.#visible, this.#codedWidth, this.#codedHeight, this.#format);
      const layout = computeLayout(rect, this.#format, options.layout);
      const out = asBytes(destination);
      if (out.byteLength < layout.size) {
        throw new TypeError(`The destination has ${out.byteLength} bytes but the frame needs ${layout.size}`);
      }
      layout.planes.forEach((p, i) => {
        const region = this.#region(i, rect.x, rect.y);
        for (let row = 0; row < p.rows; row++) {
          const from = region.offset + row * region.stride;
          out.set(region.data.subarray(from, from + p.rowBytes), p.offset + row * p.stride);
        }
      });
      return Promise.resolve(layout.planes.map((p) => ({ offset: p.offset, stride: p.stride })));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Another handle on the same pixels, closed independently. */
  clone(): VideoFrame {
    if (!this.#resource) throw invalidState("clone");
    return new VideoFrame(this, {} as VideoFrameBufferInit);
  }

  /** Releases this handle; later use throws InvalidStateError. Idempotent. */
  close(): void {
    this.#resource = null;
  }

  #region(plane: number, x: number, y: number): PlaneRegion {
    const r = this.#resource!;
    const { subX, subY, bytes } = PLANES[this.#format][plane];
    const stride = r.strides[plane];
    return { data: r.planes[plane], stride, offset: (y / subY) * stride + (x / subX) * bytes };
  }

  /**
   * The visible pixels as tightly packed I420 at `bitDepth` (8 or 10), converting from the frame's format.
   * For the encoder; null when closed.
   */
  static toI420(frame: VideoFrame, bitDepth: 8 | 10): I420Picture | null {
    if (!frame.#resource) return null;
    const rect = frame.#visible;
    const format = frame.#format;
    const { width, height } = rect;
    const cw = (width + 1) >> 1;
    const ch = (height + 1) >> 1;
    const lumaSize = width * height;
    let out: Uint8Array<ArrayBuffer>;
    if (format === "I420P10") {
      out = new Uint8Array((lumaSize + 2 * cw * ch) * 2);
      copyRows(frame.#region(0, rect.x, rect.y), width * 2, height, out, 0);
      copyRows(frame.#region(1, rect.x, rect.y), cw * 2, ch, out, lumaSize * 2);
      copyRows(frame.#region(2, rect.x, rect.y), cw * 2, ch, out, (lumaSize + cw * ch) * 2);
      return { data: bitDepth === 10 ? out : narrowTo8Bit(out), width, height };
    }
    out = new Uint8Array(lumaSize + 2 * cw * ch);
    if (format === "I420") {
      copyRows(frame.#region(0, rect.x, rect.y), width, height, out, 0);
      copyRows(frame.#region(1, rect.x, rect.y), cw, ch, out, lumaSize);
      copyRows(frame.#region(2, rect.x, rect.y), cw, ch, out, lumaSize + cw * ch);
    } else if (format === "NV12") {
      copyRows(frame.#region(0, rect.x, rect.y), width, height, out, 0);
      deinterleaveUV(frame.#region(1, rect.x, rect.y), cw, ch, out, lumaSize, lumaSize + cw * ch);
    } else {
      const order = format === "RGBA" || format === "RGBX" ? "rgb" : "bgr";
      rgbToI420(frame.#region(0, rect.x, rect.y), width, height, order, out);
    }
    return { data: bitDepth === 10 ? widenTo10Bit(out) : out, width, height };
  }
}
