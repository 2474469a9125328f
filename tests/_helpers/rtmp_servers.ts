/**
 * In-test RTMP peers: node-media-server (npm) run by `node` as a child process that a test can kill and
 * restart, a TCP gate in front of its RTMP port (so a test decides when the sink may reach a restarted
 * server: after the HTTP-FLV reader is attached), an HTTP-FLV reader, and a parser of Enhanced FLV AV1 tags.
 * @module
 */

import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as http from "node:http";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tls from "node:tls";
import { fileURLToPath } from "node:url";
import { dav1dFrameCount } from "./encode.ts";
import { freePort, TcpPeer } from "./tcp_peer.ts";

const NMS_DIR = fileURLToPath(new URL("../../node_modules/node-media-server", import.meta.url));

// Runs in node: node-media-server with RTMP and HTTP-FLV on loopback, no grace period for a returning
// publisher (it would shift the timestamps of the next publish), and each connect command printed.
const SCRIPT = `
const dir = process.env.NMS_DIR;
const NodeMediaServer = require(dir);
const logger = require(dir + "/src/core/logger.js");
const nms = new NodeMediaServer(JSON.parse(process.env.NMS_CONFIG), "");
logger.level = process.env.NMS_LOG || "error";
nms.on("prePublish", (s) => {
  if (s.broadcast) s.broadcast.publishGraceMs = 0;
  console.log("CONNECT " + JSON.stringify(s.rtmp ? s.rtmp.connectCmdObj : null));
});
let up = 0;
const ready = () => { if (++up === 2) console.log("READY"); };
nms.rtmpServer.tcpServer.on("listening", ready);
nms.httpServer.httpServer.on("listening", ready);
nms.run();
`;

/** node-media-server in a child `node` process. */
export class NodeMediaServerProcess {
  readonly rtmpPort: number;
  readonly httpPort: number;
  /** The `connect` command objects of every publish, as the server decoded them. */
  readonly connects: Record<string, unknown>[] = [];
  log = "";
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #dir: string;

  private constructor(rtmpPort: number, httpPort: number) {
    this.rtmpPort = rtmpPort;
    this.httpPort = httpPort;
    this.#dir = mkdtempSync(join(tmpdir(), "nms-"));
  }

  static async start(): Promise<NodeMediaServerProcess> {
    const s = new NodeMediaServerProcess(await freePort(), await freePort());
    await s.restart();
    return s;
  }

  get running(): boolean {
    return this.#child !== undefined;
  }

