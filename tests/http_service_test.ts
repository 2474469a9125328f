import assert from "node:assert/strict";
import { test } from "node:test";
import { probeBytes } from "../lib/container/probe.ts";
import { SvtAv1Encoder } from "../lib/encoder/svt_av1.ts";
import { readIvf } from "../lib/io/ivf.ts";
import { testSourceY4m } from "../lib/io/testsrc.ts";
import { Y4mReader } from "../lib/io/y4m.ts";
import { eventually, withService } from "./_helpers/http_service.ts";
import { collect } from "./_helpers/io_streams.ts";

const Y4M_160 = (await collect(testSourceY4m({ width: 160, height: 120, frames: 12 }))) as Uint8Array<
  ArrayBuffer
>;

/** A Y4M request body that sends `frames` frames (Infinity: endless) and then stalls or ends. */
function y4mBody(frames: number, then: "end" | "stall" = "end"): ReadableStream<Uint8Array> {
  const source = testSourceY4m({ width: 160, height: 120, frames: Number.isFinite(frames) ? frames : 1e9 });
  const reader = source.getReader();
  let sent = -1;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (sent >= frames) {
        if (then === "end") controller.close();
        else await new Promise(() => {}); // never more data
        return;
      }
      const next = await reader.read();
      if (next.done) return controller.close();
      controller.enqueue(next.value);
      sent++;
    },
    cancel: (reason) => reader.cancel(reason),
  }, { highWaterMark: 0 });
}

function post(url: string, body: BodyInit, signal?: AbortSignal): Promise<Response> {
  // Node 20's fetch goes on pulling a streamed body after its request is aborted (an endless one spun the
  // test's event loop): the abort stops the body too.
  if (signal && body instanceof ReadableStream) body = body.pipeThrough(new TransformStream(), { signal });
  return fetch(url, { method: "POST", body, signal, duplex: "half" } as RequestInit);
}

test("http service: POST /encode turns a Y4M body into WebM, fMP4 and IVF", async () => {
  await withService({}, async (s) => {
    const webm = await post(`${s.url}/encode?preset=13&crf=40`, Y4M_160);
    assert.equal(webm.status, 200);
    assert.equal(webm.headers.get("content-type"), "video/webm");
    const webmInfo = await probeBytes(new Uint8Array(await webm.arrayBuffer()));
    assert.equal(webmInfo.format, "webm");
    assert.equal(webmInfo.frames, 12);
    assert.deepEqual([webmInfo.width, webmInfo.height], [160, 120]);

    const fmp4 = await post(`${s.url}/encode?format=fmp4&preset=13&keyint=6`, Y4M_160);
    assert.equal(fmp4.headers.get("content-type"), "video/mp4");
    const fmp4Info = await probeBytes(new Uint8Array(await fmp4.arrayBuffer()));
    assert.equal(fmp4Info.frames, 12);
    assert.equal(fmp4Info.keyFrames, 2);

    const ivf = await post(`${s.url}/encode?codec=rav1e&speed=10&quantizer=150&format=ivf`, Y4M_160);
    assert.equal(ivf.status, 200);
    assert.equal(ivf.headers.get("x-encoder"), "rav1e");
    const parsed = await readIvf(new Uint8Array(await ivf.arrayBuffer()));
    assert.equal(parsed.frames.length, 12);
    // The last byte can reach the client just before the encoder's worker has finished closing.
    await eventually(() => s.liveEncoders === 0 && s.active === 0, "every encoder to be closed");
  });
});

/** The packets SVT-AV1 makes of a Y4M with the library's own defaults (every core), one frame at a time. */
async function libraryPackets(y4m: Uint8Array<ArrayBuffer>, config: { preset: number; crf: number }) {
  const reader = await Y4mReader.open(new Blob([y4m]).stream());
  await using enc = await SvtAv1Encoder.create({ ...reader.info, ...config });
  const pump = (async () => {
    for await (const frame of reader.frames()) await enc.encode(frame);
    await enc.flush();
  })();
  const packets: Uint8Array[] = [];
  for await (const p of enc.packets()) packets.push(p.data);
  await pump;
  return packets;
}

