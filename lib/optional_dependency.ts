/**
 * The npm packages only some features need (werift for WHIP, bullmq for the distributed queue) are
 * optional peer dependencies: a user who writes IVF or WebM never installs them. This loads one when its
 * feature is used and, when it is not installed, says which package to add.
 * @module
 */

import { EncoderError } from "./errors.ts";

/** True when an import failed because the package itself is not installed (not an error inside it). */
function isMissing(e: unknown, name: string): boolean {
  const err = e as { code?: string; message?: string };
  const text = String(err?.message ?? e);
  return err?.code === "ERR_MODULE_NOT_FOUND" || err?.code === "MODULE_NOT_FOUND"
    || (text.includes(name) && /cannot find|not found|could not resolve|failed to resolve/i.test(text));
}

/**
 * Imports the optional package `name` for `feature`; when it is not installed, fails with a
 * `DEPENDENCY_MISSING` error that says how to add it in each runtime.
 */
export async function importOptional<T>(name: string, feature: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (e) {
    if (!isMissing(e, name)) throw e;
    throw new EncoderError(
      "DEPENDENCY_MISSING",
      `${feature} needs the npm package "${name}", which is not installed: add it with \`npm install ${name}\` (or \`bun add ${name}\`, \`deno add npm:${name}\`)`,
      { cause: e },
    );
  }
}
