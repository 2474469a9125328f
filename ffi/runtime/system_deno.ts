/** {@linkcode RuntimeSystem} over Deno's own calls: no `node:` module, no `process` global. @module */
import type { OpenFile, RuntimeSystem } from "./system.ts";

const encoder = new TextEncoder();

/** Writes all of `bytes` to a standard stream (a write may take fewer). */
function writeAll(stream: typeof Deno.stdout, bytes: Uint8Array): void {
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
  get: (_, name) => (typeof name === "string" ? Deno.env.get(name) : undefined),
  has: (_, name) => typeof name === "string" && Deno.env.has(name),
  ownKeys: () => Object.keys(Deno.env.toObject()),
  getOwnPropertyDescriptor: (_, name) => {
    const value = typeof name === "string" ? Deno.env.get(name) : undefined;
    return value === undefined ? undefined : { value, enumerable: true, configurable: true, writable: true };
  },
});

/** Deno's implementation of {@linkcode RuntimeSystem}. */
export const system: RuntimeSystem = {
  async openFile(path, mode): Promise<OpenFile> {
    const file = await Deno.open(
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
          await file.seek(position, Deno.SeekMode.Start);
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
      const s = await Deno.stat(path);
      return s.isFile ? s.size : undefined;
    } catch {
      return undefined;
    }
  },
  existsSync(path) {
    try {
      Deno.statSync(path);
      return true;
    } catch {
      return false;
    }
  },
  readDirSync: (path) => Array.from(Deno.readDirSync(path), (e) => e.name),
  readTextFileSync: (path) => Deno.readTextFileSync(path),
  readLinkSync: (path) => Deno.readLinkSync(path),
  realPathSync: (path) => Deno.realPathSync(path),
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
  platform: () => PLATFORMS[Deno.build.os] ?? Deno.build.os,
  arch: () => ARCHES[Deno.build.arch] ?? Deno.build.arch,
  args: () => [...Deno.args],
  setExitCode(code) {
    Deno.exitCode = code;
  },
  exit: (code) => Deno.exit(code),
  writeStdout: (text) => writeAll(Deno.stdout, encoder.encode(text)),
  writeStderr: (text) => writeAll(Deno.stderr, encoder.encode(text)),
  stderrIsTerminal: () => Deno.stderr.isTerminal(),
  onSignal: (signal, listener) => Deno.addSignalListener(signal, listener),
  offSignal: (signal, listener) => Deno.removeSignalListener(signal, listener),
  unrefTimer: (timer) => Deno.unrefTimer(timer as number),
};
