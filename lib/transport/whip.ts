/**
 * WebRTC-HTTP ingestion (WHIP, RFC 9725) over werift: POST the SDP offer, take the 201's answer and
 * `Location`, then ICE, DTLS and SRTP, and AV1 over RTP (the AV1 RTP payload format, 90 kHz timestamps).
 * Each connection is one peer connection and one WHIP resource, DELETEd at the end.
 *
 * A PLI or FIR from the receiver asks the encoder for a key frame (through the sink's `onKeyFrameNeeded`),
 * and the receiver's congestion feedback (REMB) is reported
 * through `onBitrate`. SVT-AV1 and rav1e cannot change their bitrate mid-stream through this project's
 * backends, so the hook only reports: the application (or a policy that recreates the encoder) decides.
 * @module
 */

import { Buffer } from "node:buffer";
import { isIP } from "node:net";
import type * as Werift from "werift";
import { EncoderError } from "../errors.ts";
import { importOptional } from "../optional_dependency.ts";
import type { StreamFormat } from "../stream/format.ts";
import { PacketSink, type PacketSinkOptions } from "../stream/packet_sink.ts";
import type { Packet, Rational } from "../types.ts";
import { asError, type Link, type LinkError, linkError, type Transport } from "./link.ts";

/** A bitrate the receiver's congestion feedback allows. */
export interface WhipBitrateEvent {
  /** The receiver's estimate of the bandwidth available, in kbit/s. */
  kbps: number;
  /** REMB (receiver-estimated maximum bitrate); transport-wide CC is not negotiated (see the module doc). */
  source: "remb";
}

/** Options of a WHIP connection. */
export interface WhipOptions {
  /** Sent as `Authorization: Bearer <token>` on the POST and the DELETE. */
  token?: string;
  /** More HTTP headers for the POST and the DELETE. */
  headers?: Record<string, string>;
  /** STUN/TURN servers; none are needed on a LAN or loopback. */
  iceServers?: { urls: string; username?: string; credential?: string }[];
  /**
   * Gather ICE host candidates on these local IP addresses only (at most one IPv4 and one IPv6: the UDP
   * sockets are bound to them), e.g. `["127.0.0.1"]` for a receiver on this machine. Default: every
   * interface's addresses (werift's choice: no loopback, link-local or VPN interfaces).
   */
  iceHostAddresses?: string[];
  /**
   * Which of the receiver's addresses ICE may use: candidates of the answer that fail it are removed
   * before they reach werift, and connectivity checks from such an address get no answer (so no
   * peer-reflexive candidate is learnt from it). Default: every address. With
   * `(ip) => ip === "127.0.0.1"` and `iceHostAddresses: ["127.0.0.1"]` no packet leaves loopback.
   */
  iceRemoteFilter?: (ip: string) => boolean;
  /**
   * RTCP silence (receiver reports come every second or so, RFC 3550) for this long (ms) from the
   * connection's start or the last RTCP means the receiver is gone, and the sink reconnects; ICE consent
   * (RFC 7675) would notice only after 30 s. Default 5000; 0 turns the check off (for a receiver that
   * sends no RTCP).
   */
  peerTimeout?: number;
  /** Largest RTP payload in bytes. Default 1200. */
  maxPayloadSize?: number;
  /**
   * Asks the receiver to show each frame between `min` and `max` ms after its capture (the playout-delay
   * RTP header extension, in 10 ms steps up to 40950), offered in the SDP and sent on every packet when
   * the answer accepts it. libwebrtc (Chromium, Chrome, Safari's and Firefox's WebRTC) takes
   * `{ min: 0, max: 0 }` as "render at once": its jitter buffer no longer holds frames to smooth the
   * arrival, which on a quiet network cuts most of the receiver's delay (bench/latency.ts measured its
   * share). Unset: the receiver chooses.
   */
  playoutDelay?: { min: number; max: number };
  /**
   * Called when the receiver's congestion feedback changes the bitrate it can take (by 5 % or more).
   * The encoders here cannot change their bitrate mid-stream: reconfigure (recreate) the encoder or
   * just show it.
   */
  onBitrate?: (event: WhipBitrateEvent) => void;
}

