#!/usr/bin/env -S deno run -A
/**
 * av1-stream command line: encode Y4M or a synthetic test source to AV1 in IVF or OBU.
 *
 * ```sh
 * deno run -A cli.ts -i in.y4m -o out.ivf --preset 10 --crf 35
 * bun run cli.ts -i testsrc:1280x720@30:120 -o out.ivf
 * npm run encode -- -i - -o - < in.y4m > out.ivf
 * ```
 * @module
 */
import process from "node:process";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { encoderConfigFromFlags, type EncoderSelection } from "./lib/cli_config.ts";
import { fmp4StreamFormat, webmStreamFormat } from "./lib/container/live.ts";
import {
  type ContainerFormat,
  formatFromPath,
  openContainerWriter,
  parseContainerFormat,
} from "./lib/container/open.ts";
import { formatProbe, probeFile } from "./lib/container/probe.ts";
import type { ContainerWriter } from "./lib/container/writer.ts";
import { type Rav1eConfig, Rav1eEncoder } from "./lib/encoder/rav1e.ts";
import { type SvtAv1Config, SvtAv1Encoder } from "./lib/encoder/svt_av1.ts";
import { EncoderError } from "./lib/errors.ts";
import { fileReadable, fileSize, stdinReadable, stdoutWritable } from "./lib/io/file_stream.ts";
import { fileSink } from "./lib/io/sink.ts";
import { isTestSourceSpec, parseTestSourceSpec, testSource } from "./lib/io/testsrc.ts";
import { Y4mReader } from "./lib/io/y4m.ts";
import { createEncodeStream } from "./lib/stream/encode_stream.ts";
import { paceFrames } from "./lib/stream/pace.ts";
import type { DisconnectPolicy, PacketSink } from "./lib/stream/packet_sink.ts";
import { createSink } from "./lib/stream/sinks.ts";
import type { Encoder, Frame, Packet, VideoInfo } from "./lib/types.ts";

const USAGE = `Usage: av1-stream -i <input> -o <output> [options]
       av1-stream probe <file> [--json]

Input and output
  -i, --input <src>        file.y4m, - (stdin) or testsrc[:WxH[@fps][:frames]]
  -o, --output <dst>       file.ivf .obu .webm .mkv .mp4, - (stdout, IVF unless --format), or a live
                           peer: tcp://host:port, ws://..., wss://..., http(s)://... (one streaming POST),
                           rtmp://host/app/key (Enhanced RTMP), srt://host:port, whip+http(s)://...
      --format <f>         ivf, obu, webm, mkv, mp4 or fmp4 (default: from the output's extension; ivf
                           for peers, which take ivf, obu, webm, mkv or fmp4)
      --frames <n>         encode at most n frames
      --realtime           pace the input at its frame rate, as a live source would arrive
      --whip <url>         publish over WebRTC to a WHIP endpoint (the same as -o whip+<url>)
Live peers
      --on-disconnect <p>  block (default: nothing lost, the encoder waits), buffer, drop, or reinit
                           (a fresh encoder, so a new stream, for each connection)
      --max-buffer <bytes> bound of what buffer/drop keep while the peer is gone
      --reconnect-attempts <n>  attempts per outage before giving up (default 10)
      --reconnect-delay <ms>    first retry delay, doubling up to 10 s (default 250)
Chunked
      --chunked            cut at scene changes, encode chunks in parallel, join (key frame per chunk)
      --workers <n>        encoders at once with --chunked (default: cores, within the memory budget)
      --resume             keep the chunks an interrupted --chunked run finished
      --work-dir <dir>     chunk files and manifest (default: <output>.chunks)
Encoder
      --codec <name>       svt-av1 (default) or rav1e
      --bitrate <kbps>     target bitrate (SVT-AV1: VBR, or CBR with --rate-control cbr)
      --keyint <n>         maximum key frame interval in frames
      --threads <n>        encoder threads (SVT-AV1 lp, rav1e threads)
      --force-key-frames <list>  key frames at these frames/times: 30f,60f,2.5s
SVT-AV1
      --preset <n>         preset -2..13 (library default 10)
      --crf <n>            constant rate factor 1..63 (library default 35)
      --qp <n>             constant QP 1..63
      --rate-control <m>   vbr or cbr
      --max-bitrate <kbps> cap for CRF
      --low-delay          low-delay prediction (no reordering), for live use
      --param <key=value>  any other SvtAv1EncApp long option, or rav1e key (repeatable)
rav1e
      --speed <n>          0..10 (CLI default 6)
      --quantizer <n>      0..255
      --min-quantizer <n>  lowest quantizer with --bitrate
      --min-keyint <n>     minimum key frame interval
      --tiles <n>          number of tiles
      --rdo-lookahead <n>  frames of RDO lookahead (default from the speed, as the rav1e CLI)
      --low-latency        no frame reordering, for live use
      --tune <t>           psnr or psychovisual (library default psychovisual; rav1e CLI output matches with psnr)
Output
      --quiet              no progress
      --json               print a JSON summary on stdout (or stderr when writing to stdout)
      --verbose            show the encoder library's own log
  -h, --help               this text
`;

