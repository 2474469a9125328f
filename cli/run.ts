/**
 * One run of the command line: open the input, the encoder and the output (a file, stdout or a live
 * peer) and move frames through with backpressure; `probe` reads back what a run wrote.
 * @module
 */
import { parseArgs } from "node:util";
import { system } from "../ffi/runtime/system.ts";
import type { ContainerWriter } from "../lib/container/writer.ts";
import type { Rav1eConfig, Rav1eEncoder } from "../lib/encoder/rav1e.ts";
import type { SvtAv1Config, SvtAv1Encoder } from "../lib/encoder/svt_av1.ts";
import { EncoderError, isBrokenPipe } from "../lib/errors.ts";
import type { PacketSink } from "../lib/stream/packet_sink.ts";
import type { Encoder, Frame, Packet, VideoInfo } from "../lib/types.ts";
import { keyFrameSet, type Options, parseCli, USAGE, UsageError } from "./args.ts";
import { Progress } from "./progress.ts";

// What only some runs need is imported where it is needed: `--help` loads none of the encoder, an SVT-AV1
// encode no rav1e, a file encode no test source, pacing or live transport (bench/results.md, "Start-up").

interface Source {
  info: VideoInfo;
  frames(): AsyncIterableIterator<Frame>;
  close?(): Promise<void> | void;
}

