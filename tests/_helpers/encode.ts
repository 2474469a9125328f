/**
 * Helpers for encoder tests: reference tools, temporary files, and encoding a source to a list of packets.
 * @module
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { EncoderError } from "../../lib/errors.ts";
import { fileReadable } from "../../lib/io/file_stream.ts";
import { readIvf } from "../../lib/io/ivf.ts";
import { type TestSource, testSourceY4m } from "../../lib/io/testsrc.ts";
import { type Y4mInfo, Y4mReader } from "../../lib/io/y4m.ts";
import type { EncodeOptions, Encoder, Frame, Packet } from "../../lib/types.ts";
import { collect, tempPath } from "./io_streams.ts";

export { tempPath };

/** `build/bin/`, where `build.ts --svt-av1 N --rav1e N` puts the reference tools of the builds it fetches. */
const BUILD_BIN = fileURLToPath(new URL("../../build/bin/", import.meta.url));
const BUILD_LIB = fileURLToPath(new URL("../../build/", import.meta.url));

/** Path of a tool: `build/bin/` first (the reference tool of a library in `build/`), then PATH; or undefined. */
export function toolPath(name: string): string | undefined {
  for (const dir of [BUILD_BIN, ...(process.env.PATH ?? "/usr/bin:/bin").split(":")]) {
    if (dir && existsSync(`${dir}/${name}`)) return `${dir}/${name}`;
  }
  return undefined;
}

/** `{ skip }` option for node:test when a tool is missing (build.ts --dev installs them). */
export function needs(...tools: string[]): { skip?: string } {
  const missing = tools.filter((t) => !toolPath(t));
  if (missing.length) return { skip: `${missing.join(", ")} not installed: run deno run -A build.ts --dev` };
  for (const t of tools) {
    const mismatch = referenceMismatch(t);
    if (mismatch) return { skip: mismatch };
  }
  return {};
}

/**
 * A reference encoder proves bit-exactness only against its own library version. When `build/` holds
 * another SVT-AV1 or rav1e than the tool that would run (`build.ts --svt-av1 3` has no SvtAv1EncApp that
 * runs here), says so; undefined when they agree or nothing in `build/` overrides the system's library.
 */
function referenceMismatch(tool: string): string | undefined {
  const prefix = tool === "SvtAv1EncApp" ? "libSvtAv1Enc.so." : tool === "rav1e" ? "librav1e.so." : undefined;
  if (!prefix || !existsSync(BUILD_LIB)) return undefined;
  const lib =
    readdirSync(BUILD_LIB).filter((f) => f.startsWith(prefix)).sort((a, z) => a.length - z.length)[0];
  if (!lib) return undefined;
  const libVersion = lib.slice(prefix.length); // "3" or "0.8"
  const out = run(toolPath(tool)!, ["--version"]);
  const toolVersion = /(\d+\.\d+\.\d+)/.exec(out.stdout + out.stderr)?.[1] ?? "unknown";
  const same = toolVersion === libVersion || toolVersion.startsWith(libVersion + ".");
  return same
    ? undefined
    : `${tool} is ${toolVersion} but build/ holds ${lib}: no reference tool for that version`;
}

/**
 * Skips a test under Node with the reason why it needs Deno or Bun (an example written against their
 * servers or their global `Worker`). Spread after `needs(...)`.
 */
export function denoOrBun(reason: string): { skip?: string } {
  return "Deno" in globalThis || "Bun" in globalThis ? {} : { skip: `not on Node: ${reason}` };
}

/** Runs a command to completion; returns its exit code and output. */
export function run(
  cmd: string,
  args: string[],
  input?: Uint8Array,
): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { input, maxBuffer: 256 << 20 });
  return { code: r.status ?? -1, stdout: r.stdout?.toString() ?? "", stderr: r.stderr?.toString() ?? "" };
}

/** Frames dav1d decoded from a file (it exits 0 even when frames fail, so count them). */
export function dav1dFrameCount(path: string, demuxer?: "ivf" | "section5" | "annexb"): number {
  const r = spawnSync("dav1d", ["-i", path, "-o", "/dev/null", ...(demuxer ? ["--demuxer", demuxer] : [])], {
    maxBuffer: 64 << 20,
  });
  const text = (r.stderr?.toString() ?? "") + (r.stdout?.toString() ?? "");
  // dav1d rewrites its progress line with \r: the last count is the final one.
  const counts = [...text.matchAll(/Decoded (\d+)\/(\d+) frames/g)];
  return counts.length ? Number(counts[counts.length - 1][1]) : -1;
}

/** Encodes frames (with forced key frames at the given indices) and collects every packet. */
export async function encodeAll(
  enc: Encoder,
  frames: AsyncIterable<Frame> | Iterable<Frame>,
  keyFrames: Set<number> = new Set(),
): Promise<Packet[]> {
  const packets: Packet[] = [];
  const pump = (async () => {
    let i = 0;
    for await (const f of frames) {
      const opts: EncodeOptions = keyFrames.has(i) ? { keyFrame: true } : {};
      await enc.encode(f, opts);
      i++;
    }
    await enc.flush();
  })();
  for await (const p of enc.packets()) packets.push(p);
  await pump;
  return packets;
}

/**
 * Command line that runs a script in the runtime running the tests; under Node (which runs the compiled
 * tree in .cache/node/), the script's compiled twin.
 */
export function scriptCommand(script: string, args: string[]): [string, string[]] {
  if ("Deno" in globalThis) return [process.execPath, ["run", "-A", script, ...args]];
  if (import.meta.url.endsWith(".js")) {
    const compiled = fileURLToPath(new URL(`../../${script.replace(/\.ts$/, ".js")}`, import.meta.url));
    return [process.execPath, [compiled, ...args]];
  }
  return [process.execPath, [script, ...args]];
}

