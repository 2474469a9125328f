/**
 * {@linkcode encodeChunked}: cut the input into key-frame-aligned chunks, encode them on a pool of
 * encoders in parallel, join them into one stream.
 *
 * Each pool slot is an async task that owns one encoder at a time. That is real parallelism without
 * more threads of our own: every encoder already runs its native calls on its own Worker (SVT-AV1 adds
 * its own thread pool, rav1e encodes on the worker's thread), so N slots keep N encoders busy while the
 * main thread only reads frames from disk and moves them by transfer.
 * @module
 */
import os from "node:os";
import { join } from "node:path";
import type { ContainerFormat } from "../container/open.ts";
import { EncoderError } from "../errors.ts";
import type { ByteSink } from "../io/sink.ts";
import { frameByteLength, type VideoInfo } from "../types.ts";
import { type ChunkedConfig, chunkFileName, type ChunkResult, encodeChunk } from "./encode_chunk.ts";
import { joinChunks, type JoinResult } from "./join.ts";
import type { PlanOptions } from "./plan.ts";
import { type ChunkedInput, type Manifest, type PlannedChunk, prepareWork, type Work } from "./work_dir.ts";
import { readY4mRange } from "./y4m_file.ts";

/** Progress of a chunked encode, reported to `onProgress`. */
export interface ChunkedProgress {
  /** What the encode is doing: planning cuts, encoding chunks, joining them, or finished. */
  phase: "plan" | "encode" | "join" | "done";
  /** Frames encoded so far, including those of chunks finished by an earlier run. */
  framesDone: number;
  /** Frames the whole encode will produce. */
  frameCount: number;
  /** Chunks finished, including resumed ones. */
  chunksDone: number;
  /** Chunks in the plan. */
  chunkCount: number;
  /** Chunks skipped because an earlier run finished them. */
  chunksResumed: number;
  /** Bytes of encoded chunks so far (after `join`: of the output). */
  bytes: number;
}

/** Options of {@linkcode encodeChunked}. */
export interface EncodeChunkedOptions {
  /** Where the joined stream goes: a path, a {@linkcode ByteSink} or a `WritableStream`. */
  output: string | ByteSink | WritableStream<Uint8Array>;
  /** Output container. Default "ivf". */
  format?: ContainerFormat;
  /** Encoders running at once. Default: the number of cores, capped by the memory budget. */
  workers?: number;
  /** Directory for chunk files and the manifest. Default `<output>.chunks` or a temporary directory. */
  workDir?: string;
  /** Keep chunks an earlier run with the same input and settings finished. Default false. */
  resume?: boolean;
  /** Where to cut. */
  plan?: PlanOptions;
  /** Encode at most this many frames. */
  maxFrames?: number;
  /** Attempts per chunk before the encode fails. Default 3. */
  attempts?: number;
  /** Bytes all encoders together may use. Default half of the machine's memory. */
  memoryBudget?: number;
  /** Called as frames and chunks finish (at most every packet). */
  onProgress?: (progress: ChunkedProgress) => void;
  /** Stops the encode; finished chunks stay in the manifest for `resume`. */
  signal?: AbortSignal;
}

/** What {@linkcode encodeChunked} did. */
export interface ChunkedResult {
  /** Frames in the output. */
  frames: number;
  /** Bytes of the output, container included. */
  bytes: number;
  /** Chunks the input was cut into. */
  chunks: number;
  /** Chunks taken from an earlier run instead of encoded. */
  chunksResumed: number;
  /** Scene changes the planner found (frame numbers). */
  sceneChanges: number[];
  /** Encoders that ran at once. */
  workers: number;
  /** Memory one encoder is expected to use, from the frame size (what limits `workers`). */
  memoryPerWorker: number;
  /** The work directory used (kept, so a later run can resume). */
  workDir: string;
  /** Wall time of the whole encode, in seconds. */
  seconds: number;
}

/**
 * Bytes one encoder of this frame size is expected to hold: frames in its lookahead and reference
 * buffers (SVT-AV1 1.4 keeps about 150 pictures' worth at its default lookahead; rav1e about 6 copies
 * of each of rdo-lookahead + 32 frames), plus a fixed 64 MiB for the library itself.
 */
export function encoderMemoryEstimate(
  info: Pick<VideoInfo, "width" | "height" | "bitDepth" | "chroma">,
  config: ChunkedConfig,
): number {
  const frame = frameByteLength(info);
  const frames = config.codec === "rav1e" ? 6 * ((config.rdoLookahead ?? 40) + 32) : 150;
  return frame * frames + (64 << 20);
}

function cores(): number {
  return typeof os.availableParallelism === "function" ? os.availableParallelism() : os.cpus().length;
}

/** Chunks not finished yet, longest first so that the last ones to finish are short. */
export function pendingChunks(manifest: Manifest): PlannedChunk[] {
  return manifest.chunks
    .filter((c) => !manifest.done[String(c.index)])
    .sort((a, b) => (b.end - b.start) - (a.end - a.start) || a.index - b.index);
}

/** Joins the finished chunks of a work directory into `output`. */
export function joinWork(
  work: Pick<Work, "dir" | "manifest">,
  output: EncodeChunkedOptions["output"],
  options: { format?: ContainerFormat; onProgress?: (frames: number) => void } = {},
): Promise<JoinResult> {
  const m = work.manifest;
  const missing = m.chunks.filter((c) => !m.done[String(c.index)]);
  if (missing.length) {
    throw new EncoderError(
      "INVALID_STATE",
      `Cannot join: ${missing.length} of ${m.chunks.length} chunks are not encoded yet`,
    );
  }
  return joinChunks(
    m.chunks.map((c) => ({
      path: join(work.dir, m.done[String(c.index)].file),
      start: c.start,
      frames: c.end - c.start,
    })),
    output,
    m.info,
    options,
  );
}