test("http service: spare encoders opened ahead of requests give the library's packets and close when unused", async () => {
  // The spare's idle limit is far above a request's time on a loaded machine, so that it is still there for
  // the next request; it is opened after the response, so the counts are awaited, not read at once.
  await withService({ warmIdleMs: 3000 }, async (s) => {
    const ivf = async (query: string) => {
      const r = await post(`${s.url}/encode?format=ivf&${query}`, Y4M_160);
      assert.equal(r.status, 200);
      return (await readIvf(new Uint8Array(await r.arrayBuffer()))).frames.map((f) => f.data);
    };
    const expected = await libraryPackets(Y4M_160, { preset: 13, crf: 40 });
    assert.equal(expected.length, 12);
    // The first request opens its own encoder and a spare for the next one with the same settings; the
    // service's one SVT-AV1 thread per encode and its frames sent ahead of their acceptance change nothing.
    assert.deepEqual(await ivf("preset=13&crf=40"), expected);
    await eventually(() => s.warmEncoders === 1, "a spare encoder");
    // The same settings in another order take the spare, and a new one is opened.
    assert.deepEqual(await ivf("crf=40&preset=13"), expected);
    await eventually(() => s.warmEncoders === 1, "a new spare after the first was taken");
    // Other settings: an encoder of their own, and the spare is now for them.
    assert.equal((await ivf("preset=12&crf=30")).length, 12);
    await eventually(() => s.warmEncoders === 1, "a spare for the other settings");
    // Unused, the spare is closed.
    await eventually(() => s.warmEncoders === 0 && s.liveEncoders === 0, "the spare to be closed");
  });
  await withService({ warmEncoders: 0 }, async (s) => {
    const r = await post(`${s.url}/encode?format=ivf&preset=13&crf=40`, Y4M_160);
    assert.equal((await readIvf(new Uint8Array(await r.arrayBuffer()))).frames.length, 12);
    assert.equal(s.warmEncoders, 0);
  });
});

test("http service: a streamed body of any length is encoded as it arrives", async () => {
  await withService({}, async (s) => {
    const r = await post(`${s.url}/encode?format=ivf&preset=13&low-delay=1`, y4mBody(90));
    assert.equal(r.status, 200);
    // The response streams: read it chunk by chunk while the server still reads the body.
    let chunks = 0;
    const bytes: Uint8Array[] = [];
    for await (const c of r.body!) {
      chunks++;
      bytes.push(c);
    }
    assert.ok(chunks > 1, `the response arrived in ${chunks} chunk(s)`);
    const all = new Uint8Array(bytes.reduce((n, c) => n + c.length, 0));
    let at = 0;
    for (const c of bytes) {
      all.set(c, at);
      at += c.length;
    }
    assert.equal((await readIvf(all)).frames.length, 90);
  });
});

test("http service: bad query parameters and bodies are a 400 with a JSON error and code", async () => {
  await withService({}, async (s) => {
    const cases: [string, string, RegExp][] = [
      ["codec=x264", "INVALID_CONFIG", /svt-av1 or rav1e/],
      ["crf=abc", "INVALID_CONFIG", /crf must be an integer/],
      ["speed=5", "INVALID_CONFIG", /not a svt-av1 option/],
      ["codec=rav1e&preset=5", "INVALID_CONFIG", /not a rav1e option/],
      ["format=mov", "INVALID_CONFIG", /Unknown format/],
      ["preset=99", "INVALID_CONFIG", /preset must be an integer from -2 to 13, got 99/],
      ["rate-control=abr", "INVALID_CONFIG", /vbr or cbr/],
      ["low-delay=maybe", "INVALID_CONFIG", /switch/],
      ["colour=blue", "UNKNOWN_PARAMETER", /Unknown query parameter "colour"/],
    ];
    for (const [query, code, message] of cases) {
      const r = await post(`${s.url}/encode?${query}`, Y4M_160);
      assert.equal(r.status, 400, query);
      assert.match(r.headers.get("content-type") ?? "", /application\/json/);
      const body = await r.json();
      assert.equal(body.code, code, query);
      assert.match(body.error, message, query);
    }
    const notY4m = await post(`${s.url}/encode`, new TextEncoder().encode("RIFF....WAVEfmt "));
    assert.equal(notY4m.status, 400);
    assert.equal((await notY4m.json()).code, "INVALID_INPUT");
    const get = await fetch(`${s.url}/encode`);
    assert.equal(get.status, 405);
    await get.body?.cancel();
    const missing = await fetch(`${s.url}/nothing`);
    assert.equal(missing.status, 404);
    assert.equal((await missing.json()).code, "NOT_FOUND");
    assert.equal(s.liveEncoders, 0);
  });
});

test("http service: past maxConcurrent a request gets 503 with Retry-After", async () => {
  await withService({ maxConcurrent: 1, retryAfterSeconds: 2 }, async (s) => {
    const abort = new AbortController();
    const first = await post(`${s.url}/encode?format=ivf&preset=13`, y4mBody(Infinity), abort.signal);
    assert.equal(first.status, 200);
    assert.equal(s.active, 1);
    const second = await post(`${s.url}/encode?preset=13`, Y4M_160);
    assert.equal(second.status, 503);
    assert.equal(second.headers.get("retry-after"), "2");
    assert.equal((await second.json()).code, "BUSY");
    abort.abort();
    await first.body?.cancel().catch(() => {});
    await eventually(() => s.active === 0 && s.liveEncoders === 0, "the first encode to stop");
    const third = await post(`${s.url}/encode?preset=13&format=ivf`, Y4M_160);
    assert.equal(third.status, 200);
    assert.equal((await readIvf(new Uint8Array(await third.arrayBuffer()))).frames.length, 12);
  });
});

