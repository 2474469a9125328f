/**
 * Chunked parallel encoding: plan key-frame-aligned chunks, encode them on a pool of encoders, resume
 * after a crash, join them into one stream. Across machines, see `distributed.ts` (BullMQ + Redis),
 * which is not re-exported here so that only users of the queue load it.
 * @module
 */
export {
  type ChunkedConfig,
  chunkFileName,
  type ChunkResult,
  createChunkEncoder,
  encodeChunk,
  type EncodeChunkOptions,
  settingsHash,
} from "./encode_chunk.ts";
export { type JoinChunk, joinChunks, type JoinOptions, type JoinResult } from "./join.ts";
export {
  type ChunkedProgress,
  type ChunkedResult,
  encodeChunked,
  type EncodeChunkedOptions,
  encoderMemoryEstimate,
  joinWork,
} from "./local.ts";
export {
  type Chunk,
  type ChunkPlan,
  downscaleLuma,
  findSceneChanges,
  planChunks,
  planFromScores,
  type PlanOptions,
  sceneScore,
} from "./plan.ts";
export {
  type ChunkedInput,
  type FrameSource,
  type Manifest,
  ManifestStore,
  type PlannedChunk,
  type PrepareOptions,
  prepareWork,
  type Work,
} from "./work_dir.ts";
export { indexY4mFile, readY4mRange, spillY4m, type Y4mIndex } from "./y4m_file.ts";
