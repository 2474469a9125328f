/**
 * The sinks by destination, and {@linkcode createSink} which picks one from a URL or path. All are
 * {@linkcode PacketSink}s: same options, events and stats.
 * @module
 */

import { EncoderError } from "../errors.ts";
import { httpTransport, type HttpTransportOptions } from "../transport/http.ts";
import { fileTransport, stdoutTransport } from "../transport/local.ts";
import { flvFormat } from "../transport/rtmp/flv.ts";
import { rtmpTransport, type RtmpTransportOptions } from "../transport/rtmp/rtmp.ts";
import { type SrtOptions, srtSink } from "../transport/srt/srt.ts";
import { parseTcpUrl, tcpTransport } from "../transport/tcp.ts";
import { webSocketTransport, type WebSocketTransportOptions } from "../transport/websocket.ts";
import { type WhipOptions, whipSink } from "../transport/whip.ts";
import { PacketSink, type PacketSinkOptions } from "./packet_sink.ts";

/**
 * A sink sending the stream to a TCP peer (`tcp://host:port`), reconnecting when the link is lost.
 *
 * @example
 * ```ts
 * import { tcpSink } from "./sinks.ts";
 * const sink = tcpSink("tcp://127.0.0.1:9000", {
 *   info: { width: 64, height: 64, fps: { num: 30, den: 1 } },
 *   onDisconnect: "drop",
 *   maxAttempts: 1,
 *   initialDelay: 10,
 * });
 * sink.on("reconnect", (e) => console.log(`retry ${e.attempt} in ${e.delay} ms: ${e.cause.message}`));
 * await sink.close().catch((e) => console.log(e.message)); // nobody listens on port 9000 here
 * ```
 */
export function tcpSink(
  url: string | { host: string; port: number },
  options: PacketSinkOptions = {},
): PacketSink {
  const { host, port } = typeof url === "string" ? parseTcpUrl(url) : url;
  return new PacketSink(tcpTransport(host, port), options);
}

/**
 * A sink sending the stream over a WebSocket (`ws://` or `wss://`): one binary message for the header
 * of each connection, then one per packet.
 *
 * @example
 * ```ts
 * import { webSocketSink } from "./sinks.ts";
 * const sink = webSocketSink("ws://127.0.0.1:9001/ingest", { format: "obu", maxAttempts: 0 });
 * await sink.close().catch((e) => console.log(e.message));
 * ```
 */
export function webSocketSink(
  url: string,
  options: PacketSinkOptions & WebSocketTransportOptions = {},
): PacketSink {
  if (!/^wss?:\/\//i.test(url)) {
    throw new EncoderError(
      "INVALID_CONFIG",
      `WebSocket URL must start with ws:// or wss://, got ${JSON.stringify(url)}`,
    );
  }
  return new PacketSink(webSocketTransport(url, options), options);
}

/**
 * A sink uploading the stream as one long chunked POST (or PUT) per connection.
 *
 * @example
 * ```ts
 * import { httpSink } from "./sinks.ts";
 * const sink = httpSink("http://127.0.0.1:9002/live.ivf", {
 *   method: "PUT",
 *   info: { width: 64, height: 64, fps: { num: 30, den: 1 } },
 *   maxAttempts: 0,
 * });
 * await sink.close().catch((e) => console.log(e.message));
 * ```
 */
export function httpSink(url: string, options: PacketSinkOptions & HttpTransportOptions = {}): PacketSink {
  if (!/^https?:\/\//i.test(url)) {
    throw new EncoderError(
      "INVALID_CONFIG",
      `HTTP URL must start with http:// or https://, got ${JSON.stringify(url)}`,
    );
  }
  return new PacketSink(httpTransport(url, options), options);
}

/**
 * A sink publishing to an RTMP server (`rtmp://host[:port]/app/key`, port 1935 by default; `rtmps://` over
 * TLS, port 443 by default, with `tls: { ca, rejectUnauthorized, servername }`) in the Enhanced RTMP form
 * for AV1. A server asking to authenticate (`authmod=adobe` or `llnw`) gets the URL's `user:password@`
 * or the `user` and `password` options. Every connection does the handshake, `connect` (advertising
 * `fourCcList: ["av01"]`), `createStream` and `publish` again, then sends `SequenceStart` (the `av1C` record) and a key frame.
 * Needs `info` for the timestamps (frame numbers become milliseconds) and `onMetaData`.
 *
 * @example
 * ```ts
 * import { rtmpSink } from "./sinks.ts";
 * const sink = rtmpSink("rtmp://127.0.0.1:19350/live/key", {
 *   info: { width: 64, height: 64, fps: { num: 30, den: 1 } },
 *   maxAttempts: 0,
 * });
 * await sink.close().catch((e) => console.log(e.message)); // nobody listens here
 * ```
 */