/** The transport's own figures for the progress line. */
export interface WhipTransportStats {
  /** What this side sent over the last second, RTP headers included. */
  sendBitrateKbps?: number;
  /** Round-trip time from RTCP receiver reports, when the receiver sends them. */
  rttMs?: number;
  /** The last bitrate the receiver's feedback allowed. */
  availableBitrateKbps?: number;
  rtpPackets: number;
  bytesSent: number;
  /** PLIs and FIRs received over all connections; each asked for a key frame. */
  pli: number;
  fir: number;
  nack: number;
}

const FLAG_KEY = 1;
/** The playout-delay RTP header extension (libwebrtc's; 12-bit minimum and maximum in 10 ms units). */
const PLAYOUT_DELAY_URI = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay";

/** The extension's 3-byte payload for `{ min, max }` in ms. */
export function playoutDelayPayload(delay: { min: number; max: number }): Uint8Array {
  const units = (name: string, ms: unknown) => {
    if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0 || ms > 40950) {
      throw new EncoderError(
        "INVALID_CONFIG",
        `WHIP playoutDelay.${name} must be 0 to 40950 ms, got ${JSON.stringify(ms)}`,
      );
    }
    return Math.round(ms / 10);
  };
  const min = units("min", delay?.min), max = units("max", delay?.max);
  if (min > max) {
    throw new EncoderError(
      "INVALID_CONFIG",
      `WHIP playoutDelay.min (${delay.min} ms) must not be above its max (${delay.max} ms)`,
    );
  }
  return new Uint8Array([min >> 4, ((min & 15) << 4) | (max >> 8), max & 255]);
}
/** Payload-specific feedback message type of a Full Intra Request (RFC 5104). */
const PSFB_FIR = 4;
const RTP_HEADER_BYTES = 12;

/**
 * How packets cross from the sink to the WHIP link: a flag byte, the 90 kHz RTP timestamp (u32, big
 * endian), then the packet's OBUs. Not a wire format: the link turns each into RTP packets.
 */
export function whipFormat(timeBase: Rational): StreamFormat {
  return {
    name: "rtp-av1",
    contentType: "video/AV1",
    header: () => new Uint8Array(0),
    packet(packet: Packet) {
      const out = new Uint8Array(5 + packet.data.length);
      const ts = Math.round(packet.timestamp * 90000 * timeBase.num / timeBase.den);
      out[0] = packet.keyFrame ? FLAG_KEY : 0;
      new DataView(out.buffer).setUint32(1, ((ts % 2 ** 32) + 2 ** 32) % 2 ** 32, false);
      out.set(packet.data, 5);
      return out;
    },
  };
}

/** A WHIP {@linkcode Transport} that also reports the current connection's figures. */
export interface WhipTransport extends Transport {
  stats(): WhipTransportStats;
}

function av1Codec(w: typeof Werift) {
  return new w.RTCRtpCodecParameters({
    mimeType: "video/AV1",
    clockRate: 90000,
    rtcpFeedback: [
      { type: "nack" },
      { type: "nack", parameter: "pli" },
      { type: "ccm", parameter: "fir" },
      { type: "goog-remb" },
    ],
  });
}

/**
 * A transport publishing to a WHIP endpoint. `onKeyFrame` is called on every PLI or FIR.
 */
