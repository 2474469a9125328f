/**
 * The peer that bench/http_load.ts measures the HTTP encode service against: the same routes and query
 * parameters as examples/http_service.ts (`POST /encode?preset=&crf=&format=…` with a Y4M body, streamed
 * back; `GET /stats`), but each request spawns `ffmpeg -f yuv4mpegpipe -i - -c:v libsvtav1 … -f webm -`,
 * pipes the body into it and streams its stdout back. That is what a service without an in-process
 * encoder does; it runs on `Deno.serve` or `Bun.serve` and the runtime's own process API, like ours.
 *
 * The encoder settings are the service's: the query is read by the service's own parser
 * (`parseEncodeQuery`), so a bad or unknown parameter is the same 400, and the SVT-AV1 parameters our
 * encoder would pass to `svt_av1_enc_parse_parameter` go to ffmpeg's `-svtav1-params` (after ffmpeg's
 * own, so they win), with the service's default number of SVT-AV1 threads per encode. With that, ffmpeg's libsvtav1 wrapper (which otherwise picks 4 hierarchical levels
 * where SvtAv1EncApp and the library take 5) encodes the same packets as the service:
 * bench/http_load.ts checks it before it measures.
 *
 * ```sh
 * PORT=8001 MAX_CONCURRENT=8 bun bench/ffmpeg_service.ts
 * deno run -A bench/ffmpeg_service.ts
 * ```
 * @module
 */
import { cpus } from "node:os";
import process from "node:process";
import { parseEncodeQuery } from "../examples/http_service.ts";
import { locateSvtAv1 } from "../ffi/load.ts";
import { svtAv1Params } from "../lib/encoder/svt_av1.ts";
import type { ContainerFormat } from "../mod.ts";

const FFMPEG = process.env.FFMPEG ?? "ffmpeg";

/** ffmpeg's muxer and flags for each of the service's formats (MP4 needs a seekable file: fragmented). */
const MUXERS: Record<ContainerFormat, { type: string; args: string[] }> = {
  webm: { type: "video/webm", args: ["-f", "webm"] },
  mkv: { type: "video/x-matroska", args: ["-f", "matroska"] },
  ivf: { type: "video/x-ivf", args: ["-f", "ivf"] },
  obu: { type: "video/av1", args: ["-f", "obu"] },
  mp4: { type: "video/mp4", args: ["-f", "mp4", "-movflags", "frag_keyframe+empty_moov"] },
  fmp4: { type: "video/mp4", args: ["-f", "mp4", "-movflags", "frag_keyframe+empty_moov+default_base_moof"] },
};

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", "cache-control": "no-store", ...headers },
  });
}

/** A spawned ffmpeg as both runtimes give it: stdin to write the body to, stdout to stream back. */
interface Child {
  stdin: WritableStream<Uint8Array>;
  stdout: ReadableStream<Uint8Array>;
  kill(): void;
  exited: Promise<number>;
}

interface DenoApi {
  Command: new(cmd: string, o: { args: string[]; stdin: "piped"; stdout: "piped"; stderr: "null" }) => {
    spawn(): {
      stdin: WritableStream<Uint8Array>;
      stdout: ReadableStream<Uint8Array>;
      kill(signal?: string): void;
      status: Promise<{ code: number }>;
    };
  };
  serve(
    o: { port: number; hostname: string; onListen?: () => void },
    h: (req: Request) => Response | Promise<Response>,
  ): { addr: { port: number }; shutdown(): Promise<void> };
}

interface BunFileSink {
  write(chunk: Uint8Array): number | Promise<number>;
  flush(): number | Promise<number>;
  end(): number | Promise<number>;
}

interface BunApi {
  spawn(cmd: string[], o: { stdin: "pipe"; stdout: "pipe"; stderr: "ignore" }): {
    stdin: BunFileSink;
    stdout: ReadableStream<Uint8Array>;
    kill(): void;
    exited: Promise<number>;
  };
  serve(o: {
    port: number;
    hostname: string;
    idleTimeout?: number;
    fetch(req: Request): Response | Promise<Response>;
  }): { port: number; stop(closeActive?: boolean): void };
}

