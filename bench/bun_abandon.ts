/**
 * (Bun only: type-checked with tsconfig.bun.json.) Reduction of a client that goes away while a
 * `Bun.serve` streaming response is being written (docs/transport.md, "Bun.serve and a client that goes
 * away mid-response"). No av1-stream code: a `Bun.serve` whose response is a ReadableStream of `--chunk`
 * byte chunks, and a raw `node:net` client that reads a little, stops reading (at once, for `--hold` ms,
 * or until the server has produced nothing for `--quiet` ms: the response is backpressured), then
 * destroys its socket. Each trial records whether the server saw `req.signal`'s `abort`, the stream's
 * `cancel()`, both or neither within `--wait` ms. Bounded: `--trials` (at most 200) trials, each at most a
 * few seconds.
 *
 *   bun bench/bun_abandon.ts --body pull --request post --trials 30
 *   bun bench/bun_abandon.ts --body direct --request get --trials 30
 *
 * `--body`:
 * - `pull`: `pull()` enqueues one chunk and returns (highWaterMark 0).
 * - `pull-async`: `pull()` awaits a 1 ms timer, then enqueues (a pull promise is pending most of the time).
 * - `start`: `start()` enqueues a chunk every 2 ms while `desiredSize > 0` (no pull).
 * - `direct`: `type: "direct"`, `pull()` writes a chunk and awaits `flush()` in a loop.
 * - `worker`: `pull()` awaits the next buffer that a Worker posts every `--delay` ms (as encoder threads
 *   post packets); `transform`: the same buffers through a TransformStream, as the HTTP service passes its
 *   container writer's output.
 * `--request`: `get`, or `post`: a chunked upload that the client keeps sending while it stops reading,
 * and the server reads one body chunk before each response chunk (as a transcoder does: input is taken
 * only as fast as output leaves), so the upload is held back too when the client goes; or `post-read`:
 * the same upload, read by the server as fast as it comes, apart from the response.
 * `--async-handler`: the handler answers after a 20 ms wait (a `Promise<Response>`).
 * `--poll`: the server also checks `req.signal.aborted` every 100 ms, to tell "the abort event is not
 * dispatched" from "the request is not seen as aborted".
 * @module
 */
import { connect, type Socket } from "node:net";

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}
const bodyKind = option("body", "pull");
const requestKind = option("request", "post");
const trials = Math.min(200, Number(option("trials", "20")));
const waitMs = Math.min(10_000, Number(option("wait", "3000")));
const poll = process.argv.includes("--poll");
const asyncHandler = process.argv.includes("--async-handler");
/** How long the server must have produced nothing before the client goes (0: go at once after reading). */
const quietMs = Math.min(5_000, Number(option("quiet", "500")));
/** With `--quiet 0`: how long the client holds the paused socket (still uploading) before it goes. */
const holdMs = Math.min(5_000, Number(option("hold", "0")));
/** Bytes the client reads before it stops reading. */
const readFirst = Math.min(1 << 24, Number(option("read", "200000")));
/** Response chunk size and, for `pull-async`, the wait before each chunk (an encoder's packet pace). */
const CHUNK = Math.min(1 << 20, Number(option("chunk", String(64 * 1024))));
const delayMs = Math.min(100, Number(option("delay", "1")));
const chunk = new Uint8Array(CHUNK).fill(0x61);

interface Trial {
  aborted: boolean;
  cancelled: boolean;
  polledAborted: boolean;
  lastProgress: number;
  produced: number;
  bodyRead: number;
}
const trialsById = new Map<string, Trial>();

