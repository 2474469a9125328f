/**
 * The package's version, the same in package.json and deno.json (a test keeps the three equal).
 * @module
 */

/** av1-stream's version. */
export const VERSION = "0.1.0";
