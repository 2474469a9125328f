/**
 * An HTTP encode service on `Deno.serve` or `Bun.serve` (whichever runtime runs it):
 *
 * - `POST /encode?codec=svt-av1&format=webm&preset=10&crf=35` with a Y4M body (streamed, any size) answers
 *   with the encoded stream as packets come out: WebM, Matroska, MP4 (fast start: sent at the end), fMP4,
 *   IVF or OBU. Query parameters are named like the CLI's flags (`codec format preset crf qp bitrate
 *   rate-control max-bitrate keyint low-delay threads param speed quantizer min-quantizer min-keyint tiles
 *   rdo-lookahead low-latency tune`); a bad one is a 400 with `{ error, code }`.
 * - At most `maxConcurrent` encodes at once (503 with `Retry-After` beyond), bodies up to `maxBodyBytes`
 *   (413), each encode at most `timeoutMs`, and at most `bodyIdleTimeoutMs` without body bytes while the
 *   encode waits for them (408 before the response starts; the response is cut after). A client that
 *   disconnects stops its encode: the encoder is closed and the input cancelled.
 * - The header and the first frame are read before answering: a malformed or truncated one is a 400
 *   (`INVALID_INPUT`). After that, a body that ends mid-frame (or a damaged `FRAME` marker) ends the
 *   input: the frames before it are encoded and the container finished, and the response ends normally.
 * - `GET /` is the browser player (`examples/browser/`), `GET /live?width=&height=&frames=&fps=&format=`
 *   a WebSocket that streams live WebM (or fMP4) of the test source, one binary message per chunk.
 * - `GET /stats` is `{ active, liveEncoders, warmEncoders, rss, heapUsed, external, threads }` as JSON
 *   (`warmEncoders`: spare encoders opened ahead of requests; `rss`, `heapUsed`, `external`: bytes, see
 *   `memoryFigures`; `threads`: the encoder threads' `encoderThreadStats()`).
 *
 * ```sh
 * PORT=8000 deno run -A examples/http_service.ts
 * bun examples/http_service.ts
 * curl --data-binary @in.y4m -o out.webm 'http://127.0.0.1:8000/encode?preset=10&crf=35'
 * ```
 * @module
 */
import { readFile } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { cpus } from "node:os";
import process from "node:process";
import type { Duplex } from "node:stream";
import { fileURLToPath } from "node:url";
import {
  COMMON_FLAGS,
  createEncoderFromSelection,
  encoderConfigFromFlags,
  type EncoderFlags,
  type EncoderSelection,
  RAV1E_FLAGS,
  SVT_AV1_FLAGS,
  SWITCH_FLAGS,
} from "../lib/cli_config.ts";
import {
  configureEncoderThreads,
  encoderThreadStats,
  warmEncoderThreads,
} from "../lib/encoder/thread_pool.ts";
import { parseFrameRate } from "../lib/io/testsrc.ts";
import {
  type ContainerFormat,
  type Encoder,
  EncoderError,
  fmp4StreamFormat,
  type Frame,
  openContainerWriter,
  parseContainerFormat,
  type StreamFormat,
  testSource,
  type VideoInfo,
  webmStreamFormat,
  Y4mReader,
} from "../mod.ts";

/** Options of {@linkcode startService}. */
export interface ServiceOptions {
  /** Port to listen on; 0 picks a free one. Default 8000. */
  port?: number;
  /** Address to listen on. Default "127.0.0.1". */
  hostname?: string;
  /** Encodes (POST /encode and /live sessions) running at once; more get 503. Default 4. */
  maxConcurrent?: number;
  /** Largest request body in bytes; larger gets 413 (or the response is cut). Default 1 GiB. */
  maxBodyBytes?: number;
  /** Longest encode in milliseconds. Default 10 minutes. */
  timeoutMs?: number;
  /**
   * Longest wait for the next bytes of a request body while the encode needs them, in milliseconds: an
   * upload that stalls gets 408 before the response starts, and its response is cut after. Default 30 s.
   * (A body that trickles without ever pausing that long is bounded by `timeoutMs`.)
   */
  bodyIdleTimeoutMs?: number;
  /** Seconds in the `Retry-After` of a 503. Default 1. */
  retryAfterSeconds?: number;
  /**
   * SVT-AV1 threads (`lp`) of each encode whose request gives no `threads`: default the cores shared out
   * among `maxConcurrent` encodes, at least 1. A service runs encodes side by side, so their parallelism
   * comes from each other; SVT-AV1's own default (every core for each encoder) sets up threads and
   * buffers for each core in every encode, which cost a quarter of each small encode's CPU time here
   * (bench/results.md, "HTTP service"). The thread count does not change SVT-AV1's output with CRF or a
   * constant QP; its VBR/CBR output differs from run to run with more than one thread anyway.
   */
  svtThreads?: number;
  /**
   * Encoders kept ready ahead of requests: after an encode starts, an encoder with the same settings and
   * input geometry is opened for the next request that asks for them, which then starts encoding at once
   * instead of waiting for the library's set-up (and for the other encoders' set-ups and tear-downs, which
   * SVT-AV1 must not overlap: docs/bun-crash.md). A spare unused for `warmIdleMs` is closed. Default 1;
   * 0 turns it off.
   */
  warmEncoders?: number;
  /** How long a spare encoder waits for a request with its settings before it is closed. Default 2000 ms. */
  warmIdleMs?: number;
}