class UsageError extends Error {}

interface Options {
  input: string;
  output: string;
  frames?: number;
  quiet: boolean;
  json: boolean;
  verbose: boolean;
  forceKeyFrames: string[];
  codec: "svt-av1" | "rav1e";
  outputFormat: ContainerFormat;
  /** Set when the output is a live peer rather than a file. */
  live?: {
    onDisconnect: DisconnectPolicy;
    maxBufferBytes?: number;
    maxAttempts?: number;
    initialDelay?: number;
  };
  realtime: boolean;
  config: Omit<SvtAv1Config, "width" | "height"> | Omit<Rav1eConfig, "width" | "height">;
  chunked?: { workers?: number; resume: boolean; workDir?: string };
}

function intFlag(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^-?\d+$/.test(v)) throw new UsageError(`--${name} must be an integer, got ${JSON.stringify(v)}`);
  return Number(v);
}

export function parseCli(argv: string[]): Options | "help" {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: false,
      strict: true,
      options: {
        input: { type: "string", short: "i" },
        output: { type: "string", short: "o" },
        format: { type: "string" },
        frames: { type: "string" },
        codec: { type: "string" },
        preset: { type: "string" },
        crf: { type: "string" },
        qp: { type: "string" },
        bitrate: { type: "string" },
        "rate-control": { type: "string" },
        "max-bitrate": { type: "string" },
        keyint: { type: "string" },
        "low-delay": { type: "boolean" },
        threads: { type: "string" },
        "force-key-frames": { type: "string" },
        param: { type: "string", multiple: true },
        speed: { type: "string" },
        quantizer: { type: "string" },
        "min-quantizer": { type: "string" },
        "min-keyint": { type: "string" },
        tiles: { type: "string" },
        "rdo-lookahead": { type: "string" },
        "low-latency": { type: "boolean" },
        tune: { type: "string" },
        realtime: { type: "boolean" },
        whip: { type: "string" },
        "on-disconnect": { type: "string" },
        "max-buffer": { type: "string" },
        "reconnect-attempts": { type: "string" },
        "reconnect-delay": { type: "string" },
        quiet: { type: "boolean", short: "q" },
        json: { type: "boolean" },
        verbose: { type: "boolean" },
        help: { type: "boolean", short: "h" },
        chunked: { type: "boolean" },
        workers: { type: "string" },
        resume: { type: "boolean" },
        "work-dir": { type: "string" },
      },
    });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const v = parsed.values;
  if (v.help) return "help";
  if (!v.input) throw new UsageError("Missing -i/--input");
  if (v.whip !== undefined) {
    if (v.output !== undefined) throw new UsageError("Give either -o or --whip, not both");
    if (!/^https?:\/\//i.test(v.whip)) {
      throw new UsageError(`--whip takes an http(s):// URL, got ${JSON.stringify(v.whip)}`);
    }
    v.output = `whip+${v.whip}`;
  }
  if (!v.output) throw new UsageError("Missing -o/--output");
  const isPeer = /^(tcp|wss?|https?|rtmp|srt|whip\+https?):\/\//i.test(v.output);
  let outputFormat: ContainerFormat;
  try {
    outputFormat = v.format !== undefined
      ? parseContainerFormat(v.format)
      : v.output === "-" || isPeer
      ? "ivf"
      : formatFromPath(v.output) ?? (() => {
        throw new UsageError(
          `Cannot tell the format of ${JSON.stringify(v.output)}: use .ivf .obu .webm .mkv .mp4, or --format`,
        );
      })();
  } catch (e) {
    throw e instanceof UsageError ? e : new UsageError((e as Error).message);
  }
  if (isPeer && outputFormat === "mp4") {
    throw new UsageError("A live peer cannot take progressive MP4: use --format fmp4, webm, ivf or obu");
  }
  const policy = v["on-disconnect"] ?? "block";
  if (!["block", "buffer", "drop", "reinit"].includes(policy)) {
    throw new UsageError(
      `--on-disconnect must be block, buffer, drop or reinit, got ${JSON.stringify(policy)}`,
    );
  }
  for (const flag of ["on-disconnect", "max-buffer", "reconnect-attempts", "reconnect-delay"] as const) {
    if (!isPeer && v[flag] !== undefined) {
      throw new UsageError(
        `--${flag} applies to live peers (tcp://, ws://, http://, rtmp://, srt://, whip+http://)`,
      );
    }
  }
  if (isPeer && v["force-key-frames"]) {
    throw new UsageError("--force-key-frames is for files; a live peer asks for key frames itself");
  }
  const live = isPeer
    ? {
      onDisconnect: policy as DisconnectPolicy,
      maxBufferBytes: intFlag("max-buffer", v["max-buffer"]),
      maxAttempts: intFlag("reconnect-attempts", v["reconnect-attempts"]),
      initialDelay: intFlag("reconnect-delay", v["reconnect-delay"]),
    }
    : undefined;
  const frames = intFlag("frames", v.frames);
  if (frames !== undefined && frames < 0) throw new UsageError("--frames must be 0 or more");
  const forceKeyFrames = v["force-key-frames"] ? v["force-key-frames"].split(",").map((s) => s.trim()) : [];
  for (const k of forceKeyFrames) {
    if (!/^(\d+f|\d+(\.\d+)?s)$/.test(k)) {
      throw new UsageError(
        `--force-key-frames takes frames like 30f or seconds like 2.5s, got ${JSON.stringify(k)}`,
      );
    }
  }
  let selection: EncoderSelection;
  try {
    selection = encoderConfigFromFlags(v, { verbose: v.verbose, forceKeyFrames: forceKeyFrames.length > 0 });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const workers = intFlag("workers", v.workers);
  if (workers !== undefined && workers < 1) throw new UsageError("--workers must be 1 or more");
  if (!v.chunked && (workers !== undefined || v.resume || v["work-dir"] !== undefined)) {
    throw new UsageError("--workers, --resume and --work-dir need --chunked");
  }
  return {
    chunked: v.chunked ? { workers, resume: v.resume ?? false, workDir: v["work-dir"] } : undefined,
    input: v.input,
    output: v.output,
    frames,
    quiet: v.quiet ?? false,
    json: v.json ?? false,
    verbose: v.verbose ?? false,
    forceKeyFrames,
    codec: selection.codec,
    outputFormat,
    live,
    realtime: v.realtime ?? false,
    config: selection.config,
  };
}