export function rtmpSink(url: string, options: PacketSinkOptions & RtmpTransportOptions = {}): PacketSink {
  const transport = rtmpTransport(url, options);
  let format = options.format;
  if (format === undefined || format === "ivf" || format === "obu") {
    if (!options.info) {
      throw new EncoderError(
        "INVALID_CONFIG",
        "An RTMP sink needs info: { width, height, fps } for its timestamps: pass the encoder's info",
      );
    }
    format = flvFormat(options.info, { sequenceHeader: options.sequenceHeader, timeBase: options.timeBase });
  }
  return new PacketSink(transport, { ...options, format });
}

/**
 * A sink writing a file; IVF files get their frame count patched in at the end.
 *
 * @example
 * ```ts
 * import { filePacketSink } from "./sinks.ts";
 * const sink = filePacketSink("/tmp/example.ivf", { info: { width: 64, height: 64, fps: { num: 30, den: 1 } } });
 * const writer = sink.getWriter();
 * await writer.write({ data: new Uint8Array([0x12, 0x00]), timestamp: 0, duration: 1, keyFrame: true });
 * await writer.close();
 * ```
 */
export function filePacketSink(path: string, options: PacketSinkOptions = {}): PacketSink {
  return new PacketSink(fileTransport(path), options);
}

/**
 * A sink writing to standard output.
 *
 * @example
 * ```ts
 * import { stdoutSink } from "./sinks.ts";
 * const sink = stdoutSink({ format: "obu" });
 * await sink.close();
 * ```
 */
export function stdoutSink(options: PacketSinkOptions = {}): PacketSink {
  return new PacketSink(stdoutTransport(), options);
}

/**
 * Picks the sink for an output: `tcp://host:port`, `srt://host:port[?latency=…&passphrase=…]`,
 * `whip+http(s)://…` (WebRTC), `rtmp[s]://[user:password@]host[:port]/app/key`, `ws://…` / `wss://…`,
 * `http://…` / `https://…`, `-`
 * for stdout, anything else a file path. A path ending in `.obu` (or `format: "obu"`) writes the
 * low-overhead bitstream; everything else IVF.
 *
 * @example
 * ```ts
 * import { createSink } from "./sinks.ts";
 * const sink = createSink("/tmp/example.obu");
 * console.log(sink.target); // "/tmp/example.obu"
 * await sink.close();
 * ```
 */
export function createSink(
  target: string,
  options:
    & PacketSinkOptions
    & HttpTransportOptions
    & WebSocketTransportOptions
    & RtmpTransportOptions
    & SrtOptions
    & WhipOptions = {},
): PacketSink {
  if (/^tcp:\/\//i.test(target)) return tcpSink(target, options);
  // SrtSink and WhipSink add transportStats(): RTT (SRT) and send bitrate (WebRTC) for the progress line.
  if (/^srt:\/\//i.test(target)) return srtSink(target, options);
  if (/^whip\+https?:\/\//i.test(target)) return whipSink(target, options);
  if (/^rtmps?:\/\//i.test(target)) return rtmpSink(target, options);
  if (/^wss?:\/\//i.test(target)) return webSocketSink(target, options);
  if (/^https?:\/\//i.test(target)) return httpSink(target, options);
  const format = options.format ?? (/\.obu$/i.test(target) ? "obu" : "ivf");
  if (target === "-") return stdoutSink({ ...options, format });
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(target)) {
    throw new EncoderError(
      "INVALID_CONFIG",
      `Unsupported output ${
        JSON.stringify(target)
      }: use tcp://, rtmp(s)://, srt://, whip+http(s)://, ws://, wss://, http://, https://, - or a file path`,
    );
  }
  return filePacketSink(target, { ...options, format });
}