/** A running service. */
export interface EncodeService {
  /** Base URL, such as `http://127.0.0.1:8000`. */
  readonly url: string;
  readonly port: number;
  /** Encodes running now. */
  readonly active: number;
  /** Encoders of running encodes, created and not yet closed (for leak checks). */
  readonly liveEncoders: number;
  /** Spare encoders opened ahead of requests (see `ServiceOptions.warmEncoders`). */
  readonly warmEncoders: number;
  /** Stops every encode and the server. */
  close(): Promise<void>;
}

/** An error answered as `{ error, code }` with an HTTP status. */
class HttpError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

const CONTENT_TYPES: Record<ContainerFormat, string> = {
  ivf: "video/x-ivf",
  obu: "video/av1",
  webm: "video/webm",
  mkv: "video/x-matroska",
  mp4: "video/mp4",
  fmp4: "video/mp4",
};

/** The reason a session stops when its encode finished. */
const DONE = Object.assign(new Error("end of stream"), { code: "DONE" });

const ENCODER_PARAMS = new Set<string>([...COMMON_FLAGS, ...SVT_AV1_FLAGS, ...RAV1E_FLAGS]);
const LIVE_PARAMS = new Set(["width", "height", "fps", "frames"]);

/**
 * The process's resident set and the JavaScript side of it, in bytes: `heapUsed` (the calling thread's
 * heap) and `external` (memory outside it held by JavaScript objects, request and response buffers among
 * them; the encoders' native memory is not counted there).
 */
function memoryFigures(): { rss: number; heapUsed: number; external: number } {
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, external: m.external };
}

function jsonResponse(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", "cache-control": "no-store", ...headers },
  });
}

function errorResponse(e: unknown, headers: Record<string, string> = {}): Response {
  if (e instanceof HttpError) return jsonResponse(e.status, { error: e.message, code: e.code }, headers);
  if (e instanceof EncoderError) {
    const status = e.code === "INVALID_CONFIG" || e.code === "UNKNOWN_PARAMETER" || e.code === "INVALID_INPUT"
        || e.code === "INVALID_FRAME"
      ? 400
      : 500;
    return jsonResponse(status, { error: e.message, code: e.code }, headers);
  }
  return jsonResponse(500, { error: (e as Error)?.message ?? String(e), code: "INTERNAL" }, headers);
}

/**
 * Reads the query's encoder flags (named like the CLI's) and output format; every other name is an error
 * unless listed in `extra`.
 */
export function parseEncodeQuery(
  query: URLSearchParams,
  extra: ReadonlySet<string> = new Set(),
): { selection: EncoderSelection; format: ContainerFormat; flags: EncoderFlags } {
  const flags: Record<string, string | boolean | string[]> = {};
  let format: ContainerFormat = "webm";
  for (const name of new Set(query.keys())) {
    const values = query.getAll(name);
    if (name === "format") {
      format = parseContainerFormat(values[values.length - 1]);
    } else if (name === "param") {
      flags.param = values;
    } else if ((SWITCH_FLAGS as readonly string[]).includes(name)) {
      const v = values[values.length - 1].toLowerCase();
      if (v === "" || v === "1" || v === "true") flags[name] = true;
      else if (v !== "0" && v !== "false") {
        throw new HttpError(
          400,
          "INVALID_CONFIG",
          `${name} is a switch: give 1, true or nothing, got "${v}"`,
        );
      }
    } else if (ENCODER_PARAMS.has(name)) {
      flags[name] = values[values.length - 1];
    } else if (!extra.has(name)) {
      throw new HttpError(
        400,
        "UNKNOWN_PARAMETER",
        `Unknown query parameter "${name}": use format or the CLI's encoder flags (${
          [...ENCODER_PARAMS].join(", ")
        })`,
      );
    }
  }
  const selection = encoderConfigFromFlags(flags as EncoderFlags);
  return { selection, format, flags: flags as EncoderFlags };
}

/**
 * Frames handed to an encoder before the first of them is accepted: each `encode()` resolves only when
 * the encoder thread has taken the frame, and waiting for that before sending the next frame cost a
 * thread round trip per frame (most of a small encode's time in Deno under load). Bounded in bytes too.
 */
function framesInFlight(frameBytes: number): number {
  return Math.max(1, Math.min(8, Math.floor((8 << 20) / frameBytes)));
}

/** Feeds every frame to the encoder, several in flight, then flushes it (unless the session stopped). */
async function feed(
  session: { readonly aborted: boolean },
  frames: AsyncIterable<{ data: Uint8Array }>,
  enc: Encoder,
): Promise<void> {
  const pending: Promise<void>[] = [];
  for await (const frame of frames) {
    if (session.aborted) break;
    const accepted = enc.encode(frame);
    // Awaited below in order; marked handled so that a failure of a later one is not reported twice.
    accepted.catch(() => {});
    pending.push(accepted);
    if (pending.length >= framesInFlight(frame.data.byteLength)) await pending.shift();
  }
  for (const accepted of pending) await accepted;
  if (!session.aborted) await enc.flush();
}

