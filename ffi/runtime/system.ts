/**
 * What the project needs of a runtime besides its FFI: files, the command line's process (arguments,
 * exit status, standard output and error as text, signals) and what the library loader reads. Deno's own
 * calls (`system_deno.ts`) keep its Node compatibility layer unloaded: `node:fs`, `node:module` and
 * `node:process` cost Deno 4-11 ms of CPU and 1-5 MB of RSS each at start-up (bench/results.md,
 * "Start-up"). Bun and Node use the `node:` modules (`system_node.ts`), native in both. Picked once by
 * the runtime check of the FFI adapter (mod.ts); neither implementation loads anything until it is used.
 * @module
 */
import { runtimeName } from "./mod.ts";
import { system as denoSystem } from "./system_deno.ts";
import { system as nodeSystem } from "./system_node.ts";

/** A file opened by {@linkcode RuntimeSystem.openFile}: read from its start, or written at positions. */
export interface OpenFile {
  /** Reads the next bytes into `view`; resolves to how many, 0 at the end. Read mode only. */
  read(view: Uint8Array): Promise<number>;
  /**
   * Writes `bytes` at `position`; resolves to how many bytes were written (perhaps fewer). Calls land in
   * the order they were made, even when not awaited one by one. Write mode only.
   */
  writeAt(bytes: Uint8Array, position: number): Promise<number>;
  close(): Promise<void>;
}

/** The runtime's own calls the project makes outside FFI. */
export interface RuntimeSystem {
  /** Opens a file to read, or to write (created, or truncated when it exists). Rejects as the runtime does. */
  openFile(path: string, mode: "read" | "write"): Promise<OpenFile>;
  /** The size of a regular file; undefined for anything else or nothing there. */
  fileSize(path: string): Promise<number | undefined>;
  /** Whether something is at `path` (links followed); false when it cannot be told. */
  existsSync(path: string): boolean;
  /** Names in a folder; throws when it cannot be read. */
  readDirSync(path: string): string[];
  /** A file's text (UTF-8); throws when it cannot be read. */
  readTextFileSync(path: string): string;
  /** The target of a symbolic link; throws when `path` is none. */
  readLinkSync(path: string): string;
  /** The path with every symbolic link resolved; throws when it does not exist. */
  realPathSync(path: string): string;
  /** The path of a `file:` URL. */
  pathFromUrl(url: string | URL): string;
  /**
   * The file a package's `specifier` (`pkg/package.json`) resolves to from this package, as the runtime
   * resolves a dependency; undefined when it is not installed or the runtime cannot tell.
   */
  resolvePackageFile(specifier: string): string | undefined;
  /** The process's environment (read by name: Deno checks its permission for each name read). */
  env(): Record<string, string | undefined>;
  /** `os.platform()` and `os.arch()` (Node's names: `linux`, `darwin`; `x64`, `arm64`). */
  platform(): string;
  arch(): string;
  /** The command line's arguments after the script. */
  args(): string[];
  /** The status the process exits with when nothing else ends it. */
  setExitCode(code: number): void;
  exit(code?: number): never;
  /** Writes text to standard output or standard error, all of it before returning. */
  writeStdout(text: string): void;
  writeStderr(text: string): void;
  /** Whether standard error is a terminal (the progress line rewrites itself there). */
  stderrIsTerminal(): boolean;
  onSignal(signal: "SIGINT" | "SIGTERM", listener: () => void): void;
  offSignal(signal: "SIGINT" | "SIGTERM", listener: () => void): void;
  /** Lets the process exit while `timer` (from `setTimeout`) is pending. */
  unrefTimer(timer: unknown): void;
}

/**
 * This runtime's {@linkcode RuntimeSystem}. Both implementations are imported, statically: neither loads a
 * module of its own (each takes its runtime's calls at first use), and this module must not wait on a
 * top-level `await`. Everything that imports mod.ts would wait with it, and Bun and Deno drop a message
 * that reaches a Worker while its modules still wait: a user's worker that imports this library and sets
 * `onmessage` once loaded lost the first message posted to it (examples/edge_pool.ts's `init`, whose
 * encoder was then never created). tests/module_graph_test.ts keeps the graph free of them.
 */
export const system: RuntimeSystem = runtimeName() === "deno" ? denoSystem : nodeSystem;
