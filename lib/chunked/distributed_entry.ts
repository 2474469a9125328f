/**
 * Chunked encoding across machines on BullMQ and Redis ({@linkcode runCoordinator}, {@linkcode runChunkWorker}):
 * the `./chunked/distributed` entry point. BullMQ is an optional peer dependency: install it
 * (`npm install bullmq`) to use this entry; without it, importing this module fails with a
 * `DEPENDENCY_MISSING` error that says so.
 *
 * @example
 * ```ts ignore
 * import { runChunkWorker } from "av1-stream/chunked/distributed";
 * const worker = runChunkWorker({ redis: "redis://127.0.0.1:6379", sharedDir: "/mnt/av1" });
 * await worker.ready();
 * ```
 * @module
 */
import { importOptional } from "../optional_dependency.ts";
import type { ChunkWorker, ChunkWorkerOptions, CoordinatorOptions, RedisTarget } from "./distributed.ts";
import type * as Distributed from "./distributed.ts";
import type { ChunkedConfig } from "./encode_chunk.ts";
import type { ChunkedResult } from "./local.ts";
import type { ChunkedInput } from "./work_dir.ts";

// Loaded once, when this entry point is imported: a missing BullMQ fails the import itself with a
// DEPENDENCY_MISSING error, before any function here is called.
const mod: typeof Distributed = await importOptional("bullmq", "Distributed chunked encoding", async () => {
  await import("bullmq");
  return await import("./distributed.ts");
});

/**
 * Name of the BullMQ queue that the coordinator fills and workers take jobs from, when
 * {@linkcode CoordinatorOptions.queue} / {@linkcode ChunkWorkerOptions.queue} are not set: `"av1-chunks"`.
 */
export const CHUNK_QUEUE: string = mod.CHUNK_QUEUE;

/**
 * What {@linkcode redisConnection} returns: ioredis options that BullMQ's `Queue` and `Worker` accept as
 * their `connection`.
 */
export interface RedisConnectionOptions {
  /** Host name or address; `127.0.0.1` when the URL names none. */
  host: string;
  /** TCP port; 6379 when the URL names none. */
  port: number;
  /** Password from the URL's user-info part (percent-decoded), when there is one. */
  password?: string;
  /** Redis database number from the URL's path (`redis://host/2`), when there is one. */
  db?: number;
  /** Always `null`: BullMQ's blocking commands must not be retried by ioredis. */
  maxRetriesPerRequest: null;
}

/**
 * Turns a Redis address into BullMQ connection options. A string must be a `redis://[:password@]host[:port][/db]`
 * URL (port 6379 and host 127.0.0.1 by default); an object is taken as ioredis options. Either way
 * `maxRetriesPerRequest` is set to `null`, which BullMQ's blocking calls require.
 *
 * @throws {EncoderError} `INVALID_CONFIG` when the string is not a `redis:` URL.
 *
 * @example
 * ```ts ignore
 * import { redisConnection } from "av1-stream/chunked/distributed";
 * console.log(redisConnection("redis://10.0.0.1:6380/2")); // { host: "10.0.0.1", port: 6380, db: 2, ... }
 * ```
 */
export function redisConnection(target: RedisTarget): RedisConnectionOptions {
  return mod.redisConnection(target) as unknown as RedisConnectionOptions;
}

/**
 * Encodes `input` across machines: plans its chunks in `options.sharedDir` (copying a file input that
 * lies outside it there, so every machine can read it), enqueues one job per chunk not yet finished,
 * waits for workers ({@linkcode runChunkWorker}) to encode them while reporting their progress, then
 * joins the chunks into `options.output`. Resolves with the result of the join; rejects with an
 * {@linkcode EncoderError} when the input cannot be planned, a chunk job fails for good, or the join
 * finds a chunk missing or inconsistent.
 *
 * @example
 * ```ts ignore
 * import { runCoordinator } from "av1-stream/chunked/distributed";
 * const result = await runCoordinator("/mnt/av1/in.y4m", { codec: "svt-av1", preset: 8 }, {
 *   redis: "redis://10.0.0.1:6379",
 *   sharedDir: "/mnt/av1",
 *   output: "/mnt/av1/out.webm",
 * });
 * console.log(`${result.frames} frames`);
 * ```
 */
export function runCoordinator(
  input: ChunkedInput,
  config: ChunkedConfig,
  options: CoordinatorOptions,
): Promise<ChunkedResult> {
  return mod.runCoordinator(input, config, options);
}

/**
 * Starts a worker that takes chunk jobs from the queue and encodes them: frames from the shared input,
 * output to the shared work directory under the chunk's name (written to a temporary file and renamed,
 * so a chunk appears only complete). A job whose output already exists completes at once with that
 * file. Returns at once; {@linkcode ChunkWorker.ready} resolves once Redis is connected.
 *
 * @example
 * ```ts ignore
 * import { runChunkWorker } from "av1-stream/chunked/distributed";
 * await using worker = runChunkWorker({ redis: "redis://10.0.0.1:6379", sharedDir: "/mnt/av1" });
 * await worker.ready();
 * ```
 */
export function runChunkWorker(options: ChunkWorkerOptions): ChunkWorker {
  return mod.runChunkWorker(options);
}

export type {
  ChunkJobData,
  ChunkWorker,
  ChunkWorkerOptions,
  CoordinatorOptions,
  RedisTarget,
} from "./distributed.ts";
export type { ChunkedConfig, ChunkedInput, ChunkedResult };