/** JSON with object keys sorted, so that equal settings give equal keys whatever the query's order. */
function stableJson(value: unknown): string {
  return JSON.stringify(value, (_key, v) =>
    v && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v);
}

/** A timer that does not keep the process alive. */
function unrefTimer(timer: ReturnType<typeof setTimeout>): void {
  const deno = (globalThis as { Deno?: { unrefTimer(id: number): void } }).Deno;
  if (deno && typeof timer === "number") deno.unrefTimer(timer);
  else (timer as { unref?: () => void }).unref?.();
}

/**
 * Encoders opened ahead of requests, each for one set of settings and input geometry (see
 * `ServiceOptions.warmEncoders`).
 */
interface Spare {
  key: string;
  encoder: Promise<Encoder>;
  timer: ReturnType<typeof setTimeout>;
}

class SpareEncoders {
  #spares: Spare[] = [];
  #closed = false;

  constructor(readonly max: number, readonly idleMs: number) {}

  get size(): number {
    return this.#spares.length;
  }

  /** The spare for these settings, if one is ready or on its way; it is the caller's from now on. */
  take(key: string): Promise<Encoder> | undefined {
    const i = this.#spares.findIndex((s) => s.key === key);
    if (i < 0) return undefined;
    const [spare] = this.#spares.splice(i, 1);
    clearTimeout(spare.timer);
    return spare.encoder;
  }

