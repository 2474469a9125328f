/**
 * The command line as a module (`av1-stream/cli`): run it in-process with {@linkcode main}, or parse its
 * flags with {@linkcode parseCli}. The `av1-stream` command itself is `cli.ts`.
 *
 * @example
 * ```ts
 * import { main } from "./mod.ts";
 * const code = await main(["-i", "testsrc:320x240@30:10", "-o", "out.ivf", "-q"]);
 * ```
 * @module
 */
export { type Options, parseCli, UsageError } from "./args.ts";
export { main } from "./run.ts";