  /** Starts the server (again) on the same ports; resolves once both listen. */
  async restart(): Promise<void> {
    const config = {
      bind: "127.0.0.1",
      rtmp: { port: this.rtmpPort },
      http: { port: this.httpPort },
      webadmin: { enable: false },
      store: { path: join(this.#dir, "data") },
      record: { auto: false, path: join(this.#dir, "record") },
      notify: { url: "" },
      auth: { play: false, publish: false, secret: "" },
    };
    const script = join(this.#dir, "nms.cjs");
    writeFileSync(script, SCRIPT);
    const child = spawn("node", [script], {
      env: { ...process.env, NMS_DIR, NMS_CONFIG: JSON.stringify(config) },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.#child = child;
    this.#exited = new Promise((r) => child.once("exit", () => r()));
    let out = "";
    await new Promise<void>((resolve, reject) => {
      const onData = (chunk: Uint8Array) => {
        const text = new TextDecoder().decode(chunk);
        this.log += text;
        out += text;
        for (const line of out.split("\n").slice(0, -1)) {
          if (line.startsWith("CONNECT ")) this.connects.push(JSON.parse(line.slice(8)));
          if (line.trim() === "READY") resolve();
        }
        out = out.slice(out.lastIndexOf("\n") + 1);
      };
      child.stdout!.on("data", onData);
      child.stderr!.on("data", (c: Uint8Array) => (this.log += new TextDecoder().decode(c)));
      child.once("exit", (code) => reject(new Error(`node-media-server exited (${code}): ${this.log}`)));
    });
  }

  /** SIGKILL: every connection to it dies at once. */
  async kill(): Promise<void> {
    const child = this.#child;
    this.#child = undefined;
    if (!child) return;
    child.kill("SIGKILL");
    await this.#exited;
  }

  async close(): Promise<void> {
    await this.kill();
    rmSync(this.#dir, { recursive: true, force: true });
  }

  /** Starts reading `/app/key.flv` over HTTP-FLV. */
  play(app: string, key: string): Promise<FlvReader> {
    return FlvReader.open(`http://127.0.0.1:${this.httpPort}/${app}/${key}.flv`);
  }
}

/** An HTTP-FLV player that keeps every byte. */
export class FlvReader {
  readonly chunks: Uint8Array[] = [];
  bytes = 0;
  closed = false;
  #req: http.ClientRequest | undefined;
  #waiters: (() => void)[] = [];

  static open(url: string): Promise<FlvReader> {
    const r = new FlvReader();
    return new Promise((resolve, reject) => {
      const req = http.get(url, (res) => {
        if (res.statusCode !== 200) return reject(new Error(`HTTP-FLV answered ${res.statusCode}`));
        res.on("data", (c: Uint8Array) => {
          r.chunks.push(new Uint8Array(c));
          r.bytes += c.length;
          for (const w of r.#waiters.splice(0)) w();
        });
        const done = () => {
          r.closed = true;
          for (const w of r.#waiters.splice(0)) w();
        };
        res.on("end", done);
        res.on("error", done);
        res.on("close", done);
        resolve(r);
      });
      req.on("error", (e) => {
        r.closed = true;
        reject(e);
      });
      r.#req = req;
    });
  }

  data(): Uint8Array {
    const out = new Uint8Array(this.bytes);
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }

  /** Waits until `predicate` holds on what arrived, or the stream closed, or `ms` passed. */
  async waitFor(predicate: (r: FlvReader) => boolean, ms = 10_000): Promise<boolean> {
    const end = Date.now() + ms;
    while (!predicate(this)) {
      if (this.closed || Date.now() > end) return predicate(this);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 50);
        this.#waiters.push(() => (clearTimeout(t), r()));
      });
    }
    return true;
  }

  close(): void {
    this.#req?.destroy();
  }
}

/** A TCP gate: forwards connections to `target` while listening; `kill()` resets all and stops listening. */
export class TcpGate extends TcpPeer {
  readonly target: number;
  connections = 0;

  constructor(target: number) {
    super();
    this.target = target;
  }

  protected accept(client: net.Socket): void {
    this.connections++;
    const upstream = net.connect({ host: "127.0.0.1", port: this.target });
    for (const s of [client, upstream]) {
      this.track(s);
      s.on("error", () => {});
      s.on("close", () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  }
}

/** The test-only certificate (self-signed, for `localhost`, 127.0.0.1 and ::1, valid until 2126) and its key. */
export const TLS_FIXTURE = {
  cert: readFileSync(fileURLToPath(new URL("../fixtures/tls/localhost.crt", import.meta.url)), "utf8"),
  key: readFileSync(fileURLToPath(new URL("../fixtures/tls/localhost.key", import.meta.url)), "utf8"),
};

/**
 * A TLS front: terminates TLS with {@linkcode TLS_FIXTURE} and forwards the plain bytes to `target`, as
 * a TLS proxy in front of an RTMP server does for `rtmps://`; `kill()` resets all and stops listening.
 */
export class TlsGate extends TcpGate {
  /** TLS handshakes that failed (the client refused our certificate). */
  handshakeErrors: Error[] = [];

  protected override createServer(
    options: net.ServerOpts,
    listener: (socket: net.Socket) => void,
  ): net.Server {
    const server = tls.createServer({ ...options, key: TLS_FIXTURE.key, cert: TLS_FIXTURE.cert }, listener);
    server.on("tlsClientError", (e: Error) => this.handshakeErrors.push(e));
    return server;
  }
}

/** One Enhanced FLV video tag. */
export interface FlvVideoTag {
  timestamp: number;
  frameType: number;
  packetType: number;
  fourCC: string;
  /** Body after the 5-byte Enhanced header: `av1C` for SequenceStart, OBUs for CodedFrames. */
  payload: Uint8Array;
}

/** The video tags of an FLV stream (a tag cut short at the end is left out); throws on a malformed one. */
export function parseFlvVideoTags(bytes: Uint8Array): FlvVideoTag[] {
  if (bytes.length < 13) return [];
  if (String.fromCharCode(...bytes.subarray(0, 3)) !== "FLV") throw new Error("Not an FLV stream");
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = v.getUint32(5) + 4;
  const tags: FlvVideoTag[] = [];
  while (at + 11 <= bytes.length) {
    const type = bytes[at];
    const size = v.getUint32(at) & 0xffffff;
    if (at + 11 + size + 4 > bytes.length) break;
    const timestamp = ((v.getUint32(at + 4) >>> 8) | (bytes[at + 7] << 24)) >>> 0;
    const body = bytes.subarray(at + 11, at + 11 + size);
    if (v.getUint32(at + 11 + size) !== 11 + size) throw new Error(`Bad previous tag size at ${at}`);
    if (type === 9) {
      if (!(body[0] & 0x80)) throw new Error(`Legacy (not Enhanced) video tag at ${timestamp} ms`);
      tags.push({
        timestamp,
        frameType: (body[0] >> 4) & 7,
        packetType: body[0] & 0x0f,
        fourCC: String.fromCharCode(...body.subarray(1, 5)),
        payload: body.subarray(5),
      });
    }
    at += 11 + size + 4;
  }
  return tags;
}

/** One publish as the player saw it: from a SequenceStart to the next. */
export interface Publish {
  av1C: Uint8Array;
  frames: { frame: number; key: boolean; obus: Uint8Array }[];
  ended: boolean;
}

/** Splits a player's video tags into publishes; frame numbers from ms at `fps`. */
export function publishes(tags: FlvVideoTag[], fps = 30): Publish[] {
  const out: Publish[] = [];
  for (const t of tags) {
    if (t.fourCC !== "av01") throw new Error(`FourCC ${t.fourCC}`);
    if (t.packetType === 0) out.push({ av1C: t.payload, frames: [], ended: false });
    else if (t.packetType === 1) {
      const p = out.at(-1);
      if (!p) throw new Error(`CodedFrames at ${t.timestamp} ms before any SequenceStart`);
      p.frames.push({
        frame: Math.round((t.timestamp * fps) / 1000),
        key: t.frameType === 1,
        obus: t.payload,
      });
    } else if (t.packetType === 2 && out.length) out.at(-1)!.ended = true;
  }
  return out;
}

/** Frames dav1d decodes from a publish (temporal delimiters put back, the av1C sequence header first). */
export function dav1dPublishFrames(p: Publish): number {
  const dir = mkdtempSync(join(tmpdir(), "rtmp-dav1d-"));
  try {
    const configObus = p.av1C.subarray(4);
    const parts: Uint8Array[] = [];
    for (const [i, f] of p.frames.entries()) {
      parts.push(new Uint8Array([0x12, 0x00]));
      if (i === 0) parts.push(configObus);
      parts.push(f.obus);
    }
    const file = join(dir, "in.obu");
    const bytes = new Uint8Array(parts.reduce((n, x) => n + x.length, 0));
    let at = 0;
    for (const x of parts) {
      bytes.set(x, at);
      at += x.length;
    }
    writeFileSync(file, bytes);
    return dav1dFrameCount(file, "section5");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
