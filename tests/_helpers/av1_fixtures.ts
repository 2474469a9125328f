/**
 * Fixtures of the AV1 parser tests: tiny IVF streams from SVT-AV1, rav1e and libaom (made by
 * tests/fixtures/av1/make_fixtures.sh), an IVF frame splitter, a bit writer for synthetic headers, and
 * what ffprobe and ffmpeg's trace_headers filter say about a file when they are installed.
 * @module
 */

import { execFile, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** Directory of the AV1 fixtures. */
export const AV1_FIXTURES: string = fileURLToPath(new URL("../fixtures/av1/", import.meta.url));

/** Names of the IVF fixtures, sorted. */
export function av1FixtureNames(): string[] {
  return readdirSync(AV1_FIXTURES).filter((f) => f.endsWith(".ivf")).sort();
}

/** Bytes of one fixture file. */
export function readAv1Fixture(name: string): Uint8Array {
  return new Uint8Array(readFileSync(AV1_FIXTURES + name));
}

/** The frame payloads (temporal units) of an IVF file, as views into its bytes. */
export function ivfFrames(ivf: Uint8Array): Uint8Array[] {
  const view = new DataView(ivf.buffer, ivf.byteOffset, ivf.byteLength);
  if (String.fromCharCode(...ivf.subarray(0, 4)) !== "DKIF") throw new Error("not an IVF file");
  const frames: Uint8Array[] = [];
  let at = view.getUint16(6, true);
  while (at + 12 <= ivf.length) {
    const size = view.getUint32(at, true);
    frames.push(ivf.subarray(at + 12, at + 12 + size));
    at += 12 + size;
  }
  return frames;
}

/** The temporal units of an IVF fixture. */
export function av1FixtureFrames(name: string): Uint8Array[] {
  return ivfFrames(readAv1Fixture(name));
}

/** Writes bits most significant first, to build synthetic headers. */
export class BitWriter {
  #bits: number[] = [];

  /** Appends `value` as `n` bits. */
  f(n: number, value: number): this {
    for (let i = n - 1; i >= 0; i--) this.#bits.push(Math.floor(value / 2 ** i) % 2);
    return this;
  }

  /** The bits so far, padded with the spec's trailing bits (a one, then zeros to a byte boundary). */
  bytes(trailing = true): Uint8Array {
    const bits = [...this.#bits];
    if (trailing) bits.push(1);
    while (bits.length % 8) bits.push(0);
    const out = new Uint8Array(bits.length / 8);
    bits.forEach((b, i) => (out[i >> 3] |= b << (7 - (i & 7))));
    return out;
  }
}

/** Wraps a payload into an OBU with a size field (payloads below 128 bytes). */
export function obu(type: number, payload: Uint8Array | number[] = []): Uint8Array {
  const bytes = payload instanceof Uint8Array ? payload : new Uint8Array(payload);
  if (bytes.length > 127) throw new Error("test OBUs are kept below 128 bytes");
  return new Uint8Array([(type << 3) | 0x02, bytes.length, ...bytes]);
}

/** Concatenates byte arrays. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Why a test needing `tool` is skipped, or `false` when the tool runs: pass it as `{ skip }`. */
export function missingTool(tool: string): string | false {
  let missing = toolChecks.get(tool);
  if (missing === undefined) {
    const r = spawnSync(tool, ["-version"], { stdio: "ignore" });
    missing = r.status === 0 ? false : `${tool} is not installed (apt-get install ffmpeg)`;
    toolChecks.set(tool, missing);
  }
  return missing;
}

const toolChecks = new Map<string, string | false>();

/** Runs a tool to completion; the tests start several at once, as ffmpeg's start-up dominates. */
function runTool(tool: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(tool, args, { maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${tool} failed: ${stderr || err.message}`));
      else resolve({ stdout, stderr });
    });
  });
}

/** What ffprobe says about the video stream of a fixture. */
export async function ffprobeStream(name: string): Promise<Record<string, string | number | undefined>> {
  const r = await runTool("ffprobe", ["-v", "error", "-show_streams", "-of", "json", AV1_FIXTURES + name]);
  return JSON.parse(r.stdout).streams[0];
}

/** One packet as ffmpeg's trace_headers filter reads it. */
export interface TracedPacket {
  keyFrame: boolean;
  obuTypes: number[];
  /** Syntax elements of each frame header (OBU_FRAME_HEADER or OBU_FRAME) in the packet. */
  frames: Record<string, number>[];
}

/** What ffmpeg's trace_headers filter printed for a fixture. */
export interface Trace {
  /** The first sequence header's syntax elements. */
  sequenceHeader: Record<string, number>;
  packets: TracedPacket[];
}

const traces = new Map<string, Promise<Trace>>();

/** Every syntax element ffmpeg's trace_headers filter prints for a fixture: its reference parser. */
export function traceHeaders(name: string): Promise<Trace> {
  let trace = traces.get(name);
  if (!trace) traces.set(name, trace = runTraceHeaders(name));
  return trace;
}

async function runTraceHeaders(name: string): Promise<Trace> {
  const args = ["-hide_banner", "-loglevel", "debug", "-i", AV1_FIXTURES + name, "-c", "copy"];
  const r = await runTool("ffmpeg", [...args, "-bsf:v", "trace_headers", "-f", "null", "-"]);
  let sequenceHeader: Record<string, number> | undefined;
  let section = "";
  let frame: Record<string, number> | undefined;
  const packets: TracedPacket[] = [];
  for (const raw of r.stderr.split("\n")) {
    const line = /^\[trace_headers @ [^\]]+\] (.*)$/.exec(raw)?.[1];
    if (line === undefined) continue;
    const field = /^\d+\s+(\S+)\s+\S*\s*= (-?\d+)$/.exec(line);
    const packet = packets.at(-1);
    if (!field) {
      const header = /^Packet: \d+ bytes(, key frame)?/.exec(line);
      if (header) {
        packets.push({ keyFrame: header[1] !== undefined, obuTypes: [], frames: [] });
        continue;
      }
      section = line.trim();
      if (section === "Sequence Header" && packet && !sequenceHeader) sequenceHeader = {};
      if (section === "Frame Header" && packet) packet.frames.push(frame = {});
      continue;
    }
    const [, key, value] = field;
    if (!packet) continue; // the extradata copy of the sequence header
    if (key === "obu_type") packet.obuTypes.push(Number(value));
    if (section === "Sequence Header" && packets.length === 1 && sequenceHeader) {
      sequenceHeader[key] = Number(value);
    }
    if (section === "Frame Header" && frame) frame[key] = Number(value);
  }
  if (!sequenceHeader) throw new Error(`ffmpeg traced no sequence header in ${name}`);
  return { sequenceHeader, packets };
}

/**
 * Remuxes a fixture to MP4 with ffmpeg and returns its `av1C` payload and its samples back to back
 * (ffmpeg's MP4 muxer drops temporal delimiters as the AV1-in-ISOBMFF binding asks).
 */
export async function ffmpegMp4(name: string): Promise<{ av1C: Uint8Array; samples: Uint8Array }> {
  const dir = mkdtempSync(join(tmpdir(), "av1-stream-"));
  try {
    const mp4 = join(dir, "out.mp4");
    const samples = join(dir, "samples.raw");
    await runTool("ffmpeg", ["-loglevel", "error", "-i", AV1_FIXTURES + name, "-c", "copy", mp4]);
    await runTool("ffmpeg", ["-loglevel", "error", "-i", mp4, "-c", "copy", "-f", "rawvideo", samples]);
    const file = new Uint8Array(readFileSync(mp4));
    const at = indexOfAscii(file, "av1C");
    const size = new DataView(file.buffer, file.byteOffset).getUint32(at - 4);
    return { av1C: file.slice(at + 4, at - 4 + size), samples: new Uint8Array(readFileSync(samples)) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function indexOfAscii(bytes: Uint8Array, text: string): number {
  const codes = [...text].map((c) => c.charCodeAt(0));
  for (let i = 0; i + codes.length <= bytes.length; i++) {
    if (codes.every((c, j) => bytes[i + j] === c)) return i;
  }
  throw new Error(`"${text}" not found`);
}