/** Asserts that `p` (or what it returns) rejects with an `EncoderError` of `code` whose message matches. */
export async function rejectsWith(
  p: Promise<unknown> | (() => Promise<unknown>),
  code: string,
  pattern: RegExp,
): Promise<void> {
  await assert.rejects(typeof p === "function" ? p() : p, (e: unknown) => {
    assert.ok(e instanceof EncoderError, `expected EncoderError, got ${e}`);
    assert.equal(e.code, code);
    assert.match(e.message, pattern);
    return true;
  });
}

/**
 * Encodes every frame of `src` and flushes, then checks the encoder refuses `encode()` after the flush,
 * closes twice, and refuses `encode()` and `flush()` once closed.
 */
export async function assertRefusesAfterFlushAndClose(enc: Encoder, src: TestSource): Promise<void> {
  await encodeAll(enc, src.frames());
  await rejectsWith(enc.encode(src.frame(0)), "INVALID_STATE", /after flush\(\).*new encoder/);
  await enc.close();
  await enc.close();
  assert.equal(enc.closed, true);
  await rejectsWith(enc.encode(src.frame(0)), "CLOSED", /closed; create a new one/);
  await rejectsWith(enc.flush(), "CLOSED", /closed/);
}

/**
 * Checks that `enc` (created with a small `maxQueuedPackets`) holds `encode()` back while nobody reads
 * its packets: after `waitMs` the pump of `src`'s frames has not finished and at most `maxAccepted`
 * frames got in; then a consumer takes every packet (one per frame) and the pump finishes.
 */
export async function assertHeldBackWithoutConsumer(
  enc: Encoder,
  src: TestSource,
  { waitMs, maxAccepted }: { waitMs: number; maxAccepted: number },
): Promise<void> {
  let accepted = 0;
  let pumpDone = false;
  const pump = (async () => {
    for await (const f of src.frames()) {
      await enc.encode(f);
      accepted++;
    }
    await enc.flush();
    pumpDone = true;
  })();
  await new Promise((r) => setTimeout(r, waitMs));
  assert.equal(pumpDone, false);
  assert.ok(accepted <= maxAccepted, `accepted ${accepted} frames without a consumer`);
  let n = 0;
  for await (const _ of enc.packets()) n++;
  await pump;
  assert.equal(n, src.info.frameCount);
  await enc.close();
}

/** Writes the test source as a Y4M file, `${prefix}WxH-bitDepth.y4m` in the temporary folder; returns its path. */
export async function y4mTestFile(
  prefix: string,
  options: { width: number; height: number; frames: number; bitDepth?: 8 | 10 | 12 },
): Promise<string> {
  const path = tempPath(`${prefix}${options.width}x${options.height}-${options.bitDepth ?? 8}.y4m`);
  writeFileSync(path, await collect(testSourceY4m(options)));
  return path;
}

/** The frame payloads of an IVF file. */
export async function ivfPayloads(path: string): Promise<Uint8Array[]> {
  return (await readIvf(new Uint8Array(readFileSync(path)))).frames.map((f) => f.data);
}

/** Encodes a Y4M file with the encoder `create` makes for its header (key frames forced at `keyFrames`); the packets' payloads. */
export async function encodeY4mFile(
  input: string,
  create: (info: Y4mInfo) => Promise<Encoder>,
  keyFrames: Set<number> = new Set(),
): Promise<Uint8Array[]> {
  const reader = await Y4mReader.open(await fileReadable(input));
  await using enc = await create(reader.info);
  return (await encodeAll(enc, reader.frames(), keyFrames)).map((p) => p.data);
}

/**
 * Where a test's encoders may run: a pooled thread everywhere, and in Deno also the caller's own thread
 * (`host: "caller"`, Deno's nonblocking calls).
 */
export const HOSTS: ("pool" | "caller")[] = "Deno" in globalThis ? ["pool", "caller"] : ["pool"];

/**
 * {@linkcode encodeY4mFile} on every host of {@linkcode HOSTS}: asserts they give the same packets, byte
 * for byte, and returns them.
 */
export async function encodeY4mFileOnEveryHost(
  input: string,
  create: (info: Y4mInfo, host: "pool" | "caller") => Promise<Encoder>,
  keyFrames: Set<number> = new Set(),
): Promise<Uint8Array[]> {
  const [first, ...others] = HOSTS;
  const packets = await encodeY4mFile(input, (info) => create(info, first), keyFrames);
  for (const host of others) {
    const again = await encodeY4mFile(input, (info) => create(info, host), keyFrames);
    assert.equal(again.length, packets.length, `packet count with host ${host}`);
    again.forEach((p, i) =>
      assert.ok(Buffer.from(p).equals(Buffer.from(packets[i])), `packet ${i} differs with host ${host}`)
    );
  }
  return packets;
}

/** Runs a reference encoder that writes the IVF file `out`, checks it exited 0, and gives the payloads. */
export function referencePayloads(cmd: string, args: string[], out: string): Promise<Uint8Array[]> {
  const r = run(toolPath(cmd) ?? cmd, args);
  assert.equal(r.code, 0, r.stderr);
  return ivfPayloads(out);
}

/** Asserts two packet lists are byte-identical, packet by packet. */
export function assertSamePackets(a: Uint8Array[], b: Uint8Array[]): void {
  assert.equal(a.length, b.length, "packet count");
  for (let i = 0; i < a.length; i++) {
    assert.ok(Buffer.from(a[i]).equals(Buffer.from(b[i])), `packet ${i} differs`);
  }
}