  /** Opens a spare for these settings unless one exists; the oldest spare makes room. */
  prepare(key: string, create: () => Promise<Encoder>): void {
    if (this.#closed || this.max <= 0 || this.#spares.some((s) => s.key === key)) return;
    while (this.#spares.length >= this.max) this.#drop(this.#spares[0]);
    const encoder = create();
    const spare: Spare = { key, encoder, timer: setTimeout(() => this.#drop(spare), this.idleMs) };
    unrefTimer(spare.timer);
    this.#spares.push(spare);
    // A spare that fails to open is forgotten; the request that would have taken it opens its own.
    encoder.catch(() => this.#forget(spare));
  }

  #forget(spare: Spare): void {
    const i = this.#spares.indexOf(spare);
    if (i >= 0) this.#spares.splice(i, 1);
    clearTimeout(spare.timer);
  }

  #drop(spare: Spare): Promise<void> {
    this.#forget(spare);
    return spare.encoder.then((e) => e.close(), () => {});
  }

  /** Closes every spare; none are opened after this. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#spares].map((s) => this.#drop(s)));
  }
}

/**
 * The request body as the encode reads it: it errors past `max` bytes (413), and `onIdle` is called when
 * a read waits longer than `idleMs` for the client (only while the encode asks for bytes: a client held
 * back by the service's own backpressure is not idle).
 */
function requestBody(
  body: ReadableStream<Uint8Array>,
  max: number,
  idleMs: number,
  onIdle: (e: HttpError) => void,
): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  let seen = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const idle = () => {
    timer = undefined;
    onIdle(
      new HttpError(
        408,
        "TIMEOUT",
        `No request body bytes came for ${idleMs} ms: send the body without pauses`,
      ),
    );
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      timer = setTimeout(idle, idleMs);
      // Nor does a read left waiting by a body that is never cancelled (a stopped session's).
      unrefTimer(timer);
      try {
        const next = await reader.read();
        if (next.done) return controller.close();
        seen += next.value.byteLength;
        if (seen > max) {
          controller.error(new HttpError(413, "TOO_LARGE", `The request body is larger than ${max} bytes`));
          void reader.cancel().catch(() => {});
          return;
        }
        controller.enqueue(next.value);
      } finally {
        clearTimeout(timer);
      }
    },
    // A read that a cancel leaves waiting must not keep its timer (and the process) alive.
    cancel: (reason) => {
      clearTimeout(timer);
      return reader.cancel(reason).catch(() => {});
    },
  }, { highWaterMark: 0 });
}

/**
 * The frames of a request body once its first frame was read: a body that then ends mid-frame or has a
 * damaged FRAME marker (an `INVALID_INPUT` from the reader) ends them there, so that the frames before it
 * are encoded and the container finished, as the CLI keeps them. Other errors (the client went away, the
 * body grew past its limit) go on to stop the encode.
 */
async function* bodyFrames(first: IteratorResult<Frame>, rest: AsyncIterator<Frame>): AsyncGenerator<Frame> {
  for (let next = first; !next.done;) {
    yield next.value;
    try {
      next = await rest.next();
    } catch (e) {
      if (e instanceof EncoderError && e.code === "INVALID_INPUT") return;
      throw e;
    }
  }
}

/** One running encode: everything it holds, released once by `stop()`. */
class Session {
  readonly abort = new AbortController();
  #cleanups: (() => unknown)[] = [];
  #done = false;
  #resolveDone!: () => void;
  readonly finished = new Promise<void>((r) => (this.#resolveDone = r));

  constructor(timeoutMs: number) {
    const timer = setTimeout(
      () => this.stop(new HttpError(408, "TIMEOUT", `The encode took longer than ${timeoutMs} ms`)),
      timeoutMs,
    );
    this.onStop(() => clearTimeout(timer));
  }

  get aborted(): boolean {
    return this.abort.signal.aborted;
  }

  /** Runs `f` when the session stops (latest first). */
  onStop(f: () => unknown) {
    if (this.#done) void Promise.resolve().then(f).catch(() => {});
    else this.#cleanups.push(f);
  }

  /** Resolves with `p`, or rejects with the reason the session stopped; a late result is released. */
  until<T>(p: Promise<T>, release: (value: T) => unknown): Promise<T> {
    if (this.aborted) {
      p.then(release, () => {});
      return Promise.reject(this.abort.signal.reason);
    }
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => {
        p.then(release, () => {});
        reject(this.abort.signal.reason);
      };
      this.abort.signal.addEventListener("abort", onAbort, { once: true });
      p.then((v) => {
        this.abort.signal.removeEventListener("abort", onAbort);
        if (this.aborted) {
          void release(v);
          return;
        }
        resolve(v);
      }, (e) => {
        this.abort.signal.removeEventListener("abort", onAbort);
        reject(e);
      });
    });
  }

  async stop(reason?: unknown) {
    if (this.#done) return this.finished;
    this.#done = true;
    if (!this.aborted) this.abort.abort(reason ?? new EncoderError("ABORTED", "The encode was stopped"));
    for (const f of this.#cleanups.reverse()) {
      try {
        await f();
      } catch { /* cleanup is best effort */ }
    }
    this.#resolveDone();
    return this.finished;
  }
}

/** A server-side WebSocket as both runtimes give it. */
interface LivePeer {
  send(bytes: Uint8Array): void;
  bufferedAmount(): number;
  close(code: number, reason: string): void;
  readonly isClosed: boolean;
}

type Handler = (
  req: Request,
  upgrade: (req: Request, onOpen: (peer: LivePeer) => LiveHooks) => Response,
  watchClient: WatchClient,
) =>
  | Response
  | Promise<Response>;

/**
 * Calls `onGone` once the request's connection has closed, where the runtime does not always say so
 * itself; returns what stops the watch. Bun 1.4 sometimes neither aborts `req.signal` nor cancels the
 * response body of a client that closed its connection while the response was streaming (docs/transport.md,
 * "Bun.serve and a client that goes away mid-response"), but `server.requestIP(req)` is `null` from then on:
 * Bun's watch polls it every {@linkcode CLIENT_POLL_MS}. Deno and Node deliver the close (the body is
 * cancelled, the Node response emits `close`): theirs does nothing.
 */
type WatchClient = (onGone: () => void) => () => void;

/** How often Bun's {@linkcode WatchClient} looks at a request's connection, in milliseconds. */
const CLIENT_POLL_MS = 250;

const noWatch: WatchClient = () => () => {};

interface LiveHooks {
  onClose(): void;
}

interface RunningServer {
  port: number;
  stop(): Promise<void>;
}

interface DenoServeApi {
  serve(
    options: { port: number; hostname: string; onListen?: () => void },
    handler: (req: Request) => Response | Promise<Response>,
  ): { addr: { port: number }; shutdown(): Promise<void> };
  upgradeWebSocket(req: Request): { socket: WebSocket; response: Response };
}

interface BunSocket {
  data: { onOpen: (peer: LivePeer) => LiveHooks; hooks?: LiveHooks; closed: boolean };
  send(data: Uint8Array): number;
  getBufferedAmount(): number;
  close(code?: number, reason?: string): void;
}

interface BunServeApi {
  serve(options: {
    port: number;
    hostname: string;
    idleTimeout?: number;
    maxRequestBodySize?: number;
    fetch(req: Request, server: {
      upgrade(req: Request, o: { data: unknown }): boolean;
      requestIP(req: Request): { address: string } | null;
    }):
      | Response
      | Promise<Response>
      | undefined
      | Promise<Response | undefined>;
    websocket: {
      open(ws: BunSocket): void;
      message(ws: BunSocket, message: unknown): void;
      close(ws: BunSocket): void;
    };
  }): { port: number; stop(closeActive?: boolean): Promise<void> | void };
}

function listen(
  options: { port: number; hostname: string; maxBodyBytes: number },
  handler: Handler,
): RunningServer | Promise<RunningServer> {
  const g = globalThis as unknown as { Deno?: DenoServeApi; Bun?: BunServeApi };
  if (g.Deno) {
    const deno = g.Deno;
    const server = deno.serve(
      { port: options.port, hostname: options.hostname, onListen() {} },
      (req) =>
        handler(req, (r, onOpen) => {
          const { socket, response } = deno.upgradeWebSocket(r);
          socket.binaryType = "arraybuffer";
          let closed = false;
          const peer: LivePeer = {
            send: (b) => socket.send(b as Uint8Array<ArrayBuffer>),
            bufferedAmount: () => socket.bufferedAmount,
            close: (code, reason) => socket.close(code, reason),
            get isClosed() {
              return closed || socket.readyState >= 2;
            },
          };
          let hooks: LiveHooks | undefined;
          socket.onopen = () => (hooks = onOpen(peer));
          socket.onclose = () => {
            closed = true;
            hooks?.onClose();
          };
          socket.onerror = () => {};
          return response;
        }, noWatch),
    );
    return { port: server.addr.port, stop: () => server.shutdown() };
  }
  if (g.Bun) {
    const server = g.Bun.serve({
      port: options.port,
      hostname: options.hostname,
      // Encodes stream for as long as they take; the service's own time limit applies instead.
      idleTimeout: 0,
      maxRequestBodySize: Math.min(options.maxBodyBytes * 2 + (1 << 20), 2 ** 52),
      fetch(req, srv) {
        let upgraded = false;
        const watchClient: WatchClient = (onGone) => {
          // No address to lose (not a TCP connection, or already closed): nothing to watch.
          if (srv.requestIP(req) === null) return () => {};
          const timer = setInterval(() => {
            if (srv.requestIP(req) !== null) return;
            clearInterval(timer);
            onGone();
          }, CLIENT_POLL_MS);
          unrefTimer(timer);
          return () => clearInterval(timer);
        };
        const response = handler(req, (r, onOpen) => {
          upgraded = srv.upgrade(r, { data: { onOpen, closed: false } });
          if (!upgraded) throw new HttpError(400, "BAD_UPGRADE", "Expected a WebSocket upgrade request");
          return new Response(null, { status: 101 });
        }, watchClient);
        if (response instanceof Response) return upgraded ? undefined : response;
        return response.then((r) => (upgraded ? undefined : r));
      },
      websocket: {
        open(ws) {
          const peer: LivePeer = {
            send: (b) => void ws.send(b),
            bufferedAmount: () => ws.getBufferedAmount(),
            close: (code, reason) => ws.close(code, reason),
            get isClosed() {
              return ws.data.closed;
            },
          };
          ws.data.hooks = ws.data.onOpen(peer);
        },
        message() {},
        close(ws) {
          ws.data.closed = true;
          ws.data.hooks?.onClose();
        },
      },
    });
    return { port: server.port, stop: async () => void (await server.stop(true)) };
  }
  return listenNode(options, handler);
}

/** The part of the `ws` package that the Node server uses for `/live` (Node has no WebSocket server). */
interface WsServer {
  handleUpgrade(
    req: IncomingMessage,
    socket: Duplex,
    head: Uint8Array,
    done: (ws: {
      send(data: Uint8Array): void;
      bufferedAmount: number;
      readyState: number;
      close(code?: number, reason?: string): void;
      terminate(): void;
      on(event: "close" | "error", fn: () => void): void;
    }) => void,
  ): void;
}

/**
 * A Node request's body as a byte stream, paused while the reader is behind. (Node 20's `Readable.toWeb`
 * throws an uncaught ERR_INVALID_STATE when a body is cancelled while bytes still arrive, which the
 * service does to every body it refuses.) A cancelled body's remaining bytes are read and dropped.
 */
function bodyStream(req: IncomingMessage): ReadableStream<Uint8Array> {
  let done = false;
  return new ReadableStream<Uint8Array>({
    start(controller) {
      req.on("data", (chunk: Uint8Array) => {
        if (done) return;
        controller.enqueue(new Uint8Array(chunk));
        if ((controller.desiredSize ?? 0) <= 0) req.pause();
      });
      req.once("end", () => {
        if (!done) controller.close();
        done = true;
      });
      req.once("close", () => {
        if (!done) controller.error(new Error("The client went away before the body ended"));
        done = true;
      });
    },
    pull: () => void req.resume(),
    cancel() {
      done = true;
      req.resume();
    },
  }, { highWaterMark: 1 << 20, size: (chunk) => chunk?.byteLength ?? 0 });
}

/** A fetch-style Request from a Node request; its body streams as it arrives. */
function toRequest(req: IncomingMessage, signal: AbortSignal): Request {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(", ") : value);
  }
  const body = req.method === "GET" || req.method === "HEAD" ? undefined : bodyStream(req);
  const init = { method: req.method, headers, body, duplex: "half", signal };
  return new Request(`http://${req.headers.host ?? "127.0.0.1"}${req.url ?? "/"}`, init as RequestInit);
}

/** Writes a Response to a Node response with backpressure; a client that goes away cancels its body. */
async function sendResponse(response: Response, res: ServerResponse): Promise<void> {
  res.writeHead(response.status, Object.fromEntries(response.headers));
  if (!response.body) return void res.end();
  const reader = response.body.getReader();
  const gone = new Promise<void>((resolve) => res.once("close", resolve));
  void gone.then(() => {
    if (!res.writableFinished) reader.cancel().catch(() => {});
  });
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      if (!res.write(value)) await Promise.race([new Promise((r) => res.once("drain", r)), gone]);
      if (res.destroyed) return;
    }
    res.end();
  } catch {
    res.destroy();
  }
}

