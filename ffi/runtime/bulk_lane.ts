/**
 * Byte payloads between a host and its `node:worker_threads` thread through a shared ring instead of the
 * message itself. Deno's `node:worker_threads` serialises an `ArrayBuffer` (transferred or not) or a
 * typed array at about 130 ms per MB on this machine: 60 frames of 720p took 10.4 s to post, 18 ms over
 * Deno's web `Worker`, which cannot be unref'd and so cannot host pooled threads. A `SharedArrayBuffer`
 * posted once is shared for free, so each side keeps one ring per direction: the sender copies a payload
 * in and posts where it is; the receiver copies it out into a fresh `Uint8Array` as the message arrives
 * and publishes how far it has read, which frees the space. A payload that does not fit makes a larger
 * ring, sent with that message (messages arrive in order, so nothing refers to the old ring after it).
 * @module
 */

const MARK = "__av1StreamBulk";
const RING = "__av1StreamBulkRing";
/** Payloads smaller than this stay in the message. */
const INLINE_BELOW = 512;
const MIN_CAPACITY = 8 << 20;
/** The control words at the start of a ring: [0] bytes the receiver has released. */
const HEADER = 8;

interface Descriptor {
  [MARK]: true;
  at: number;
  length: number;
  /** The sender's write position after this payload: what the receiver releases up to. */
  end: number;
}

interface Ring {
  sab: SharedArrayBuffer;
  bytes: Uint8Array;
  released: BigInt64Array;
  capacity: number;
}

function ring(sab: SharedArrayBuffer): Ring {
  return {
    sab,
    bytes: new Uint8Array(sab, HEADER),
    released: new BigInt64Array(sab, 0, 1),
    capacity: sab.byteLength - HEADER,
  };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== "object") return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** The sending half: copies payloads of a message into its ring. */
export class BulkSender {
  #ring: Ring | null = null;
  #written = 0;

