/**
 * Worker entry that owns one rav1e encoder. rav1e does its encoding inside `rav1e_receive_packet` on the
 * calling thread and has no input bound of its own, so this worker hands rav1e a frame only after
 * `receive_packet` said NEED_MORE_DATA, and answers the caller's `encode()` only then: that is the
 * backpressure.
 * @module
 */
import {
  RaDataLayout,
  RaFrameType,
  RaFrameTypeOverride,
  RaPacketLayout,
  RaStatus,
} from "../../ffi/layouts/rav1e.ts";
import { openRav1e, type Rav1eLocation } from "../../ffi/load.ts";
import { ffiRuntime } from "../../ffi/runtime/mod.ts";
import type { FfiRuntime, NativeLibrary } from "../../ffi/runtime/types.ts";
import { rav1eBlockingSymbols, type rav1eSymbols } from "../../ffi/symbols/rav1e.ts";
import { EncoderError } from "../errors.ts";
import { keptLibrary } from "./kept_libraries.ts";
import type { WorkerBackend, WorkerPacket } from "./protocol.ts";
import type { BackendOptions } from "./svt_av1_worker.ts";

/** The calls that take long: the library's own on an encoder thread, nonblocking on the caller's. */
interface BlockingCalls {
  rav1e_receive_packet(ctx: bigint, out: Uint8Array): number | Promise<number>;
  rav1e_context_unref(ctx: bigint): void | Promise<void>;
}

/** What the caller's side sends to set the encoder up. Every value was checked there. */
export interface Rav1eWorkerConfig {
  /** Where librav1e is and its version, as the caller located it. */
  location: Rav1eLocation;
  /** `rav1e_config_parse` pairs, in order. */
  params: [string, string][];
  /** Time base: the inverse of the frame rate. */
  timeBase: { num: number; den: number };
  /** Bits per sample: 8, 10 or 12. */
  bitDepth: number;
  /** `RaChromaSampling`, `RaChromaSamplePosition`, `RaPixelRange` values. */
  chromaSampling: number;
  /** `RaChromaSamplePosition` value. */
  chromaPosition: number;
  /** `RaPixelRange` value: limited or full. */
  pixelRange: number;
  /** `RaMatrixCoefficients`, `RaColorPrimaries`, `RaTransferCharacteristics`, when set. */
  colorDescription?: { matrix: number; primaries: number; transfer: number };
  /** Byte offset, length and stride of each plane inside a frame. */
  planes: { offset: number; length: number; stride: number }[];
  /** Bytes per sample in a frame: 1 at 8 bits, 2 (little-endian) above. */
  bytesPerSample: 1 | 2;
  /**
   * On the caller's thread, make `receive_packet` an ordinary (blocking) call instead of a nonblocking one,
   * so that every call of the encoder runs on that one thread (see {@linkcode ownEventLoop} in rav1e.ts).
   */
  blockOnCaller?: boolean;
}

const cstr = (s: string) => new TextEncoder().encode(s + "\0");

/** rav1e on an encoder thread: one encoder from `init()` to `close()`. */
export class Rav1eBackend implements WorkerBackend {
  #rt!: FfiRuntime;
  #lib: NativeLibrary<typeof rav1eSymbols> | undefined;
  #cfg!: Rav1eWorkerConfig;
  #ctx = 0n;
  #out = new Uint8Array(8); // RaPacket** for receive_packet
  #outView = new DataView(this.#out.buffer);
  #flushing = false;
  #done = false;
  /** A close is on its way: no more encoding calls (see WorkerBackend.abandon). */
  #abandoned = false;
  #caller: boolean;
  #blocking!: BlockingCalls;
  /** The caller's thread makes the long calls itself (`blockOnCaller`): its event loop runs between them. */
  #turns: MessageChannel | undefined;

  constructor(options: BackendOptions = {}) {
    this.#caller = options.caller === true;
  }