const g = globalThis as unknown as { Deno?: DenoApi; Bun?: BunApi };

/**
 * As root, SVT-AV1 makes its threads SCHED_FIFO 99, ahead of everything else on the machine, which our
 * service keeps it from doing (its encoders' threads run at SCHED_BATCH); a service run by an ordinary
 * user gets neither. So ffmpeg runs without CAP_SYS_NICE here, as bench/run.ts runs SvtAv1EncApp: then
 * SVT-AV1 cannot go real-time and its threads are ordinary ones.
 */
const asRoot = (process as { getuid?: () => number }).getuid?.() === 0;
const command = (args: string[]): [string, string[]] =>
  asRoot ? ["setpriv", ["--bounding-set=-sys_nice", FFMPEG, ...args]] : [FFMPEG, args];

function spawnFfmpeg(ffmpegArgs: string[]): Child {
  const [cmd, args] = command(ffmpegArgs);
  if (g.Deno) {
    const child = new g.Deno.Command(cmd, { args, stdin: "piped", stdout: "piped", stderr: "null" })
      .spawn();
    return {
      stdin: child.stdin,
      stdout: child.stdout,
      kill: () => {
        try {
          child.kill("SIGKILL");
        } catch { /* already gone */ }
      },
      exited: child.status.then((s) => s.code),
    };
  }
  const bun = g.Bun!;
  const child = bun.spawn([cmd, ...args], { stdin: "pipe", stdout: "pipe", stderr: "ignore" });
  const sink = child.stdin;
  return {
    stdin: new WritableStream<Uint8Array>({
      async write(chunk) {
        await sink.write(chunk);
        await sink.flush();
      },
      close: async () => void (await sink.end()),
      abort: async () => void (await sink.end()),
    }),
    stdout: child.stdout,
    kill: () => child.kill(),
    exited: child.exited,
  };
}

/** ffmpeg's arguments for a query: the service's settings, as our SVT-AV1 encoder would apply them. */
async function ffmpegArgs(
  query: URLSearchParams,
  svtThreads: number,
): Promise<{ args: string[]; type: string }> {
  const { selection, format } = parseEncodeQuery(query);
  if (selection.codec !== "svt-av1") {
    throw Object.assign(new Error("The ffmpeg peer encodes with libsvtav1 only"), { status: 400 });
  }
  const location = await locateSvtAv1({});
  // Width, height, depth and frame rate come from the Y4M header (ffmpeg reads it itself); these are
  // placeholders for the parameter list, whose size entries are dropped below.
  // The service's own default of SVT-AV1 threads per encode (ServiceOptions.svtThreads) applies too.
  const params = svtAv1Params(
    { width: 64, height: 64, threads: svtThreads, ...selection.config },
    location.layout.keyPictureNeedsFlag,
  )
    .filter(([k]) =>
      !["width", "height", "input-depth", "fps-num", "fps-denom", "preset", "crf"].includes(k)
    );
  const c = selection.config as { preset?: number; crf?: number };
  // SVT-AV1's defaults where ffmpeg 5.1's wrapper has its own: 5 hierarchical levels (ffmpeg: 4).
  const svt = [["hierarchical-levels", "5"], ...params].map(([k, v]) => `${k}=${v}`).join(":");
  const muxer = MUXERS[format];
  return {
    args: [
      "-hide_banner",
      "-loglevel",
      "error",
      "-f",
      "yuv4mpegpipe",
      "-i",
      "-",
      "-c:v",
      "libsvtav1",
      ...(c.preset === undefined ? [] : ["-preset", String(c.preset)]),
      ...(c.crf === undefined ? [] : ["-crf", String(c.crf)]),
      "-svtav1-params",
      svt,
      ...muxer.args,
      "-",
    ],
    type: muxer.type,
  };
}