function body(req: Request, t: Trial): ReadableStream<Uint8Array> {
  const upload = requestKind === "post" ? req.body?.getReader() : undefined;
  if (requestKind === "post-read") {
    // The upload read on its own as fast as it comes, apart from the response.
    void (async () => {
      for await (const part of req.body!) t.bodyRead += part.byteLength;
    })().catch(() => {});
  }
  const readUpload = async () => {
    if (!upload) return;
    const r = await upload.read();
    if (!r.done) t.bodyRead += r.value.byteLength;
  };
  const produced = () => {
    t.produced += CHUNK;
    t.lastProgress = Date.now();
  };
  const cancel = () => void (t.cancelled = true);
  if (bodyKind === "direct") {
    return new ReadableStream({
      type: "direct",
      async pull(controller: ReadableStreamDirectController) {
        while (!t.cancelled) {
          await readUpload();
          controller.write(chunk);
          produced();
          await controller.flush();
        }
      },
      cancel,
    } as unknown as UnderlyingDefaultSource<Uint8Array>);
  }
  if (bodyKind === "worker" || bodyKind === "transform") {
    // As an encoder thread posts packets: a Worker posts `chunk`-byte buffers every `delay` ms (at most
    // 8 ahead of the response), and pull() awaits the next one.
    const worker = new Worker(URL.createObjectURL(
      new Blob([
        `let credit = 8; onmessage = () => credit++;
         setInterval(() => { if (credit > 0) { credit--; const b = new Uint8Array(${CHUNK}).fill(97);
           postMessage(b, [b.buffer]); } }, ${delayMs});`,
      ], { type: "application/javascript" }),
    ));
    const queue: Uint8Array[] = [];
    let wake: (() => void) | undefined;
    // `transform`: the posted buffers go through a TransformStream (highWaterMark 1 on both sides) first.
    const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>(undefined, {
      highWaterMark: 1,
    }, {
      highWaterMark: 1,
    });
    const writer = writable.getWriter();
    const out = readable.getReader();
    worker.onmessage = (e: MessageEvent<Uint8Array>) => {
      if (bodyKind === "transform") return void writer.write(e.data).catch(() => {});
      queue.push(e.data);
      wake?.();
    };
    return new ReadableStream<Uint8Array>({
      async pull(controller) {
        let next: Uint8Array;
        if (bodyKind === "transform") {
          const r = await out.read();
          if (r.done) return controller.close();
          next = r.value;
        } else {
          while (!queue.length) await new Promise<void>((r) => (wake = r));
          next = queue.shift()!;
        }
        await readUpload();
        controller.enqueue(next);
        worker.postMessage(0);
        produced();
      },
      cancel() {
        worker.terminate();
        cancel();
      },
    }, { highWaterMark: 0 });
  }
  if (bodyKind === "start") {
    return new ReadableStream<Uint8Array>({
      start(controller) {
        const tick = async () => {
          if (t.cancelled) return;
          try {
            if ((controller.desiredSize ?? 0) > 0) {
              await readUpload();
              controller.enqueue(chunk.slice());
              produced();
            }
          } catch {
            return;
          }
          setTimeout(tick, 2);
        };
        void tick();
      },
      cancel,
    }, { highWaterMark: 2 });
  }
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (bodyKind === "pull-async") await new Promise((r) => setTimeout(r, delayMs));
      await readUpload();
      controller.enqueue(chunk.slice());
      produced();
    },
    cancel,
  }, { highWaterMark: 0 });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const server = Bun.serve({
  port: 0,
  hostname: "127.0.0.1",
  idleTimeout: 0,
  async fetch(req) {
    const id = new URL(req.url).searchParams.get("id")!;
    const t: Trial = {
      aborted: false,
      cancelled: false,
      polledAborted: false,
      lastProgress: Date.now(),
      produced: 0,
      bodyRead: 0,
    };
    trialsById.set(id, t);
    req.signal.addEventListener("abort", () => void (t.aborted = true), { once: true });
    if (poll) {
      const timer = setInterval(() => {
        if (req.signal.aborted) {
          t.polledAborted = true;
          clearInterval(timer);
        }
      }, 100);
      setTimeout(() => clearInterval(timer), 30_000);
    }
    // `--async-handler`: the Response comes from a promise that settles after a wait, as the HTTP service's
    // does (it reads the Y4M header and first frame and opens an encoder first).
    if (asyncHandler) await sleep(20);
    return new Response(body(req, t), { headers: { "content-type": "application/octet-stream" } });
  },
});

async function trial(id: string): Promise<Trial> {
  const socket: Socket = await new Promise((resolve, reject) => {
    const s = connect(server.port!, "127.0.0.1", () => resolve(s));
    s.once("error", reject);
  });
  socket.on("error", () => {});
  let received = 0;
  socket.on("data", (d: Buffer) => void (received += d.length));
  const upload = new Uint8Array(64 * 1024).fill(0x62);
  const uploadChunk = () =>
    socket.write(`${upload.length.toString(16)}\r\n`) && socket.write(upload) && socket.write("\r\n");
  if (requestKind !== "get") {
    socket.write(`POST /?id=${id} HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n`);
    for (let i = 0; i < 8; i++) uploadChunk();
  } else {
    socket.write(`GET /?id=${id} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
  }
  for (let i = 0; i < 200 && received < readFirst; i++) await sleep(10);
  socket.pause();
  // Keep uploading (bounded) and wait until the server has produced nothing for `quiet` ms: it is then
  // waiting on the client (its writes are backpressured, and so is its read of the upload).
  for (let i = 0; i < 200 && quietMs > 0; i++) {
    if (requestKind !== "get" && socket.writableLength < 1 << 20) uploadChunk();
    const t = trialsById.get(id);
    if (t && Date.now() - t.lastProgress > quietMs) break;
    await sleep(25);
  }
  for (const end = Date.now() + (quietMs > 0 ? 0 : holdMs); Date.now() < end;) {
    if (requestKind !== "get" && socket.writableLength < 1 << 20) uploadChunk();
    await sleep(10);
  }
  socket.destroy();
  const t = trialsById.get(id)!;
  const end = Date.now() + waitMs;
  while (Date.now() < end && !(t.aborted && t.cancelled)) await sleep(10);
  // Give a late poll its chance to run.
  if (poll) await sleep(150);
  return t;
}

let both = 0, abortOnly = 0, cancelOnly = 0, neither = 0, polled = 0;
for (let i = 0; i < trials; i++) {
  const t = await trial(String(i));
  if (t.aborted && t.cancelled) both++;
  else if (t.aborted) abortOnly++;
  else if (t.cancelled) cancelOnly++;
  else neither++;
  if (t.polledAborted) polled++;
  if (!t.aborted && !t.cancelled) {
    console.log(
      `trial ${i}: neither abort nor cancel in ${waitMs} ms (produced ${t.produced} B, read ${t.bodyRead} B of upload${
        poll ? `, req.signal.aborted polled: ${t.polledAborted}` : ""
      })`,
    );
  }
}
console.log(
  `bun ${Bun.version} body=${bodyKind} request=${requestKind} trials=${trials}: both ${both}, abort only ${abortOnly}, `
    + `cancel only ${cancelOnly}, neither ${neither}${poll ? `, aborted seen by polling ${polled}` : ""}; `
    + `pendingRequests ${server.pendingRequests}`,
);
await server.stop(true);
