import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import { EncoderError } from "../lib/errors.ts";
import {
  firstObuHasSizeField,
  ObuWriter,
  startsWithTemporalDelimiter,
  TEMPORAL_DELIMITER,
} from "../lib/io/obu.ts";
import { fileSink } from "../lib/io/sink.ts";
import { concat, memoryWritable, tempPath } from "./_helpers/io_streams.ts";

// A temporal delimiter, then a 3-byte padding OBU (type 15, has_size_field) and a 1-byte frame OBU (type 6).
const tu = (payload: number) =>
  new Uint8Array([0x12, 0x00, 0x7a, 0x03, payload, payload, payload, 0x32, 0x01, payload]);

test("ObuWriter writes packets back to back, unchanged", async () => {
  const out = memoryWritable();
  const writer = new ObuWriter(out.writable);
  const sent = [tu(1), tu(2), tu(3)];
  for (const data of sent) await writer.writePacket({ data });
  await writer.close();
  assert.equal(out.closed(), true);
  assert.deepEqual(out.bytes(), concat(...sent));
  assert.equal(writer.packetCount, 3);
  assert.equal(writer.byteLength, 30);
});

test("ObuWriter writes to a file sink", async () => {
  const path = tempPath("out.obu");
  const writer = new ObuWriter(await fileSink(path));
  await Promise.all([tu(4), tu(5)].map((data) => writer.writePacket({ data })));
  await writer.close();
  await writer.close();
  assert.deepEqual(new Uint8Array(await readFile(path)), concat(tu(4), tu(5)));
  await assert.rejects(
    writer.writePacket({ data: tu(6) }),
    (err: unknown) => err instanceof EncoderError && err.code === "CLOSED",
  );
});

test("ObuWriter inserts temporal delimiters only where missing when asked", async () => {
  const out = memoryWritable();
  const writer = new ObuWriter(out.writable, { insertTemporalDelimiters: true });
  const stripped = tu(7).subarray(2);
  await writer.writePacket({ data: stripped });
  await writer.writePacket({ data: tu(8) });
  await writer.close();
  assert.deepEqual(out.bytes(), concat(TEMPORAL_DELIMITER, stripped, tu(8)));
});

test("ObuWriter rejects packets whose OBUs have no size field", async () => {
  const writer = new ObuWriter(memoryWritable().writable);
  await assert.rejects(
    writer.writePacket({ data: new Uint8Array([0x10, 0x00]) }),
    (err: unknown) =>
      err instanceof EncoderError && err.code === "INVALID_INPUT" && /size fields/.test(err.message),
  );
  await writer.close();
});

test("startsWithTemporalDelimiter recognises the OBU type from the first header byte", () => {
  assert.equal(startsWithTemporalDelimiter(tu(1)), true);
  assert.equal(startsWithTemporalDelimiter(new Uint8Array([0x16, 0x00, 0x00])), true); // with extension byte
  assert.equal(startsWithTemporalDelimiter(new Uint8Array([0x0a, 0x0b])), false); // sequence header
  assert.equal(startsWithTemporalDelimiter(new Uint8Array([0x92, 0x00])), false); // forbidden bit set
  assert.equal(startsWithTemporalDelimiter(new Uint8Array(0)), false);
  assert.equal(firstObuHasSizeField(new Uint8Array([0x0a])), true);
  assert.equal(firstObuHasSizeField(new Uint8Array([0x08])), false);
});
