/**
 * The SVT-AV1 backend of an encoder thread. `send_picture` blocks while SVT's input pool is full and
 * `get_packet(…, 1)` blocks until a packet exists, so both run on a pooled encoder thread, never on the
 * caller's; or, for an encoder with `host: "caller"` (Deno), on the caller's thread as Deno's
 * nonblocking calls, which run on its blocking-call threads. The order of calls mirrors SvtAv1EncApp:
 * send a picture, then collect ready packets without blocking.
 * @module
 */
import { libc } from "../../ffi/libc.ts";
import type { OpenedSvtAv1, SvtAv1Location } from "../../ffi/load.ts";
import { ffiRuntime } from "../../ffi/runtime/mod.ts";
import type { FfiRuntime } from "../../ffi/runtime/types.ts";
import { SvtBufferFlag, SvtColorFormat, SvtPictureType, SvtStatus } from "../../ffi/symbols/svt_av1.ts";
import { EncoderError } from "../errors.ts";
import { withNativeLock } from "./native_lock.ts";
import type { WorkerBackend, WorkerPacket } from "./protocol.ts";
import { asNonRoot, demoteRealtimeThreads, threadIds } from "./realtime_threads.ts";
import { type TakenImage, takeSvtAv1Image } from "./svt_av1_images.ts";

/** What the caller's side sends to set the encoder up. */
export interface SvtAv1WorkerConfig {
  location: SvtAv1Location;
  /** `svt_av1_enc_parse_parameter` pairs, in order. */
  params: [string, string][];
  width: number;
  height: number;
  bitDepth: number;
  chroma: "420" | "422" | "444" | "mono";
  frameBytes: number;
  /** `SVT_LOG` level to set; `override` when the caller chose it, else only where the environment has none. */
  logLevel?: { level: number; override: boolean };
  /** Leave SVT-AV1's real-time threads alone (fastest on a contended machine, but stalls the event loop). */
  keepRealtime?: boolean;
  /** Leaves the library's threads at normal priority instead of SCHED_BATCH (threadPriority "normal"). */
  normalPriority?: boolean;
  /**
   * Where this SVT-AV1 cannot force a key frame with these settings (1.4-1.7 with low delay or a
   * bitrate), a key frame is made by ending the session and starting a new one with the same settings:
   * the first picture of a session is always a key frame.
   */
  restartForKeyFrames?: boolean;
  /** Frames carry their own quantizer (`use-q-file=1`); frames without one take this one. */
  perFrameQp?: number;
}

const cstr = (s: string) => new TextEncoder().encode(s + "\0");
const hex = (n: number) => "0x" + (n >>> 0).toString(16);

/** SVT-AV1 reads `SVT_LOG` from the C environment when a handle is created. */
function setLogLevel(rt: FfiRuntime, level: number, override: boolean) {
  // Without libc's setenv the library keeps its default level.
  libc(rt)?.symbols.setenv(cstr("SVT_LOG"), cstr(String(level)), override ? 1 : 0);
}

/** The calls that block: the library's own where they may block (an encoder thread), else nonblocking. */
interface BlockingCalls {
  svt_av1_enc_send_picture(handle: bigint, header: Uint8Array): number | Promise<number>;
  svt_av1_enc_get_packet(handle: bigint, out: Uint8Array, done: number): number | Promise<number>;
  svt_av1_enc_init(handle: bigint): number | Promise<number>;
  svt_av1_enc_deinit(handle: bigint): number | Promise<number>;
}

/** How a backend makes its calls. */
export interface BackendOptions {
  /**
   * The backend runs on the caller's thread (`host: "caller"`): its blocking calls are Deno's
   * nonblocking calls, and it waits for the pool's lock without blocking.
   */
  caller?: boolean;
}

