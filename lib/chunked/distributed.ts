/**
 * Chunked encoding across machines on BullMQ (Redis): a coordinator plans the chunks and enqueues one
 * job per chunk; workers anywhere take jobs, read the chunk's frames from shared storage, and write the
 * chunk's IVF back there. Redis carries only job descriptions (frame range, byte offset, relative
 * paths, settings hash), never frames or packets.
 *
 * A worker that dies mid-job loses nothing: its lock expires, BullMQ's stalled-job check puts the job
 * back in the queue and another worker encodes the chunk again. Outputs are named by chunk index and
 * settings hash and appear only complete (temporary file + rename), so a chunk done twice is harmless.
 * @module
 */
import { type ConnectionOptions, Queue, Worker } from "bullmq";
import { stat } from "node:fs/promises";
import { join, relative } from "node:path";
import { findSequenceHeader } from "../av1/obu.ts";
import type { ContainerFormat } from "../container/open.ts";
import { EncoderError } from "../errors.ts";
import { fileReadable } from "../io/file_stream.ts";
import { IvfReader } from "../io/ivf.ts";
import type { ByteSink } from "../io/sink.ts";
import type { VideoInfo } from "../types.ts";
import { type ChunkedConfig, chunkFileName, type ChunkResult, encodeChunk, toHex } from "./encode_chunk.ts";
import { type ChunkedProgress, type ChunkedResult, encoderMemoryEstimate, joinWork } from "./local.ts";
import type { PlanOptions } from "./plan.ts";
import { type ChunkedInput, prepareWork } from "./work_dir.ts";
import { readY4mFileInfo, readY4mRange } from "./y4m_file.ts";

/** Default BullMQ queue name. */
export const CHUNK_QUEUE = "av1-chunks";

/** What one job tells a worker; paths are relative to the shared directory. */
export interface ChunkJobData {
  /** Job format version. */
  version: 1;
  /** Work-directory key: input and settings. */
  key: string;
  /** Hash of the encoder settings; a worker checks it against the manifest. */
  settingsHash: string;
  /** Position of the chunk in the plan. */
  index: number;
  /** First frame of the chunk (inclusive). */
  start: number;
  /** Frame after the chunk's last (exclusive). */
  end: number;
  /** Byte offset of the chunk's first `FRAME` line in the input. */
  offset: number;
  /** Input Y4M file, relative to the shared directory. */
  input: string;
  /** Output IVF file, relative to the shared directory. */
  output: string;
  /** The encoder settings, the same for every chunk. */
  config: ChunkedConfig;
}

/** Redis to connect to: a `redis://host:port[/db]` URL or ioredis options. */
export type RedisTarget = string | { host: string; port: number; password?: string; db?: number };

/** ioredis options from a URL; BullMQ needs `maxRetriesPerRequest: null` for its blocking calls. */
export function redisConnection(target: RedisTarget): ConnectionOptions {
  if (typeof target !== "string") return { ...target, maxRetriesPerRequest: null } as ConnectionOptions;
  const u = new URL(target);
  if (u.protocol !== "redis:") {
    throw new EncoderError("INVALID_CONFIG", `Redis address must look like redis://host:6379, got ${target}`);
  }
  return {
    host: u.hostname || "127.0.0.1",
    port: Number(u.port || 6379),
    password: u.password ? decodeURIComponent(u.password) : undefined,
    db: u.pathname.length > 1 ? Number(u.pathname.slice(1)) : undefined,
    maxRetriesPerRequest: null,
  } as ConnectionOptions;
}

/** Options of {@linkcode runCoordinator}. */
export interface CoordinatorOptions {
  /** The Redis that holds BullMQ's queue. */
  redis: RedisTarget;
  /** Directory every worker can read and write (an NFS or SMB mount, a shared disk). */
  sharedDir: string;
  /** Where the joined stream goes: a path, a {@linkcode ByteSink} or a `WritableStream`. */
  output: string | ByteSink | WritableStream<Uint8Array>;
  /** Output container. Default "ivf". */
  format?: ContainerFormat;
  /** BullMQ queue name. Default {@linkcode CHUNK_QUEUE} ("av1-chunks"). */
  queue?: string;
  /** Where to cut. */
  plan?: PlanOptions;
  /** Encode at most this many frames. */
  maxFrames?: number;
  /** Resume an earlier run's work directory (chunks already on shared storage are not enqueued). Default true. */
  resume?: boolean;
  /** Attempts per chunk (BullMQ retries with exponential backoff). Default 3. */
  attempts?: number;
  /** First retry delay in ms, doubled each time. Default 1000. */
  backoffMs?: number;
  /** How often to look at the jobs, ms. Default 250. */
  pollMs?: number;
  /** Called as chunks finish. */
  onProgress?: (progress: ChunkedProgress) => void;
  /** Stops waiting (an ABORTED error); enqueued jobs stay in the queue and the work directory stays, so a later run resumes. */
  signal?: AbortSignal;
}

