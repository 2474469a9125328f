#!/usr/bin/env -S deno run -A
/**
 * av1-stream command line: encode Y4M or a synthetic test source to AV1 in IVF or OBU.
 *
 * ```sh
 * deno run -A cli.ts -i in.y4m -o out.ivf --preset 10 --crf 35
 * bun run cli.ts -i testsrc:1280x720@30:120 -o out.ivf
 * npm run encode -- -i - -o - < in.y4m > out.ivf
 * ```
 * @module
 */
import { realpathSync } from "node:fs";
import process from "node:process";
import { setTimeout as nodeSetTimeout } from "node:timers";
import { fileURLToPath } from "node:url";
import { main } from "./cli/run.ts";
import { EncoderError } from "./lib/errors.ts";

export { type Options, parseCli, UsageError } from "./cli/args.ts";
export { main } from "./cli/run.ts";

// Node 20 has no import.meta.main: there the entry is the script named on the command line, which for an
// npm bin is a symlink (node_modules/.bin/av1-stream) to this file.
const isEntry = import.meta.main
  ?? (process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url));
if (isEntry) {
  try {
    const code = await main(process.argv.slice(2));
    process.exitCode = code;
    if (code === 130 || code === 143) {
      // After SIGINT or SIGTERM the output is finished and the encoder closed; a read of stdin still
      // waiting on a producer that stopped writing would hold the process (Deno cannot cancel that read),
      // so it ends shortly if nothing else does first. Unref'd: it never keeps the process alive itself.
      nodeSetTimeout(() => process.exit(code), 500).unref();
    }
  } catch (e) {
    const msg = e instanceof EncoderError ? e.message : (e as Error)?.stack ?? String(e);
    process.stderr.write(`av1-stream: ${msg}\n`);
    process.exitCode = 1;
  }
}