/** Starts the peer; resolves with its port and a stop function. */
export async function startFfmpegService(
  options: { port?: number; hostname?: string; maxConcurrent?: number } = {},
): Promise<{ port: number; stop(): Promise<void> }> {
  const maxConcurrent = options.maxConcurrent ?? 4;
  const hostname = options.hostname ?? "127.0.0.1";
  const children = new Set<Child>();
  const svtThreads = Math.max(1, Math.floor(cpus().length / maxConcurrent));

  const encode = async (req: Request, url: URL): Promise<Response> => {
    if (req.method !== "POST" || !req.body) {
      return json(405, { error: "POST a Y4M body to /encode", code: "METHOD_NOT_ALLOWED" });
    }
    if (children.size >= maxConcurrent) {
      await req.body.cancel().catch(() => {});
      return json(503, { error: `${maxConcurrent} encodes are running`, code: "BUSY" }, {
        "retry-after": "1",
      });
    }
    let plan: { args: string[]; type: string };
    try {
      plan = await ffmpegArgs(url.searchParams, svtThreads);
    } catch (e) {
      await req.body.cancel().catch(() => {});
      const err = e as { message?: string; code?: string; status?: number };
      return json(err.status ?? 400, { error: err.message ?? String(e), code: err.code ?? "INVALID_CONFIG" });
    }
    const child = spawnFfmpeg(plan.args);
    children.add(child);
    void child.exited.finally(() => children.delete(child));
    // The body goes to ffmpeg as it arrives; a client that goes away kills it.
    req.body.pipeTo(child.stdin).catch(() => child.kill());
    const out = child.stdout.getReader();
    return new Response(
      new ReadableStream<Uint8Array>({
        async pull(controller) {
          const next = await out.read();
          if (!next.done) return controller.enqueue(next.value);
          const code = await child.exited;
          if (code === 0) controller.close();
          else controller.error(new Error(`ffmpeg exited with ${code}`));
        },
        cancel() {
          child.kill();
        },
      }, { highWaterMark: 0 }),
      {
        headers: { "content-type": plan.type, "cache-control": "no-store", "x-encoder": "ffmpeg-libsvtav1" },
      },
    );
  };

  const handler = async (req: Request): Promise<Response> => {
    const url = new URL(req.url);
    try {
      if (url.pathname === "/encode") return await encode(req, url);
      if (url.pathname === "/stats") {
        // The same fields as the service's; the ffmpeg processes are counted as its encoders.
        return json(200, {
          active: children.size,
          liveEncoders: children.size,
          rss: process.memoryUsage().rss,
        });
      }
      return json(404, { error: `Nothing at ${url.pathname}: POST /encode`, code: "NOT_FOUND" });
    } catch (e) {
      return json(500, { error: (e as Error)?.message ?? String(e), code: "INTERNAL" });
    }
  };

  const port = options.port ?? 8001;
  const stopChildren = () => {
    for (const c of children) c.kill();
  };
  if (g.Deno) {
    const server = g.Deno.serve({ port, hostname, onListen() {} }, handler);
    return { port: server.addr.port, stop: async () => (stopChildren(), await server.shutdown()) };
  }
  if (g.Bun) {
    const server = g.Bun.serve({ port, hostname, idleTimeout: 0, fetch: handler });
    return { port: server.port, stop: async () => (stopChildren(), server.stop(true)) };
  }
  throw new Error("bench/ffmpeg_service.ts runs on Deno or Bun");
}

if (import.meta.main) {
  const service = await startFfmpegService({
    port: Number(process.env.PORT ?? 8001),
    maxConcurrent: process.env.MAX_CONCURRENT ? Number(process.env.MAX_CONCURRENT) : undefined,
  });
  console.log(`ffmpeg peer on http://127.0.0.1:${service.port} (POST /encode)`);
  const stop = () => {
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
    void service.stop().then(() => process.exit(0));
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}
