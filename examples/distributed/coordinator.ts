/**
 * The coordinator of a distributed encode: plans chunks of the input on the shared directory, puts one
 * job per chunk on Redis, waits for the workers and joins the chunks into the output.
 *
 * ```sh
 * deno run -A examples/distributed/coordinator.ts --redis redis://10.0.0.1:6379 --shared /mnt/av1 \
 *   -i /mnt/av1/film.y4m -o film.mkv --codec svt-av1 --preset 6 --crf 30
 * ```
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { CHUNK_QUEUE, runCoordinator } from "../../lib/chunked/distributed.ts";
import type { ChunkedConfig } from "../../lib/chunked/encode_chunk.ts";
import { formatFromPath } from "../../lib/container/open.ts";

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    redis: { type: "string", default: "redis://127.0.0.1:6379" },
    shared: { type: "string" },
    queue: { type: "string", default: CHUNK_QUEUE },
    input: { type: "string", short: "i" },
    output: { type: "string", short: "o" },
    codec: { type: "string", default: "svt-av1" },
    preset: { type: "string" },
    crf: { type: "string" },
    speed: { type: "string" },
    quantizer: { type: "string" },
    "min-chunk": { type: "string" },
    "max-chunk": { type: "string" },
    quiet: { type: "boolean" },
  },
});
if (!values.shared || !values.input || !values.output) {
  console.error(
    "Usage: coordinator.ts --shared <dir> -i <in.y4m> -o <out.ivf|webm|mkv|mp4> [--redis redis://host:6379]\n"
      + "  [--codec svt-av1|rav1e] [--preset N --crf N | --speed N --quantizer N] [--min-chunk N] [--max-chunk N]",
  );
  process.exit(2);
}
const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));
const config: ChunkedConfig = values.codec === "rav1e"
  ? { codec: "rav1e", speed: num(values.speed), quantizer: num(values.quantizer) }
  : { codec: "svt-av1", preset: num(values.preset), crf: num(values.crf) };

const result = await runCoordinator(values.input, config, {
  redis: values.redis!,
  sharedDir: values.shared,
  queue: values.queue,
  output: values.output,
  format: formatFromPath(values.output) ?? "ivf",
  plan: { minLength: num(values["min-chunk"]), maxLength: num(values["max-chunk"]) },
  onProgress: (p) => {
    if (!values.quiet) {
      process.stderr.write(
        `\r${p.phase} ${p.framesDone}/${p.frameCount} frames, chunks ${p.chunksDone}/${p.chunkCount}  `,
      );
    }
  },
});
if (!values.quiet) process.stderr.write("\n");
console.log(JSON.stringify(result));
