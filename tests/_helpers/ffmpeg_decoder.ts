/**
 * A mediabunny `CustomVideoDecoder` for tests, over an ffmpeg child process: Deno, Bun and Node have no
 * WebCodecs `VideoDecoder`, so a mediabunny `Conversion` needs a decoder for its input. Packets go to
 * ffmpeg as IVF (VP9, or AV1 through ffmpeg's dav1d), I420 frames come back.
 * @module
 */
import * as mb from "mediabunny";
import { type ChildProcess, spawn } from "node:child_process";

/** IVF header and frames, as ffmpeg's IVF demuxer reads them. */
function ivfHeader(fourcc: string, width: number, height: number): Uint8Array {
  const h = new Uint8Array(32);
  const v = new DataView(h.buffer);
  h.set(new TextEncoder().encode("DKIF"), 0);
  v.setUint16(6, 32, true);
  h.set(new TextEncoder().encode(fourcc), 8);
  v.setUint16(12, width, true);
  v.setUint16(14, height, true);
  v.setUint32(16, 1_000_000, true); // time base 1/1_000_000: timestamps in microseconds
  v.setUint32(20, 1, true);
  return h;
}

function ivfFrame(data: Uint8Array, pts: number): Uint8Array {
  const f = new Uint8Array(12 + data.byteLength);
  const v = new DataView(f.buffer);
  v.setUint32(0, data.byteLength, true);
  v.setBigUint64(4, BigInt(Math.max(0, pts)), true);
  f.set(data, 12);
  return f;
}

/** Decodes VP9 and AV1 through `ffmpeg`, one output picture per packet (neither codec reorders packets). */
export class FfmpegVideoDecoder extends mb.CustomVideoDecoder {
  #ffmpeg: ChildProcess | undefined;
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  #times: { timestamp: number; duration: number }[] = [];
  #exited: Promise<void> = Promise.resolve();
  #width = 0;
  #height = 0;

  static override supports(codec: string): boolean {
    return codec === "vp9" || codec === "av1";
  }

  init(): void {
    this.#width = this.config.codedWidth!;
    this.#height = this.config.codedHeight!;
    const ffmpeg = spawn("ffmpeg", [
      ...["-v", "error", "-f", "ivf", "-i", "pipe:0"],
      ...["-vsync", "passthrough", "-f", "rawvideo", "-pix_fmt", "yuv420p", "pipe:1"],
    ], { stdio: ["pipe", "pipe", "inherit"] });
    this.#ffmpeg = ffmpeg;
    ffmpeg.stdout!.on("data", (chunk: Uint8Array) => this.#onData(chunk));
    this.#exited = new Promise((resolve, reject) => {
      ffmpeg.on("error", reject);
      ffmpeg.on(
        "close",
        (code) => (code === 0 ? resolve() : reject(new Error(`ffmpeg exited with ${code}`))),
      );
    });
    this.#exited.catch((e) => this.onError(e));
    ffmpeg.stdin!.write(ivfHeader(this.codec === "vp9" ? "VP90" : "AV01", this.#width, this.#height));
  }

  #onData(chunk: Uint8Array) {
    this.#pending.push(chunk);
    this.#pendingBytes += chunk.byteLength;
    const size = this.#width * this.#height * 3 / 2;
    if (this.#pendingBytes < size) return;
    const all = new Uint8Array(this.#pendingBytes);
    let at = 0;
    for (const c of this.#pending) {
      all.set(c, at);
      at += c.byteLength;
    }
    let offset = 0;
    for (; offset + size <= all.byteLength; offset += size) {
      const time = this.#times.shift() ?? { timestamp: 0, duration: 0 };
      this.onSample(
        new mb.VideoSample(all.subarray(offset, offset + size), {
          format: "I420",
          codedWidth: this.#width,
          codedHeight: this.#height,
          timestamp: time.timestamp,
          duration: time.duration,
        }),
      );
    }
    this.#pending = offset < all.byteLength ? [all.slice(offset)] : [];
    this.#pendingBytes = all.byteLength - offset;
  }

  async decode(packet: mb.EncodedPacket): Promise<void> {
    this.#times.push({ timestamp: packet.timestamp, duration: packet.duration });
    const stdin = this.#ffmpeg!.stdin!;
    if (!stdin.write(ivfFrame(packet.data, Math.round(packet.timestamp * 1e6)))) {
      await new Promise<void>((resolve) => stdin.once("drain", () => resolve()));
    }
  }

  async flush(): Promise<void> {
    this.#ffmpeg!.stdin!.end();
    await this.#exited;
  }

  close(): void {
    if (this.#ffmpeg && this.#ffmpeg.exitCode === null) this.#ffmpeg.kill();
  }
}
