/**
 * An SRT listener for the SRT sink tests: `srt-live-transmit "srt://:PORT?mode=listener" file://con`, its
 * standard output collected per process run. It can be killed and started again on the same port. One
 * run may accept several connections in turn: {@linkcode splitIvfStreams} cuts what it wrote at each
 * connection's IVF header.
 * @module
 */

import { type ChildProcess, spawn } from "node:child_process";
import * as dgram from "node:dgram";
import type { Received } from "./stream_servers.ts";

/** A UDP port that was free a moment ago. */
export async function freeUdpPort(): Promise<number> {
  const sock = dgram.createSocket("udp4");
  await new Promise<void>((resolve, reject) => {
    sock.once("error", reject);
    sock.bind(0, "127.0.0.1", () => resolve());
  });
  const { port } = sock.address();
  await new Promise<void>((r) => sock.close(() => r()));
  return port;
}

/** Options of {@linkcode SrtReceiver.start}. */
export interface SrtReceiverOptions {
  /** Listen on this port; default a free one. */
  port?: number;
  passphrase?: string;
  latency?: number;
}

/** `srt-live-transmit` as a listener on 127.0.0.1, writing what it receives to its stdout. */
export class SrtReceiver {
  /** What each process run wrote, in order. */
  readonly runs: Received[] = [];
  /** What each run said on stderr. */
  readonly logs: string[] = [];
  /** Called after every chunk of output with the current run and its index. */
  onData: ((run: Received, index: number) => void) | undefined;
  readonly port: number;
  #options: SrtReceiverOptions;
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();

  private constructor(port: number, options: SrtReceiverOptions) {
    this.port = port;
    this.#options = options;
  }

  static async start(options: SrtReceiverOptions = {}): Promise<SrtReceiver> {
    const rx = new SrtReceiver(options.port ?? await freeUdpPort(), options);
    await rx.listen();
    return rx;
  }

  get listening(): boolean {
    return this.#child !== undefined;
  }

  /** The URL a sink connects to. */
  get url(): string {
    return `srt://127.0.0.1:${this.port}`;
  }

  /** Starts a new run; resolves once it listens. */
  async listen(): Promise<void> {
    if (this.#child) return;
    const q = new URLSearchParams({ mode: "listener" });
    if (this.#options.passphrase) q.set("passphrase", this.#options.passphrase);
    if (this.#options.latency !== undefined) q.set("latency", String(this.#options.latency));
    const child = spawn("srt-live-transmit", ["-a:yes", `srt://127.0.0.1:${this.port}?${q}`, "file://con"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.#child = child;
    const run: Received = { chunks: [], bytes: 0, ended: false };
    const index = this.runs.length;
    this.runs.push(run);
    this.logs.push("");
    child.stdout!.on("data", (c: Uint8Array) => {
      run.chunks.push(new Uint8Array(c));
      run.bytes += c.length;
      this.onData?.(run, index);
    });
    let ready: () => void;
    const listening = new Promise<void>((r) => (ready = r));
    child.stderr!.on("data", (c: Uint8Array) => {
      this.logs[index] += new TextDecoder().decode(c);
      if (this.logs[index].includes("Media path")) ready();
    });
    this.#exited = new Promise<void>((resolve) =>
      child.once("exit", () => {
        if (this.#child === child) this.#child = undefined;
        ready();
        resolve();
      })
    );
    await listening;
    // The listening socket is bound just after that line is printed.
    await new Promise((r) => setTimeout(r, 100));
  }

  /** Ends the current run with `signal` (SIGKILL: no goodbye to the sender); resolves once it exited. */
  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const child = this.#child;
    if (!child) return;
    this.#child = undefined;
    child.kill(signal);
    await this.#exited;
  }

  /** Waits `ms` for output to settle, then ends the run. */
  async close(ms = 300): Promise<void> {
    await new Promise((r) => setTimeout(r, ms));
    const run = this.runs.at(-1);
    await this.kill("SIGTERM");
    if (run) run.ended = true;
  }
}

const IVF_SIGNATURE = [0x44, 0x4b, 0x49, 0x46, 0, 0, 32, 0, 0x41, 0x56, 0x30, 0x31]; // DKIF v0 32 AV01

/**
 * Cuts a run's bytes at every IVF file header (`DKIF`, version 0, 32-byte header, `AV01`): each piece is
 * one connection's stream. A frame cut short by a lost connection stays at the end of its piece.
 */
export function splitIvfStreams(bytes: Uint8Array): Uint8Array[] {
  const starts: number[] = [];
  outer: for (let i = 0; i + IVF_SIGNATURE.length <= bytes.length; i++) {
    if (bytes[i] !== 0x44) continue;
    for (let k = 1; k < IVF_SIGNATURE.length; k++) if (bytes[i + k] !== IVF_SIGNATURE[k]) continue outer;
    starts.push(i);
  }
  return starts.map((s, i) => bytes.subarray(s, starts[i + 1] ?? bytes.length));
}