export function whipTransport(
  url: string,
  options: WhipOptions & { onKeyFrame?: () => void } = {},
): WhipTransport {
  const endpoint = new URL(url.replace(/^whip\+/i, ""));
  if (endpoint.protocol !== "http:" && endpoint.protocol !== "https:") {
    throw new EncoderError("INVALID_CONFIG", `WHIP endpoint must be http(s), got ${JSON.stringify(url)}`);
  }
  // Checked here, so that a bad value fails when the sink is made rather than on every connection.
  if (options.playoutDelay !== undefined) playoutDelayPayload(options.playoutDelay);
  const counters: WhipTransportStats = { rtpPackets: 0, bytesSent: 0, pli: 0, fir: 0, nack: 0 };
  let current: WhipLink | undefined;
  let lastBitrate = 0;
  const shared: Shared = {
    // Checked here, so a bad address fails the sink's creation instead of every connection attempt.
    ice: iceRestrictions(options),
    counters,
    onKeyFrame: () => options.onKeyFrame?.(),
    onBitrate(kbps, source) {
      counters.availableBitrateKbps = kbps;
      if (Math.abs(kbps - lastBitrate) < lastBitrate * 0.05) return;
      lastBitrate = kbps;
      try {
        options.onBitrate?.({ kbps, source });
      } catch { /* a throwing hook must not break the link */ }
    },
  };
  return {
    name: `whip+${endpoint.href}`,
    reconnects: true,
    stats: () => ({ ...counters, ...current?.liveStats() }),
    async connect({ timeout }) {
      const link = await WhipLink.open(endpoint, options, timeout, shared);
      current = link;
      return link;
    },
  };
}

interface Shared {
  ice: Partial<Werift.PeerConfig>;
  counters: WhipTransportStats;
  onKeyFrame(): void;
  onBitrate(kbps: number, source: "remb"): void;
}

function headersOf(options: WhipOptions, extra: Record<string, string> = {}): Record<string, string> {
  return {
    ...options.headers,
    ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
    ...extra,
  };
}

/** werift's ICE settings for {@linkcode WhipOptions.iceHostAddresses} and `iceRemoteFilter`. */
function iceRestrictions(options: WhipOptions): Partial<Werift.PeerConfig> {
  const out: Partial<Werift.PeerConfig> = {};
  const hosts = options.iceHostAddresses;
  if (hosts?.length) {
    const bad = hosts.filter((h) => isIP(h) === 0);
    if (bad.length) {
      throw new EncoderError(
        "INVALID_CONFIG",
        `iceHostAddresses takes IP addresses (e.g. "127.0.0.1"), got ${JSON.stringify(bad)}`,
      );
    }
    const v4 = hosts.filter((h) => isIP(h) === 4);
    const v6 = hosts.filter((h) => isIP(h) === 6);
    if (v4.length > 1 || v6.length > 1) {
      throw new EncoderError(
        "INVALID_CONFIG",
        `iceHostAddresses takes at most one IPv4 and one IPv6 address, got ${JSON.stringify(hosts)}`,
      );
    }
    // No interface enumeration at all: only the addresses given become host candidates.
    out.iceUseIpv4 = false;
    out.iceUseIpv6 = false;
    out.iceAdditionalHostAddresses = hosts;
    out.iceInterfaceAddresses = { ...(v4[0] ? { udp4: v4[0] } : {}), ...(v6[0] ? { udp6: v6[0] } : {}) };
  }
  const accept = options.iceRemoteFilter;
  if (accept) {
    out.iceFilterStunResponse = (_msg, addr) => accept(addr[0]);
    out.iceFilterCandidatePair = (pair) => accept(pair.remoteCandidate.host);
  }
  return out;
}

/** The id an SDP's `a=extmap` gives the header extension `uri`, if it has one. */
function extmapId(sdp: string, uri: string): number | undefined {
  for (const line of sdp.split(/\r?\n/)) {
    const m = /^a=extmap:(\d+)(?:\/\S+)? (\S+)/.exec(line);
    if (m && m[2] === uri) return Number(m[1]);
  }
  return undefined;
}

/** The SDP without the `a=candidate` lines whose address `accept` refuses. */
function filterCandidates(sdp: string, accept?: (ip: string) => boolean): string {
  if (!accept) return sdp;
  return sdp.split(/\r?\n/).filter((line) => {
    const m = /^a=candidate:\S+ \d+ \S+ \d+ (\S+) \d+ typ /i.exec(line);
    return !m || accept(m[1]);
  }).join("\r\n");
}

