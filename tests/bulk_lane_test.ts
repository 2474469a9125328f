// The shared ring that carries frames and packets between a host and a Deno worker_threads thread
// (ffi/runtime/bulk_lane.ts): payloads come back byte for byte and in order, space is reused once the
// receiver has copied a payload out, the ring grows for a payload that does not fit, and a buffer the
// caller transferred is detached as a transfer would leave it. Run here without threads: the sender's
// messages are handed to the receiver as a port would deliver them.
import assert from "node:assert/strict";
import { test } from "node:test";
import { BulkReceiver, BulkSender } from "../ffi/runtime/bulk_lane.ts";

function bytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed) & 255;
  return out;
}

test("payloads cross the ring byte for byte, each into a buffer of its own; small ones stay inline", () => {
  const out = new BulkSender();
  const inn = new BulkReceiver();
  const frame = bytes(300_000, 1);
  const small = bytes(100, 2);
  const sent = out.encode({ type: "frame", data: frame, meta: { small, n: 3 } }, []);
  assert.equal(JSON.stringify(sent.message).includes('"at"'), true, "the frame went by reference");
  const got = inn.decode(sent.message) as {
    type: string;
    data: Uint8Array;
    meta: { small: Uint8Array; n: number };
  };
  assert.equal(got.type, "frame");
  assert.deepEqual(got.data, frame);
  assert.equal(got.meta.small, small, "a payload under 512 bytes is left in the message");
  assert.equal(got.meta.n, 3);
  assert.equal(got.data.byteOffset, 0);
  assert.equal(got.data.buffer.byteLength, frame.byteLength, "a copy with an ArrayBuffer of its own");
  assert.ok(!(got.data.buffer instanceof SharedArrayBuffer));
});

test("space is reused after the receiver read it: 200 frames of 1 MiB run in one 8 MiB ring, wrapping", () => {
  const out = new BulkSender();
  const inn = new BulkReceiver();
  let rings = 0;
  for (let i = 0; i < 200; i++) {
    const frame = bytes(1 << 20, i);
    const { message } = out.encode({ packets: [{ data: frame, index: i }] }, []);
    if ((message as Record<string, unknown>).__av1StreamBulkRing) rings++;
    const got = inn.decode(message) as { packets: { data: Uint8Array; index: number }[] };
    assert.equal(got.packets[0].index, i);
    assert.equal(got.packets[0].data[12345], frame[12345]);
    assert.deepEqual(got.packets[0].data.subarray(0, 64), frame.subarray(0, 64));
  }
  assert.equal(rings, 1, "the first ring was enough");
});

test("a payload larger than the free space makes a larger ring, announced with that message", () => {
  const out = new BulkSender();
  const inn = new BulkReceiver();
  // Unread payloads hold the space: three of 3 MiB fill most of the first 8 MiB ring.
  const pending = [0, 1, 2].map((i) => out.encode({ data: bytes(3 << 20, i) }, []).message);
  const big = bytes(20 << 20, 9);
  const grown = out.encode({ data: big }, []).message as Record<string, unknown>;
  assert.ok(grown.__av1StreamBulkRing instanceof SharedArrayBuffer);
  assert.ok((grown.__av1StreamBulkRing as SharedArrayBuffer).byteLength >= 4 * big.byteLength);
  pending.forEach((m, i) =>
    assert.deepEqual((inn.decode(m) as { data: Uint8Array }).data, bytes(3 << 20, i))
  );
  assert.deepEqual((inn.decode(grown) as { data: Uint8Array }).data, big);
});

test("a transferred buffer is detached and left out of the transfer list; others are kept", () => {
  const out = new BulkSender();
  const frame = bytes(4096, 5);
  const port = new MessageChannel().port1;
  const { transfer } = out.encode({ data: frame }, [frame.buffer, port]);
  assert.equal(frame.byteLength, 0, "detached, as the caller's transfer would leave it");
  assert.deepEqual(transfer, [port]);
  port.close();
});

test("a ring the receiver has drained is written from its start again, so it touches only what is in flight", () => {
  const out = new BulkSender();
  const inn = new BulkReceiver();
  const at = (message: unknown) => {
    const m = message as Record<string, unknown>;
    const inner = (m.__av1StreamBulkRing ? m.message : m) as { data: { at: number } };
    return inner.data.at;
  };
  for (let i = 0; i < 50; i++) {
    const frame = bytes(6144 + i, i);
    const { message } = out.encode({ data: frame }, []);
    assert.equal(at(message), 0, `payload ${i} after a drained ring`);
    assert.deepEqual((inn.decode(message) as { data: Uint8Array }).data, frame);
  }
  // Not drained: the next payload goes after the one still unread, and both come back intact.
  const first = bytes(10_000, 1);
  const second = bytes(20_000, 2);
  const a = out.encode({ data: first }, []).message;
  const b = out.encode({ data: second }, []).message;
  assert.equal(at(a), 0);
  assert.equal(at(b), 10_000);
  assert.deepEqual((inn.decode(a) as { data: Uint8Array }).data, first);
  assert.deepEqual((inn.decode(b) as { data: Uint8Array }).data, second);
  assert.equal(at(out.encode({ data: first }, []).message), 0, "drained again");
});

test("an encoder thread reads frames in place: views into the ring, their space held until released", () => {
  const out = new BulkSender();
  const inn = new BulkReceiver();
  const at = (message: unknown) => {
    const m = message as Record<string, unknown>;
    return ((m.__av1StreamBulkRing ? m.message : m) as { data: { at: number } }).data.at;
  };
  const first = bytes(300_000, 1);
  const a = out.encode({ data: first }, []).message;
  const got = inn.decodeInPlace(a);
  const view = (got.data as { data: Uint8Array }).data;
  assert.ok(view.buffer instanceof SharedArrayBuffer, "a view into the ring, not a copy");
  assert.deepEqual(view, first);
  // Held: the next payload goes after it and does not overwrite it.
  const second = bytes(1000, 2);
  const b = out.encode({ data: second }, []).message;
  assert.equal(at(b), 300_000);
  assert.deepEqual(view, first, "unchanged while held");
  got.release();
  got.release();
  const c = inn.decodeInPlace(b);
  assert.deepEqual((c.data as { data: Uint8Array }).data, second);
  c.release();
  // Both released: the ring is written from its start again.
  assert.equal(at(out.encode({ data: bytes(2000, 3) }, []).message), 0);
});

test("releases that come out of order never give back less space than was released", () => {
  const out = new BulkSender();
  const inn = new BulkReceiver();
  const a = inn.decodeInPlace(out.encode({ data: bytes(4000, 1) }, []).message);
  const b = inn.decodeInPlace(out.encode({ data: bytes(4000, 2) }, []).message);
  b.release();
  a.release();
  const m = out.encode({ data: bytes(4000, 3) }, []).message as Record<string, unknown>;
  assert.equal(((m.__av1StreamBulkRing ? m.message : m) as { data: { at: number } }).data.at, 0);
});