interface Source {
  info: VideoInfo;
  frames(): AsyncIterableIterator<Frame>;
  close?(): Promise<void> | void;
}

async function openInput(input: string, frameSize: (info: VideoInfo) => number): Promise<Source> {
  if (isTestSourceSpec(input)) return testSource(parseTestSourceSpec(input));
  const readable = input === "-" ? stdinReadable() : await fileReadable(input);
  const reader = await Y4mReader.open(readable);
  const info: VideoInfo = { ...reader.info };
  if (input !== "-") {
    // Frame count from the file size, for the progress bar's ETA (each frame: "FRAME\n" + samples).
    const size = await fileSize(input);
    if (size !== undefined) info.frameCount = Math.floor(size / (frameSize(info) + 6));
  }
  return { info, frames: () => reader.frames(), close: () => reader.close() };
}

async function openOutput(opts: Options, info: VideoInfo, encoder: Encoder): Promise<ContainerWriter> {
  const target = opts.output === "-" ? stdoutWritable() : await fileSink(opts.output);
  return openContainerWriter(opts.outputFormat, target, info, { sequenceHeader: encoder.sequenceHeader() });
}

/** Frame numbers from `--force-key-frames` entries like 30f or 2.5s. */
function keyFrameSet(list: string[], info: VideoInfo): Set<number> {
  const out = new Set<number>();
  for (const k of list) {
    if (k.endsWith("f")) out.add(Number(k.slice(0, -1)));
    else out.add(Math.round(Number(k.slice(0, -1)) * info.fps.num / info.fps.den));
  }
  return out;
}

