/**
 * One run of the command line: open the input, the encoder and the output (a file, stdout or a live
 * peer) and move frames through with backpressure; `probe` reads back what a run wrote.
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { openContainerWriter } from "../lib/container/open.ts";
import type { ContainerWriter } from "../lib/container/writer.ts";
import { type Rav1eConfig, Rav1eEncoder } from "../lib/encoder/rav1e.ts";
import { type SvtAv1Config, SvtAv1Encoder } from "../lib/encoder/svt_av1.ts";
import { fileReadable, fileSize, stdinReadable, stdoutWritable } from "../lib/io/file_stream.ts";
import { fileSink } from "../lib/io/sink.ts";
import { isTestSourceSpec, parseTestSourceSpec, testSource } from "../lib/io/testsrc.ts";
import { Y4mReader } from "../lib/io/y4m.ts";
import { paceFrames } from "../lib/stream/pace.ts";
import type { PacketSink } from "../lib/stream/packet_sink.ts";
import type { Encoder, Frame, Packet, VideoInfo } from "../lib/types.ts";
import { keyFrameSet, type Options, parseCli, USAGE, UsageError } from "./args.ts";
import { Progress } from "./progress.ts";
import { libraryInUse } from "./version.ts";

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
  const { formatProbe, probeFile } = await import("../lib/container/probe.ts");
  const result = await probeFile(parsed.positionals[0]);
  process.stdout.write(
    parsed.values.json ? JSON.stringify(result, null, 2) + "\n" : formatProbe(result) + "\n",
  );
  return 0;
}

/** Runs one encode (or `probe`); returns the process exit code. */
export async function main(argv: string[]): Promise<number> {
  if (argv[0] === "probe") return await probe(argv.slice(1));
  if (argv[0] === "--version" || argv[0] === "-V") {
    const { versionText } = await import("./version.ts");
    process.stdout.write(await versionText());
    return 0;
  }
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
    const { runChunkedCli } = await import("../lib/chunked/cli_run.ts");
    return await runChunkedCli({ ...opts, ...opts.chunked });
  }
  const { frameByteLength } = await import("../lib/types.ts");
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
        library: progress.library,
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
  progress.library = await libraryInUse(opts.codec);
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
  progress.library = await libraryInUse(opts.codec);
  // Loaded only for a live peer: the transports and stream formats are most of the command line's code,
  // and a file encode then keeps them out of memory (3 MB of Bun's RSS, 2 MB of Deno's).
  const [{ createEncodeStream }, { createSink }, { fmp4StreamFormat, webmStreamFormat }] = await Promise.all([
    import("../lib/stream/encode_stream.ts"),
    import("../lib/stream/sinks.ts"),
    import("../lib/container/live.ts"),
  ]);
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

/**
 * In Deno the command line's encoder runs on its own thread with nonblocking calls (`host: "caller"`):
 * no second isolate and no copy of each frame, about 150 MB less peak RSS at 720p (bench/results.md,
 * "Memory"). Bun and Node have no nonblocking calls and use a pooled thread.
 */
export const cliHost: "caller" | undefined = "Deno" in globalThis ? "caller" : undefined;

function createEncoder(opts: Options, info: VideoInfo): Promise<Encoder> {
  const host = cliHost ? { host: cliHost } : {};
  return opts.codec === "rav1e"
    ? Rav1eEncoder.create({ ...info, ...host, ...opts.config as Omit<Rav1eConfig, "width" | "height"> })
    : SvtAv1Encoder.create({ ...info, ...host, ...opts.config as Omit<SvtAv1Config, "width" | "height"> });
}
