import assert from "node:assert/strict";
import { test } from "node:test";
import { stripTemporalDelimiters } from "../lib/av1/mod.ts";
import { splitTemporalUnits } from "../lib/av1/obu.ts";
import {
  CONTAINER_FORMATS,
  type ContainerFormat,
  formatFromPath,
  openContainerWriter,
  parseContainerFormat,
} from "../lib/container/open.ts";
import { EncoderError } from "../lib/errors.ts";
import { readIvf } from "../lib/io/ivf.ts";
import { clip, memorySink, readBack } from "./_helpers/container_media.ts";

test("formatFromPath maps .ivf .obu .webm .mkv .mp4 in any case, and nothing else", () => {
  assert.equal(formatFromPath("a.ivf"), "ivf");
  assert.equal(formatFromPath("dir.x/b.OBU"), "obu");
  assert.equal(formatFromPath("/tmp/c.WebM"), "webm");
  assert.equal(formatFromPath("d.mkv"), "mkv");
  assert.equal(formatFromPath("e.mp4"), "mp4");
  assert.equal(formatFromPath("seg.m4s"), "fmp4");
  assert.equal(formatFromPath("f.y4m"), undefined);
  assert.equal(formatFromPath("noext"), undefined);
  assert.equal(formatFromPath("-"), undefined);
});

test("parseContainerFormat accepts every format name and rejects others with the list", () => {
  for (const f of CONTAINER_FORMATS) assert.equal(parseContainerFormat(f.toUpperCase()), f);
  assert.throws(
    () => parseContainerFormat("avi"),
    (e) =>
      e instanceof EncoderError && e.code === "INVALID_CONFIG"
      && /ivf, obu, webm, mkv, mp4, fmp4/.test(e.message),
  );
});

test("openContainerWriter writes every format, and each reads back with every packet", async () => {
  const { packets, info } = await clip();
  for (const format of CONTAINER_FORMATS) {
    const sink = memorySink();
    const writer = openContainerWriter(format, sink, info);
    for (const p of packets) await writer.writePacket(p);
    await writer.close();
    assert.ok(sink.closed, `${format}: sink closed`);
    const bytes = sink.bytes();
    let datas: Uint8Array[];
    if (format === "ivf") datas = (await readIvf(bytes)).frames.map((f) => f.data);
    else if (format === "obu") datas = splitTemporalUnits(bytes);
    else datas = (await readBack(bytes)).packets.map((p) => p.data);
    const mp4 = format === "mp4" || format === "fmp4";
    assert.deepEqual(datas, packets.map((p) => mp4 ? stripTemporalDelimiters(p.data) : p.data), format);
  }
});

test("openContainerWriter rejects an unknown format", () => {
  assert.throws(
    () =>
      openContainerWriter("avi" as ContainerFormat, memorySink(), {
        width: 2,
        height: 2,
        fps: { num: 1, den: 1 },
      }),
    (e) => e instanceof EncoderError && e.code === "INVALID_CONFIG",
  );
});

test("openContainerWriter: WebM/MP4 writers refuse a bad frame rate up front", () => {
  for (const format of ["webm", "mp4"] as const) {
    assert.throws(
      () => openContainerWriter(format, memorySink(), { width: 16, height: 16, fps: { num: 0, den: 1 } }),
      (e) => e instanceof EncoderError && e.code === "INVALID_CONFIG",
    );
  }
});
