// Encoders whose native calls run on the caller's own thread (`host: "caller"`, Deno's nonblocking FFI
// calls): the same packets as on a pooled thread, no pooled thread taken, the frame given away detached,
// several side by side (their set-up and tear-down serialised by the pool's lock), errors and closing
// mid-stream handled, rav1e's calls made on that thread itself for the command line (ownEventLoop); in Bun
// and Node the option is refused with a clear error.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ownEventLoop, Rav1eEncoder } from "../lib/encoder/rav1e.ts";
import { SvtAv1Encoder } from "../lib/encoder/svt_av1.ts";
import { encoderThreadStats } from "../lib/encoder/thread_pool.ts";
import { EncoderError } from "../lib/errors.ts";
import { testSource } from "../lib/io/testsrc.ts";
import type { Packet } from "../lib/types.ts";
import { encodeAll, rejectsWith } from "./_helpers/encode.ts";

const deno = "Deno" in globalThis;
const onlyDeno = deno ? {} : { skip: 'host "caller" needs Deno\'s nonblocking FFI calls' };

type Kind = "svt-av1" | "rav1e";

function create(
  kind: Kind,
  host: "pool" | "caller",
  extra: Record<string, unknown> = {},
): Promise<SvtAv1Encoder | Rav1eEncoder> {
  const info = testSource({ width: 96, height: 64, frames: 1 }).info;
  return kind === "svt-av1"
    ? SvtAv1Encoder.create({ ...info, preset: 12, host, ...extra })
    : Rav1eEncoder.create({ ...info, speed: 10, lowLatency: true, host, ...extra });
}

async function encode(kind: Kind, host: "pool" | "caller", frames = 8, keys = new Set<number>()) {
  const enc = await create(kind, host);
  try {
    const src = testSource({ width: 96, height: 64, frames });
    return await encodeAll(enc, src.frames(), keys);
  } finally {
    await enc.close();
  }
}

function assertSame(a: Packet[], b: Packet[]) {
  assert.equal(a.length, b.length, "packet count");
  a.forEach((p, i) => {
    assert.ok(Buffer.from(p.data).equals(Buffer.from(b[i].data)), `packet ${i} differs`);
    assert.equal(p.keyFrame, b[i].keyFrame, `packet ${i} key frame`);
    assert.equal(p.timestamp, b[i].timestamp, `packet ${i} timestamp`);
  });
}

for (const kind of ["svt-av1", "rav1e"] as const) {
  test(
    `${kind} on the caller's thread gives the packets of a pooled thread and takes no thread`,
    onlyDeno,
    async () => {
      const pooled = await encode(kind, "pool", 10, new Set([5]));
      const before = encoderThreadStats();
      const mine = await encode(kind, "caller", 10, new Set([5]));
      const after = encoderThreadStats();
      assertSame(mine, pooled);
      assert.ok(mine[5]?.keyFrame || mine.some((p) => p.timestamp === 5 && p.keyFrame), "forced key frame");
      assert.equal(after.started, before.started, "no pooled thread started");
      assert.equal(after.busy, 0);
    },
  );

  test(
    `${kind} on the caller's thread detaches a frame it was given and reads a kept one in place`,
    onlyDeno,
    async () => {
      const enc = await create(kind, "caller");
      try {
        const size = enc.frameSize;
        const given = new Uint8Array(size).fill(100);
        await enc.encode({ data: given });
        assert.equal(given.byteLength, 0, "given away: detached, as a transfer leaves it");
        const kept = new Uint8Array(size).fill(120);
        await enc.encode({ data: kept }, { transfer: false });
        assert.equal(kept.byteLength, size, "kept by the caller");
        assert.equal(kept[0], 120);
        const view = new Uint8Array(size + 16).subarray(16);
        await enc.encode({ data: view });
        assert.equal(view.byteLength, size, "a view of a larger buffer is not the caller's to give");
        await enc.flush();
        let n = 0;
        for await (const _ of enc.packets()) n++;
        assert.equal(n, 3);
      } finally {
        await enc.close();
      }
    },
  );
}