class WhipLink implements Link {
  #pc: Werift.RTCPeerConnection;
  #sender: Werift.RTCRtpSender;
  #packetizer: Werift.Av1Packetizer;
  #resource: URL;
  #options: WhipOptions;
  #shared: Shared;
  #cause: LinkError | undefined;
  #resolveLost!: (e: LinkError) => void;
  #ended = false;
  #timer: ReturnType<typeof setInterval>;
  #windowBytes = 0;
  #rateKbps = 0;
  #flushed = 0;
  #playoutDelay: { id: number; payload: Buffer } | undefined;
  readonly lost: Promise<LinkError>;

  private constructor(
    pc: Werift.RTCPeerConnection,
    sender: Werift.RTCRtpSender,
    packetizer: Werift.Av1Packetizer,
    resource: URL,
    options: WhipOptions,
    shared: Shared,
    playoutDelay?: { id: number; payload: Buffer },
  ) {
    this.#pc = pc;
    this.#playoutDelay = playoutDelay;
    this.#sender = sender;
    this.#packetizer = packetizer;
    this.#resource = resource;
    this.#options = options;
    this.#shared = shared;
    this.lost = new Promise((r) => (this.#resolveLost = r));
    const peerTimeout = options.peerTimeout ?? 5000;
    let ticks = 0;
    this.#timer = setInterval(() => {
      if (++ticks % 4 === 0) {
        this.#rateKbps = (this.#windowBytes * 8) / 1000;
        this.#windowBytes = 0;
      }
      if (peerTimeout > 0 && performance.now() - this.#lastRtcp > peerTimeout && !this.#ended) {
        this.#fail(
          linkError("ETIMEDOUT", `The WHIP receiver sent no RTCP for ${peerTimeout} ms: it is gone`),
        );
      }
    }, 250);
  }
  #lastRtcp = performance.now();

  static async open(endpoint: URL, options: WhipOptions, timeout: number, shared: Shared): Promise<WhipLink> {
    const w: typeof Werift = await importOptional(
      "werift",
      "Publishing over WHIP (WebRTC)",
      () => import("werift"),
    );
    const playoutDelay = options.playoutDelay ? playoutDelayPayload(options.playoutDelay) : undefined;
    const pc = new w.RTCPeerConnection({
      codecs: { video: [av1Codec(w)] },
      // No transport-cc: between two werift 0.25.2 peers its feedback came out malformed ("dropping
      // malformed SRTCP packet") and took the receiver reports of the same compound packet with it.
      headerExtensions: {
        video: [
          w.useSdesMid(),
          ...(playoutDelay ? [new w.RTCRtpHeaderExtensionParameters({ uri: PLAYOUT_DELAY_URI })] : []),
        ],
      },
      iceServers: options.iceServers ?? [],
      ...shared.ice,
    });
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), timeout);
    try {
      const track = new w.MediaStreamTrack({ kind: "video" });
      const transceiver = pc.addTransceiver(track, { direction: "sendonly" });
      await pc.setLocalDescription(await pc.createOffer());
      const offer = pc.localDescription!.sdp;
      let res: Response;
      try {
        res = await fetch(endpoint, {
          method: "POST",
          headers: headersOf(options, { "content-type": "application/sdp" }),
          body: offer,
          signal: abort.signal,
        });
      } catch (e) {
        throw abort.signal.aborted
          ? linkError("ETIMEDOUT", `The WHIP endpoint ${endpoint.href} did not answer within ${timeout} ms`)
          : linkError(
            (e as { cause?: { code?: string } }).cause?.code ?? "ECONNREFUSED",
            `POST to ${endpoint.href} failed: ${asError(e).message}`,
            e,
          );
      }
      const answer = await res.text();
      const location = res.headers.get("location");
      if (res.status !== 201 || !location) {
        throw linkError(
          res.status >= 500 || res.status === 429 ? "EAGAIN" : "EPROTO",
          res.status !== 201
            ? `The WHIP endpoint answered ${res.status} ${res.statusText}: ${answer.slice(0, 200)}`
            : "The WHIP endpoint answered 201 without a Location header",
        );
      }
      const resource = new URL(location, endpoint);
      await pc.setRemoteDescription({
        type: "answer",
        sdp: filterCandidates(answer, options.iceRemoteFilter),
      });
      // The extension goes out only under the id the answer gave it; without one the receiver declined.
      const playoutId = playoutDelay && extmapId(answer, PLAYOUT_DELAY_URI);
      const link = new WhipLink(
        pc,
        transceiver.sender,
        new w.Av1Packetizer({
          maxPayloadSize: options.maxPayloadSize ?? 1200,
        }),
        resource,
        options,
        shared,
        playoutId && playoutDelay ? { id: playoutId, payload: Buffer.from(playoutDelay) } : undefined,
      );
      try {
        await link.#connected(abort.signal, timeout);
      } catch (e) {
        link.destroy(asError(e));
        throw e;
      }
      link.#watch(w);
      return link;
    } catch (e) {
      if (pc.connectionState !== "closed") await pc.close().catch(() => {});
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  #connected(signal: AbortSignal, timeout: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (this.#pc.connectionState === "connected") return resolve();
      const onAbort = () => {
        sub.unSubscribe();
        reject(linkError("ETIMEDOUT", `WebRTC did not connect within ${timeout} ms (ICE and DTLS)`));
      };
      signal.addEventListener("abort", onAbort, { once: true });
      const sub = this.#pc.connectionStateChange.subscribe((state) => {
        if (state === "connected") {
          sub.unSubscribe();
          signal.removeEventListener("abort", onAbort);
          resolve();
        } else if (state === "failed" || state === "closed") {
          sub.unSubscribe();
          signal.removeEventListener("abort", onAbort);
          reject(linkError("ECONNREFUSED", `WebRTC connection ${state} before it was up`));
        }
      });
    });
  }

  #watch(w: typeof Werift) {
    const { counters } = this.#shared;
    this.#pc.connectionStateChange.subscribe((state) => {
      if (state === "failed" || state === "closed" || state === "disconnected") {
        if (!this.#ended) {
          this.#fail(linkError("ECONNRESET", `The WebRTC connection to ${this.#resource.href} is ${state}`));
        }
      }
    });
    this.#sender.onPictureLossIndication.subscribe(() => {
      counters.pli++;
      this.#shared.onKeyFrame();
    });
    this.#sender.onRtcp.subscribe((rtcp) => {
      this.#lastRtcp = performance.now();
      if (rtcp.type !== w.RtcpPayloadSpecificFeedback.type) return;
      const fb = (rtcp as Werift.RtcpPayloadSpecificFeedback).feedback;
      if (fb.count === PSFB_FIR) {
        counters.fir++;
        this.#shared.onKeyFrame();
      } else if (fb.count === w.ReceiverEstimatedMaxBitrate.count) {
        this.#shared.onBitrate(Number((fb as Werift.ReceiverEstimatedMaxBitrate).bitrate) / 1000, "remb");
      }
    });
    this.#sender.onGenericNack.subscribe(() => void counters.nack++);
  }

  /** Live figures of this connection. */
  liveStats(): Partial<WhipTransportStats> {
    const rtt = (this.#sender as unknown as { rtt?: number }).rtt;
    return { sendBitrateKbps: this.#rateKbps, ...(rtt !== undefined ? { rttMs: rtt * 1000 } : {}) };
  }

  #fail(err: unknown) {
    if (this.#cause) return;
    this.#cause = asError(err);
    this.#resolveLost(this.#cause);
    clearInterval(this.#timer);
    void this.#pc.close().catch(() => {});
    // Free the endpoint's resource; nobody waits for the answer.
    void this.#delete().catch(() => {});
  }

  #delete(): Promise<Response> {
    return fetch(this.#resource, {
      method: "DELETE",
      headers: headersOf(this.#options),
      signal: AbortSignal.timeout(5000),
    }).then(async (r) => {
      await r.body?.cancel();
      return r;
    });
  }

  async write(bytes: Uint8Array): Promise<void> {
    if (this.#cause) throw this.#cause;
    if (bytes.length < 5) return; // the format's empty header
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const timestamp = view.getUint32(1, false);
    const obus = Buffer.from(bytes.buffer, bytes.byteOffset + 5, bytes.length - 5);
    const rtps = this.#packetizer.packetize(obus, timestamp, { isKeyframe: (bytes[0] & FLAG_KEY) !== 0 });
    for (const rtp of rtps) {
      // On every packet, as libwebrtc's sender does until the receiver has seen it: any packet may be lost.
      if (this.#playoutDelay) rtp.header.extensions.push({ ...this.#playoutDelay });
      const size = RTP_HEADER_BYTES + rtp.payload.length;
      await this.#sender.sendRtp(rtp);
      this.#shared.counters.rtpPackets++;
      this.#shared.counters.bytesSent += size;
      this.#windowBytes += size;
    }
    this.#flushed += bytes.length;
  }

  progress() {
    return { pending: 0, flushed: this.#flushed };
  }

  /** DELETEs the WHIP resource (the endpoint's answer is the confirmation), then closes. */
  async end(): Promise<void> {
    if (this.#cause) throw this.#cause;
    this.#ended = true;
    clearInterval(this.#timer);
    try {
      const res = await this.#delete();
      if (!res.ok) {
        throw linkError("EPROTO", `DELETE ${this.#resource.href} answered ${res.status} ${res.statusText}`);
      }
    } finally {
      await this.#pc.close().catch(() => {});
    }
  }

  destroy(cause: Error): void {
    this.#fail(cause);
  }
}

/** A {@linkcode PacketSink} over WHIP with the transport's figures in `transportStats()`. */
export class WhipSink extends PacketSink {
  #transport: WhipTransport;

  constructor(transport: WhipTransport, options: PacketSinkOptions = {}) {
    super(transport, options);
    this.#transport = transport;
  }

  /** Send bitrate, RTT, the receiver's allowed bitrate, and the PLI/FIR/NACK counts. */
  transportStats(): WhipTransportStats {
    return this.#transport.stats();
  }
}

/**
 * A sink publishing the stream to a WHIP endpoint (`whip+http://…`, `whip+https://…`, or a plain
 * `http(s)://` URL) as AV1 over WebRTC. The default policy is `drop`: a real-time receiver has no use
 * for old frames, so after an outage the stream goes on from a fresh key frame on a new connection.
 * Pass `onKeyFrameNeeded: () => encoder.requestKeyFrame()`: it also answers the receiver's PLI and FIR.
 *
 * @example
 * ```ts
 * import { whipSink } from "./whip.ts";
 * const sink = whipSink("whip+http://127.0.0.1:9/whip", {
 *   info: { width: 64, height: 64, fps: { num: 30, den: 1 } },
 *   onBitrate: (e) => console.log(`receiver allows ${e.kbps} kbps (${e.source})`),
 *   connectTimeout: 500,
 *   maxAttempts: 0,
 * });
 * await sink.close().catch((e) => console.log(e.message)); // nobody answers on port 9
 * ```
 */
export function whipSink(url: string, options: PacketSinkOptions & WhipOptions = {}): WhipSink {
  if (!/^(whip\+)?https?:\/\//i.test(url)) {
    throw new EncoderError(
      "INVALID_CONFIG",
      `WHIP URL must start with whip+http://, whip+https://, http:// or https://, got ${JSON.stringify(url)}`,
    );
  }
  const timeBase = options.timeBase
    ?? (options.info ? { num: options.info.fps.den, den: options.info.fps.num } : { num: 1, den: 30 });
  const transport = whipTransport(url, { ...options, onKeyFrame: () => options.onKeyFrameNeeded?.() });
  return new WhipSink(transport, { onDisconnect: "drop", ...options, format: whipFormat(timeBase) });
}
