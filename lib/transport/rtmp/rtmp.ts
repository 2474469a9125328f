/**
 * RTMP publishing over `node:net`: the handshake (C0/C1/C2), the chunk stream, and the AMF0 commands
 * `connect` (advertising Enhanced RTMP's `fourCcList: ["av01"]`), `createStream` and `publish`. A
 * connection is a {@linkcode Link} that takes an FLV stream ({@linkcode flvFormat}) and sends each FLV tag
 * as an RTMP message: video tags as video messages, `onMetaData` as `@setDataFrame`. Every new connection
 * does the whole exchange again, and the sink sends the FLV header (dropped here), `SequenceStart` and a
 * key frame first.
 * @module
 */

import { createHash } from "node:crypto";
import * as net from "node:net";
import * as tls from "node:tls";
import { EncoderError } from "../../errors.ts";
import { asError, type Link, type LinkError, linkError, type Transport } from "../link.ts";
import { SocketLink } from "../tcp.ts";
import { type AmfValue, decodeAmf0, encodeAmf0 } from "./amf.ts";

/** Where to publish: `rtmp[s]://[user:password@]host[:port]/app/key`. */
export interface RtmpAddress {
  /** Host name or address of the server. */
  host: string;
  /** TCP port (1935 for `rtmp://`, 443 for `rtmps://`, unless the URL names one). */
  port: number;
  /** True for `rtmps://`: RTMP inside TLS. */
  secure: boolean;
  /** Application: every path segment but the last (`live`, `app/instance`). */
  app: string;
  /** Stream key: the last path segment, with its query string. */
  key: string;
  /** `rtmp[s]://host:port/app`, the `tcUrl` of `connect` (never with the credentials). */
  tcUrl: string;
  /** The user of the URL's `user:password@`, percent-decoded, for a server that asks to authenticate. */
  user?: string;
  /** The password of the URL's `user:password@`, percent-decoded. */
  password?: string;
}

/**
 * Parses `rtmp[s]://[user:password@]host[:port]/app/key` (default port 1935, or 443 for `rtmps://`).
 *
 * @example
 * ```ts
 * import { parseRtmpUrl } from "./rtmp.ts";
 * console.log(parseRtmpUrl("rtmp://127.0.0.1/live/stream1").port); // 1935
 * console.log(parseRtmpUrl("rtmps://live.example.com/app/key").port); // 443
 * ```
 */