test("http service: a client that disconnects mid-stream stops its encode and frees the encoder", async () => {
  await withService({}, async (s) => {
    const abort = new AbortController();
    const r = await post(
      `${s.url}/encode?format=webm&preset=13&low-delay=1`,
      y4mBody(Infinity),
      abort.signal,
    );
    assert.equal(r.status, 200);
    const reader = r.body!.getReader();
    let got = 0;
    while (got < 2000) {
      const next = await reader.read();
      if (next.done) break;
      got += next.value.length;
    }
    assert.ok(got >= 2000, "the encode was streaming");
    assert.equal(s.liveEncoders, 1);
    abort.abort();
    await reader.cancel().catch(() => {});
    await eventually(() => s.liveEncoders === 0 && s.active === 0, "the encoder to be closed");
  });
});

test("http service: body size limit is a 413, or cuts a streamed body that grows past it", async () => {
  await withService({ maxBodyBytes: 100_000 }, async (s) => {
    const declared = await post(`${s.url}/encode?preset=13`, Y4M_160); // 12 frames: ~346 KB
    assert.equal(declared.status, 413);
    assert.equal((await declared.json()).code, "TOO_LARGE");
    // Without a length the limit is found while streaming: the response is cut (or, while the client is
    // still sending, the connection is reset) and the encode freed.
    let complete = false;
    try {
      const streamed = await post(`${s.url}/encode?format=ivf&preset=13`, y4mBody(40));
      if (streamed.status === 200) {
        const bytes = new Uint8Array(await streamed.arrayBuffer());
        complete = (await readIvf(bytes)).frames.length === 40;
      } else {
        assert.equal(streamed.status, 413);
        await streamed.body?.cancel();
      }
    } catch { /* cut or reset: what we expect */ }
    assert.ok(!complete, "a body over the limit is not encoded to the end");
    await eventually(() => s.liveEncoders === 0 && s.active === 0, "the encode to be freed");
  });
});

test("http service: the time limit answers 408 before the response starts and frees the encode", async () => {
  await withService({ timeoutMs: 400 }, async (s) => {
    // A body that never finishes its header.
    const stalled = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new TextEncoder().encode("YUV4MPEG2 W160"));
      },
    });
    const r = await post(`${s.url}/encode?preset=13`, stalled);
    assert.equal(r.status, 408);
    assert.equal((await r.json()).code, "TIMEOUT");
    // After the response started, the limit stops the encode and cuts the response: the client sees the
    // connection reset or the body fail. (Deno keeps the connection of a request whose body is still
    // open, and Bun's client answers only once its upload ends, so the client gives up once the server is
    // done.)
    const abort = new AbortController();
    let ended = false;
    const attempt = (async () => {
      const cut = await post(`${s.url}/encode?format=ivf&preset=13`, y4mBody(3, "stall"), abort.signal);
      assert.equal(cut.status, 200);
      for await (const _ of cut.body!) { /* nothing comes after the limit */ }
      ended = true;
    })().catch(() => {});
    await eventually(() => s.active === 1, "the encode to start");
    await eventually(() => s.liveEncoders === 0 && s.active === 0, "the stalled encode to be freed");
    abort.abort();
    await attempt;
    assert.ok(!ended, "the cut response does not end as if complete");
  });
});

test("http service: GET / serves the player and /live streams WebM of the test source over a WebSocket", async () => {
  await withService({}, async (s) => {
    const page = await fetch(`${s.url}/`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /VideoDecoder/);
    const script = await fetch(`${s.url}/player.js`);
    assert.match(script.headers.get("content-type") ?? "", /javascript/);
    assert.match(await script.text(), /EncodedVideoChunk/);

    const ws = new WebSocket(`${s.url.replace("http", "ws")}/live?width=160&height=120&frames=20&preset=13`);
    ws.binaryType = "arraybuffer";
    const messages: Uint8Array[] = [];
    const code = await new Promise<number>((resolve, reject) => {
      ws.onmessage = (e) => messages.push(new Uint8Array(e.data as ArrayBuffer));
      ws.onclose = (e) => resolve(e.code);
      ws.onerror = () => reject(new Error("WebSocket error"));
    });
    assert.equal(code, 1000);
    const all = new Uint8Array(messages.reduce((n, m) => n + m.length, 0));
    let at = 0;
    for (const m of messages) {
      all.set(m, at);
      at += m.length;
    }
    const info = await probeBytes(all);
    assert.equal(info.format, "webm");
    assert.equal(info.frames, 20);
    assert.deepEqual([info.width, info.height], [160, 120]);
    await eventually(() => s.liveEncoders === 0, "the live encoder to close");

    const bad = await fetch(`${s.url}/live?width=160`);
    assert.equal(bad.status, 426);
    await bad.body?.cancel();
  });
});