  #settings(): string {
    const c = this.#cfg;
    return [
      ...c.params.map(([k, v]) => `${k}=${v}`),
      `bit_depth=${c.bitDepth}`,
      `chroma_sampling=${c.chromaSampling}`,
      `chroma_position=${c.chromaPosition}`,
      `pixel_range=${c.pixelRange}`,
    ].join(" ");
  }

  init(raw: unknown) {
    return this.#init(raw as Rav1eWorkerConfig);
  }

  async #init(cfg: Rav1eWorkerConfig) {
    this.#cfg = cfg;
    this.#rt = await ffiRuntime();
    const lib = this.#lib = keptLibrary(
      `rav1e:${cfg.location.path}`,
      () => openRav1e(this.#rt, cfg.location),
    );
    this.#blocking = this.#caller && !cfg.blockOnCaller
      ? keptLibrary(
        `rav1e-blocking:${cfg.location.path}`,
        () => this.#rt.open(cfg.location.path, rav1eBlockingSymbols),
      ).symbols
      : lib.symbols;
    if (this.#caller && cfg.blockOnCaller) this.#turns = new MessageChannel();
    const s = lib.symbols;
    const started = performance.now();
    const config = s.rav1e_config_default();
    if (config === 0n) {
      throw new EncoderError("NATIVE_ERROR", "rav1e_config_default returned NULL", { library: "rav1e" });
    }
    try {
      for (const [key, value] of cfg.params) {
        if (s.rav1e_config_parse(config, cstr(key), cstr(value)) !== 0) {
          // parse fails for an unknown key and for a value of the wrong type alike; probing with a
          // harmless value tells the two apart.
          const probe = s.rav1e_config_default();
          const known = ["0", "1", "true"].some((v) => s.rav1e_config_parse(probe, cstr(key), cstr(v)) === 0);
          s.rav1e_config_unref(probe);
          throw known
            ? new EncoderError(
              "INVALID_CONFIG",
              `rav1e rejected ${key}=${value}: check the value's type and range`,
              {
                library: "rav1e",
              },
            )
            : new EncoderError(
              "UNKNOWN_PARAMETER",
              `Unknown rav1e parameter '${key}': use a key of rav1e_config_parse`,
              {
                library: "rav1e",
              },
            );
        }
      }
      s.rav1e_config_set_time_base(config, BigInt(cfg.timeBase.num), BigInt(cfg.timeBase.den));
      if (
        s.rav1e_config_set_pixel_format(
          config,
          cfg.bitDepth,
          cfg.chromaSampling,
          cfg.chromaPosition,
          cfg.pixelRange,
        ) < 0
      ) {
        throw new EncoderError("INVALID_CONFIG", `rav1e rejected the pixel format (${this.#settings()})`, {
          library: "rav1e",
        });
      }
      const cd = cfg.colorDescription;
      if (cd && s.rav1e_config_set_color_description(config, cd.matrix, cd.primaries, cd.transfer) < 0) {
        throw new EncoderError(
          "INVALID_CONFIG",
          `rav1e rejected the colour description matrix=${cd.matrix} primaries=${cd.primaries} transfer=${cd.transfer}`,
          { library: "rav1e" },
        );
      }
      this.#ctx = s.rav1e_context_new(config);
      if (this.#ctx === 0n) {
        throw new EncoderError(
          "INVALID_CONFIG",
          `rav1e could not create an encoder with these settings: ${this.#settings()}`,
          { library: "rav1e" },
        );
      }
    } finally {
      // The context keeps its own copy of the configuration.
      s.rav1e_config_unref(config);
    }
    const sequenceHeader = this.#sequenceHeaderObu();
    return { sequenceHeader, version: cfg.location.version.text, nativeMs: performance.now() - started };
  }

  /** The sequence header OBU: rav1e gives an av1C box body, whose 4 leading bytes precede the OBU. */
  #sequenceHeaderObu(): Uint8Array {
    const s = this.#lib!.symbols;
    const data = s.rav1e_container_sequence_header(this.#ctx);
    if (data === 0n) return new Uint8Array(0);
    try {
      const len = Number(this.#rt.readU64(data, RaDataLayout.len));
      const av1c = this.#rt.copyOut(this.#rt.readU64(data, RaDataLayout.data), 0, len);
      return av1c.slice(4);
    } finally {
      s.rav1e_data_unref(data);
    }
  }

  #fail(what: string, status: number): never {
    const name = this.#rt.readCString(this.#lib!.symbols.rav1e_status_to_str(status));
    throw new EncoderError("NATIVE_ERROR", `rav1e ${what} failed with status ${status} (${name})`, {
      library: "rav1e",
    });
  }

  async send(data: Uint8Array, keyFrame: boolean, emit: (p: WorkerPacket) => void) {
    const s = this.#lib!.symbols;
    const frame = s.rav1e_frame_new(this.#ctx);
    if (frame === 0n) {
      throw new EncoderError("NATIVE_ERROR", "rav1e_frame_new returned NULL", { library: "rav1e" });
    }
    let status: number;
    try {
      // fill_plane copies the samples; `data` stays referenced through these calls.
      const base = this.#rt.addressOf(data);
      this.#cfg.planes.forEach((p, i) => {
        s.rav1e_frame_fill_plane(
          frame,
          i,
          base + BigInt(p.offset),
          p.length,
          p.stride,
          this.#cfg.bytesPerSample,
        );
      });
      if (keyFrame) s.rav1e_frame_set_type(frame, RaFrameTypeOverride.key);
      status = s.rav1e_send_frame(this.#ctx, frame);
    } finally {
      s.rav1e_frame_unref(frame);
    }
    if (status !== RaStatus.success) this.#fail("send_frame", status);
    // Encode until rav1e asks for the next frame, so that the caller's encode() resolves only then.
    await this.#receiveUntil(RaStatus.needMoreData, emit);
  }

  /** Calls receive_packet until it returns `until`, emitting packets and looping on ENCODED. */
  async #receiveUntil(until: number, emit: (p: WorkerPacket) => void) {
    const s = this.#lib!.symbols;
    const rt = this.#rt;
    while (!this.#abandoned) {
      const status = await this.#blocking.rav1e_receive_packet(this.#ctx, this.#out);
      if (status === until) return;
      // A call that encoded held the caller's thread: let its event loop turn (signals, I/O) before the
      // next one, or a flush would hold it for the whole lookahead.
      if (this.#turns) await this.#turn(this.#turns);
      if (status === RaStatus.encoded) continue;
      if (status !== RaStatus.success) this.#fail("receive_packet", status);
      const pkt = this.#outView.getBigUint64(0, true);
      try {
        const len = Number(rt.readU64(pkt, RaPacketLayout.len));
        // Copy the bytes out before rav1e frees them.
        const bytes = rt.copyOut(rt.readU64(pkt, RaPacketLayout.data), 0, len);
        const frameIndex = Number(rt.readU64(pkt, RaPacketLayout.inputFrameno));
        const frameType = rt.readI32(pkt, RaPacketLayout.frameType);
        emit({ data: bytes, keyFrame: frameType === RaFrameType.key, frameIndex });
      } finally {
        s.rav1e_packet_unref(pkt);
      }
    }
  }

  /** One turn of the event loop: a message through a channel (a 0 ms timer took 3 ms in Deno). */
  #turn(channel: MessageChannel): Promise<void> {
    return new Promise((resolve) => {
      channel.port1.onmessage = () => resolve();
      channel.port2.postMessage(0);
    });
  }

  abandon() {
    this.#abandoned = true;
  }

  /** Nothing to collect between frames: rav1e only works inside receive_packet, which send() drives. */
  poll(_emit: (p: WorkerPacket) => void) {}

  async finish(emit: (p: WorkerPacket) => void) {
    if (this.#done) return;
    const s = this.#lib!.symbols;
    if (!this.#flushing) {
      const status = s.rav1e_send_frame(this.#ctx, 0n);
      if (status !== RaStatus.success) this.#fail("send_frame(NULL)", status);
      this.#flushing = true;
    }
    await this.#receiveUntil(RaStatus.limitReached, emit);
    this.#done = true;
  }

  async close() {
    if (this.#ctx !== 0n) await this.#blocking.rav1e_context_unref(this.#ctx);
    this.#ctx = 0n;
    this.#turns?.port1.close();
    this.#turns?.port2.close();
    this.#turns = undefined;
    // The library stays open for the thread's next encoder.
    this.#lib = undefined;
  }
}
