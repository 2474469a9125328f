import assert from "node:assert/strict";
import { test } from "node:test";
import { encodeChunk } from "../lib/chunked/encode_chunk.ts";
import { joinChunks } from "../lib/chunked/join.ts";
import { indexY4mFile, readY4mFileInfo, readY4mRange } from "../lib/chunked/y4m_file.ts";
import { EncoderError } from "../lib/errors.ts";
import { isBrokenPipe } from "../lib/io/file_stream.ts";
import { writeHardCutY4m } from "./_helpers/chunked_media.ts";
import { tempPath } from "./_helpers/encode.ts";

/** Rejects if `p` has not settled within `ms` (a hang is a failure, not a timing assertion). */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}

test("encodeChunk aborted while its encoder is being created rejects ABORTED instead of hanging", async () => {
  const input = await writeHardCutY4m(tempPath("abort-create.y4m"), 16, 8);
  const info = await readY4mFileInfo(input);
  const index = await indexY4mFile(input);
  for (const codec of ["svt-av1", "rav1e"] as const) {
    const controller = new AbortController();
    const chunk = encodeChunk(readY4mRange(input, index.offsets[0], 8), {
      index: 0,
      start: 0,
      end: 8,
      info,
      config: codec === "rav1e" ? { codec, speed: 10 } : { preset: 12 },
      path: tempPath(`abort-create-${codec}.ivf`),
    }, { signal: controller.signal });
    // encodeChunk checked the signal and is now awaiting the encoder's creation.
    controller.abort();
    await assert.rejects(
      within(chunk, 30_000, `${codec} encodeChunk after an abort`),
      (e) => e instanceof EncoderError && e.code === "ABORTED",
    );
  }
});

test("joinChunks reports a failed write (a broken pipe), not the close that fails after it", async () => {
  const input = await writeHardCutY4m(tempPath("join-epipe.y4m"), 8, 4);
  const info = await readY4mFileInfo(input);
  const index = await indexY4mFile(input);
  const path = tempPath("join-epipe-chunk.ivf");
  await encodeChunk(readY4mRange(input, index.offsets[0], 8), {
    index: 0,
    start: 0,
    end: 8,
    info,
    config: { preset: 12 },
    path,
  });
  let writes = 0;
  const brokenPipe = new WritableStream<Uint8Array>({
    write() {
      if (++writes > 1) throw Object.assign(new Error("write EPIPE"), { code: "EPIPE" });
    },
  });
  await assert.rejects(joinChunks([{ path, start: 0, frames: 8 }], brokenPipe, info), (e) => {
    assert.ok(isBrokenPipe(e), `the write's EPIPE, got: ${(e as Error).message}`);
    return true;
  });
});