async function openInput(input: string, frameSize: (info: VideoInfo) => number): Promise<Source> {
  if (input.startsWith("testsrc")) {
    const { isTestSourceSpec, parseTestSourceSpec, testSource } = await import("../lib/io/testsrc.ts");
    if (isTestSourceSpec(input)) return testSource(parseTestSourceSpec(input));
  }
  const [{ fileReadable, fileSize }, { Y4mReader }] = await Promise.all([
    import("../lib/io/file_stream.ts"),
    import("../lib/io/y4m.ts"),
  ]);
  const readable = input === "-"
    ? (await import("../lib/io/std_stream.ts")).stdinReadable()
    : await fileReadable(input);
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
  const { openContainerWriter } = await import("../lib/container/open.ts");
  const target = opts.output === "-"
    ? (await import("../lib/io/std_stream.ts")).stdoutWritable()
    : await (await import("../lib/io/sink.ts")).fileSink(opts.output);
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
    system.writeStderr(`av1-stream: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (parsed.positionals.length !== 1) {
    system.writeStderr(`av1-stream: probe takes one file\n\n${USAGE}`);
    return 2;
  }
  const { formatProbe, probeFile } = await import("../lib/container/probe.ts");
  const result = await probeFile(parsed.positionals[0]);
  system.writeStdout(
    parsed.values.json ? JSON.stringify(result, null, 2) + "\n" : formatProbe(result) + "\n",
  );
  return 0;
}

/** Runs one encode (or `probe`); returns the process exit code. */
export async function main(argv: string[]): Promise<number> {
  if (argv[0] === "probe") return await probe(argv.slice(1));
  if (argv[0] === "--version" || argv[0] === "-V") {
    const { versionText } = await import("./version.ts");
    system.writeStdout(await versionText());
    return 0;
  }
  let opts: Options | "help";
  try {
    opts = parseCli(argv);
  } catch (e) {
    if (e instanceof UsageError) {
      system.writeStderr(`av1-stream: ${e.message}\n\n${USAGE}`);
      return 2;
    }
    throw e;
  }
  if (opts === "help") {
    system.writeStdout(USAGE);
    return 0;
  }
  if (opts.chunked) {
    const { runChunkedCli } = await import("../lib/chunked/cli_run.ts");
    return await runChunkedCli({ ...opts, ...opts.chunked });
  }
  // A process that exits once its encoder closes: handing the encoder's freed memory back to the system
  // first is only time spent (malloc_trim took 4-10 ms in Deno after a 360p or 720p encode on the idle
  // machine, 40-56 ms at load 19).
  const threads = import("../lib/encoder/thread_pool.ts").then((m) =>
    m.configureEncoderThreads({ releaseMemory: false })
  );
  // This run's modules, asked for at once: the encoder's load while the input opens.
  const modules = [
    opts.codec === "rav1e" ? import("../lib/encoder/rav1e.ts") : import("../lib/encoder/svt_av1.ts"),
    import("../lib/container/open.ts"),
    import("./version.ts"),
  ];
  for (const m of modules) m.catch(() => {}); // a failure is reported where the module is used
  const { frameByteLength } = await import("../lib/types.ts");
  await threads;
  const source = await openInput(opts.input, frameByteLength);
  const info = source.info;
  const total = opts.frames !== undefined
    ? Math.min(opts.frames, info.frameCount ?? Infinity)
    : info.frameCount;
  let enc: Encoder | undefined;
  const stop = new Interruption(opts.quiet);
  const progress = new Progress(opts.quiet, total, info.fps.num / info.fps.den);
  try {
    enc = await createEncoder(opts, info);
    if (opts.live) {
      const live = enc;
      enc = undefined; // the encode stream owns it from here
      await runLive(opts, opts.live, source, { ...info, frameCount: total }, live, progress, stop);
    } else {
      await encodeToFile(opts, source, { ...info, frameCount: total }, enc, progress, stop);
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
        interrupted: stop.interrupted,
        ...(stop.signal ? { signal: stop.signal } : {}),
      };
      const line = JSON.stringify(summary) + "\n";
      if (opts.output === "-") system.writeStderr(line);
      else system.writeStdout(line);
    }
    return stop.exitCode ?? 0;
  } catch (e) {
    // The reader of stdout went away (`| head -c 100`): what it wanted it has, so no message and no
    // stack trace; 141 is the status a shell reports for a program that SIGPIPE ended.
    if (isBrokenPipe(e)) return 141;
    throw e;
  } finally {
    stop.dispose();
    // Always awaited before returning: leaving with the encoder's thread still busy has crashed SVT-AV1
    // in its exit handlers (a segmentation fault in Deno on a broken pipe, before this was awaited).
    await enc?.close();
    await source.close?.();
  }
}

/**
 * SIGINT and SIGTERM during an encode. The first stops taking input: the frames read so far are encoded,
 * written and the container finished (IVF frame count, WebM cues and duration, MP4 index), and the exit
 * status is 130 (SIGINT) or 143 (SIGTERM). A second signal gives up the frames still inside the encoder:
 * the output is finished with the packets already written. A third exits at once.
 */
class Interruption {
  /** The first signal received. */
  signal?: "SIGINT" | "SIGTERM";
  #count = 0;
  #quiet: boolean;
  #resolve!: () => void;
  /** Resolves at the first signal. */
  readonly requested: Promise<void> = new Promise<void>((r) => (this.#resolve = r));
  /** What a second signal does (none: it exits at once, as a third does). */
  onAgain?: () => void;
  #handlers = {
    SIGINT: () => this.#receive("SIGINT"),
    SIGTERM: () => this.#receive("SIGTERM"),
  };

  constructor(quiet: boolean) {
    this.#quiet = quiet;
    system.onSignal("SIGINT", this.#handlers.SIGINT);
    system.onSignal("SIGTERM", this.#handlers.SIGTERM);
  }

  get interrupted(): boolean {
    return this.#count > 0;
  }

  /** True once a second signal asked to stop without finishing the frames inside the encoder. */
  get abandoned(): boolean {
    return this.#count > 1;
  }

  /** 128 + the signal's number, or undefined when no signal came. */
  get exitCode(): number | undefined {
    return this.signal === undefined ? undefined : this.signal === "SIGTERM" ? 143 : 130;
  }

  #say(text: string) {
    if (!this.#quiet) system.writeStderr(text);
  }

  #receive(signal: "SIGINT" | "SIGTERM") {
    this.#count++;
    if (this.#count === 1) {
      this.signal = signal;
      this.#say(
        `\n${signal === "SIGINT" ? "Interrupted" : "Terminated"}: finishing what was encoded `
          + `(${signal === "SIGINT" ? "Ctrl-C" : "the signal"} again to stop at once)\n`,
      );
      this.#resolve();
    } else if (this.#count === 2 && this.onAgain) {
      this.#say("\nStopping now: the output keeps the packets already written\n");
      this.onAgain();
    } else {
      system.exit(this.exitCode);
    }
  }

  dispose() {
    system.offSignal("SIGINT", this.#handlers.SIGINT);
    system.offSignal("SIGTERM", this.#handlers.SIGTERM);
  }
}

/** Why the input ended before its end: set by {@linkcode inputFrames}, reported after the output is finished. */
interface InputEnd {
  error?: unknown;
}

/**
 * Frames of the source as the encode loop takes them: paced at the frame rate with --realtime. A signal
 * ends them at once, even while a read waits for a producer that has stopped writing. A source that
 * fails (a frame cut short) ends them too, with the error kept in `end` when given (else thrown): the
 * frames before it still get encoded and written.
 */
async function* inputFrames(
  opts: Options,
  source: Source,
  info: VideoInfo,
  stop: Interruption,
  end?: InputEnd,
): AsyncGenerator<Frame> {
  let n = 0;
  const paceFrames = opts.realtime ? (await import("../lib/stream/pace.ts")).paceFrames : undefined;
  const frames = (paceFrames ? paceFrames(source.frames(), info.fps) : source.frames())[
    Symbol.asyncIterator
  ]();
  const stopped = stop.requested.then(() => undefined);
  while (!stop.interrupted && (opts.frames === undefined || n < opts.frames)) {
    const pending = frames.next();
    let next: IteratorResult<Frame> | undefined;
    try {
      next = await Promise.race([pending, stopped]);
    } catch (e) {
      // Input that fails after a signal (the producer got the same Ctrl-C) is no error of its own.
      if (stop.interrupted) return;
      if (!end) throw e;
      end.error = e;
      return;
    }
    if (next === undefined) {
      // A read still waiting is abandoned; the source is closed by the caller.
      pending.catch(() => {});
      return;
    }
    if (next.done) return;
    yield next.value;
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
  stop: Interruption,
): Promise<void> {
  progress.version = (encoder as SvtAv1Encoder | Rav1eEncoder).version;
  progress.library = await (await import("./version.ts")).libraryInUse(opts.codec);
  const out = await openOutput(opts, info, encoder);
  const input: InputEnd = {};
  let failed = false;
  // A second signal: the frames inside the encoder are given up and the packets already out are kept.
  stop.onAgain = () => void encoder.close();
  try {
    const keys = keyFrameSet(opts.forceKeyFrames, info);
    const pump = (async () => {
      let n = 0;
      try {
        for await (const frame of inputFrames(opts, source, info, stop, input)) {
          await encoder.encode(frame, { keyFrame: keys.has(n++) });
        }
        await encoder.flush();
      } catch (e) {
        if (!stop.abandoned) throw e;
      }
    })();
    // A pump failure must not leave the consumer waiting for packets.
    pump.catch(() => encoder.close());
    for await (const packet of encoder.packets()) {
      await out.writePacket(packet);
      progress.packet(packet);
    }
    await pump;
  } catch (e) {
    failed = true;
    throw e;
  } finally {
    try {
      await out.close();
    } catch (e) {
      // After a failed write (a broken pipe) the close fails too: the first error is the one to report.
      if (!failed) throw e;
    }
  }
  if (input.error !== undefined) {
    const e = input.error as Error;
    const kept = progress.frames === 0
      ? "Nothing was encoded"
      : `The ${progress.frames} frame${progress.frames === 1 ? "" : "s"} before it ${
        progress.frames === 1 ? "was" : "were"
      } encoded to ${opts.output === "-" ? "stdout" : opts.output}`;
    throw e instanceof EncoderError
      ? new EncoderError(e.code, `${e.message}. ${kept}`, { cause: e })
      : e;
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
  stop: Interruption,
): Promise<void> {
  progress.version = (first as SvtAv1Encoder | Rav1eEncoder).version;
  progress.library = await (await import("./version.ts")).libraryInUse(opts.codec);
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
  const iterator = inputFrames(opts, source, info, stop);
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

async function createEncoder(opts: Options, info: VideoInfo): Promise<Encoder> {
  const host = cliHost ? { host: cliHost } : {};
  if (opts.codec === "rav1e") {
    const { Rav1eEncoder, ownEventLoop } = await import("../lib/encoder/rav1e.ts");
    return await Rav1eEncoder.create({
      ...info,
      ...host,
      ...opts.config as Omit<Rav1eConfig, "width" | "height">,
      // A file encode's loop serves nothing else: rav1e's calls stay on this thread (about 20 MB less).
      [ownEventLoop]: !opts.live,
    });
  }
  const { SvtAv1Encoder } = await import("../lib/encoder/svt_av1.ts");
  return await SvtAv1Encoder.create({
    ...info,
    ...host,
    ...opts.config as Omit<SvtAv1Config, "width" | "height">,
  });
}