/** Node: `node:http` for requests, the `ws` package for the `/live` WebSocket. */
async function listenNode(
  options: { port: number; hostname: string },
  handler: Handler,
): Promise<RunningServer> {
  const http = await import("node:http");
  // A variable specifier: Deno and Bun never resolve `ws`, which only Node's `/live` needs.
  const wsSpecifier = "ws";
  const { WebSocketServer } = await import(wsSpecifier) as { WebSocketServer: new(o: object) => WsServer };
  const wss = new WebSocketServer({ noServer: true });
  const server = http.createServer(async (req, res) => {
    const aborted = new AbortController();
    res.once("close", () => aborted.abort());
    const refuse = () => {
      throw new HttpError(400, "BAD_UPGRADE", "Expected a WebSocket upgrade request");
    };
    try {
      await sendResponse(await handler(toRequest(req, aborted.signal), refuse, noWatch), res);
    } catch {
      res.destroy();
    }
  });
  server.on("upgrade", async (req: IncomingMessage, socket: Duplex, head: Uint8Array) => {
    let upgraded = false;
    const upgrade = (_r: Request, onOpen: (peer: LivePeer) => LiveHooks) => {
      upgraded = true;
      wss.handleUpgrade(req, socket, head, (ws) => {
        let closed = false;
        const peer: LivePeer = {
          send: (b) => ws.send(b),
          bufferedAmount: () => ws.bufferedAmount,
          close: (code, reason) => ws.close(code, reason),
          get isClosed() {
            return closed || ws.readyState >= 2;
          },
        };
        const hooks = onOpen(peer);
        ws.on("error", () => {});
        ws.on("close", () => {
          closed = true;
          hooks.onClose();
        });
      });
      // Node's Response cannot carry 101; this one is never sent.
      return new Response(null, { status: 204 });
    };
    try {
      const response = await handler(toRequest(req, new AbortController().signal), upgrade, noWatch);
      if (upgraded) return;
      const text = await response.text();
      socket.end(
        `HTTP/1.1 ${response.status} ${http.STATUS_CODES[response.status] ?? ""}\r\n`
          + `content-type: ${response.headers.get("content-type") ?? "text/plain"}\r\n`
          + `content-length: ${Buffer.byteLength(text)}\r\nconnection: close\r\n\r\n${text}`,
      );
    } catch {
      socket.destroy();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.hostname, () => resolve());
  });
  // Encodes stream for as long as they take; the service's own time limit applies instead.
  server.requestTimeout = 0;
  return {
    port: (server.address() as { port: number }).port,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

const pageFiles: Record<string, [file: string, type: string]> = {
  "/": ["browser/index.html", "text/html; charset=utf-8"],
  "/index.html": ["browser/index.html", "text/html; charset=utf-8"],
  "/player.js": ["browser/player.js", "text/javascript; charset=utf-8"],
};

/**
 * Starts the service. Close it with `close()`, which stops every encode.
 *
 * @example
 * ```ts
 * import { startService } from "./http_service.ts";
 * import { testSourceY4m } from "../mod.ts";
 * const service = await startService({ port: 0 });
 * const response = await fetch(`${service.url}/encode?format=ivf&preset=12`, {
 *   method: "POST",
 *   body: await new Response(testSourceY4m({ width: 160, height: 120, frames: 5 })).arrayBuffer(),
 * });
 * console.log(response.status, (await response.arrayBuffer()).byteLength);
 * await service.close();
 * ```
 */
export async function startService(options: ServiceOptions = {}): Promise<EncodeService> {
  const maxConcurrent = options.maxConcurrent ?? 4;
  const maxBodyBytes = options.maxBodyBytes ?? 1 << 30;
  const timeoutMs = options.timeoutMs ?? 10 * 60_000;
  const bodyIdleTimeoutMs = options.bodyIdleTimeoutMs ?? 30_000;
  const retryAfter = String(options.retryAfterSeconds ?? 1);
  const hostname = options.hostname ?? "127.0.0.1";
  const svtThreads = options.svtThreads ?? Math.max(1, Math.floor(cpus().length / maxConcurrent));
  const sessions = new Set<Session>();
  const spares = new SpareEncoders(options.warmEncoders ?? 1, options.warmIdleMs ?? 2000);
  let liveEncoders = 0;
  let closing = false;

  const busy = () =>
    new HttpError(503, "BUSY", `${maxConcurrent} encodes are running: try again in ${retryAfter} s`);

  const startSession = () => {
    const session = new Session(timeoutMs);
    sessions.add(session);
    session.onStop(() => sessions.delete(session));
    return session;
  };

  /** Opens the session's encoder: a spare one if `warm` and one is ready, and then the next spare. */
  const openEncoder = async (
    session: Session,
    selection: EncoderSelection,
    info: VideoInfo,
    warm = false,
  ) => {
    if (selection.codec === "svt-av1" && selection.config.threads === undefined) {
      selection = { ...selection, config: { ...selection.config, threads: svtThreads } };
    }
    const create = () => createEncoderFromSelection(selection, info);
    const key = stableJson([selection, info]);
    let opening = (warm && spares.take(key)) || create();
    if (warm) {
      // A spare that failed to open (it opened fine for the request before) gets one more try.
      opening = opening.catch(create);
      spares.prepare(key, create);
    }
    const enc = await session.until(opening, (e) => e.close());
    liveEncoders++;
    session.onStop(async () => {
      await enc.close();
      liveEncoders--;
    });
    return enc;
  };

  async function encodeRequest(req: Request, url: URL, watchClient: WatchClient): Promise<Response> {
    if (req.method !== "POST") {
      return errorResponse(new HttpError(405, "METHOD_NOT_ALLOWED", "POST a Y4M body to /encode"), {
        allow: "POST",
      });
    }
    const { selection, format } = parseEncodeQuery(url.searchParams);
    const length = req.headers.get("content-length");
    if (length !== null && Number(length) > maxBodyBytes) {
      throw new HttpError(413, "TOO_LARGE", `The request body is larger than ${maxBodyBytes} bytes`);
    }
    if (!req.body) throw new HttpError(400, "INVALID_INPUT", "POST a Y4M stream as the request body");
    if (sessions.size >= maxConcurrent) throw busy();
    const session = startSession();
    // A client that goes away stops the encode: the response body is cancelled (both runtimes), and Bun
    // also aborts the request's signal (Deno aborts it on every finished response, so it is not used there).
    // Bun sometimes does neither: its watch on the connection stops the encode then.
    if (!("Deno" in globalThis)) {
      req.signal?.addEventListener("abort", () => void session.stop(), { once: true });
    }
    session.onStop(watchClient(() => void session.stop(new EncoderError("ABORTED", "The client went away"))));
    try {
      const body = requestBody(req.body, maxBodyBytes, bodyIdleTimeoutMs, (e) => void session.stop(e));
      const reader = await session.until(Y4mReader.open(body), (r) => r.cancel());
      session.onStop(() => reader.cancel(session.abort.signal.reason));
      // The first frame is read before answering, so that a body whose first FRAME marker is damaged or
      // whose first frame is cut short still gets its 400, like a bad header.
      const rest = reader.frames();
      const first = await session.until(rest.next(), () => {});
      const enc = await openEncoder(session, selection, reader.info, true);
      return new Response(encodeBody(session, bodyFrames(first, rest), enc, format), {
        headers: {
          "content-type": CONTENT_TYPES[format],
          "cache-control": "no-store",
          "x-encoder": `${enc.codec}`,
        },
      });
    } catch (e) {
      const reason = session.aborted ? session.abort.signal.reason : e;
      await session.stop(e);
      throw reason;
    }
  }

  /** The response body: the container's bytes as packets come out; an error or a stop cuts it. */
  function encodeBody(session: Session, frames: AsyncIterable<Frame>, enc: Encoder, format: ContainerFormat) {
    const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>(
      undefined,
      { highWaterMark: 1 },
      { highWaterMark: 1 },
    );
    const writer = openContainerWriter(format, writable, enc.info, {
      sequenceHeader: enc.sequenceHeader(),
      live: true,
    });
    const pump = feed(session, frames, enc);
    pump.catch((e) => session.stop(e));
    void (async () => {
      try {
        for await (const packet of enc.packets()) await writer.writePacket(packet);
        await pump;
        if (session.aborted) return;
        await writer.close();
        await session.stop(DONE);
      } catch (e) {
        await session.stop(e);
      }
    })();
    // Passed through a stream of our own, to see the client cancel it even while no packet is written,
    // and to cut it when the encode stops (the container writer holds the writable side's lock).
    const out = readable.getReader();
    return new ReadableStream<Uint8Array>({
      start(controller) {
        session.onStop(() => {
          const reason = session.abort.signal.reason;
          if ((reason as { code?: string })?.code === "DONE") return;
          try {
            controller.error(reason);
          } catch { /* already closed */ }
          void out.cancel(reason).catch(() => {});
        });
      },
      async pull(controller) {
        try {
          const next = await out.read();
          if (next.done) controller.close();
          else controller.enqueue(next.value);
        } catch (e) {
          controller.error(e);
        }
      },
      cancel: (reason) => void session.stop(reason ?? new EncoderError("ABORTED", "The client went away")),
    }, { highWaterMark: 0 });
  }

  /** `/live`: the test source encoded live, one WebSocket message per container chunk. */
  function liveRequest(req: Request, url: URL, upgrade: Parameters<Handler>[1]): Response {
    if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      throw new HttpError(426, "UPGRADE_REQUIRED", "/live is a WebSocket: connect with ws://");
    }
    const q = new URLSearchParams(url.searchParams);
    const int = (name: string, fallback: number, max: number) => {
      const v = q.get(name);
      q.delete(name);
      if (v === null) return fallback;
      if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > max) {
        throw new HttpError(400, "INVALID_CONFIG", `${name} must be an integer from 1 to ${max}, got "${v}"`);
      }
      return Number(v);
    };
    const width = int("width", 320, 1920);
    const height = int("height", 240, 1080);
    const frames = int("frames", 60, 100_000);
    const fpsText = q.get("fps");
    q.delete("fps");
    const fps = fpsText === null ? { num: 30, den: 1 } : parseFrameRate(fpsText);
    if (!q.has("format")) q.set("format", "webm");
    if (!q.has("preset") && (q.get("codec") ?? "svt-av1") === "svt-av1") q.set("preset", "12");
    if (!q.has("keyint")) q.set("keyint", "30");
    const { selection, format } = parseEncodeQuery(q, LIVE_PARAMS);
    if (format !== "webm" && format !== "fmp4" && format !== "mkv") {
      throw new HttpError(400, "INVALID_CONFIG", `/live streams webm, mkv or fmp4, got ${format}`);
    }
    if (sessions.size >= maxConcurrent) throw busy();
    const source = testSource({ width, height, frames, fps });
    const session = startSession();
    return upgrade(req, (peer) => {
      session.onStop(() => {
        if (!peer.isClosed) {
          const reason = session.abort.signal.reason as { message?: string; code?: string };
          const clean = reason?.code === "DONE";
          peer.close(
            clean ? 1000 : 1011,
            clean ? "end of stream" : (reason?.message ?? "stopped").slice(0, 120),
          );
        }
      });
      void runLive(session, peer, source, selection, format).then(
        () => session.stop(DONE),
        (e) => session.stop(e),
      );
      return { onClose: () => void session.stop() };
    });
  }

  async function runLive(
    session: Session,
    peer: LivePeer,
    source: ReturnType<typeof testSource>,
    selection: EncoderSelection,
    format: ContainerFormat,
  ) {
    const live = { ...selection, config: { ...selection.config, lowDelay: true } } as EncoderSelection;
    if (live.codec === "rav1e") {
      delete (live.config as { lowDelay?: boolean }).lowDelay;
      (live.config as { lowLatency?: boolean }).lowLatency = true;
    }
    const enc = await openEncoder(session, live, source.info);
    const streamFormat: StreamFormat = format === "fmp4"
      ? fmp4StreamFormat(source.info, { sequenceHeader: enc.sequenceHeader() })
      : webmStreamFormat(source.info, { sequenceHeader: enc.sequenceHeader(), matroska: format === "mkv" });
    const send = async (bytes: Uint8Array) => {
      if (bytes.length === 0) return;
      if (peer.isClosed || session.aborted) throw session.abort.signal.reason ?? new Error("closed");
      peer.send(bytes);
      // No drain event on a server WebSocket in both runtimes: wait while the socket holds over 1 MiB.
      for (let wait = 1; peer.bufferedAmount() > 1 << 20 && !session.aborted; wait = Math.min(wait * 2, 20)) {
        await new Promise((r) => setTimeout(r, wait));
      }
    };
    await send(await streamFormat.header());
    const pump = feed(session, source.frames(), enc);
    pump.catch((e) => session.stop(e));
    for await (const packet of enc.packets()) await send(await streamFormat.packet(packet));
    await pump;
    if (session.aborted) return;
    if (streamFormat.end) await send(await streamFormat.end());
    // Let the last bytes leave before the close frame.
    for (let i = 0; i < 200 && peer.bufferedAmount() > 0; i++) await new Promise((r) => setTimeout(r, 5));
  }

  const here = new URL(".", import.meta.url);
  const handler: Handler = async (req, upgrade, watchClient) => {
    const url = new URL(req.url);
    try {
      if (closing) throw new HttpError(503, "CLOSING", "The service is shutting down");
      if (url.pathname === "/encode") return await encodeRequest(req, url, watchClient);
      if (url.pathname === "/live") return liveRequest(req, url, upgrade);
      if (url.pathname === "/stats" && req.method === "GET") {
        return jsonResponse(200, {
          active: sessions.size,
          liveEncoders,
          warmEncoders: spares.size,
          ...memoryFigures(),
          threads: encoderThreadStats(),
        });
      }
      const page = pageFiles[url.pathname];
      if (page && req.method === "GET") {
        const bytes = await readFile(new URL(page[0], here));
        return new Response(bytes, { headers: { "content-type": page[1], "cache-control": "no-store" } });
      }
      throw new HttpError(404, "NOT_FOUND", `Nothing at ${url.pathname}: POST /encode, GET /, GET /live`);
    } catch (e) {
      const headers: Record<string, string> = e instanceof HttpError && e.status === 503
        ? { "retry-after": retryAfter }
        : {};
      // A body we will not read is cancelled, so that a client still sending it sees the answer.
      if (!req.bodyUsed) await req.body?.cancel().catch(() => {});
      return errorResponse(e, headers);
    }
  };

  const server = await listen({ port: options.port ?? 8000, hostname, maxBodyBytes }, handler);
  const url = `http://${hostname.includes(":") ? `[${hostname}]` : hostname}:${server.port}`;
  return {
    url,
    port: server.port,
    get active() {
      return sessions.size;
    },
    get liveEncoders() {
      return liveEncoders;
    },
    get warmEncoders() {
      return spares.size;
    },
    async close() {
      if (closing) return;
      closing = true;
      await Promise.all([
        spares.close(),
        ...[...sessions].map((s) => s.stop(new EncoderError("ABORTED", "The service is shutting down"))),
      ]);
      await server.stop();
    },
  };
}

// Node 20 has no import.meta.main: there the entry is the script named on the command line.
if (import.meta.main ?? process.argv[1] === fileURLToPath(import.meta.url)) {
  const port = Number(process.env.PORT ?? 8000);
  const maxConcurrent = process.env.MAX_CONCURRENT ? Number(process.env.MAX_CONCURRENT) : 4;
  const warmEncoders = process.env.WARM_ENCODERS ? Number(process.env.WARM_ENCODERS) : 1;
  // A thread for each encode the service admits and each spare encoder, kept between bursts (beyond the
  // pool's default of one per core, a thread idle for 10 s ends, and the next burst loads it again), and
  // ready before the first request: that then pays only for the library's own set-up.
  configureEncoderThreads({ threads: maxConcurrent + warmEncoders });
  await warmEncoderThreads();
  const service = await startService({ port, maxConcurrent, warmEncoders });
  console.log(`av1-stream encode service on ${service.url} (POST /encode, GET /, GET /live)`);
  // Close every encode, then let the process end by itself: exiting while encoder workers are still
  // being torn down has crashed SVT-AV1 in its exit handlers.
  const stop = () => {
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
    void service.close();
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}
