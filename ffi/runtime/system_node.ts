/**
 * {@linkcode RuntimeSystem} over the `node:` modules, for Bun and Node. Each module is taken at its first use
 * (`process.getBuiltinModule`), so that a run that reads no file (`--help`) does not load `node:fs` and the
 * rest (`node:fs` alone costs Bun 3 MB at start-up), and so that this module has no import and no top-level
 * `await`: system.ts imports it in Deno too, and a module graph with a top-level `await` loses the messages
 * that reach a user's Worker before its modules have loaded (see system.ts).
 * @module
 */
import type { OpenFile, RuntimeSystem } from "./system.ts";

interface Modules {
  "node:fs": typeof import("node:fs");
  "node:fs/promises": typeof import("node:fs/promises");
  "node:module": { createRequire: typeof import("node:module").createRequire };
  "node:os": typeof import("node:os");
  "node:url": typeof import("node:url");
}

type Process = typeof import("node:process");

/** Bun's and Node's `process` global, read at each use: there is none in Deno, where this module also loads. */
const process = () => (globalThis as unknown as { process: Process }).process;

function builtin<K extends keyof Modules>(id: K): Modules[K] {
  const p = process() as Process & { getBuiltinModule?: (id: string) => unknown };
  if (!p.getBuiltinModule) {
    throw new Error(
      `This Node.js (${p.version}) has no process.getBuiltinModule: av1-stream needs Node.js 20.16 or later`,
    );
  }
  return p.getBuiltinModule(id) as Modules[K];
}

/** Bun's and Node's implementation of {@linkcode RuntimeSystem}. */
export const system: RuntimeSystem = {
  async openFile(path, mode): Promise<OpenFile> {
    const handle = await builtin("node:fs/promises").open(path, mode === "read" ? "r" : "w");
    return {
      read: async (view) => (await handle.read(view, 0, view.byteLength, null)).bytesRead,
      writeAt: async (bytes, position) =>
        (await handle.write(bytes, 0, bytes.byteLength, position)).bytesWritten,
      close: () => handle.close(),
    };
  },
  async fileSize(path) {
    try {
      const s = await builtin("node:fs/promises").stat(path);
      return s.isFile() ? s.size : undefined;
    } catch {
      return undefined;
    }
  },
  existsSync: (path) => builtin("node:fs").existsSync(path),
  readDirSync: (path) => builtin("node:fs").readdirSync(path),
  readTextFileSync: (path) => builtin("node:fs").readFileSync(path, "utf8"),
  readLinkSync: (path) => builtin("node:fs").readlinkSync(path),
  realPathSync: (path) => builtin("node:fs").realpathSync(path),
  pathFromUrl: (url) => builtin("node:url").fileURLToPath(url),
  resolvePackageFile(specifier) {
    try {
      return builtin("node:module").createRequire(import.meta.url).resolve(specifier);
    } catch {
      return undefined;
    }
  },
  env: () => process().env,
  platform: () => builtin("node:os").platform(),
  arch: () => builtin("node:os").arch(),
  args: () => process().argv.slice(2),
  setExitCode(code) {
    process().exitCode = code;
  },
  exit: (code) => process().exit(code),
  writeStdout(text) {
    process().stdout.write(text);
  },
  writeStderr(text) {
    process().stderr.write(text);
  },
  stderrIsTerminal: () => Boolean(process().stderr.isTTY),
  onSignal(signal, listener) {
    process().on(signal, listener);
  },
  offSignal(signal, listener) {
    process().off(signal, listener);
  },
  unrefTimer(timer) {
    (timer as { unref?: () => void }).unref?.();
  },
};