  /**
   * The message to post in place of `message`: its `Uint8Array`s of 512 bytes or more (in plain objects
   * and arrays, three levels deep) replaced by where they are in the ring, and the buffers of `transfer`
   * that were copied detached (as a transfer would), left out of the transfer list.
   */
  encode(message: unknown, transfer: Transferable[]): { message: unknown; transfer: Transferable[] } {
    let newRing: SharedArrayBuffer | undefined;
    const copied = new Set<ArrayBufferLike>();
    const put = (view: Uint8Array): Descriptor => {
      const length = view.byteLength;
      let r = this.#ring;
      const free = () => r!.capacity - (this.#written - Number(Atomics.load(r!.released, 0)));
      let at = r ? this.#written % r.capacity : 0;
      // When the receiver has taken everything, start again at the ring's start (the skipped bytes are
      // released on its behalf; it stores only ends it has read, none are outstanding). Only the pages that
      // payloads in flight need are then touched, rather than the whole ring in turn: that made each
      // thread's resident memory grow by two rings' size (8 MiB each) over a few hundred small encodes.
      if (r && at !== 0) {
        const written = BigInt(this.#written);
        const restart = this.#written + r.capacity - at;
        if (Atomics.compareExchange(r.released, 0, written, BigInt(restart)) === written) {
          this.#written = restart;
          at = 0;
        }
      }
      // A payload is contiguous: at the ring's end, skip to its start.
      const skip = r && at + length > r.capacity ? r.capacity - at : 0;
      if (!r || free() < skip + length) {
        const capacity = Math.max(MIN_CAPACITY, (r?.capacity ?? 0) * 2, length * 4);
        r = this.#ring = ring(new SharedArrayBuffer(HEADER + capacity));
        newRing = r.sab;
        this.#written = 0;
        at = 0;
      } else if (skip) {
        this.#written += skip;
        at = 0;
      }
      r.bytes.set(view, at);
      this.#written += length;
      copied.add(view.buffer);
      return { [MARK]: true, at, length, end: this.#written };
    };
    const walk = (v: unknown, depth: number): unknown => {
      if (v instanceof Uint8Array && v.byteLength >= INLINE_BELOW) return put(v);
      if (depth >= 3) return v;
      if (Array.isArray(v)) return v.map((x) => walk(x, depth + 1));
      if (isPlainObject(v)) {
        const out: Record<string, unknown> = {};
        for (const [k, x] of Object.entries(v)) out[k] = walk(x, depth + 1);
        return out;
      }
      return v;
    };
    const encoded = walk(message, 0);
    const rest: Transferable[] = [];
    for (const t of transfer) {
      if (t instanceof ArrayBuffer && copied.has(t)) {
        // Detach it as a transfer would (the caller gave it away), without a copy. Transferred to a length
        // of 0, its memory is freed at once: left to the garbage collector, a frame of 720p per call piled
        // up to tens of MB before V8 collected them (bench/results.md, "Memory").
        const detach = (t as ArrayBuffer & { transfer?: (length?: number) => ArrayBuffer }).transfer;
        if (detach) detach.call(t, 0);
        else structuredClone(t, { transfer: [t] }); // Node 20 has no ArrayBuffer.prototype.transfer
      } else rest.push(t);
    }
    return { message: newRing ? { [RING]: newRing, message: encoded } : encoded, transfer: rest };
  }
}

/** A message with its payloads as views into the ring, from {@linkcode BulkReceiver.decodeInPlace}. */
export interface InPlaceMessage {
  data: unknown;
  /**
   * Gives the payloads' space back to the sender; the views must not be read after it. Idempotent; call
   * it for every message, in the order they came.
   */
  release(): void;
}

/** The receiving half: gives messages their payloads back. */
export class BulkReceiver {
  #ring: Ring | null = null;

  /** The message with each payload in a `Uint8Array` of its own; the ring's space is freed at once. */
  decode(data: unknown): unknown {
    const { data: out, release } = this.#decode(data, false);
    release();
    return out;
  }

  /**
   * The message with each payload as a view into the shared ring, without a copy: for a receiver that
   * reads the payload once (an encoder thread hands a frame to the library, which copies it) and then
   * calls `release`. Until then the sender writes after it. Deno's encoder threads copied every frame
   * out of the ring into a new buffer that then waited for the garbage collector: 1.4 MB per 720p frame.
   */
  decodeInPlace(data: unknown): InPlaceMessage {
    return this.#decode(data, true);
  }

  #decode(data: unknown, inPlace: boolean): InPlaceMessage {
    if (isPlainObject(data) && data[RING] instanceof SharedArrayBuffer) {
      this.#ring = ring(data[RING]);
      data = data.message;
    }
    const r = this.#ring;
    if (!r) return { data, release: () => {} };
    let end = -1;
    const walk = (v: unknown, depth: number): unknown => {
      if (isPlainObject(v) && v[MARK] === true) {
        const d = v as unknown as Descriptor;
        end = Math.max(end, d.end);
        return inPlace ? r.bytes.subarray(d.at, d.at + d.length) : r.bytes.slice(d.at, d.at + d.length);
      }
      if (depth >= 4) return v;
      if (Array.isArray(v)) return v.map((x) => walk(x, depth + 1));
      if (isPlainObject(v)) {
        const out: Record<string, unknown> = {};
        for (const [k, x] of Object.entries(v)) out[k] = walk(x, depth + 1);
        return out;
      }
      return v;
    };
    const out = walk(data, 0);
    let released = end < 0;
    return {
      data: out,
      release: () => {
        if (released) return;
        released = true;
        // Ends only grow: a message released late never takes back space a later one gave.
        if (BigInt(end) > Atomics.load(r.released, 0)) Atomics.store(r.released, 0, BigInt(end));
      },
    };
  }
}

/** Whether threads of this runtime need the lane (Deno's node:worker_threads; Node's are fast). */
export const bulkLaneNeeded: boolean = "Deno" in globalThis;
