/**
 * {@linkcode RuntimeSystem} over Deno's own calls: no `node:` module, no `process` global. Deno's calls are
 * typed here by the part of them this file uses ({@linkcode DenoCalls}), so that every runtime's type check
 * and build takes this file: system.ts imports it statically in every runtime.
 * @module
 */
import type { OpenFile, RuntimeSystem } from "./system.ts";

interface DenoFile {
  read(view: Uint8Array): Promise<number | null>;
  seek(offset: number, whence: number): Promise<number>;
  write(bytes: Uint8Array): Promise<number>;
  close(): void;
}

interface DenoOpenOptions {
  read?: boolean;
  write?: boolean;
  create?: boolean;
  truncate?: boolean;
}

interface DenoStdStream {
  writeSync(bytes: Uint8Array): number;
  isTerminal(): boolean;
}

/** The part of Deno's namespace this file calls. */
interface DenoCalls {
  open(path: string, options: DenoOpenOptions): Promise<DenoFile>;
  SeekMode: { Start: number };
  stat(path: string): Promise<{ isFile: boolean; size: number }>;
  statSync(path: string): unknown;
  readDirSync(path: string): Iterable<{ name: string }>;
  readTextFileSync(path: string): string;
  readLinkSync(path: string): string;
  realPathSync(path: string): string;
  env: {
    get(name: string): string | undefined;
    has(name: string): boolean;
    toObject(): Record<string, string>;
  };
  build: { os: string; arch: string };
  args: readonly string[];
  exitCode: number;
  exit(code?: number): never;
  stdout: DenoStdStream;
  stderr: DenoStdStream;
  addSignalListener(signal: "SIGINT" | "SIGTERM", listener: () => void): void;
  removeSignalListener(signal: "SIGINT" | "SIGTERM", listener: () => void): void;
  unrefTimer(id: number): void;
}

/** Undefined in Bun and Node, where this module loads too and is never called. */
const deno = (globalThis as unknown as { Deno: DenoCalls }).Deno;

const encoder = new TextEncoder();

/** Writes all of `bytes` to a standard stream (a write may take fewer). */
function writeAll(stream: DenoStdStream, bytes: Uint8Array): void {
  for (let done = 0; done < bytes.length;) done += stream.writeSync(bytes.subarray(done));
}

/** `Deno.build.os` and `Deno.build.arch` by Node's names. */
const PLATFORMS: Record<string, string> = { windows: "win32", solaris: "sunos", illumos: "sunos" };
const ARCHES: Record<string, string> = { x86_64: "x64", aarch64: "arm64" };

/**
 * The environment as an object read by name, as Node's `process.env` is in Deno: each read asks for that
 * name's permission alone (`Deno.env.toObject()` would need all of them).
 */
const environment = new Proxy({} as Record<string, string | undefined>, {
  get: (_, name) => (typeof name === "string" ? deno.env.get(name) : undefined),
  has: (_, name) => typeof name === "string" && deno.env.has(name),
  ownKeys: () => Object.keys(deno.env.toObject()),
  getOwnPropertyDescriptor: (_, name) => {
    const value = typeof name === "string" ? deno.env.get(name) : undefined;
    return value === undefined ? undefined : { value, enumerable: true, configurable: true, writable: true };
  },
});

/** Deno's implementation of {@linkcode RuntimeSystem}. */
export const system: RuntimeSystem = {
  async openFile(path, mode): Promise<OpenFile> {
    const file = await deno.open(
      path,
      mode === "read" ? { read: true } : { write: true, create: true, truncate: true },
    );
    // Deno's files have no positional write: each is a seek and a write, and they run one after another
    // so that no seek comes between another's seek and write.
    let queue: Promise<unknown> = Promise.resolve();
    return {
      read: async (view) => (await file.read(view)) ?? 0,
      writeAt(bytes, position) {
        const write = queue.then(async () => {
          await file.seek(position, deno.SeekMode.Start);
          return await file.write(bytes);
        });
        queue = write.catch(() => {});
        return write;
      },
      async close() {
        await queue;
        file.close();
      },
    };
  },
  async fileSize(path) {
    try {
      const s = await deno.stat(path);
      return s.isFile ? s.size : undefined;
    } catch {
      return undefined;
    }
  },
  existsSync(path) {
    try {
      deno.statSync(path);
      return true;
    } catch {
      return false;
    }
  },
  readDirSync: (path) => Array.from(deno.readDirSync(path), (e) => e.name),
  readTextFileSync: (path) => deno.readTextFileSync(path),
  readLinkSync: (path) => deno.readLinkSync(path),
  realPathSync: (path) => deno.realPathSync(path),
  pathFromUrl(url) {
    const u = new URL(url);
    if (u.protocol !== "file:") throw new TypeError(`Not a file: URL: ${u.href}`);
    return decodeURIComponent(u.pathname);
  },
  // Node's require.resolve is node:module, the costliest part of Deno's Node layer at start-up; Deno's
  // own resolution finds a package installed in node_modules, or a dependency of an npm package, too.
  resolvePackageFile(specifier) {
    try {
      return system.pathFromUrl(import.meta.resolve(specifier));
    } catch {
      return undefined;
    }
  },
  env: () => environment,
  platform: () => PLATFORMS[deno.build.os] ?? deno.build.os,
  arch: () => ARCHES[deno.build.arch] ?? deno.build.arch,
  args: () => [...deno.args],
  setExitCode(code) {
    deno.exitCode = code;
  },
  exit: (code) => deno.exit(code),
  writeStdout: (text) => writeAll(deno.stdout, encoder.encode(text)),
  writeStderr: (text) => writeAll(deno.stderr, encoder.encode(text)),
  stderrIsTerminal: () => deno.stderr.isTerminal(),
  onSignal: (signal, listener) => deno.addSignalListener(signal, listener),
  offSignal: (signal, listener) => deno.removeSignalListener(signal, listener),
  unrefTimer: (timer) => deno.unrefTimer(timer as number),
};