function jobId(key: string, index: number): string {
  return `${key.slice(0, 16)}-${index}`;
}

async function fileExists(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/**
 * Plans `input` on shared storage, enqueues one job per unfinished chunk, waits for workers to encode
 * them (reporting progress from the jobs), then joins. A file input outside `sharedDir` is copied into
 * the work directory first so that other machines can read it.
 */
export async function runCoordinator(
  input: ChunkedInput,
  config: ChunkedConfig,
  options: CoordinatorOptions,
): Promise<ChunkedResult> {
  const started = performance.now();
  const work = await prepareWork(input, config, {
    workDir: options.sharedDir,
    resume: options.resume ?? true,
    plan: options.plan,
    maxFrames: options.maxFrames,
    shareInput: true,
  });
  const m = work.manifest;
  const queue = new Queue<ChunkJobData, ChunkResult>(options.queue ?? CHUNK_QUEUE, {
    connection: redisConnection(options.redis),
  });
  const attempts = options.attempts ?? 3;
  const resumed = Object.keys(m.done).length;
  const progress: ChunkedProgress = {
    phase: "encode",
    framesDone: 0,
    frameCount: m.frameCount,
    chunksDone: resumed,
    chunkCount: m.chunks.length,
    chunksResumed: resumed,
    bytes: 0,
  };
  try {
    const pending = new Map<number, ChunkJobData>();
    const longestFirst = [...m.chunks].sort((a, b) =>
      (b.end - b.start) - (a.end - a.start) || a.index - b.index
    );
    for (const c of longestFirst) {
      const file = chunkFileName(c.index, m.settingsHash);
      if (m.done[String(c.index)]) continue;
      const data: ChunkJobData = {
        version: 1,
        key: m.key,
        settingsHash: m.settingsHash,
        index: c.index,
        start: c.start,
        end: c.end,
        offset: c.offset,
        input: relative(options.sharedDir, work.inputPath),
        output: relative(options.sharedDir, join(work.dir, file)),
        config,
      };
      pending.set(c.index, data);
      const id = jobId(m.key, c.index);
      const existing = await queue.getJob(id);
      const state = existing ? await existing.getState() : undefined;
      if (existing && state === "failed") await existing.retry("failed");
      else if (
        existing && state === "completed" && !(await fileExists(join(options.sharedDir, data.output)))
      ) {
        await existing.remove();
        await queue.add("chunk", data, jobOptions(id, attempts, options.backoffMs));
      } else if (!existing) {
        // Longest first: BullMQ takes jobs of equal priority in insertion order.
        await queue.add("chunk", data, jobOptions(id, attempts, options.backoffMs));
      }
    }
    const poll = options.pollMs ?? 250;
    while (pending.size) {
      if (options.signal?.aborted) {
        throw new EncoderError(
          "ABORTED",
          "Coordinator aborted: jobs stay queued; run it again to wait for them and join",
        );
      }
      let framesInFlight = 0;
      for (const [index, data] of [...pending]) {
        const job = await queue.getJob(jobId(m.key, index));
        if (!job) {
          await queue.add("chunk", data, jobOptions(jobId(m.key, index), attempts, options.backoffMs));
          continue;
        }
        const state = await job.getState();
        if (state === "completed" && job.returnvalue) {
          pending.delete(index);
          await work.store.markDone(job.returnvalue);
          progress.chunksDone++;
          progress.bytes += job.returnvalue.bytes;
        } else if (state === "failed" && job.attemptsMade >= attempts) {
          throw new EncoderError(
            "NATIVE_ERROR",
            `Chunk ${index} failed ${job.attemptsMade} times on the workers: ${job.failedReason}`,
          );
        } else if (typeof job.progress === "number") framesInFlight += job.progress;
      }
      let frames = framesInFlight;
      for (const r of Object.values(m.done)) frames += r.frames;
      progress.framesDone = frames;
      options.onProgress?.({ ...progress });
      if (pending.size) await new Promise((r) => setTimeout(r, poll));
    }
    progress.phase = "join";
    options.onProgress?.({ ...progress });
    const joined = await joinWork(work, options.output, { format: options.format });
    for (const c of m.chunks) await (await queue.getJob(jobId(m.key, c.index)))?.remove().catch(() => {});
    progress.phase = "done";
    progress.framesDone = joined.frames;
    options.onProgress?.({ ...progress });
    return {
      frames: joined.frames,
      bytes: joined.bytes,
      chunks: m.chunks.length,
      chunksResumed: resumed,
      sceneChanges: m.sceneChanges,
      workers: 0,
      memoryPerWorker: encoderMemoryEstimate(m.info, config),
      workDir: work.dir,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    await queue.close();
  }
}

function jobOptions(jobId: string, attempts: number, backoffMs = 1000) {
  return {
    jobId,
    attempts,
    backoff: { type: "exponential", delay: backoffMs },
    removeOnComplete: false,
    removeOnFail: false,
  };
}

/** Options of {@linkcode runChunkWorker}. */
export interface ChunkWorkerOptions {
  /** The Redis that holds BullMQ's queue. */
  redis: RedisTarget;
  /** This machine's path of the shared directory (job paths are relative to it). */
  sharedDir: string;
  /** BullMQ queue name; the coordinator's. Default {@linkcode CHUNK_QUEUE} ("av1-chunks"). */
  queue?: string;
  /** Chunks encoded at once by this process. Default 1. */
  concurrency?: number;
  /** Encoder threads per chunk when the job's settings give none. */
  threads?: number;
  /**
   * How long a job's lock lasts without renewal, ms (BullMQ `lockDuration`); a killed worker's chunk
   * is given to another worker after about this long. Default 30000.
   */
  lockDuration?: number;
  /** How often to look for stalled jobs, ms. Default 30000 (BullMQ's). */
  stalledInterval?: number;
  /** Called when a job starts. */
  onJob?: (data: ChunkJobData) => void;
  /** Called with frames done in the current job; awaited before encoding goes on. */
  onProgress?: (data: ChunkJobData, frames: number) => void | Promise<void>;
  /** Called when a job ends, with its result or error. */
  onDone?: (data: ChunkJobData, result: ChunkResult | undefined, error?: unknown) => void;
}

/** A running chunk worker. */
export interface ChunkWorker extends AsyncDisposable {
  /** Stops taking jobs, lets the current ones finish, disconnects. */
  close(): Promise<void>;
  /** Resolves when the worker has connected to Redis. */
  ready(): Promise<void>;
}

/** Reads a finished chunk file's stats (for a job whose output already exists). */
async function chunkFileResult(path: string, data: ChunkJobData): Promise<ChunkResult | undefined> {
  try {
    const reader = await IvfReader.open(await fileReadable(path));
    let frames = 0;
    let bytes = 0;
    let header: Uint8Array | null = null;
    for await (const f of reader.frames()) {
      if (frames === 0) header = findSequenceHeader(f.data);
      frames++;
      bytes += f.data.byteLength;
    }
    if (!header || frames !== data.end - data.start) return undefined;
    return {
      index: data.index,
      file: path.slice(path.lastIndexOf("/") + 1),
      frames,
      bytes,
      sequenceHeader: toHex(header),
    };
  } catch {
    return undefined;
  }
}

/**
 * Takes chunk jobs from the queue and encodes them: frames from the shared input, output to the shared
 * work directory under the chunk's name. A job whose output already exists (done by a worker that died
 * before reporting) completes at once with that file.
 *
 * @example
 * ```ts ignore
 * import { runChunkWorker } from "./distributed.ts";
 * const worker = runChunkWorker({ redis: "redis://10.0.0.1:6379", sharedDir: "/mnt/av1" });
 * await worker.ready();
 * ```
 */
export function runChunkWorker(options: ChunkWorkerOptions): ChunkWorker {
  const worker = new Worker<ChunkJobData, ChunkResult>(
    options.queue ?? CHUNK_QUEUE,
    async (job) => {
      const data = job.data;
      if (data.version !== 1) {
        throw new EncoderError(
          "INVALID_INPUT",
          `Unknown chunk job version ${data.version}: update this worker`,
        );
      }
      options.onJob?.(data);
      const out = join(options.sharedDir, data.output);
      if (await fileExists(out)) {
        const existing = await chunkFileResult(out, data);
        if (existing) {
          options.onDone?.(data, existing);
          return existing;
        }
      }
      const inputPath = join(options.sharedDir, data.input);
      const info: VideoInfo = await readY4mFileInfo(inputPath);
      let lastReport = 0;
      try {
        const result = await encodeChunk(
          readY4mRange(inputPath, data.offset, data.end - data.start),
          { index: data.index, start: data.start, end: data.end, info, config: data.config, path: out },
          {
            threads: options.threads,
            onFrame: async (frames) => {
              const now = Date.now();
              if (now - lastReport > 200 || frames === data.end - data.start) {
                lastReport = now;
                await job.updateProgress(frames);
              }
              await options.onProgress?.(data, frames);
            },
          },
        );
        const full = { ...result, file: out.slice(out.lastIndexOf("/") + 1) };
        options.onDone?.(data, full);
        return full;
      } catch (err) {
        options.onDone?.(data, undefined, err);
        throw err;
      }
    },
    {
      connection: redisConnection(options.redis),
      concurrency: options.concurrency ?? 1,
      lockDuration: options.lockDuration ?? 30000,
      stalledInterval: options.stalledInterval ?? 30000,
      maxStalledCount: 3,
    },
  );
  // Errors of the connection are retried by ioredis; without a listener they would be thrown.
  worker.on("error", () => {});
  let closing: Promise<void> | undefined;
  return {
    close: () => (closing ??= worker.close()),
    ready: () => worker.waitUntilReady().then(() => {}),
    [Symbol.asyncDispose]() {
      return this.close();
    },
  };
}
