/**
 * A most-significant-bit-first reader for the AV1 syntax elements `f(n)` and `uvlc()`, bounded by the end
 * of its buffer so malformed input always ends in an {@linkcode EncoderError}, never a loop.
 * @module
 */

import { EncoderError } from "../errors.ts";

/** Builds the `INVALID_INPUT` error every AV1 parser throws for malformed bitstreams. */
export function malformed(message: string): EncoderError {
  return new EncoderError("INVALID_INPUT", message);
}

/**
 * Reads bits from `bytes[start, end)`, most significant bit first, as the AV1 spec's `f(n)`.
 * Errors name the structure being parsed (`what`) and the syntax element that ran past the end.
 */
export class BitReader {
  readonly #bytes: Uint8Array;
  readonly #startBit: number;
  readonly #endBit: number;
  readonly #what: string;
  #bit: number;

  constructor(bytes: Uint8Array, what: string, start = 0, end = bytes.length) {
    this.#bytes = bytes;
    this.#what = what;
    this.#startBit = start * 8;
    this.#bit = start * 8;
    this.#endBit = Math.min(end, bytes.length) * 8;
  }

  /** Bits read so far. */
  get position(): number {
    return this.#bit - this.#startBit;
  }

  /** Bits left before the end. */
  get remaining(): number {
    return this.#endBit - this.#bit;
  }

  /** Reads an unsigned `n`-bit value (0 ≤ n ≤ 32) named `name` in error messages. */
  f(n: number, name: string): number {
    if (this.#bit + n > this.#endBit) {
      const bytes = (this.#endBit - this.#startBit) / 8;
      throw malformed(
        `Malformed AV1 ${this.#what}: ${name} needs ${n} bit${n === 1 ? "" : "s"} at bit ${this.position} `
          + `but the ${this.#what} ends after ${bytes} byte${bytes === 1 ? "" : "s"}; `
          + `the data is truncated or not AV1, so pass a complete OBU`,
      );
    }
    let value = 0;
    for (let i = 0; i < n; i++) {
      const bit = (this.#bytes[this.#bit >> 3] >> (7 - (this.#bit & 7))) & 1;
      // Multiplication instead of << keeps 32-bit values unsigned.
      value = value * 2 + bit;
      this.#bit++;
    }
    return value;
  }

  /** Reads one bit as a boolean. */
  flag(name: string): boolean {
    return this.f(1, name) === 1;
  }

  /** Reads the spec's `uvlc()`: a variable-length unsigned value of at most 2^32 - 1. */
  uvlc(name: string): number {
    let leadingZeros = 0;
    while (this.f(1, name) === 0) leadingZeros++;
    if (leadingZeros >= 32) return 2 ** 32 - 1;
    return this.f(leadingZeros, name) + 2 ** leadingZeros - 1;
  }
}
