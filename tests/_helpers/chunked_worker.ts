/**
 * A chunk worker process for the distributed test. Prints "ready", "start <i>", "progress <i> <n>",
 * "done <i>" lines. With HANG_AFTER_PROGRESS=1 it stops making progress inside its first job (as a
 * machine that froze would), so the test can kill it mid-job at a known point.
 * @module
 */
import process from "node:process";
import { runChunkWorker } from "../../lib/chunked/distributed.ts";

const [redis, sharedDir, queue] = process.argv.slice(2);
const hang = process.env.HANG_AFTER_PROGRESS === "1";
const worker = runChunkWorker({
  redis,
  sharedDir,
  queue,
  lockDuration: 1500,
  stalledInterval: 500,
  threads: 1,
  onJob: (job) => console.log(`start ${job.index}`),
  onProgress: async (job, frames) => {
    if (hang) {
      console.log(`progress ${job.index} ${frames}`);
      await new Promise(() => {});
    }
  },
  onDone: (job, _r, err) => console.log(err ? `fail ${job.index}` : `done ${job.index}`),
});
await worker.ready();
console.log("ready");
process.on("SIGTERM", async () => {
  await worker.close();
  process.exit(0);
});