class Progress {
  #tty: boolean;
  #quiet: boolean;
  #total?: number;
  #start = performance.now();
  #last = 0;
  frames = 0;
  bytes = 0;
  /** Extra text for the progress line, such as the link state of a live peer. */
  status?: () => string;
  /** The encoder library's version, for the summary. */
  version = "";
  #fps: number;

  constructor(quiet: boolean, total: number | undefined, fps: number) {
    this.#quiet = quiet;
    this.#tty = Boolean(process.stderr.isTTY);
    this.#total = total;
    this.#fps = fps;
  }

  /** Counts one packet out and refreshes the line. */
  packet(p: Packet) {
    this.frames++;
    this.bytes += p.data.byteLength;
    this.update();
  }

  get seconds(): number {
    return (performance.now() - this.#start) / 1000;
  }

  line(): string {
    const s = this.seconds;
    const fps = s > 0 ? this.frames / s : 0;
    const kbps = this.frames > 0 ? (this.bytes * 8 / 1000) / (this.frames / this.#fps) : 0;
    const total = this.#total;
    let bar = "";
    let eta = "";
    if (total) {
      const done = Math.min(1, this.frames / total);
      const width = 24;
      bar = "[" + "#".repeat(Math.round(done * width)).padEnd(width, ".") + "] ";
      if (fps > 0 && this.frames < total) eta = ` ETA ${clock((total - this.frames) / fps)}`;
    }
    return `${bar}${this.frames}${total ? "/" + total : ""} frames ${fps.toFixed(1)} fps ${
      kbps.toFixed(0)
    } kbps ${clock(s)}${eta}${this.status ? ` [${this.status()}]` : ""}`;
  }

  update(force = false) {
    if (this.#quiet) return;
    const now = performance.now();
    if (!force && now - this.#last < (this.#tty ? 100 : 2000)) return;
    this.#last = now;
    if (this.#tty) process.stderr.write(`\r\x1b[K${this.line()}`);
    else process.stderr.write(this.line() + "\n");
  }

  done() {
    if (this.#quiet) return;
    if (this.#tty) process.stderr.write(`\r\x1b[K${this.line()}\n`);
    else process.stderr.write(this.line() + "\n");
  }
}

function clock(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

/** `av1-stream probe <file> [--json]`: what is in a file we wrote. */
async function probe(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: { json: { type: "boolean" } },
    });
  } catch (e) {
    process.stderr.write(`av1-stream: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (parsed.positionals.length !== 1) {
    process.stderr.write(`av1-stream: probe takes one file\n\n${USAGE}`);
    return 2;
  }
  const result = await probeFile(parsed.positionals[0]);
  process.stdout.write(
    parsed.values.json ? JSON.stringify(result, null, 2) + "\n" : formatProbe(result) + "\n",
  );
  return 0;
}

/** Runs one encode (or `probe`); returns the process exit code. */
export async function main(argv: string[]): Promise<number> {
  if (argv[0] === "probe") return await probe(argv.slice(1));
  let opts: Options | "help";
  try {
    opts = parseCli(argv);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`av1-stream: ${e.message}\n\n${USAGE}`);
      return 2;
    }
    throw e;
  }
  if (opts === "help") {
    process.stdout.write(USAGE);
    return 0;
  }
  if (opts.chunked) {
    const { runChunkedCli } = await import("./lib/chunked/cli_run.ts");
    return await runChunkedCli({ ...opts, ...opts.chunked });
  }
  const { frameByteLength } = await import("./lib/types.ts");
  const source = await openInput(opts.input, frameByteLength);
  const info = source.info;
  const total = opts.frames !== undefined
    ? Math.min(opts.frames, info.frameCount ?? Infinity)
    : info.frameCount;
  let enc: Encoder | undefined;
  let interrupted = false;
  const onSigint = () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    if (!opts.quiet) {
      process.stderr.write("\nInterrupted: finishing what was encoded (Ctrl-C again to abort)\n");
    }
  };
  process.on("SIGINT", onSigint);
  const progress = new Progress(opts.quiet, total, info.fps.num / info.fps.den);
  try {
    enc = await createEncoder(opts, info);
    if (opts.live) {
      const live = enc;
      enc = undefined; // the encode stream owns it from here
      await runLive(
        opts,
        opts.live,
        source,
        { ...info, frameCount: total },
        live,
        progress,
        () => interrupted,
      );
    } else {
      await encodeToFile(opts, source, { ...info, frameCount: total }, enc, progress, () => interrupted);
    }
    progress.done();
    if (opts.json) {
      const s = progress.seconds;
      const summary = {
        codec: opts.codec,
        version: progress.version,
        format: opts.outputFormat,
        output: opts.output,
        frames: progress.frames,
        bytes: progress.bytes,
        seconds: Number(s.toFixed(3)),
        fps: Number((progress.frames / s).toFixed(2)),
        kbps: Number(
          (progress.frames ? progress.bytes * 8 / 1000 / (progress.frames * info.fps.den / info.fps.num) : 0)
            .toFixed(1),
        ),
        interrupted,
      };
      (opts.output === "-" ? process.stderr : process.stdout).write(JSON.stringify(summary) + "\n");
    }
    return interrupted ? 130 : 0;
  } finally {
    process.off("SIGINT", onSigint);
    await enc?.close();
    await source.close?.();
  }
}

/** Frames of the source as the encode loop takes them: paced at the frame rate with --realtime. */
async function* inputFrames(
  opts: Options,
  source: Source,
  info: VideoInfo,
  interrupted: () => boolean,
): AsyncGenerator<Frame> {
  let n = 0;
  const frames = opts.realtime ? paceFrames(source.frames(), info.fps) : source.frames();
  for await (const frame of frames) {
    if (interrupted() || (opts.frames !== undefined && n >= opts.frames)) return;
    yield frame;
    n++;
  }
}

/** Encodes to a file or stdout, reading and writing at the same time. */
async function encodeToFile(
  opts: Options,
  source: Source,
  info: VideoInfo,
  encoder: Encoder,
  progress: Progress,
  interrupted: () => boolean,
): Promise<void> {
  progress.version = (encoder as SvtAv1Encoder | Rav1eEncoder).version;
  const out = await openOutput(opts, info, encoder);
  try {
    const keys = keyFrameSet(opts.forceKeyFrames, info);
    const pump = (async () => {
      let n = 0;
      for await (const frame of inputFrames(opts, source, info, interrupted)) {
        await encoder.encode(frame, { keyFrame: keys.has(n++) });
      }
      await encoder.flush();
    })();
    // A pump failure must not leave the consumer waiting for packets.
    pump.catch(() => encoder.close());
    for await (const packet of encoder.packets()) {
      await out.writePacket(packet);
      progress.packet(packet);
    }
    await pump;
  } finally {
    await out.close();
  }
}

/**
 * Encodes to a live peer: source → encode stream → sink, with backpressure end to end. The encode stream
 * can replace its encoder when the sink asks (the reinit policy).
 */
async function runLive(
  opts: Options,
  live: NonNullable<Options["live"]>,
  source: Source,
  info: VideoInfo,
  first: Encoder,
  progress: Progress,
  interrupted: () => boolean,
): Promise<void> {
  progress.version = (first as SvtAv1Encoder | Rav1eEncoder).version;
  let made = 0;
  const encode = createEncodeStream({
    encoder: () => (made++ === 0 ? first : createEncoder(opts, info)),
  });
  const sequenceHeader = first.sequenceHeader();
  const f = opts.outputFormat;
  const format = f === "webm" || f === "mkv"
    ? webmStreamFormat(info, { sequenceHeader, matroska: f === "mkv" })
    : f === "fmp4"
    ? fmp4StreamFormat(info, { sequenceHeader })
    : f === "obu"
    ? "obu"
    : "ivf";
  const sink: PacketSink = createSink(opts.output, {
    ...live,
    format,
    info,
    sequenceHeader,
    onKeyFrameNeeded: () => encode.requestKeyFrame(),
    onReinit: live.onDisconnect === "reinit" ? () => encode.reinit() : undefined,
  });
  for (const event of ["connect", "disconnect", "reconnect", "end"] as const) {
    sink.on(event, () => progress.update(true));
  }
  progress.status = () => {
    const st = sink.stats;
    return `${sink.state} ${st.connections} conn` + (st.dropped ? ` ${st.dropped} dropped` : "")
      + (st.resent ? ` ${st.resent} resent` : "") + (encode.reinits ? ` ${encode.reinits} reinit` : "")
      + transportFigures(sink);
  };
  const iterator = inputFrames(opts, source, info, interrupted);
  const frames = new ReadableStream<Frame>({
    async pull(controller) {
      const next = await iterator.next();
      if (next.done) controller.close();
      else controller.enqueue(next.value);
    },
    async cancel() {
      await iterator.return(undefined);
    },
  }, { highWaterMark: 0 });
  const counted = new TransformStream<Packet, Packet>({
    transform(packet, controller) {
      progress.packet(packet);
      controller.enqueue(packet);
    },
  });
  await frames.pipeThrough(encode).pipeThrough(counted).pipeTo(sink);
}

/** The transport's own figures for the progress line: RTT for SRT, send bitrate for WebRTC. */
function transportFigures(sink: PacketSink): string {
  const stats = (sink as { transportStats?: () => { rttMs?: number; sendBitrateKbps?: number } })
    .transportStats?.();
  if (!stats) return "";
  const rtt = stats.rttMs !== undefined ? ` rtt ${stats.rttMs.toFixed(0)} ms` : "";
  const rate = stats.sendBitrateKbps !== undefined ? ` send ${stats.sendBitrateKbps.toFixed(0)} kbps` : "";
  return rtt + rate;
}

function createEncoder(opts: Options, info: VideoInfo): Promise<Encoder> {
  return opts.codec === "rav1e"
    ? Rav1eEncoder.create({ ...info, ...opts.config as Omit<Rav1eConfig, "width" | "height"> })
    : SvtAv1Encoder.create({ ...info, ...opts.config as Omit<SvtAv1Config, "width" | "height"> });
}
// Node 20 has no import.meta.main: there the entry is the script named on the command line.
if (import.meta.main ?? process.argv[1] === fileURLToPath(import.meta.url)) {
  try {
    const code = await main(process.argv.slice(2));
    process.exitCode = code;
  } catch (e) {
    const msg = e instanceof EncoderError ? e.message : (e as Error)?.stack ?? String(e);
    process.stderr.write(`av1-stream: ${msg}\n`);
    process.exitCode = 1;
  }
}