/**
 * Encodes `input` in key-frame-aligned chunks on `workers` encoders at once and joins them into one
 * stream that decodes frame for frame like a single encode (each chunk starts with a key frame).
 *
 * A Y4M file is read in place, by byte ranges; a stream or frame source is first written to the work
 * directory. The work directory is keyed by the input and the settings, and its manifest is rewritten
 * after every chunk, so `resume: true` after a crash or abort redoes only unfinished chunks. A chunk that
 * fails is tried again (`attempts`); the join checks that every chunk has the same sequence header.
 *
 * @example
 * ```ts
 * import { encodeChunked } from "./mod.ts";
 * import { testSource } from "../io/testsrc.ts";
 * const input = testSource({ width: 160, height: 120, frames: 40 });
 * const result = await encodeChunked(input, { preset: 12 }, {
 *   output: "/tmp/chunked_example.ivf",
 *   workDir: "/tmp/chunked_example_work",
 *   workers: 2,
 *   plan: { minLength: 8, maxLength: 20 },
 * });
 * console.log(`${result.frames} frames in ${result.chunks} chunks`);
 * ```
 */
export async function encodeChunked(
  input: ChunkedInput,
  config: ChunkedConfig,
  options: EncodeChunkedOptions,
): Promise<ChunkedResult> {
  const started = performance.now();
  const workRoot = options.workDir
    ?? (typeof options.output === "string"
      ? `${options.output}.chunks`
      : join(os.tmpdir(), "av1-stream-chunks"));
  const signal = options.signal;
  const work = await prepareWork(input, config, {
    workDir: workRoot,
    resume: options.resume,
    plan: options.plan,
    maxFrames: options.maxFrames,
  });
  const m = work.manifest;
  const perWorker = encoderMemoryEstimate(m.info, config);
  const budget = options.memoryBudget ?? os.totalmem() / 2;
  const requested = options.workers ?? cores();
  if (!Number.isInteger(requested) || requested < 1) {
    throw new EncoderError("INVALID_CONFIG", `workers must be a positive integer, got ${requested}`);
  }
  const pending = pendingChunks(m);
  const workers = Math.max(1, Math.min(requested, Math.floor(budget / perWorker), pending.length || 1));
  const threads = Math.max(1, Math.floor(cores() / workers));
  const attempts = options.attempts ?? 3;
  const resumedCount = m.chunks.length - pending.length;
  const progress: ChunkedProgress = {
    phase: "encode",
    framesDone: 0,
    frameCount: m.frameCount,
    chunksDone: resumedCount,
    chunkCount: m.chunks.length,
    chunksResumed: resumedCount,
    bytes: 0,
  };
  for (const r of Object.values(m.done)) {
    progress.framesDone += r.frames;
    progress.bytes += r.bytes;
  }
  const report = () => options.onProgress?.({ ...progress });
  report();

  // One failure stops the other slots: they close their encoders and the error is the first one.
  const stop = new AbortController();
  const onOuterAbort = () => stop.abort();
  signal?.addEventListener("abort", onOuterAbort);
  let failure: unknown;
  const queue = [...pending];
  const slot = async () => {
    while (queue.length && !stop.signal.aborted) {
      const chunk = queue.shift()!;
      const result = await encodeWithRetry(work, chunk, config, attempts, threads, stop.signal, (delta) => {
        progress.framesDone += delta;
        report();
      });
      progress.bytes += result.bytes;
      progress.chunksDone++;
      await work.store.markDone(result);
      report();
    }
  };
  try {
    await Promise.all(Array.from({ length: workers }, () =>
      slot().catch((err) => {
        failure ??= err;
        stop.abort();
      })));
  } finally {
    signal?.removeEventListener("abort", onOuterAbort);
  }
  if (signal?.aborted) {
    throw new EncoderError(
      "ABORTED",
      `Chunked encode aborted with ${progress.chunksDone} of ${progress.chunkCount} chunks done: run again with resume to continue`,
    );
  }
  if (failure) throw failure;

  progress.phase = "join";
  report();
  const joined = await joinWork(work, options.output, { format: options.format });
  progress.phase = "done";
  report();
  return {
    frames: joined.frames,
    bytes: joined.bytes,
    chunks: m.chunks.length,
    chunksResumed: resumedCount,
    sceneChanges: m.sceneChanges,
    workers,
    memoryPerWorker: perWorker,
    workDir: work.dir,
    seconds: (performance.now() - started) / 1000,
  };
}

async function encodeWithRetry(
  work: Work,
  chunk: PlannedChunk,
  config: ChunkedConfig,
  attempts: number,
  threads: number,
  signal: AbortSignal,
  onFrames: (delta: number) => void,
): Promise<ChunkResult> {
  const file = chunkFileName(chunk.index, work.manifest.settingsHash);
  for (let attempt = 1;; attempt++) {
    let counted = 0;
    try {
      const result = await encodeChunk(
        readY4mRange(work.inputPath, chunk.offset, chunk.end - chunk.start),
        { ...chunk, info: work.manifest.info as VideoInfo, config, path: join(work.dir, file) },
        {
          threads,
          signal,
          onFrame: (n) => {
            onFrames(n - counted);
            counted = n;
          },
        },
      );
      return { ...result, file };
    } catch (err) {
      onFrames(-counted);
      if (signal.aborted || attempt >= attempts) throw err;
      await new Promise((r) => setTimeout(r, 100 * 2 ** attempt));
    }
  }
}
