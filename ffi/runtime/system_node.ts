/** {@linkcode RuntimeSystem} over the `node:` modules, for Bun and Node. @module */
import { existsSync, readdirSync, readFileSync, readlinkSync, realpathSync } from "node:fs";
import { open, stat } from "node:fs/promises";
import { createRequire } from "node:module";
import { arch, platform } from "node:os";
import process from "node:process";
import { fileURLToPath } from "node:url";
import type { OpenFile, RuntimeSystem } from "./system.ts";

/** Bun's and Node's implementation of {@linkcode RuntimeSystem}. */
export const system: RuntimeSystem = {
  async openFile(path, mode): Promise<OpenFile> {
    const handle = await open(path, mode === "read" ? "r" : "w");
    return {
      read: async (view) => (await handle.read(view, 0, view.byteLength, null)).bytesRead,
      writeAt: async (bytes, position) =>
        (await handle.write(bytes, 0, bytes.byteLength, position)).bytesWritten,
      close: () => handle.close(),
    };
  },
  async fileSize(path) {
    try {
      const s = await stat(path);
      return s.isFile() ? s.size : undefined;
    } catch {
      return undefined;
    }
  },
  existsSync: (path) => existsSync(path),
  readDirSync: (path) => readdirSync(path),
  readTextFileSync: (path) => readFileSync(path, "utf8"),
  readLinkSync: (path) => readlinkSync(path),
  realPathSync: (path) => realpathSync(path),
  pathFromUrl: (url) => fileURLToPath(url),
  resolvePackageFile(specifier) {
    try {
      return createRequire(import.meta.url).resolve(specifier);
    } catch {
      return undefined;
    }
  },
  env: () => process.env,
  platform: () => platform(),
  arch: () => arch(),
  args: () => process.argv.slice(2),
  setExitCode(code) {
    process.exitCode = code;
  },
  exit: (code) => process.exit(code),
  writeStdout(text) {
    process.stdout.write(text);
  },
  writeStderr(text) {
    process.stderr.write(text);
  },
  stderrIsTerminal: () => Boolean(process.stderr.isTTY),
  onSignal(signal, listener) {
    process.on(signal, listener);
  },
  offSignal(signal, listener) {
    process.off(signal, listener);
  },
  unrefTimer(timer) {
    (timer as { unref?: () => void }).unref?.();
  },
};
