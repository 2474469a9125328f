/**
 * The `--chunked` mode of the command line: the input, progress line and summary around
 * {@linkcode encodeChunked}.
 * @module
 */
import { system } from "../../ffi/runtime/system.ts";
import type { ContainerFormat } from "../container/open.ts";
import { EncoderError } from "../errors.ts";
import { stdinReadable, stdoutWritable } from "../io/std_stream.ts";
import { isTestSourceSpec, parseTestSourceSpec, testSource } from "../io/testsrc.ts";
import type { ChunkedConfig } from "./encode_chunk.ts";
import { type ChunkedProgress, encodeChunked } from "./local.ts";
import type { ChunkedInput } from "./work_dir.ts";
import { readY4mFileInfo } from "./y4m_file.ts";

/** What the CLI parsed, as far as a chunked encode needs it. */
export interface ChunkedCliOptions {
  input: string;
  output: string;
  outputFormat: ContainerFormat;
  codec: "svt-av1" | "rav1e";
  config: object;
  frames?: number;
  workers?: number;
  resume: boolean;
  workDir?: string;
  /** `--force-key-frames` entries (30f, 2.5s): chunks start there. */
  forceKeyFrames: string[];
  quiet: boolean;
  json: boolean;
}

function line(p: ChunkedProgress, seconds: number): string {
  const done = p.frameCount ? Math.min(1, p.framesDone / p.frameCount) : 0;
  const bar = "[" + "#".repeat(Math.round(done * 24)).padEnd(24, ".") + "]";
  const fps = seconds > 0 ? p.framesDone / seconds : 0;
  return `${bar} ${p.framesDone}/${p.frameCount} frames, chunks ${p.chunksDone}/${p.chunkCount}`
    + `${p.chunksResumed ? ` (${p.chunksResumed} resumed)` : ""} ${fps.toFixed(1)} fps ${p.phase}`;
}

/** Runs `--chunked`; returns the exit code. */
export async function runChunkedCli(opts: ChunkedCliOptions): Promise<number> {
  const input: ChunkedInput = isTestSourceSpec(opts.input)
    ? testSource(parseTestSourceSpec(opts.input))
    : opts.input === "-"
    ? stdinReadable()
    : opts.input;
  let keyFrames: number[] = [];
  if (opts.forceKeyFrames.length) {
    const fps = typeof input === "string"
      ? (await readY4mFileInfo(input)).fps
      : input instanceof ReadableStream
      ? undefined
      : input.info.fps;
    keyFrames = opts.forceKeyFrames.map((k) => {
      if (k.endsWith("f")) return Number(k.slice(0, -1));
      if (!fps) {
        throw new EncoderError(
          "INVALID_CONFIG",
          `--force-key-frames ${k}: give frames (like 30f) when reading stdin with --chunked`,
        );
      }
      return Math.round(Number(k.slice(0, -1)) * fps.num / fps.den);
    });
  }
  const tty = system.stderrIsTerminal();
  const started = performance.now();
  let last = 0;
  const controller = new AbortController();
  // SIGINT and SIGTERM alike stop the chunks in progress and keep the finished ones; the exit status is
  // 130 or 143 (128 + the signal's number), and a second signal exits at once.
  let exitCode = 130;
  const onSignal = (signal: "SIGINT" | "SIGTERM") => {
    if (controller.signal.aborted) system.exit(exitCode);
    exitCode = signal === "SIGTERM" ? 143 : 130;
    controller.abort();
    if (!opts.quiet) {
      system.writeStderr(
        `\n${
          signal === "SIGINT" ? "Interrupted" : "Terminated"
        }: finished chunks are kept, run again with --resume\n`,
      );
    }
  };
  const onSigint = () => onSignal("SIGINT");
  const onSigterm = () => onSignal("SIGTERM");
  system.onSignal("SIGINT", onSigint);
  system.onSignal("SIGTERM", onSigterm);
  try {
    const result = await encodeChunked(input, { ...opts.config, codec: opts.codec } as ChunkedConfig, {
      output: opts.output === "-" ? stdoutWritable() : opts.output,
      format: opts.outputFormat,
      workers: opts.workers,
      resume: opts.resume,
      workDir: opts.workDir,
      maxFrames: opts.frames,
      plan: keyFrames.length ? { keyFrames } : undefined,
      signal: controller.signal,
      onProgress: (p) => {
        if (opts.quiet) return;
        const now = performance.now();
        const final = p.phase === "done";
        if (!final && now - last < (tty ? 100 : 2000)) return;
        last = now;
        const text = line(p, (now - started) / 1000);
        system.writeStderr(tty ? `\r\x1b[K${text}${final ? "\n" : ""}` : text + "\n");
      },
    });
    if (opts.json) {
      const summary = {
        codec: opts.codec,
        format: opts.outputFormat,
        output: opts.output,
        chunked: true,
        ...result,
      };
      const text = JSON.stringify(summary) + "\n";
      if (opts.output === "-") system.writeStderr(text);
      else system.writeStdout(text);
    }
    return 0;
  } catch (err) {
    if (controller.signal.aborted) return exitCode;
    throw err;
  } finally {
    system.offSignal("SIGINT", onSigint);
    system.offSignal("SIGTERM", onSigterm);
  }
}
