/**
 * A live stream to a TCP peer: the test source paced at its frame rate (like a camera), encoded with
 * SVT-AV1 in low-delay mode and sent as IVF with reconnection. A lost peer costs frames, not the stream:
 * the default `drop` policy discards packets while the peer is gone and asks the encoder for a key frame on
 * reconnect, so every connection plays from its first byte. Link events are printed as they happen.
 *
 * ```sh
 * ffmpeg -f ivf -listen 1 -i tcp://127.0.0.1:9000 -c copy -f ivf live.ivf &   # or: nc -lk 9000 > live.ivf
 * deno run -A examples/live_tcp.ts tcp://127.0.0.1:9000
 * bun examples/live_tcp.ts tcp://127.0.0.1:9000 --frames 300 --fps 30 --size 320x240 --policy block
 * ```
 *
 * Options: `--frames N` (default endless), `--fps N` (30), `--size WxH` (320x240), `--policy
 * drop|buffer|block` (drop), `--attempts N` (reconnection attempts per outage; default endless),
 * `--preset N` (12), `--crf N` (35), `--keyint N` (1 s of frames). Ctrl-C ends the stream cleanly (twice: at
 * once).
 *
 * Key frames after a reconnection: the sink asks the encoder for one at once. SVT-AV1 1.8 and later honour
 * that in low-delay mode; SVT-AV1 1.4 ignores it there, so the new connection starts at the next
 * scheduled key frame — keep `--keyint` short for live streams.
 * @module
 */
import process from "node:process";
import {
  createEncodeStream,
  type DisconnectPolicy,
  type Frame,
  paceFrames,
  tcpSink,
  testSource,
} from "../mod.ts";

function parseArgs(argv: string[]) {
  const flags: Record<string, string> = {};
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a.startsWith("--")) {
      const [k, v] = a.slice(2).split("=", 2);
      flags[k] = v ?? argv[++i] ?? "";
    } else positional.push(a);
  }
  const num = (k: string, d: number) => (flags[k] === undefined ? d : Number(flags[k]));
  const [width, height] = (flags.size ?? "320x240").split("x").map(Number);
  const policy = (flags.policy ?? "drop") as DisconnectPolicy;
  if (!["drop", "buffer", "block"].includes(policy)) {
    throw new Error(`--policy must be drop, buffer or block`);
  }
  return {
    target: positional[0] ?? "tcp://127.0.0.1:9000",
    frames: num("frames", Infinity),
    fps: num("fps", 30),
    width,
    height,
    policy,
    attempts: num("attempts", Infinity),
    preset: num("preset", 12),
    crf: num("crf", 35),
    keyint: flags.keyint === undefined ? undefined : Number(flags.keyint),
  };
}

const args = parseArgs(process.argv.slice(2));
const fps = { num: args.fps, den: 1 };
const source = testSource({ width: args.width, height: args.height, fps, frames: args.frames });
const stop = new AbortController();
let interrupted = 0;
process.on("SIGINT", () => {
  if (++interrupted > 1) process.exit(130);
  console.log("[live] stopping: ending the stream (Ctrl-C again to quit at once)");
  stop.abort();
});

const encode = createEncodeStream({
  ...source.info,
  preset: args.preset,
  crf: args.crf,
  lowDelay: true,
  keyint: args.keyint ?? Math.max(1, Math.round(args.fps)),
  logLevel: "error",
});
const sink = tcpSink(args.target, {
  info: source.info,
  onDisconnect: args.policy,
  maxAttempts: args.attempts,
  initialDelay: 250,
  maxDelay: 5000,
  onKeyFrameNeeded: () => encode.requestKeyFrame(),
});

const log = (line: string) => console.log(`[link] ${line}`);
sink.on("connect", (e) => log(`connected #${e.connection}${e.resent ? `, resent ${e.resent} packets` : ""}`));
sink.on("disconnect", (e) => log(`disconnected #${e.connection}: ${e.cause.message}`));
sink.on("reconnect", (e) => log(`reconnecting: attempt ${e.attempt} in ${e.delay} ms`));
sink.on("keyframe", (e) => log(`key frame requested (${e.reason})`));
// Drops come one packet at a time while the peer is away: report the first of each run.
let dropping = false;
sink.on("drop", (e) => {
  if (!dropping) log(`dropping packets (${e.reason}) until a key frame can go out`);
  dropping = true;
});
sink.on("connect", () => (dropping = false));
sink.on("end", () => log("end of stream confirmed by the peer"));
sink.on("error", (e) => log(`failed: ${e.error.message}`));

// The source at real time: frame n is not read before n / fps seconds.
const paced = paceFrames(source.frames(), fps, { signal: stop.signal });
const frames = new ReadableStream<Frame>({
  async pull(c) {
    const next = await paced.next();
    if (next.done) c.close();
    else c.enqueue(next.value);
  },
}, { highWaterMark: 0 });

const progress = setInterval(() => {
  const s = sink.stats;
  console.log(
    `[live] ${encode.framesIn} frames, ${s.packets} sent, ${s.dropped} dropped, ${s.bytes} bytes, link ${s.state}`,
  );
}, 1000);
try {
  console.log(`[live] ${args.width}x${args.height}@${args.fps} to ${sink.target}, policy ${args.policy}`);
  await frames.pipeThrough(encode).pipeTo(sink);
  const s = sink.stats;
  console.log(
    `[live] done: ${encode.framesIn} frames, ${s.packets} packets sent over ${s.connections} connection(s), ${s.dropped} dropped, ${s.resent} resent`,
  );
} catch (e) {
  console.error(`[live] ${(e as Error).message}`);
  process.exitCode = 1;
} finally {
  clearInterval(progress);
}
