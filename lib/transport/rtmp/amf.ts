/**
 * AMF0, the encoding of RTMP commands (`connect`, `createStream`, `publish`) and of FLV script data
 * (`onMetaData`): just the types those use.
 * @module
 */

import { EncoderError } from "../../errors.ts";

/**
 * An AMF0 value: a plain object encodes as an AMF0 object, a `Map` as an ECMA array (what `onMetaData`
 * uses), an array as a strict array (what `fourCcList` uses).
 */
export type AmfValue =
  | number
  | boolean
  | string
  | null
  | undefined
  | AmfValue[]
  | Map<string, AmfValue>
  | { [key: string]: AmfValue };

const NUMBER = 0x00,
  BOOLEAN = 0x01,
  STRING = 0x02,
  OBJECT = 0x03,
  NULL = 0x05,
  UNDEFINED = 0x06,
  ECMA_ARRAY = 0x08,
  OBJECT_END = 0x09,
  STRICT_ARRAY = 0x0a,
  DATE = 0x0b,
  LONG_STRING = 0x0c;

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

class Writer {
  #chunks: number[] = [];
  u8(v: number) {
    this.#chunks.push(v & 0xff);
  }
  u16(v: number) {
    this.u8(v >> 8);
    this.u8(v);
  }
  u32(v: number) {
    this.u16(v >>> 16);
    this.u16(v & 0xffff);
  }
  bytes(b: Uint8Array) {
    for (const x of b) this.#chunks.push(x);
  }
  done(): Uint8Array<ArrayBuffer> {
    return Uint8Array.from(this.#chunks);
  }
}

function writeKey(w: Writer, key: string) {
  const b = utf8.encode(key);
  w.u16(b.length);
  w.bytes(b);
}

function writeValue(w: Writer, v: AmfValue) {
  if (v === undefined) return w.u8(UNDEFINED);
  if (v === null) return w.u8(NULL);
  if (typeof v === "number") {
    w.u8(NUMBER);
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, v);
    return w.bytes(b);
  }
  if (typeof v === "boolean") {
    w.u8(BOOLEAN);
    return w.u8(v ? 1 : 0);
  }
  if (typeof v === "string") {
    const b = utf8.encode(v);
    if (b.length > 0xffff) {
      w.u8(LONG_STRING);
      w.u32(b.length);
    } else {
      w.u8(STRING);
      w.u16(b.length);
    }
    return w.bytes(b);
  }
  if (Array.isArray(v)) {
    w.u8(STRICT_ARRAY);
    w.u32(v.length);
    for (const x of v) writeValue(w, x);
    return;
  }
  const entries = v instanceof Map ? [...v.entries()] : Object.entries(v);
  if (v instanceof Map) {
    w.u8(ECMA_ARRAY);
    w.u32(entries.length);
  } else w.u8(OBJECT);
  for (const [k, x] of entries) {
    writeKey(w, k);
    writeValue(w, x);
  }
  w.u16(0);
  w.u8(OBJECT_END);
}

/**
 * Encodes values one after the other, as a command message or a script data tag holds them.
 *
 * @example
 * ```ts
 * import { encodeAmf0 } from "./amf.ts";
 * console.log(encodeAmf0(["createStream", 4, null])); // Uint8Array(25) [ 2, 0, 12, 99, ... ]
 * ```
 */
export function encodeAmf0(values: AmfValue[]): Uint8Array<ArrayBuffer> {
  const w = new Writer();
  for (const v of values) writeValue(w, v);
  return w.done();
}

function malformed(what: string): EncoderError {
  return new EncoderError("INVALID_INPUT", `Malformed AMF0 data: ${what}`);
}

class Reader {
  at = 0;
  readonly view: DataView;
  constructor(readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  need(n: number) {
    if (this.at + n > this.bytes.length) throw malformed(`it ends inside a value at byte ${this.at}`);
  }
  u8() {
    this.need(1);
    return this.bytes[this.at++];
  }
  u16() {
    this.need(2);
    const v = this.view.getUint16(this.at);
    this.at += 2;
    return v;
  }
  u32() {
    this.need(4);
    const v = this.view.getUint32(this.at);
    this.at += 4;
    return v;
  }
  string(n: number) {
    this.need(n);
    const s = fromUtf8.decode(this.bytes.subarray(this.at, this.at + n));
    this.at += n;
    return s;
  }
}

function readProperties(r: Reader, into: (key: string, value: AmfValue) => void) {
  while (true) {
    const key = r.string(r.u16());
    if (key === "" && r.bytes[r.at] === OBJECT_END) {
      r.at++;
      return;
    }
    into(key, readValue(r));
  }
}

function readValue(r: Reader): AmfValue {
  const type = r.u8();
  switch (type) {
    case NUMBER: {
      r.need(8);
      const v = r.view.getFloat64(r.at);
      r.at += 8;
      return v;
    }
    case BOOLEAN:
      return r.u8() !== 0;
    case STRING:
      return r.string(r.u16());
    case LONG_STRING:
      return r.string(r.u32());
    case NULL:
      return null;
    case UNDEFINED:
      return undefined;
    case OBJECT: {
      const o: { [key: string]: AmfValue } = {};
      readProperties(r, (k, v) => (o[k] = v));
      return o;
    }
    case ECMA_ARRAY: {
      r.u32();
      const m = new Map<string, AmfValue>();
      readProperties(r, (k, v) => m.set(k, v));
      return m;
    }
    case STRICT_ARRAY: {
      const n = r.u32();
      const out: AmfValue[] = [];
      for (let i = 0; i < n; i++) out.push(readValue(r));
      return out;
    }
    case DATE: {
      r.need(10);
      const v = r.view.getFloat64(r.at);
      r.at += 10;
      return v;
    }
    default:
      throw malformed(`unsupported type 0x${type.toString(16)} at byte ${r.at - 1}`);
  }
}

/**
 * Decodes values one after the other until the end of `bytes`.
 *
 * @example
 * ```ts
 * import { decodeAmf0, encodeAmf0 } from "./amf.ts";
 * console.log(decodeAmf0(encodeAmf0(["_result", 1, null, { code: "NetConnection.Connect.Success" }])));
 * // [ "_result", 1, null, { code: "NetConnection.Connect.Success" } ]
 * ```
 */
export function decodeAmf0(bytes: Uint8Array): AmfValue[] {
  const r = new Reader(bytes);
  const out: AmfValue[] = [];
  while (r.at < bytes.length) out.push(readValue(r));
  return out;
}
