/**
 * The command line's arguments: the usage text, the flags, and the checks that turn them into the options
 * of one run (a file encode, a live peer or a chunked encode).
 * @module
 */
import { parseArgs } from "node:util";
import { encoderConfigFromFlags, type EncoderSelection } from "../lib/cli_config.ts";
import { type ContainerFormat, formatFromPath, parseContainerFormat } from "../lib/container/format.ts";
import type { Rav1eConfig } from "../lib/encoder/rav1e.ts";
import type { SvtAv1Config } from "../lib/encoder/svt_av1.ts";
import type { DisconnectPolicy } from "../lib/stream/packet_sink.ts";
import type { VideoInfo } from "../lib/types.ts";

export const USAGE = `Usage: av1-stream -i <input> -o <output> [options]
       av1-stream probe <file> [--json]

Input and output
  -i, --input <src>        file.y4m, - (stdin) or testsrc[:WxH[@fps][:frames]]
  -o, --output <dst>       file.ivf .obu .webm .mkv .mp4, - (stdout, IVF unless --format), or a live
                           peer: tcp://host:port, ws://..., wss://..., http(s)://... (one streaming POST),
                           rtmp[s]://host/app/key (Enhanced RTMP), srt://host:port, whip+http(s)://...
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
      --thread-priority <p>  as root: normal (default, like SvtAv1EncApp for other users), batch
                           (SCHED_BATCH nice 10) or realtime (the library's own SCHED_FIFO, as SvtAv1EncApp run as root)
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
  -V, --version            this package's version and each library's version and file
`;

/** A command line that cannot be run; its message says what is wrong and the CLI prints it with the usage. */
export class UsageError extends Error {}

/** What a command line asks for, after every flag was checked. */
export interface Options {
  /** Input: a Y4M path, `-` for standard input, or `testsrc:WxH@FPS:FRAMES`. */
  input: string;
  /** Output: a file path, `-` for standard output, or a live URL (tcp://, ws://, http(s)://, rtmp://, srt://, whip+http(s)://). */
  output: string;
  /** Encode at most this many frames. */
  frames?: number;
  /** No progress line. */
  quiet: boolean;
  /** Print the summary as JSON. */
  json: boolean;
  /** Show the encoder library's own log. */
  verbose: boolean;
  /** Frames to make key frames (`--force-key-frames`), as given. */
  forceKeyFrames: string[];
  /** The backend. */
  codec: "svt-av1" | "rav1e";
  /** Container of the output, from `--format` or the file extension. */
  outputFormat: ContainerFormat;
  /** Set when the output is a live peer rather than a file. */
  live?: {
    onDisconnect: DisconnectPolicy;
    maxBufferBytes?: number;
    maxAttempts?: number;
    initialDelay?: number;
  };
  /** Pace frames at the input's frame rate, as a live source would deliver them. */
  realtime: boolean;
  /** The encoder's configuration; width and height come from the input. */
  config: Omit<SvtAv1Config, "width" | "height"> | Omit<Rav1eConfig, "width" | "height">;
  /** Set when the input is cut into chunks encoded side by side (`--chunked`). */
  chunked?: { workers?: number; resume: boolean; workDir?: string };
}

function intFlag(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^-?\d+$/.test(v)) throw new UsageError(`--${name} must be an integer, got ${JSON.stringify(v)}`);
  return Number(v);
}

/** Parses the CLI's arguments (without the program name); `"help"` when help was asked for. Throws {@linkcode UsageError}. */
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
        "thread-priority": { type: "string" },
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
  const isPeer = /^(tcp|wss?|https?|rtmps?|srt|whip\+https?):\/\//i.test(v.output);
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
  const priority = v["thread-priority"] ?? "normal";
  if (priority !== "normal" && priority !== "batch" && priority !== "realtime") {
    throw new UsageError(
      `--thread-priority must be normal, batch or realtime, got ${JSON.stringify(priority)}`,
    );
  }
  if (selection.codec === "svt-av1") {
    selection.config.threadPriority = priority;
  } else if (v["thread-priority"] !== undefined) {
    throw new UsageError("--thread-priority is an SVT-AV1 option: rav1e's threads never go real-time");
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

/** Frame numbers from `--force-key-frames` entries like 30f or 2.5s. */
export function keyFrameSet(list: string[], info: VideoInfo): Set<number> {
  const out = new Set<number>();
  for (const k of list) {
    if (k.endsWith("f")) out.add(Number(k.slice(0, -1)));
    else out.add(Math.round(Number(k.slice(0, -1)) * info.fps.num / info.fps.den));
  }
  return out;
}