/** SVT-AV1 on an encoder thread: one encoder from `init()` to `close()`. */
export class SvtAv1Backend implements WorkerBackend {
  #rt!: FfiRuntime;
  #lib!: OpenedSvtAv1["lib"];
  #caller: boolean;
  #blocking!: BlockingCalls;
  /** The frame of a send_picture in progress: referenced until the call returns. */
  #sending: Uint8Array | undefined;
  #cfg!: SvtAv1WorkerConfig;
  #handle = 0n;
  #config!: Uint8Array; // EbSvtAv1EncConfiguration, kept alive with the handle
  #inHeader!: Uint8Array;
  #inView!: DataView;
  #io!: Uint8Array;
  #ioView!: DataView;
  #out = new Uint8Array(8); // EbBufferHeaderType** for get_packet / release
  #outView = new DataView(this.#out.buffer);
  #sentPictures = 0;
  /** Packets taken out of this session (each picture gives one packet under low delay). */
  #receivedPackets = 0;
  #eosSent = false;
  #eosSeen = false;
  #initialized = false;
  #opened!: OpenedSvtAv1;
  /** The image of the library this encoder runs on, given back after its last native call. */
  #image: TakenImage | undefined;

  constructor(options: BackendOptions = {}) {
    this.#caller = options.caller === true;
  }