test(
  "SVT-AV1 and rav1e encoders on the caller's thread side by side, created and closed at once, run clean",
  onlyDeno,
  async () => {
    const expected = await encode("svt-av1", "pool", 6);
    for (let round = 0; round < 2; round++) {
      const results = await Promise.all(
        [0, 1, 2, 3].map((i) => encode(i % 2 === 0 ? "svt-av1" : "rav1e", "caller", 6)),
      );
      assertSame(results[0], expected);
      assertSame(results[2], expected);
      assert.equal(results[1].length, 6);
    }
    assert.equal(encoderThreadStats().busy, 0);
  },
);

test(
  "an encoder on the caller's thread closed mid-stream, or with nothing sent, frees itself",
  onlyDeno,
  async () => {
    for (const kind of ["svt-av1", "rav1e"] as const) {
      const empty = await create(kind, "caller");
      await empty.close();
      const enc = await create(kind, "caller");
      const src = testSource({ width: 96, height: 64, frames: 4 });
      for await (const f of src.frames()) await enc.encode(f);
      await enc.close();
      await rejectsWith(enc.encode({ data: new Uint8Array(enc.frameSize) }), "CLOSED", /closed/);
    }
  },
);

test(
  "rav1e with its calls made on the caller's thread (ownEventLoop): the same packets, the loop turns during a flush, a close ends it",
  onlyDeno,
  async () => {
    // Without low latency the whole lookahead is encoded in the flush, one call after another.
    const info = testSource({ width: 96, height: 64, frames: 1 }).info;
    const make = (own: boolean) =>
      Rav1eEncoder.create({ ...info, speed: 10, host: "caller", ...(own ? { [ownEventLoop]: true } : {}) });
    const frames = () => testSource({ width: 96, height: 64, frames: 24 }).frames();
    const nonblocking = await make(false);
    const reference = await encodeAll(nonblocking, frames()).finally(() => nonblocking.close());
    const own = await make(true);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 0);
    try {
      let flushTicks = 0;
      const pump = (async () => {
        for await (const f of frames()) await own.encode(f);
        const at = ticks;
        await own.flush();
        flushTicks = ticks - at;
      })();
      const packets: Packet[] = [];
      for await (const p of own.packets()) packets.push(p);
      await pump;
      assertSame(packets, reference);
      assert.ok(flushTicks > 0, "a timer fired while the flush encoded the lookahead");
    } finally {
      clearInterval(timer);
      await own.close();
    }
    // A close during the flush: the encoder stops there instead of encoding the rest of the lookahead.
    const closing = await make(true);
    for await (const f of frames()) await closing.encode(f);
    const flushed = closing.flush().catch((e) => e);
    let seen = 0;
    for await (const _ of closing.packets()) {
      if (++seen === 2) break;
    }
    await closing.close();
    assert.equal(((await flushed) as EncoderError).code, "CLOSED");
  },
);

test(
  "settings the library rejects fail create() on the caller's thread as on a pooled one",
  onlyDeno,
  async () => {
    await rejectsWith(
      create("svt-av1", "caller", { params: { "no-such-key": 1 } }),
      "UNKNOWN_PARAMETER",
      /no-such-key/,
    );
    await rejectsWith(
      create("svt-av1", "caller", { params: { "tile-rows": 99 } }),
      "INVALID_CONFIG",
      /tile-rows/,
    );
    // The encoder after a failed one works.
    assert.equal((await encode("svt-av1", "caller", 3)).length, 3);
  },
);

test('host is checked: "caller" outside Deno and unknown values are INVALID_CONFIG errors', async () => {
  await assert.rejects(
    create("svt-av1", "bogus" as "pool"),
    (e: unknown) =>
      e instanceof EncoderError && e.code === "INVALID_CONFIG" && /host must be/.test(e.message),
  );
  if (!deno) {
    for (const kind of ["svt-av1", "rav1e"] as const) {
      await rejectsWith(create(kind, "caller"), "INVALID_CONFIG", /needs Deno's nonblocking FFI calls/);
    }
  }
});
