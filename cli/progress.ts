/**
 * The progress line on stderr: frames, speed, bitrate, ETA, and the link state of a live peer.
 * @module
 */
import { system } from "../ffi/runtime/system.ts";
import type { Packet } from "../lib/types.ts";
import type { LibraryInUse } from "./version.ts";

export class Progress {
  #tty: boolean;
  #quiet: boolean;
  #total?: number;
  #start = performance.now();
  #last = 0;
  frames = 0;
  bytes = 0;
  /** Extra text for the progress line, such as the link state of a live peer. */
  status?: () => string;
  /** The encoder library's version, for the summary. */
  version = "";
  /** The library the encode runs on (name, version, file), named in the last line. */
  library?: LibraryInUse;
  #fps: number;

  constructor(quiet: boolean, total: number | undefined, fps: number) {
    this.#quiet = quiet;
    this.#tty = system.stderrIsTerminal();
    this.#total = total;
    this.#fps = fps;
  }

  /** Counts one packet out and refreshes the line. */
  packet(p: Packet) {
    this.frames++;
    this.bytes += p.data.byteLength;
    this.update();
  }

  get seconds(): number {
    return (performance.now() - this.#start) / 1000;
  }

  line(): string {
    const s = this.seconds;
    const fps = s > 0 ? this.frames / s : 0;
    const kbps = this.frames > 0 ? (this.bytes * 8 / 1000) / (this.frames / this.#fps) : 0;
    const total = this.#total;
    let bar = "";
    let eta = "";
    if (total) {
      const done = Math.min(1, this.frames / total);
      const width = 24;
      bar = "[" + "#".repeat(Math.round(done * width)).padEnd(width, ".") + "] ";
      if (fps > 0 && this.frames < total) eta = ` ETA ${clock((total - this.frames) / fps)}`;
    }
    return `${bar}${this.frames}${total ? "/" + total : ""} frames ${fps.toFixed(1)} fps ${
      kbps.toFixed(0)
    } kbps ${clock(s)}${eta}${this.status ? ` [${this.status()}]` : ""}`;
  }

  update(force = false) {
    if (this.#quiet) return;
    const now = performance.now();
    if (!force && now - this.#last < (this.#tty ? 100 : 2000)) return;
    this.#last = now;
    if (this.#tty) system.writeStderr(`\r\x1b[K${this.line()}`);
    else system.writeStderr(this.line() + "\n");
  }

  done() {
    if (this.#quiet) return;
    const lib = this.library
      ? ` with ${this.library.name} ${this.library.version} (${this.library.path})`
      : "";
    if (this.#tty) system.writeStderr(`\r\x1b[K${this.line()}${lib}\n`);
    else system.writeStderr(this.line() + lib + "\n");
  }
}

function clock(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}
