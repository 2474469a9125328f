/**
 * Helpers for encoder tests: reference tools, temporary files, and encoding a source to a list of packets.
 * @module
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import process from "node:process";
import type { EncodeOptions, Encoder, Frame, Packet } from "../../lib/types.ts";

export { tempPath } from "./io_streams.ts";

/** Path of a tool on PATH, or undefined. */
export function toolPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? "/usr/bin:/bin").split(":")) {
    if (dir && existsSync(`${dir}/${name}`)) return `${dir}/${name}`;
  }
  return undefined;
}

/** `{ skip }` option for node:test when a tool is missing (build.ts --dev installs them). */
export function needs(...tools: string[]): { skip?: string } {
  const missing = tools.filter((t) => !toolPath(t));
  return missing.length
    ? { skip: `${missing.join(", ")} not installed: run deno run -A build.ts --dev` }
    : {};
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

/** Command line that runs a script in the runtime running the tests. */
export function scriptCommand(script: string, args: string[]): [string, string[]] {
  const isDeno = "Deno" in globalThis;
  return isDeno ? [process.execPath, ["run", "-A", script, ...args]] : [process.execPath, [script, ...args]];
}