  #check(status: number, what: string) {
    if (status !== SvtStatus.ok) {
      throw new EncoderError("NATIVE_ERROR", `SVT-AV1 ${what} failed with status ${hex(status)}`, {
        library: "svt-av1",
      });
    }
  }

  async init(raw: unknown) {
    const cfg = raw as SvtAv1WorkerConfig;
    this.#cfg = cfg;
    this.#rt = await ffiRuntime();
    if (cfg.logLevel !== undefined) setLogLevel(this.#rt, cfg.logLevel.level, cfg.logLevel.override);
    // An image of the library no other live encoder runs on (svt_av1_images.ts).
    const taken = this.#image = takeSvtAv1Image(this.#rt, cfg.location, this.#caller);
    this.#opened = taken.opened;
    this.#lib = this.#opened.lib;
    this.#blocking = taken.blocking ? taken.blocking.symbols : this.#lib.symbols;
    const started = performance.now();
    try {
      await this.#start();
    } catch (e) {
      taken.release();
      throw e;
    }
    const s = this.#lib.symbols;
    const layout = cfg.location.layout;
    const headerOut = new Uint8Array(8);
    this.#check(s.svt_av1_enc_stream_header(this.#handle, headerOut), "stream_header");
    const hdr = new DataView(headerOut.buffer).getBigUint64(0, true);
    const bh = layout.bufferHeader;
    const len = this.#rt.readU32(hdr, bh.nFilledLen);
    const sequenceHeader = this.#rt.copyOut(this.#rt.readU64(hdr, bh.pBuffer), 0, len);
    s.svt_av1_enc_stream_header_release(hdr);
    const nativeMs = performance.now() - started;

    this.#prepareInput();
    return { sequenceHeader, version: cfg.location.version.text, nativeMs, libraryImage: taken.image };
  }

  /**
   * Creates and initialises the native encoder with the configured parameters, holding the pool's lock:
   * SVT-AV1 must not set one encoder up while it tears another down (see native_lock.ts).
   */
  #start(): Promise<void> {
    return withNativeLock(() => this.#startLocked(), !this.#caller);
  }

  async #startLocked() {
    const cfg = this.#cfg;
    const opened = this.#opened;
    const s = this.#lib.symbols;
    const layout = cfg.location.layout;
    this.#config = new Uint8Array(layout.configBytes);
    const handleOut = new Uint8Array(8);
    const before = threadIds();
    // Unless asked to keep them, SVT-AV1 must not make this thread and its own threads real-time.
    const guard = <T>(fn: () => T): T => (cfg.keepRealtime ? fn() : asNonRoot(this.#rt, fn));
    const status = guard(() =>
      opened.kind === 1
        ? opened.lib.symbols.svt_av1_enc_init_handle(handleOut, 0n, this.#config)
        : opened.lib.symbols.svt_av1_enc_init_handle(handleOut, this.#config)
    );
    this.#check(status, "init_handle");
    this.#handle = new DataView(handleOut.buffer).getBigUint64(0, true);
    if (this.#handle === 0n) throw new EncoderError("NATIVE_ERROR", "SVT-AV1 init_handle returned no handle");
    for (const [key, value] of cfg.params) {
      const st = s.svt_av1_enc_parse_parameter(this.#config, cstr(key), cstr(value));
      if (st === SvtStatus.badParameter) {
        // 1.x returns BadParameter for an unknown key and for a bad value alike; a key that fails with
        // every value is unknown.
        const known = ["0", "1", "-1"].some((v) =>
          s.svt_av1_enc_parse_parameter(new Uint8Array(layout.configBytes), cstr(key), cstr(v)) === 0
        );
        this.#releaseHandle();
        throw known
          ? new EncoderError("INVALID_CONFIG", `SVT-AV1 rejected ${key}=${value}: check the value's range`, {
            library: "svt-av1",
          })
          : new EncoderError(
            "UNKNOWN_PARAMETER",
            `Unknown SVT-AV1 parameter '${key}': use a long option name of SvtAv1EncApp without the dashes`,
            { library: "svt-av1" },
          );
      }
      if (st !== SvtStatus.ok) {
        this.#releaseHandle();
        this.#check(st, `parse_parameter(${key}=${value})`);
      }
    }
    const set = s.svt_av1_enc_set_parameter(this.#handle, this.#config);
    if (set !== SvtStatus.ok) {
      this.#releaseHandle();
      throw new EncoderError(
        "INVALID_CONFIG",
        `SVT-AV1 rejected the configuration (status ${hex(set)}); its reason is printed on stderr. `
          + `Settings: ${cfg.params.map(([k, v]) => `${k}=${v}`).join(" ")}`,
        { library: "svt-av1" },
      );
    }
    // On the caller's thread the library's set-up (which allocates every buffer and starts its threads)
    // is a nonblocking call, unless the process runs as root: the effective user id that keeps SVT-AV1
    // from making its threads real-time is set per thread, and only this thread's can be set; as root
    // the set-up then holds this thread for its length.
    const init = this.#caller && (cfg.keepRealtime || libc(this.#rt)?.symbols.geteuid() !== 0)
      ? await this.#blocking.svt_av1_enc_init(this.#handle)
      : guard(() => s.svt_av1_enc_init(this.#handle));
    if (init !== SvtStatus.ok) {
      this.#releaseHandle();
      this.#check(init, "init");
    }
    this.#initialized = true;
    this.#sentPictures = 0;
    this.#receivedPackets = 0;
    this.#eosSent = false;
    this.#eosSeen = false;
    if (!cfg.keepRealtime) demoteRealtimeThreads(this.#rt, before, { batch: !cfg.normalPriority });
  }

  /** Builds the reusable input header and picture descriptor. */
  #prepareInput() {
    const { layout } = this.#cfg.location;
    const bh = layout.bufferHeader;
    const io = layout.ioFormat;
    this.#inHeader = new Uint8Array(bh.size);
    this.#inView = new DataView(this.#inHeader.buffer);
    this.#io = new Uint8Array(io.size);
    this.#ioView = new DataView(this.#io.buffer);
    const { width, height, bitDepth, chroma } = this.#cfg;
    const cw = chroma === "444" ? width : (width + 1) >> 1;
    this.#ioView.setUint32(io.yStride, width, true);
    this.#ioView.setUint32(io.cbStride, chroma === "mono" ? 0 : cw, true);
    this.#ioView.setUint32(io.crStride, chroma === "mono" ? 0 : cw, true);
    if (io.width !== undefined) this.#ioView.setUint32(io.width, width, true);
    if (io.height !== undefined) this.#ioView.setUint32(io.height, height, true);
    const fmt = { "420": SvtColorFormat.yuv420, "422": SvtColorFormat.yuv422, "444": SvtColorFormat.yuv444 };
    if (io.colorFmt !== undefined) {
      this.#ioView.setUint32(io.colorFmt, chroma === "mono" ? SvtColorFormat.yuv400 : fmt[chroma], true);
    }
    if (io.bitDepth !== undefined) this.#ioView.setUint32(io.bitDepth, bitDepth, true);
    this.#inView.setUint32(0, bh.size, true);
  }

  async send(data: Uint8Array, keyFrame: boolean, emit: (p: WorkerPacket) => void, qp?: number) {
    if (keyFrame && this.#cfg.restartForKeyFrames && this.#sentPictures > 0) {
      // Finish this session (its packets come out first, in order) and start another: its first
      // picture is a key frame with the same sequence header.
      await this.finish(emit);
      await withNativeLock(async () => {
        await this.#blocking.svt_av1_enc_deinit(this.#handle);
        this.#lib.symbols.svt_av1_enc_deinit_handle(this.#handle);
      }, !this.#caller);
      this.#handle = 0n;
      this.#initialized = false;
      await this.#start();
      keyFrame = false;
    }
    const { layout } = this.#cfg.location;
    const bh = layout.bufferHeader;
    const io = layout.ioFormat;
    const { width, height, bitDepth, chroma } = this.#cfg;
    const bps = bitDepth > 8 ? 2 : 1;
    const base = this.#rt.addressOf(data);
    const lumaBytes = width * height * bps;
    const chromaBytes = chroma === "mono" ? 0 : (this.#cfg.frameBytes - lumaBytes) / 2;
    this.#ioView.setBigUint64(io.luma, base, true);
    this.#ioView.setBigUint64(io.cb, base + BigInt(lumaBytes), true);
    this.#ioView.setBigUint64(io.cr, base + BigInt(lumaBytes + chromaBytes), true);
    const v = this.#inView;
    v.setBigUint64(bh.pBuffer, this.#rt.addressOf(this.#io), true);
    v.setUint32(bh.nFilledLen, data.byteLength, true);
    v.setUint32(bh.nAllocLen, data.byteLength, true);
    v.setBigInt64(bh.pts, BigInt(this.#sentPictures), true);
    v.setBigInt64(bh.dts, BigInt(this.#sentPictures), true);
    v.setUint32(bh.picType, keyFrame ? SvtPictureType.key : SvtPictureType.invalid, true);
    v.setUint32(bh.flags, 0, true);
    // With use-q-file SVT-AV1 takes each picture's quantizer from its header (0 would mean lossless-like).
    if (this.#cfg.perFrameQp !== undefined) v.setUint32(bh.qp, qp ?? this.#cfg.perFrameQp, true);
    // Blocks while SVT's input pool is full; SVT copies the planes before it returns, so `data` and the
    // descriptors only need to live through the call (they are referenced here until then).
    this.#sending = data;
    try {
      this.#check(
        await this.#blocking.svt_av1_enc_send_picture(this.#handle, this.#inHeader),
        "send_picture",
      );
    } finally {
      this.#sending = undefined;
    }
    this.#sentPictures++;
    await this.poll(emit);
  }

  /**
   * Reads one packet; returns false when the queue was empty. `block` waits for one (`pic_send_done` 1);
   * `mayBlock` says the call may block anyway (low delay on 2.x and later): both go through the
   * blocking calls.
   */
  async #receive(block: boolean, emit: (p: WorkerPacket) => void, mayBlock = false): Promise<boolean> {
    const st = block || mayBlock
      ? await this.#blocking.svt_av1_enc_get_packet(this.#handle, this.#out, block ? 1 : 0)
      : this.#lib.symbols.svt_av1_enc_get_packet(this.#handle, this.#out, 0);
    if (st === SvtStatus.noErrorEmptyQueue) return false;
    this.#check(st, "get_packet");
    const bh = this.#cfg.location.layout.bufferHeader;
    const hdr = this.#outView.getBigUint64(0, true);
    const len = this.#rt.readU32(hdr, bh.nFilledLen);
    const flags = this.#rt.readU32(hdr, bh.flags);
    const picType = this.#rt.readU32(hdr, bh.picType);
    // Copy the bytes out before SVT gets its buffer back.
    const data = len > 0 ? this.#rt.copyOut(this.#rt.readU64(hdr, bh.pBuffer), 0, len) : undefined;
    this.#lib.symbols.svt_av1_enc_release_out_buffer(this.#out);
    if (data) {
      this.#receivedPackets++;
      emit({ data, keyFrame: picType === SvtPictureType.key });
    }
    if (flags & SvtBufferFlag.endOfStream) this.#eosSeen = true;
    return true;
  }

  /** Whether the session predicts low delay (`pred-struct=1`: no reordering, one packet per picture). */
  get #lowDelay(): boolean {
    return this.#cfg.params.some(([k, v]) => k === "pred-struct" && v === "1");
  }

  async poll(emit: (p: WorkerPacket) => void) {
    if (this.#eosSeen || this.#sentPictures === 0) return;
    if (this.#lowDelay) {
      // Under low delay SVT-AV1 2.x and later block in get_packet until a packet is ready, even with
      // pic_send_done = 0 (its header says so; 1.4 returns EmptyQueue): asking with no picture left to
      // come out never returns. So ask only for the pictures still inside, one packet each.
      while (
        !this.#eosSeen && this.#receivedPackets < this.#sentPictures && await this.#receive(false, emit, true)
      );
      return;
    }
    while (!this.#eosSeen && await this.#receive(false, emit));
  }

  async #sendEos() {
    const bh = this.#cfg.location.layout.bufferHeader;
    const eos = new Uint8Array(bh.size);
    const v = new DataView(eos.buffer);
    v.setUint32(0, bh.size, true);
    v.setUint32(bh.picType, SvtPictureType.invalid, true);
    v.setUint32(bh.flags, SvtBufferFlag.endOfStream, true);
    this.#sending = eos;
    try {
      this.#check(await this.#blocking.svt_av1_enc_send_picture(this.#handle, eos), "send_picture(EOS)");
    } finally {
      this.#sending = undefined;
    }
    this.#eosSent = true;
  }

  async finish(emit: (p: WorkerPacket) => void) {
    if (this.#eosSeen) return;
    // SVT-AV1 1.4.1 hangs in get_packet after EOS (and in deinit) when no picture was ever sent: a stream
    // of zero frames has no packets, so skip the handshake and let close() deal with the encoder.
    if (this.#sentPictures === 0) return;
    if (!this.#eosSent) await this.#sendEos();
    while (!this.#eosSeen) await this.#receive(true, emit);
  }

  async close() {
    if (this.#initialized) {
      // deinit on 1.4.1 hangs unless the encoder saw a picture and an EOS: give it a blank picture to
      // finish if it never had one, and drain what is left, dropping the packets.
      if (this.#sentPictures === 0) {
        await this.send(new Uint8Array(this.#cfg.frameBytes), false, () => {});
      }
      if (!this.#eosSeen) await this.finish(() => {});
      await withNativeLock(() => this.#blocking.svt_av1_enc_deinit(this.#handle), !this.#caller);
    }
    await this.#release();
    // The native encoder is gone with its threads: the next encoder may have its image. (A close that
    // failed before this keeps the image taken: the library may still run there.)
    this.#image?.release();
  }

  /** Frees the handle, holding the pool's lock. */
  async #release() {
    if (this.#handle !== 0n) await withNativeLock(() => this.#releaseHandle(), !this.#caller);
    this.#handle = 0n;
    this.#initialized = false;
  }

  /** Frees the handle; the caller holds the pool's lock. */
  #releaseHandle() {
    const handle = this.#handle;
    if (handle !== 0n) this.#lib.symbols.svt_av1_enc_deinit_handle(handle);
    this.#handle = 0n;
    this.#initialized = false;
    // The library stays open for the thread's next encoder.
  }
}
