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
import type * as Distributed from "./distributed.ts";

const mod: typeof Distributed = await importOptional("bullmq", "Distributed chunked encoding", async () => {
  await import("bullmq");
  return await import("./distributed.ts");
});

/** Default BullMQ queue name. */
export const CHUNK_QUEUE: typeof Distributed.CHUNK_QUEUE = mod.CHUNK_QUEUE;
/** BullMQ connection options from a `redis://` URL or ioredis options. */
export const redisConnection: typeof Distributed.redisConnection = mod.redisConnection;
/** Plans the input on shared storage, enqueues a job per chunk, waits for workers, then joins. */
export const runCoordinator: typeof Distributed.runCoordinator = mod.runCoordinator;
/** Takes chunk jobs from the queue and encodes them from shared storage. */
export const runChunkWorker: typeof Distributed.runChunkWorker = mod.runChunkWorker;
export type {
  ChunkJobData,
  ChunkWorker,
  ChunkWorkerOptions,
  CoordinatorOptions,
  RedisTarget,
} from "./distributed.ts";
