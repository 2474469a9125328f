/**
 * The work directory of a chunked encode: keyed by a hash of the input and the settings, holding the
 * input (when it had to be spilled or shared), the chunk files and a manifest rewritten atomically
 * (temporary file + rename) after every finished chunk, which is what resuming reads.
 * @module
 */
import { createHash } from "node:crypto";
import { copyFile, mkdir, open, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { isAbsolute, join, relative, resolve } from "node:path";
import process from "node:process";
import { EncoderError } from "../errors.ts";
import type { Y4mInfo } from "../io/y4m.ts";
import type { Frame, VideoInfo } from "../types.ts";
import { type ChunkedConfig, type ChunkResult, hashJson, settingsHash } from "./encode_chunk.ts";
import { type Chunk, planFromScores, type PlanOptions } from "./plan.ts";
import { indexY4mFile, readY4mFileInfo, spillY4m } from "./y4m_file.ts";

/** A raw source that cannot seek: what `testSource()` returns, or anything with `info` and `frames()`. */
export interface FrameSource {
  /** Geometry and frame rate of the frames. */
  info: VideoInfo;
  /** The frames, in order; called once. */
  frames(): AsyncIterable<Frame> | AsyncIterableIterator<Frame>;
}

/** Input of a chunked encode: a Y4M file path, a Y4M byte stream (stdin), or a frame source. */
export type ChunkedInput = string | ReadableStream<Uint8Array> | FrameSource;

/** A planned chunk and the byte offset of its first frame in the input Y4M file. */
export interface PlannedChunk extends Chunk {
  /** Byte offset of the chunk's first `FRAME` line in the input file. */
  offset: number;
}

/** The manifest file's content. */
export interface Manifest {
  /** Manifest format version. */
  version: 1;
  /** Name of the work directory: a hash of the input and the settings. */
  key: string;
  /** Hash of the encoder settings; a resumed run must have the same. */
  settingsHash: string;
  /** The backend the chunks are encoded with. */
  codec: "svt-av1" | "rav1e";
  /** The input Y4M file: relative to the work directory when inside it, else absolute. */
  input: string;
  /** The input's geometry, frame rate and format. */
  info: Pick<Y4mInfo, "width" | "height" | "fps" | "bitDepth" | "chroma">;
  /** Frames to encode. */
  frameCount: number;
  /** The plan, with each chunk's byte offset in the input. */
  chunks: PlannedChunk[];
  /** Scene changes the planner found (frame numbers). */
  sceneChanges: number[];
  /** Finished chunks by index. */
  done: Record<string, ChunkResult>;
}

/** Options of {@linkcode prepareWork}. */
export interface PrepareOptions {
  /** Directory under which the keyed work directory is made. */
  workDir: string;
  /** Reuse the manifest and finished chunks of an earlier run with the same key. */
  resume?: boolean;
  /** Where to cut the input. */
  plan?: PlanOptions;
  /** Encode at most this many frames. */
  maxFrames?: number;
  /** Copy a file input into the work directory unless it is already under `workDir` (shared storage). */
  shareInput?: boolean;
}

/** A prepared work directory: its manifest, input and plan. */
export interface Work {
  /** Absolute path of the keyed work directory. */
  dir: string;
  /** The manifest as loaded or made; updated through `store`. */
  manifest: Manifest;
  /** Absolute path of the input Y4M file. */
  inputPath: string;
  /** Where the manifest is saved. */
  store: ManifestStore;
  /** Whether the manifest came from an earlier run. */
  resumed: boolean;
}

/** Reads and rewrites a manifest; writes are serialized and each one is atomic. */
export class ManifestStore {
  /** Path of the manifest file. */
  readonly path: string;
  #chain: Promise<void> = Promise.resolve();
  #manifest: Manifest;

  /** Holds a manifest that lives at `path`; nothing is written until `save()`. */
  constructor(path: string, manifest: Manifest) {
    this.path = path;
    this.#manifest = manifest;
  }

  /** The manifest as last changed (saved or not). */
  get manifest(): Manifest {
    return this.#manifest;
  }

  /** Writes the manifest to a temporary file and renames it over the old one. */
  save(): Promise<void> {
    const text = JSON.stringify(this.#manifest, null, 1);
    const next = this.#chain.then(async () => {
      const tmp = `${this.path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
      await writeFile(tmp, text);
      await rename(tmp, this.path);
    });
    this.#chain = next.catch(() => {});
    return next;
  }

  /** Records a finished chunk and saves. */
  markDone(result: ChunkResult): Promise<void> {
    this.#manifest.done[String(result.index)] = result;
    return this.save();
  }

  /** The manifest at `path`, or undefined when there is none or it cannot be read. */
  static async load(path: string): Promise<Manifest | undefined> {
    try {
      const m = JSON.parse(await readFile(path, "utf8")) as Manifest;
      return m.version === 1 && Array.isArray(m.chunks) ? m : undefined;
    } catch {
      return undefined;
    }
  }
}

async function fileKey(path: string): Promise<string> {
  let s;
  try {
    s = await stat(path);
  } catch (err) {
    throw new EncoderError("IO_ERROR", `Could not open ${path}: ${(err as Error).message}`, { cause: err });
  }
  const handle = await open(path, "r");
  try {
    const sample = new Uint8Array(Math.min(s.size, 1 << 16));
    await handle.read(sample, 0, sample.length, 0);
    const head = createHash("sha256").update(sample).digest("hex");
    return hashJson({ path: resolve(path), size: s.size, mtime: s.mtimeMs, head });
  } finally {
    await handle.close();
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

function inside(dir: string, path: string): boolean {
  const r = relative(resolve(dir), resolve(path));
  return r !== "" && !r.startsWith("..") && !isAbsolute(r);
}

/**
 * Makes (or, with `resume`, reopens) the work directory of `input` encoded with `config`: the input
 * is spilled to `input.y4m` there when it cannot seek, indexed once (frame offsets and scene scores),
 * planned, and the manifest written. Resuming keeps the finished chunks whose files still exist.
 */
export async function prepareWork(
  input: ChunkedInput,
  config: ChunkedConfig,
  options: PrepareOptions,
): Promise<Work> {
  const root = resolve(options.workDir);
  await mkdir(root, { recursive: true });
  let inputPath: string;
  let inputKey: string;
  let spilled: string | undefined;
  if (typeof input === "string") {
    inputPath = resolve(input);
    inputKey = await fileKey(inputPath);
  } else {
    // A stream or generator: write it to disk once, hashing its bytes for the key.
    spilled = join(root, `spill-${process.pid}-${Math.random().toString(36).slice(2)}.y4m`);
    let frames: AsyncIterable<Frame>;
    let info: VideoInfo & { colorspace?: string };
    let close: (() => Promise<void>) | undefined;
    if (input instanceof ReadableStream) {
      const { Y4mReader } = await import("../io/y4m.ts");
      const reader = await Y4mReader.open(input);
      info = reader.info;
      frames = reader.frames();
      close = () => reader.close();
    } else {
      info = input.info;
      frames = input.frames();
    }
    try {
      inputKey = (await spillY4m(frames, info, spilled, { maxFrames: options.maxFrames })).sha256;
    } finally {
      await close?.();
    }
    inputPath = "";
  }
  const info = await readY4mFileInfo(spilled ?? inputPath);
  const hash = settingsHash(config, info);
  const key = hashJson({
    input: inputKey,
    settings: hash,
    plan: options.plan ?? {},
    maxFrames: options.maxFrames,
  });
  const dir = join(root, key.slice(0, 16));
  await mkdir(dir, { recursive: true });
  if (spilled) {
    inputPath = join(dir, "input.y4m");
    if (await exists(inputPath)) await rm(spilled, { force: true });
    else await rename(spilled, inputPath);
  } else if (options.shareInput && !inside(root, inputPath)) {
    const copy = join(dir, "input.y4m");
    if (!(await exists(copy))) {
      const tmp = `${copy}.${process.pid}.tmp`;
      await copyFile(inputPath, tmp);
      await rename(tmp, copy);
    }
    inputPath = copy;
  }
  const manifestPath = join(dir, "manifest.json");
  if (options.resume) {
    const old = await ManifestStore.load(manifestPath);
    if (old && old.key === key) {
      for (const [index, r] of Object.entries(old.done)) {
        if (!(await exists(join(dir, r.file)))) delete old.done[index];
      }
      const store = new ManifestStore(manifestPath, old);
      await store.save();
      return { dir, manifest: old, inputPath, store, resumed: true };
    }
  }
  const index = await indexY4mFile(inputPath, {
    scores: (options.plan?.method ?? "scene") === "scene",
    maxFrames: options.maxFrames,
  });
  if (index.frameCount === 0) {
    throw new EncoderError("INVALID_INPUT", "The input has no frames: nothing to encode");
  }
  const fps = info.fps.num / info.fps.den;
  const userKeyint = config.keyint !== undefined && config.keyint > 0 ? config.keyint : undefined;
  const planOptions: PlanOptions = { ...options.plan };
  if (userKeyint && (planOptions.maxLength === undefined || planOptions.maxLength > userKeyint)) {
    planOptions.maxLength = userKeyint;
    planOptions.minLength = Math.min(planOptions.minLength ?? Math.max(8, Math.round(fps)), userKeyint);
  }
  const plan = planFromScores(index.scores ?? { frameCount: index.frameCount }, { ...planOptions, fps });
  const manifest: Manifest = {
    version: 1,
    key,
    settingsHash: hash,
    codec: config.codec ?? "svt-av1",
    input: inside(dir, inputPath) ? relative(dir, inputPath) : inputPath,
    info: {
      width: info.width,
      height: info.height,
      fps: info.fps,
      bitDepth: info.bitDepth,
      chroma: info.chroma,
    },
    frameCount: plan.frameCount,
    chunks: plan.chunks.map((c) => ({ ...c, offset: index.offsets[c.start] })),
    sceneChanges: plan.sceneChanges,
    done: {},
  };
  const store = new ManifestStore(manifestPath, manifest);
  await store.save();
  return { dir, manifest, inputPath, store, resumed: false };
}
