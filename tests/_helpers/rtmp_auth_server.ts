/**
 * A small RTMP server that demands authentication before it takes a publish, the way Adobe Media Server
 * and Wowza do (`authmod=adobe`) or Limelight (`authmod=llnw`): it rejects `connect` with the
 * `NetConnection.Connect.Rejected` descriptions of that exchange, checks the client's response with the
 * formula computed here on its own (not with the library's), then answers `createStream` and `publish` and
 * keeps the video messages as an FLV stream for {@linkcode parseFlvVideoTags}.
 * @module
 */

import { createHash, randomBytes } from "node:crypto";
import type * as net from "node:net";
import { decodeAmf0, encodeAmf0 } from "../../lib/transport/rtmp/amf.ts";
import { chunkMessage, ChunkReader, type RtmpMessage } from "../../lib/transport/rtmp/rtmp.ts";
import { TcpPeer } from "./tcp_peer.ts";

/** What happened on one connection. */
export interface AuthConnection {
  /** `app` of `connect`, with the client's query. */
  app: string;
  /** `tcUrl` of `connect`. */
  tcUrl: string;
  /** The description of our rejection, or `"accepted"`. */
  answer: string;
}

/** The settings of {@linkcode AuthRtmpServer}. */
export interface AuthRtmpServerOptions {
  method: "adobe" | "llnw";
  user: string;
  password: string;
  /** Adobe: send `opaque` along with `challenge` (Wowza does; FFmpeg then hashes opaque). Default true. */
  opaque?: boolean;
}

const HANDSHAKE = 1536;

function md5(text: string, encoding: "base64" | "hex"): string {
  return createHash("md5").update(text, "utf8").digest(encoding);
}

function query(app: string): Map<string, string> {
  const q = new Map<string, string>();
  const at = app.indexOf("?");
  if (at < 0) return q;
  for (const part of app.slice(at + 1).split("&")) {
    const eq = part.indexOf("=");
    if (eq > 0) q.set(part.slice(0, eq), decodeURIComponent(part.slice(eq + 1)));
  }
  return q;
}

/** The authenticating RTMP server, on 127.0.0.1. */
export class AuthRtmpServer extends TcpPeer {
  readonly options: Required<AuthRtmpServerOptions>;
  readonly connections: AuthConnection[] = [];
  /** Every accepted publish's video: the FLV header, then one tag per video message. */
  readonly published: Uint8Array[][] = [];
  /** The challenge each user was last sent: the response must answer it. */
  #issued = new Map<string, { salt: string; challenge: string; opaque: string; nonce: string }>();

  constructor(options: AuthRtmpServerOptions) {
    super();
    this.options = { opaque: true, ...options };
  }

  /** Publish `i` as one FLV stream. */
  flv(i: number): Uint8Array {
    const parts = this.published[i] ?? [];
    const out = new Uint8Array(parts.reduce((n, c) => n + c.length, 0));
    let at = 0;
    for (const c of parts) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }

  get url(): string {
    return `rtmp://127.0.0.1:${this.port}/live/test`;
  }

