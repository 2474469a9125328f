/**
 * The transports under the sinks: one per protocol (file and stdout, TCP, WebSocket, HTTP, RTMP with its
 * AMF0 and FLV, SRT, WHIP). Each opens a {@linkcode Link} that a sink writes a stream to; the sink owns
 * reconnection and the disconnect policy, a transport only connects, writes and reports how a link ended.
 *
 * @example
 * ```ts
 * import { parseTcpUrl } from "./mod.ts";
 * console.log(parseTcpUrl("tcp://127.0.0.1:9000")); // { host: "127.0.0.1", port: 9000 }
 * ```
 * @module
 */

export { httpTransport, type HttpTransportOptions } from "./http.ts";
export { type Link, type LinkError, type Transport } from "./link.ts";
export { fileTransport, stdoutTransport, writableTransport } from "./local.ts";
export { type AmfValue, decodeAmf0, encodeAmf0 } from "./rtmp/amf.ts";
export { flvFormat, type FlvFormatOptions } from "./rtmp/flv.ts";
export {
  parseRtmpUrl,
  type RtmpAddress,
  type RtmpTlsOptions,
  rtmpTransport,
  type RtmpTransportOptions,
} from "./rtmp/rtmp.ts";
export { parseTcpUrl, tcpTransport } from "./tcp.ts";
export { webSocketTransport, type WebSocketTransportOptions } from "./websocket.ts";