export function parseRtmpUrl(url: string): RtmpAddress {
  const m = /^rtmp(s?):\/\/(?:([^@/?#]*)@)?(\[[^\]]+\]|[^:/?#@]+)(?::(\d+))?\/([^?#]+?)\/([^/]+)$/i.exec(url);
  const secure = !!m?.[1];
  const port = m?.[4] ? Number(m[4]) : secure ? 443 : 1935;
  if (!m || !(port > 0 && port < 65536) || !m[6]) {
    throw new EncoderError(
      "INVALID_CONFIG",
      `RTMP address must look like rtmp[s]://[user:password@]host[:port]/app/key, got ${
        JSON.stringify(url.replace(/\/\/[^@/]*@/, "//…@"))
      }`,
    );
  }
  const host = m[3].replace(/^\[|\]$/g, "");
  const hostPart = host.includes(":") ? `[${host}]` : host;
  const scheme = secure ? "rtmps" : "rtmp";
  const address: RtmpAddress = {
    host,
    port,
    secure,
    app: m[5],
    key: m[6],
    tcUrl: `${scheme}://${hostPart}:${port}/${m[5]}`,
  };
  if (m[2] !== undefined) {
    const colon = m[2].indexOf(":");
    const decode = (s: string) => {
      try {
        return decodeURIComponent(s);
      } catch {
        throw new EncoderError(
          "INVALID_CONFIG",
          "The user:password of an RTMP URL must be percent-encoded (a % followed by two hex digits)",
        );
      }
    };
    address.user = decode(colon < 0 ? m[2] : m[2].slice(0, colon));
    if (colon >= 0) address.password = decode(m[2].slice(colon + 1));
  }
  return address;
}

/** TLS settings of an `rtmps://` connection (`node:tls`'s, which Deno, Bun and Node share). */
export interface RtmpTlsOptions {
  /**
   * Certificates to trust instead of the runtime's default roots, PEM: the server's own self-signed
   * certificate, or the CA that signed it.
   */
  ca?: string | Uint8Array | (string | Uint8Array)[];
  /** False accepts any certificate (no verification at all: for tests and trusted networks). Default true. */
  rejectUnauthorized?: boolean;
  /**
   * The name sent in SNI and checked against the certificate, when it is not the URL's host (a server
   * reached by its IP address whose certificate names its host name). Default: the URL's host name.
   */
  servername?: string;
}

/** Options of {@linkcode rtmpTransport}. */
export interface RtmpTransportOptions {
  /** Chunk size announced to the server and used for our messages. Default 4096. */
  chunkSize?: number;
  /** `flashVer` of `connect`. Default `"FMLE/3.0 (compatible; av1-stream)"`. */
  flashVer?: string;
  /** TLS settings for `rtmps://`. */
  tls?: RtmpTlsOptions;
  /**
   * User for a server that asks to authenticate (Adobe's `authmod=adobe` or Limelight's `authmod=llnw`
   * challenge); overrides the URL's `user:password@`.
   */
  user?: string;
  /** Password for {@linkcode RtmpTransportOptions.user}; overrides the URL's. */
  password?: string;
}

const MSG_SET_CHUNK_SIZE = 1;
const MSG_USER_CONTROL = 4;
const MSG_COMMAND_AMF3 = 17;
const MSG_DATA_AMF0 = 18;
const MSG_COMMAND_AMF0 = 20;
const CS_CONTROL = 2;
const CS_COMMAND = 3;
const CS_STREAM_COMMAND = 5;
const CS_VIDEO = 6;
const CS_DATA = 4;
const HANDSHAKE_SIZE = 1536;

/** The chunks of one message: a type 0 header, then type 3 continuations. */
export function chunkMessage(
  csid: number,
  type: number,
  streamId: number,
  timestamp: number,
  payload: Uint8Array,
  chunkSize: number,
): Uint8Array<ArrayBuffer> {
  const extended = timestamp >= 0xffffff;
  const chunks = Math.max(1, Math.ceil(payload.length / chunkSize));
  const out = new Uint8Array(
    12 + (extended ? 4 : 0) + payload.length + (chunks - 1) * (1 + (extended ? 4 : 0)),
  );
  const v = new DataView(out.buffer);
  out[0] = csid; // fmt 0, csid < 64
  v.setUint32(1, ((extended ? 0xffffff : timestamp) << 8) | (payload.length >>> 16));
  v.setUint16(5, payload.length & 0xffff);
  out[7] = type;
  v.setUint32(8, streamId, true);
  let at = 12;
  if (extended) {
    v.setUint32(at, timestamp);
    at += 4;
  }
  for (let i = 0; i < payload.length; i += chunkSize) {
    if (i > 0) {
      out[at++] = 0xc0 | csid;
      if (extended) {
        v.setUint32(at, timestamp);
        at += 4;
      }
    }
    const part = payload.subarray(i, i + chunkSize);
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** A message read from the chunk stream. */
export interface RtmpMessage {
  type: number;
  streamId: number;
  timestamp: number;
  payload: Uint8Array;
}

interface ChunkStreamState {
  timestamp: number;
  length: number;
  type: number;
  streamId: number;
  extended: boolean;
  parts: Uint8Array[];
  got: number;
}

/** Reassembles messages from a chunk stream (the server's here; the client's in the test servers). */
export class ChunkReader {
  chunkSize = 128;
  #buf = new Uint8Array(0);
  #streams = new Map<number, ChunkStreamState>();

  push(bytes: Uint8Array): RtmpMessage[] {
    const buf = new Uint8Array(this.#buf.length + bytes.length);
    buf.set(this.#buf);
    buf.set(bytes, this.#buf.length);
    const out: RtmpMessage[] = [];
    let at = 0;
    while (true) {
      const used = this.#chunk(buf, at, out);
      if (used === 0) break;
      at += used;
    }
    this.#buf = buf.slice(at);
    return out;
  }

  /** Parses one chunk at `at`; returns the bytes it used, 0 when it is not all there yet. */
  #chunk(buf: Uint8Array, at: number, out: RtmpMessage[]): number {
    const start = at;
    if (at >= buf.length) return 0;
    const fmt = buf[at] >> 6;
    let csid = buf[at++] & 0x3f;
    if (csid === 0) {
      if (at + 1 > buf.length) return 0;
      csid = 64 + buf[at++];
    } else if (csid === 1) {
      if (at + 2 > buf.length) return 0;
      csid = 64 + buf[at] + buf[at + 1] * 256;
      at += 2;
    }
    const size = [11, 7, 3, 0][fmt];
    if (at + size > buf.length) return 0;
    const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    const prev = this.#streams.get(csid);
    const s: ChunkStreamState = prev
      ? { ...prev }
      : { timestamp: 0, length: 0, type: 0, streamId: 0, extended: false, parts: [], got: 0 };
    let field = 0;
    if (fmt <= 2) field = (buf[at] << 16) | (buf[at + 1] << 8) | buf[at + 2];
    if (fmt <= 1) {
      s.length = (buf[at + 3] << 16) | (buf[at + 4] << 8) | buf[at + 5];
      s.type = buf[at + 6];
    }
    if (fmt === 0) s.streamId = v.getUint32(at + 7, true);
    at += size;
    if (fmt <= 2) s.extended = field === 0xffffff;
    if (s.extended) {
      if (at + 4 > buf.length) return 0;
      field = v.getUint32(at);
      at += 4;
    }
    const first = s.got === 0;
    if (first) {
      if (fmt === 0) s.timestamp = field;
      else if (fmt <= 2) s.timestamp += field;
      s.parts = [];
    }
    const n = Math.min(this.chunkSize, s.length - s.got);
    if (at + n > buf.length) return 0;
    s.parts = [...s.parts, buf.slice(at, at + n)];
    s.got += n;
    at += n;
    if (s.got >= s.length) {
      const payload = new Uint8Array(s.length);
      let p = 0;
      for (const part of s.parts) {
        payload.set(part, p);
        p += part.length;
      }
      out.push({ type: s.type, streamId: s.streamId, timestamp: s.timestamp, payload });
      s.got = 0;
      s.parts = [];
      if (s.type === MSG_SET_CHUNK_SIZE && payload.length >= 4) {
        this.chunkSize = new DataView(payload.buffer).getUint32(0) & 0x7fffffff || 128;
      }
    }
    this.#streams.set(csid, s);
    return at - start;
  }
}

function command(message: RtmpMessage): AmfValue[] | undefined {
  if (message.type === MSG_COMMAND_AMF0) return decodeAmf0(message.payload);
  if (message.type === MSG_COMMAND_AMF3) return decodeAmf0(message.payload.subarray(1));
  return undefined;
}

function info(values: AmfValue[]): { code?: string; level?: string; description?: string } {
  const o = values[3];
  return o && typeof o === "object" && !Array.isArray(o) && !(o instanceof Map)
    ? (o as { code?: string; level?: string; description?: string })
    : {};
}

/**
 * A transport publishing to an RTMP server (`rtmp://`, or `rtmps://` over TLS). Its links take an FLV
 * stream ({@linkcode flvFormat}). A server that asks to authenticate (`authmod=adobe` or `authmod=llnw`)
 * gets the user and password of the URL or the options.
 *
 * @example
 * ```ts
 * import { rtmpTransport } from "./rtmp.ts";
 * const t = rtmpTransport("rtmp://127.0.0.1:19350/live/key");
 * console.log(t.name); // "rtmp://127.0.0.1:19350/live/key"
 * ```
 */
export function rtmpTransport(url: string | RtmpAddress, options: RtmpTransportOptions = {}): Transport {
  const address = typeof url === "string" ? parseRtmpUrl(url) : url;
  const chunkSize = options.chunkSize ?? 4096;
  if (!Number.isInteger(chunkSize) || chunkSize < 128 || chunkSize > 0x7fffffff) {
    throw new EncoderError("INVALID_CONFIG", `chunkSize must be an integer from 128, got ${chunkSize}`);
  }
  const flashVer = options.flashVer ?? "FMLE/3.0 (compatible; av1-stream)";
  if (options.tls && !address.secure) {
    throw new EncoderError(
      "INVALID_CONFIG",
      `tls options apply to rtmps:// only, and ${address.tcUrl} is plain RTMP: use rtmps:// for TLS`,
    );
  }
  const settings: ConnectSettings = {
    chunkSize,
    flashVer,
    tls: options.tls ?? {},
    user: options.user ?? address.user,
    password: options.password ?? address.password,
  };
  return {
    name: `${address.tcUrl}/${address.key}`,
    reconnects: true,
    connect: ({ timeout }) => connectRtmp(address, settings, timeout),
  };
}

interface ConnectSettings {
  chunkSize: number;
  flashVer: string;
  tls: RtmpTlsOptions;
  user?: string;
  password?: string;
}

/** How one connection ended before publishing: the server rejected `connect` asking to authenticate. */
interface AuthRejection {
  rejected: string;
}

/**
 * Publishes, authenticating when the server asks: each step of the challenge is a new connection
 * (the server closes the one it rejected), at most three in all, within one `timeout`.
 */
async function connectRtmp(address: RtmpAddress, settings: ConnectSettings, timeout: number): Promise<Link> {
  const deadline = performance.now() + timeout;
  const auth = new RtmpAuth(address, settings);
  let query = "";
  for (let connection = 1;; connection++) {
    const left = Math.max(1, deadline - performance.now());
    const result = await publishOnce(address, settings, query, left, timeout);
    if (!("rejected" in result)) return result;
    query = auth.next(result.rejected, connection);
  }
}

/** The challenge methods of {@linkcode RtmpAuth}. */
type AuthMethod = "adobe" | "llnw";

function md5(text: string, encoding: "base64" | "hex"): string {
  return createHash("md5").update(text, "utf8").digest(encoding);
}

/**
 * The query that answers Adobe's challenge (`authmod=adobe`), appended to `app` and `tcUrl` of the next
 * `connect`, as FFmpeg (libavformat/rtmpproto.c, `do_adobe_auth`) and librtmp compute it:
 * `response = base64(md5(base64(md5(user + salt + password)) + (opaque or challenge) + challenge2))`,
 * where `challenge2` is ours.
 */
export function adobeAuthQuery(
  user: string,
  password: string,
  server: { salt: string; challenge?: string; opaque?: string },
  challenge2: string,
): string {
  const hash1 = md5(user + server.salt + password, "base64");
  // librtmp takes the challenge when opaque is empty; FFmpeg when it is absent.
  const response = md5(hash1 + (server.opaque || server.challenge || "") + challenge2, "base64");
  return `?authmod=adobe&user=${encodeURIComponent(user)}&challenge=${challenge2}&response=${response}`
    + (server.opaque ? `&opaque=${server.opaque}` : "");
}

/**
 * The query that answers Limelight's challenge (`authmod=llnw`), as FFmpeg's `do_llnw_auth`: HTTP digest
 * (RFC 2617, `qop=auth`) with realm `live`, method `publish` and the URI `/app` (`/app/_definst_` when
 * the application names no instance), hex MD5s.
 */
export function llnwAuthQuery(
  user: string,
  password: string,
  app: string,
  nonce: string,
  cnonce: string,
): string {
  const nc = "00000001";
  const ha1 = md5(`${user}:live:${password}`, "hex");
  const ha2 = md5(`publish:/${app}${app.includes("/") ? "" : "/_definst_"}`, "hex");
  const response = md5(`${ha1}:${nonce}:${nc}:${cnonce}:auth:${ha2}`, "hex");
  return `?authmod=llnw&user=${encodeURIComponent(user)}&nonce=${nonce}&cnonce=${cnonce}&nc=${nc}`
    + `&response=${response}`;
}

/** Eight random hex digits, like FFmpeg's `challenge2` and `cnonce`. */
function randomHex(): string {
  const b = crypto.getRandomValues(new Uint8Array(4));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/**
 * What to send after each rejected `connect` of a server asking to authenticate. The exchange, in the
 * `description` of the server's `NetConnection.Connect.Rejected`:
 * 1. `… code=403 need auth; authmod=adobe …`: connect again with `?authmod=adobe&user=U`;
 * 2. `… authmod=adobe … ?reason=needauth&user=U&salt=S&challenge=C&opaque=O`: connect again with the
 *    response ({@linkcode adobeAuthQuery}); `authmod=llnw` sends a `nonce` instead ({@linkcode llnwAuthQuery});
 * 3. `?reason=authfailed` or `?reason=nosuchuser`: the credentials are wrong.
 * Every failure here is final: a reconnection would send the same credentials.
 */
class RtmpAuth {
  #address: RtmpAddress;
  #user?: string;
  #password?: string;
  #step: "none" | "user" | "response" = "none";

  constructor(address: RtmpAddress, settings: ConnectSettings) {
    this.#address = address;
    this.#user = settings.user;
    this.#password = settings.password;
  }

  /** The query of the next connection after the rejection `description`; throws a final error. */
  next(description: string, connection: number): string {
    const method = /authmod=(adobe|llnw)\b/.exec(description)![1] as AuthMethod;
    const where = `The RTMP server ${this.#address.tcUrl}`;
    const user = this.#user;
    const password = this.#password;
    const final = (message: string) => {
      const err = linkError("EACCES", message);
      err.final = true;
      return err;
    };
    if (!user || password === undefined) {
      throw final(
        `${where} asks for a user and password (authmod=${method}): put them in the URL `
          + `(rtmp://user:password@host/app/key, percent-encoded) or pass the user and password options`,
      );
    }
    if (/\?reason=authfailed\b/.test(description)) {
      throw final(
        `${where} refused the password of user ${
          JSON.stringify(user)
        } (authmod=${method}): check the password`,
      );
    }
    if (/\?reason=nosuchuser\b/.test(description)) {
      throw final(
        `${where} does not know the user ${JSON.stringify(user)} (authmod=${method}): check the user`,
      );
    }
    if (this.#step === "response" || connection >= 3) {
      throw final(`${where} rejected the ${method} authentication response: ${description}`);
    }
    if (/code=403 need auth/.test(description)) {
      if (this.#step !== "none") throw final(`${where} asked for the user name twice: ${description}`);
      this.#step = "user";
      return `?authmod=${method}&user=${encodeURIComponent(user)}`;
    }
    const at = description.indexOf("?reason=needauth");
    if (at < 0) {
      throw final(`${where} rejected the connection without a challenge (authmod=${method}): ${description}`);
    }
    const params = new Map<string, string>();
    for (const part of description.slice(at + 1).split(/\s/)[0].split("&")) {
      const eq = part.indexOf("=");
      if (eq > 0) params.set(part.slice(0, eq), part.slice(eq + 1));
    }
    this.#step = "response";
    // The server names the user it challenges; it is ours unless it left it out.
    const challenged = params.get("user") || user;
    return method === "adobe"
      ? adobeAuthQuery(challenged, password, {
        salt: params.get("salt") ?? "",
        challenge: params.get("challenge"),
        opaque: params.get("opaque"),
      }, randomHex())
      : llnwAuthQuery(challenged, password, this.#address.app, params.get("nonce") ?? "", randomHex());
  }
}

/** PEM certificates as strings: node:tls wants strings or Buffers, and a Uint8Array is neither. */
function pemStrings(ca: string | Uint8Array | (string | Uint8Array)[]): string[] {
  return (Array.isArray(ca) ? ca : [ca]).map((c) => typeof c === "string" ? c : new TextDecoder().decode(c));
}

/** TLS verification codes (OpenSSL's, as node:tls names them): the certificate, not the network. */
const CERT_ERRORS = new Set([
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "CERT_UNTRUSTED",
  "CERT_REJECTED",
  "CERT_SIGNATURE_FAILURE",
  "INVALID_CA",
  "ERR_TLS_CERT_ALTNAME_INVALID",
  "HOSTNAME_MISMATCH",
]);

/**
 * A certificate the client does not accept, as a final {@linkcode LinkError} saying which option fixes
 * it: reconnecting would meet the same certificate. Other errors are returned as they are.
 */
function certificateError(err: LinkError, address: RtmpAddress, tls: RtmpTlsOptions): LinkError {
  const code = err.code ?? "";
  if (!CERT_ERRORS.has(code) && !/CERT/.test(code)) return err;
  const where = `The RTMPS server ${address.host}:${address.port}`;
  const out = code === "ERR_TLS_CERT_ALTNAME_INVALID" || code === "HOSTNAME_MISMATCH"
    ? linkError(
      code,
      `${where} presented a certificate for another name (${err.message}): connect by a name the `
        + `certificate holds, or pass tls: { servername: "<a name in the certificate>" }${
          tls.servername ? ` instead of ${JSON.stringify(tls.servername)}` : ""
        }`,
      err,
    )
    : linkError(
      code,
      `${where} presented a certificate this client does not trust (${code}: ${err.message}): pass `
        + `tls: { ca } with the server's certificate or its CA (PEM)${
          tls.ca ? " (the ca given does not verify it)" : ""
        }, or tls: { rejectUnauthorized: false } to accept any certificate`,
      err,
    );
  out.final = true;
  return out;
}

/** One connection: handshake, `connect` (with the authentication `query`), `createStream`, `publish`. */
function publishOnce(
  address: RtmpAddress,
  options: ConnectSettings,
  query: string,
  timeout: number,
  fullTimeout: number,
): Promise<Link | AuthRejection> {
  return new Promise<Link | AuthRejection>((resolve, reject) => {
    const socket: net.Socket = address.secure
      ? tls.connect({
        host: address.host,
        port: address.port,
        ...(options.tls.ca !== undefined ? { ca: pemStrings(options.tls.ca) } : {}),
        rejectUnauthorized: options.tls.rejectUnauthorized ?? true,
        ...(options.tls.servername ? { servername: options.tls.servername } : {}),
      })
      : net.connect({ host: address.host, port: address.port });
    socket.setNoDelay(true);
    const reader = new ChunkReader();
    let stage: "TLS" | "handshake" | "connect" | "createStream" | "publish" = address.secure
      ? "TLS"
      : "handshake";
    let handshake = new Uint8Array(0);
    let streamId = 0;
    let settled = false;
    let tcpConnected = false;
    const finish = () => {
      settled = true;
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("error", onError);
      socket.off("close", onClose);
    };
    const fail = (err: LinkError) => {
      if (settled) return;
      finish();
      socket.destroy();
      reject(err);
    };
    const onError = (err: LinkError) => {
      if (!address.secure) return fail(err);
      const cert = certificateError(err, address, options.tls);
      if (cert !== err || stage !== "TLS" || !tcpConnected) return fail(cert);
      // A plain RTMP server drops a TLS ClientHello the same way: say which mismatch that may be.
      fail(linkError(
        err.code ?? "ECONNRESET",
        `The TLS handshake with ${address.host}:${address.port} failed (${err.message}): if that port serves `
          + `plain RTMP, use rtmp://`,
        err,
      ));
    };
    const timer = setTimeout(
      () =>
        fail(
          linkError(
            "ETIMEDOUT",
            `Publishing to ${address.tcUrl} did not start within ${fullTimeout} ms (${stage})`,
          ),
        ),
      timeout,
    );
    const send = (csid: number, type: number, sid: number, payload: Uint8Array) =>
      socket.write(chunkMessage(csid, type, sid, 0, payload, options.chunkSize));
    const invoke = (values: AmfValue[], sid = 0) =>
      send(sid ? CS_STREAM_COMMAND : CS_COMMAND, MSG_COMMAND_AMF0, sid, encodeAmf0(values));
    const onMessage = (m: RtmpMessage) => {
      if (m.type === MSG_USER_CONTROL) return answerPing(socket, m, options.chunkSize);
      const cmd = command(m);
      if (!cmd) return;
      const [name, transaction] = cmd;
      if (name === "_error" || (name === "onStatus" && info(cmd).level === "error")) {
        const i = info(cmd);
        const description = String(i.description ?? "");
        // A server asking to authenticate rejects connect with the method in the description; the
        // next step (user name, then the response to its challenge) is a new connection.
        if (stage === "connect" && /authmod=(adobe|llnw)\b/.test(description)) {
          finish();
          socket.destroy();
          return resolve({ rejected: description });
        }
        return fail(
          linkError(
            "EPROTO",
            `The RTMP server refused ${stage}: ${i.code ?? ""} ${description}`.trim(),
          ),
        );
      }
      if (stage === "connect" && name === "_result" && transaction === 1) {
        stage = "createStream";
        invoke(["releaseStream", 2, null, address.key]);
        invoke(["FCPublish", 3, null, address.key]);
        invoke(["createStream", 4, null]);
      } else if (stage === "createStream" && name === "_result" && transaction === 4) {
        streamId = typeof cmd[3] === "number" ? cmd[3] : 1;
        stage = "publish";
        invoke(["publish", 5, null, address.key, "live"], streamId);
      } else if (stage === "publish" && name === "onStatus" && info(cmd).code === "NetStream.Publish.Start") {
        finish();
        resolve(new RtmpLink(socket, reader, streamId, options.chunkSize, address));
      }
    };
    const onData = (chunk: Uint8Array) => {
      try {
        let bytes: Uint8Array = chunk;
        if (stage === "handshake") {
          const all = new Uint8Array(handshake.length + bytes.length);
          all.set(handshake);
          all.set(bytes, handshake.length);
          // S0 (the version), S1, S2.
          if (all.length < 1 + 2 * HANDSHAKE_SIZE) {
            handshake = all;
            return;
          }
          if (all[0] !== 3) {
            return fail(linkError("EPROTO", `The server answered RTMP version ${all[0]}, not 3`));
          }
          // C2 echoes S1.
          socket.write(all.slice(1, 1 + HANDSHAKE_SIZE));
          bytes = all.subarray(1 + 2 * HANDSHAKE_SIZE);
          stage = "connect";
          const size = new Uint8Array(4);
          new DataView(size.buffer).setUint32(0, options.chunkSize);
          send(CS_CONTROL, MSG_SET_CHUNK_SIZE, 0, size);
          invoke(["connect", 1, {
            app: address.app + query,
            type: "nonprivate",
            flashVer: options.flashVer,
            tcUrl: address.tcUrl + query,
            fourCcList: ["av01"],
          }]);
        }
        for (const m of reader.push(bytes)) onMessage(m);
      } catch (e) {
        fail(linkError("EPROTO", `Malformed answer from the RTMP server: ${asError(e).message}`, e));
      }
    };
    const onClose = () =>
      fail(linkError(
        "ECONNRESET",
        `The RTMP server closed the connection during ${stage}${
          stage === "handshake" && !address.secure
            ? " (a TLS-only port closes a plain RTMP handshake like this: if it serves rtmps://, use rtmps://)"
            : ""
        }`,
      ));
    socket.on("data", onData);
    socket.on("error", onError);
    socket.once("close", onClose);
    socket.once("connect", () => (tcpConnected = true));
    // With TLS, 'connect' is the TCP connection: the RTMP handshake waits for the TLS one.
    socket.once(address.secure ? "secureConnect" : "connect", () => {
      stage = "handshake";
      // C0 (version 3) and C1: time, zero, random bytes: the simple handshake.
      const c0c1 = new Uint8Array(1 + HANDSHAKE_SIZE);
      c0c1[0] = 3;
      crypto.getRandomValues(c0c1.subarray(9, 9 + 1024));
      socket.write(c0c1);
    });
  });
}

/** Answers a ping request (user control event 6) with a ping response (7). */
function answerPing(socket: net.Socket, m: RtmpMessage, chunkSize: number) {
  if (m.payload.length < 6 || m.payload[1] !== 6) return;
  const body = new Uint8Array(m.payload.length);
  body.set(m.payload);
  body[0] = 0;
  body[1] = 7;
  socket.write(chunkMessage(CS_CONTROL, MSG_USER_CONTROL, 0, 0, body, chunkSize));
}

/** A publishing connection: FLV tags in, RTMP messages out. */
class RtmpLink extends SocketLink {
  #reader: ChunkReader;
  #streamId: number;
  #chunkSize: number;
  #address: RtmpAddress;
  #pending = new Uint8Array(0);
  #skipHeader = true;

  constructor(
    socket: net.Socket,
    reader: ChunkReader,
    streamId: number,
    chunkSize: number,
    address: RtmpAddress,
  ) {
    super(socket, "The RTMP server");
    this.#reader = reader;
    this.#streamId = streamId;
    this.#chunkSize = chunkSize;
    this.#address = address;
    socket.on("data", (chunk: Uint8Array) => {
      try {
        for (const m of this.#reader.push(chunk)) this.#onMessage(m);
      } catch (e) {
        this.state.fail(
          linkError("EPROTO", `Malformed message from the RTMP server: ${asError(e).message}`, e),
        );
      }
    });
  }

  #onMessage(m: RtmpMessage) {
    if (m.type === MSG_USER_CONTROL) return answerPing(this.socket, m, this.#chunkSize);
    const cmd = command(m);
    if (cmd && cmd[0] === "onStatus" && info(cmd).level === "error") {
      const i = info(cmd);
      this.state.fail(
        linkError("EPROTO", `The RTMP server stopped the stream: ${i.code} ${i.description ?? ""}`),
      );
    }
  }

  /** Turns the complete FLV tags in `bytes` (after the FLV header) into RTMP messages. */
  #messages(bytes: Uint8Array): Uint8Array[] {
    let buf = bytes;
    if (this.#pending.length) {
      buf = new Uint8Array(this.#pending.length + bytes.length);
      buf.set(this.#pending);
      buf.set(bytes, this.#pending.length);
    }
    let at = 0;
    if (this.#skipHeader) {
      if (buf.length < 13) {
        this.#pending = buf.slice();
        return [];
      }
      if (buf[0] !== 0x46 || buf[1] !== 0x4c || buf[2] !== 0x56) {
        throw new EncoderError("INVALID_STATE", "An RTMP link takes an FLV stream: use flvFormat()");
      }
      at = new DataView(buf.buffer, buf.byteOffset).getUint32(5) + 4;
      this.#skipHeader = false;
    }
    const out: Uint8Array[] = [];
    const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    while (at + 11 <= buf.length) {
      const type = buf[at];
      const size = v.getUint32(at) & 0xffffff;
      if (at + 11 + size + 4 > buf.length) break;
      const ts = ((v.getUint32(at + 4) >>> 8) | (buf[at + 7] << 24)) >>> 0;
      let body = buf.subarray(at + 11, at + 11 + size);
      let csid = CS_VIDEO;
      if (type === MSG_DATA_AMF0) {
        // FLV's script tag becomes the data message "@setDataFrame", as encoders send onMetaData.
        const prefix = encodeAmf0(["@setDataFrame"]);
        const b = new Uint8Array(prefix.length + body.length);
        b.set(prefix);
        b.set(body, prefix.length);
        body = b;
        csid = CS_DATA;
      }
      out.push(chunkMessage(csid, type, this.#streamId, ts, body, this.#chunkSize));
      at += 11 + size + 4;
    }
    this.#pending = buf.slice(at);
    return out;
  }

  override write(bytes: Uint8Array): Promise<void> {
    if (this.state.cause) return Promise.reject(this.state.cause);
    return this.send(this.#messages(bytes));
  }

  /** Unpublishes and deletes the stream, then ends the connection. */
  override end(): Promise<void> {
    return this.state.end(() => {
      const key = this.#address.key;
      for (
        const [values, sid] of [
          [["FCUnpublish", 6, null, key], 0],
          [["deleteStream", 7, null, this.#streamId], 0],
        ] as [AmfValue[], number][]
      ) {
        this.socket.write(
          chunkMessage(CS_COMMAND, MSG_COMMAND_AMF0, sid, 0, encodeAmf0(values), this.#chunkSize),
        );
      }
      this.socket.end();
    });
  }
}