  /** The description rejecting `connect` with `app`, or undefined when its response is right. */
  #check(app: string): string | undefined {
    const { method, user, password } = this.options;
    const q = query(app);
    const reject = (detail: string) => `[ AccessManager.Reject ] : [ ${detail} ] : `;
    if (q.get("authmod") !== method) return reject(`code=403 need auth; authmod=${method}`);
    const name = q.get("user") ?? "";
    if (name !== user) return reject(`authmod=${method}`) + "?reason=nosuchuser";
    const issued = this.#issued.get(name);
    if (!q.has("response") || !issued) {
      const fresh = {
        salt: randomBytes(6).toString("base64url"),
        challenge: randomBytes(4).toString("hex"),
        opaque: randomBytes(4).toString("hex"),
        nonce: randomBytes(8).toString("hex"),
      };
      this.#issued.set(name, fresh);
      return reject(`authmod=${method}`) + (method === "adobe"
        ? `?reason=needauth&user=${name}&salt=${fresh.salt}&challenge=${fresh.challenge}`
          + (this.options.opaque ? `&opaque=${fresh.opaque}` : "")
        : `?reason=needauth&user=${name}&nonce=${fresh.nonce}`);
    }
    let expected: string;
    if (method === "adobe") {
      // base64(md5(base64(md5(user + salt + password)) + opaque-or-challenge + the client's challenge)).
      const key = md5(user + issued.salt + password, "base64");
      const mine = this.options.opaque ? issued.opaque : issued.challenge;
      expected = md5(key + mine + (q.get("challenge") ?? ""), "base64");
      if (this.options.opaque && q.get("opaque") !== issued.opaque) {
        return reject(`authmod=adobe`) + "?reason=authfailed";
      }
    } else {
      // RFC 2617 digest, qop=auth, realm "live", method "publish", URI /app (/app/_definst_ without an instance).
      const base = app.slice(0, app.indexOf("?"));
      const ha1 = md5(`${user}:live:${password}`, "hex");
      const ha2 = md5(`publish:/${base}${base.includes("/") ? "" : "/_definst_"}`, "hex");
      if (q.get("nonce") !== issued.nonce) return reject(`authmod=llnw`) + "?reason=authfailed";
      expected = md5(`${ha1}:${issued.nonce}:${q.get("nc")}:${q.get("cnonce")}:auth:${ha2}`, "hex");
    }
    return q.get("response") === expected ? undefined : reject(`authmod=${method}`) + "?reason=authfailed";
  }

  protected accept(socket: net.Socket): void {
    this.track(socket);
    socket.on("error", () => {});
    const reader = new ChunkReader();
    let handshake = new Uint8Array(0);
    let shaken = false;
    let flv: Uint8Array[] | undefined;
    const send = (values: Parameters<typeof encodeAmf0>[0], streamId = 0) =>
      socket.write(chunkMessage(3, 20, streamId, 0, encodeAmf0(values), 128));
    const onMessage = (m: RtmpMessage) => {
      if (m.type === 9 && flv) {
        const tag = new Uint8Array(11 + m.payload.length + 4);
        const v = new DataView(tag.buffer);
        v.setUint32(0, m.payload.length);
        tag[0] = 9;
        v.setUint32(4, (m.timestamp & 0xffffff) << 8 | (m.timestamp >>> 24));
        tag.set(m.payload, 11);
        v.setUint32(11 + m.payload.length, 11 + m.payload.length);
        flv.push(tag);
        return;
      }
      if (m.type !== 20) return;
      const [name, transaction, , ...args] = decodeAmf0(m.payload);
      if (name === "connect") {
        const o = (decodeAmf0(m.payload)[2] ?? {}) as { app?: string; tcUrl?: string };
        const app = String(o.app ?? "");
        const tcUrl = String(o.tcUrl ?? "");
        const refusal = this.#check(app);
        // The query rides on tcUrl too (FFmpeg and librtmp append it to both).
        const sameQuery = tcUrl.endsWith(app.slice(app.indexOf("?")));
        const answer = refusal ?? (sameQuery ? "accepted" : "tcUrl lacks the query of app");
        this.connections.push({ app, tcUrl, answer });
        if (answer !== "accepted") {
          send(["_error", transaction, null, {
            level: "error",
            code: "NetConnection.Connect.Rejected",
            description: answer,
          }]);
          socket.end();
          return;
        }
        send(["_result", transaction, { fmsVer: "FMS/3,5,7,7009", capabilities: 31 }, {
          level: "status",
          code: "NetConnection.Connect.Success",
          description: "Connection succeeded.",
        }]);
      } else if (name === "createStream") {
        send(["_result", transaction, null, 1]);
      } else if (name === "publish") {
        flv = [new Uint8Array([0x46, 0x4c, 0x56, 1, 1, 0, 0, 0, 9, 0, 0, 0, 0])];
        this.published.push(flv);
        send(["onStatus", 0, null, {
          level: "status",
          code: "NetStream.Publish.Start",
          description: `${args[0]} is now published.`,
        }], m.streamId);
      }
    };
    let answered = false;
    socket.on("data", (chunk: Uint8Array) => {
      let bytes = chunk;
      if (!shaken) {
        const all = new Uint8Array(handshake.length + bytes.length);
        all.set(handshake);
        all.set(bytes, handshake.length);
        handshake = all;
        if (handshake.length < 1 + HANDSHAKE) return;
        if (!answered) {
          // S0, S1 (zero time and version, random), S2 (echoes C1).
          answered = true;
          const s = new Uint8Array(1 + 2 * HANDSHAKE);
          s[0] = 3;
          s.set(randomBytes(HANDSHAKE - 8), 9);
          s.set(handshake.subarray(1, 1 + HANDSHAKE), 1 + HANDSHAKE);
          socket.write(s);
        }
        // C2 follows C0 and C1.
        if (handshake.length < 1 + 2 * HANDSHAKE) return;
        shaken = true;
        bytes = handshake.subarray(1 + 2 * HANDSHAKE);
      }
      for (const m of reader.push(bytes)) onMessage(m);
    });
  }
}
