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
import { system } from "./ffi/runtime/system.ts";

/**
 * Node 20 has no import.meta.main: there the entry is the script named on the command line, which for an
 * npm bin is a symlink (node_modules/.bin/av1-stream) to this file.
 */
async function nodeEntry(): Promise<boolean> {
  const [{ realpathSync }, { fileURLToPath }, { default: process }] = await Promise.all([
    import("node:fs"),
    import("node:url"),
    import("node:process"),
  ]);
  return process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
}

const isEntry = import.meta.main ?? await nodeEntry();
if (isEntry) {
  const argv = system.args();
  // The encoder thread starts loading while the rest of the command line loads here: they overlap, and a
  // one-frame encode ends 15-30 ms sooner (bench/results.md, "Start-up"). Not for commands that encode
  // nothing.
  // In Deno the encoder runs on this thread (cli/run.ts, `cliHost`): there is no thread to start.
  const encodes = !["probe", "--version", "-V"].includes(argv[0])
    && !argv.some((a) => a === "-h" || a === "--help") && !("Deno" in globalThis);
  const warming = encodes
    ? import("./lib/encoder/thread_pool.ts").then((m) => m.prestartEncoderThreads(1)).catch(() => {})
    : undefined;
  const [{ main }, { EncoderError, isBrokenPipe }] = await Promise.all([
    import("./cli/run.ts"),
    import("./lib/errors.ts"),
    warming,
  ]);
  try {
    const code = await main(argv);
    system.setExitCode(code);
    if (code === 130 || code === 143) {
      // After SIGINT or SIGTERM the output is finished and the encoder closed; a read of stdin still
      // waiting on a producer that stopped writing would hold the process (Deno cannot cancel that read),
      // so it ends shortly if nothing else does first. Unref'd: it never keeps the process alive itself.
      system.unrefTimer(setTimeout(() => system.exit(code), 500));
    }
  } catch (e) {
    // A reader of stdout that went away (`| head -c 100`), wherever it was noticed: no message (main()
    // answers 141 itself for an encode; this covers the rest, such as --chunked).
    if (isBrokenPipe(e)) {
      system.setExitCode(141);
    } else {
      const msg = e instanceof EncoderError ? e.message : (e as Error)?.stack ?? String(e);
      system.writeStderr(`av1-stream: ${msg}\n`);
      system.setExitCode(1);
    }
  }
}
