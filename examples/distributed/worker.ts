/**
 * A chunk worker: takes chunk jobs from Redis, encodes them from the shared directory, writes the chunk
 * files back there. Run one per machine (or several with --concurrency); stop with Ctrl-C.
 *
 * ```sh
 * deno run -A examples/distributed/worker.ts --redis redis://10.0.0.1:6379 --shared /mnt/av1
 * bun examples/distributed/worker.ts --redis redis://10.0.0.1:6379 --shared /mnt/av1 --concurrency 2
 * ```
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { CHUNK_QUEUE, runChunkWorker } from "../../lib/chunked/distributed.ts";

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    redis: { type: "string", default: "redis://127.0.0.1:6379" },
    shared: { type: "string" },
    queue: { type: "string", default: CHUNK_QUEUE },
    concurrency: { type: "string", default: "1" },
    threads: { type: "string" },
    "lock-ms": { type: "string", default: "30000" },
    "stalled-ms": { type: "string", default: "30000" },
  },
});
if (!values.shared) {
  console.error(
    "Usage: worker.ts --shared <dir> [--redis redis://host:6379] [--concurrency N] [--threads N]",
  );
  process.exit(2);
}

const worker = runChunkWorker({
  redis: values.redis!,
  sharedDir: values.shared,
  queue: values.queue,
  concurrency: Number(values.concurrency),
  threads: values.threads ? Number(values.threads) : undefined,
  lockDuration: Number(values["lock-ms"]),
  stalledInterval: Number(values["stalled-ms"]),
  // One line per event on stdout, so that scripts (and tests) can follow the worker.
  onJob: (job) => console.log(`start ${job.index} ${job.start}-${job.end}`),
  onDone: (job, result, error) =>
    console.log(
      error ? `fail ${job.index} ${(error as Error).message}` : `done ${job.index} ${result?.bytes} bytes`,
    ),
});
await worker.ready();
console.log(`ready pid ${process.pid}`);
const stop = async () => {
  await worker.close();
  process.exit(0);
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
