/**
 * The HTTP encode service (examples/http_service.ts) as bench/http_load.ts runs it to compare encoder
 * thread settings: `RELEASE_MEMORY=0` turns off `releaseMemory` (the native heap's free pages handed back
 * after each encoder), `PORT` and `MAX_CONCURRENT` as for the example; with `MEMORY_PROBE_DIR` a SIGUSR2
 * writes a snapshot of where the process's memory is to that folder (bench/memory_probe.ts).
 * @module
 */
import process from "node:process";
import { startService } from "../examples/http_service.ts";
import { configureEncoderThreads, warmEncoderThreads } from "../lib/encoder/thread_pool.ts";
import { installMemoryProbe } from "./memory_probe.ts";

if (process.env.MEMORY_PROBE_DIR) installMemoryProbe(process.env.MEMORY_PROBE_DIR);

configureEncoderThreads({ releaseMemory: process.env.RELEASE_MEMORY !== "0" });
await warmEncoderThreads();
const service = await startService({
  port: Number(process.env.PORT ?? 8000),
  maxConcurrent: process.env.MAX_CONCURRENT ? Number(process.env.MAX_CONCURRENT) : undefined,
});
console.log(
  `av1-stream encode service on ${service.url} (releaseMemory ${process.env.RELEASE_MEMORY !== "0"})`,
);
const stop = () => {
  process.off("SIGINT", stop);
  process.off("SIGTERM", stop);
  void service.close();
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
