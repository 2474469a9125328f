/**
 * A WHIP endpoint for the WHIP sink tests, built with werift on loopback: node:http answers the POSTed
 * offer with werift's answer (201 + Location), DELETE closes the session. Each session records the RTP it
 * receives; {@linkcode WhipSession.frames} reassembles the AV1 temporal units (AV1 RTP payload format) and
 * {@linkcode toSection5} writes them as a low-overhead OBU stream for `dav1d --demuxer section5`.
 * @module
 */

import { Buffer } from "node:buffer";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import {
  AV1Obu,
  AV1RtpPayload,
  ReceiverEstimatedMaxBitrate,
  RTCPeerConnection,
  RtcpPayloadSpecificFeedback,
  RTCRtpCodecParameters,
  RTCRtpHeaderExtensionParameters,
  type RTCRtpReceiver,
  type RtpPacket,
  splitAv1Obus,
  useSdesMid,
} from "werift";

export const PLAYOUT_DELAY_URI = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay";

/** One reassembled temporal unit. */
export interface WhipFrame {
  rtpTimestamp: number;
  /** OBUs with size fields, temporal delimiter not included. */
  obus: Uint8Array;
  /** The first packet had N=1 (a new coded video sequence starts: a key frame with a sequence header). */
  keyFrame: boolean;
}

/** One WHIP resource: a peer connection and what it received. */
export class WhipSession {
  readonly id: string;
  readonly pc: RTCPeerConnection;
  /** RTP packets by arrival. */
  readonly packets: RtpPacket[] = [];
  /** The offer received and the answer given. */
  offer = "";
  answer = "";
  deleted = false;
  #receiver: RTCRtpReceiver | undefined;
  #mediaSsrc = 0;
  #firSeq = 0;
  #onPacket: ((p: RtpPacket) => void) | undefined;

  constructor(id: string, pc: RTCPeerConnection) {
    this.id = id;
    this.pc = pc;
    pc.onTrack.subscribe((track) => {
      this.#receiver = pc.getTransceivers().find((t) => t.receiver.track === track)?.receiver
        ?? pc.getTransceivers()[0]?.receiver;
      track.onReceiveRtp.subscribe((rtp) => {
        this.#mediaSsrc = rtp.header.ssrc;
        this.packets.push(rtp.clone());
        this.#onPacket?.(rtp);
      });
    });
  }

  /** Called with every RTP packet. */
  set onPacket(fn: ((p: RtpPacket) => void) | undefined) {
    this.#onPacket = fn;
  }

  /** Sends a Picture Loss Indication to the sender. */
  async sendPli(): Promise<void> {
    await this.#receiver!.sendRtcpPLI(this.#mediaSsrc);
  }

  /** Sends a Full Intra Request to the sender. */
  async sendFir(): Promise<void> {
    // werift does not export its FullIntraRequest: write the FCI (RFC 5104 4.3.1) by hand.
    const fci = Buffer.alloc(16);
    fci.writeUInt32BE(1, 0); // sender SSRC
    fci.writeUInt32BE(0, 4); // media SSRC: unused for FIR
    fci.writeUInt32BE(this.#mediaSsrc, 8);
    fci.writeUInt8(++this.#firSeq & 0xff, 12);
    // werift routes payload-specific feedback by its sender or media SSRC field: name the media here.
    fci.writeUInt32BE(this.#mediaSsrc, 4);
    const feedback = { count: 4, length: 4, serialize: () => fci };
    const packet = new RtcpPayloadSpecificFeedback({ feedback: feedback as never });
    await this.#receiver!.dtlsTransport.sendRtcp([packet]);
  }

  /** Sends a REMB allowing `bps`. */
  async sendRemb(bps: number): Promise<void> {
    let exp = 0;
    while (bps >= 2 ** (18 + exp)) exp++;
    const mantissa = Math.floor(bps / 2 ** exp);
    const packet = new RtcpPayloadSpecificFeedback({
      feedback: new ReceiverEstimatedMaxBitrate({
        senderSsrc: 1,
        mediaSsrc: 0,
        ssrcNum: 1,
        brExp: exp,
        brMantissa: mantissa,
        bitrate: BigInt(mantissa) << BigInt(exp),
        ssrcFeedbacks: [this.#mediaSsrc],
      }),
    });
    await this.#receiver!.dtlsTransport.sendRtcp([packet]);
  }

  /**
   * Temporal units in order of first arrival, each from packets of one RTP timestamp sorted by sequence
   * number. A unit with a missing packet (a gap in sequence numbers, no marker, a continuation without
   * its start) is reported in `incomplete` instead.
   */
  frames(): { frames: WhipFrame[]; incomplete: number[] } {
    const byTs = new Map<number, RtpPacket[]>();
    for (const p of this.packets) {
      const list = byTs.get(p.header.timestamp) ?? [];
      if (!list.some((q) => q.header.sequenceNumber === p.header.sequenceNumber)) list.push(p);
      byTs.set(p.header.timestamp, list);
    }
    const frames: WhipFrame[] = [];
    const incomplete: number[] = [];
    for (const [ts, list] of byTs) {
      // Sequence numbers of one frame are close together: sort modulo 2^16 around the first one.
      const base = list[0].header.sequenceNumber;
      list.sort((a, b) =>
        ((a.header.sequenceNumber - base + 0x18000) & 0xffff)
        - ((b.header.sequenceNumber - base + 0x18000) & 0xffff)
      );
      const payloads = list.map((p) => AV1RtpPayload.deSerialize(p.payload));
      const contiguous = list.every((p, i) =>
        i === 0 || ((p.header.sequenceNumber - list[i - 1].header.sequenceNumber) & 0xffff) === 1
      );
      if (!contiguous || !list.at(-1)!.header.marker || payloads[0].zBit_RtpStartsWithFragment) {
        incomplete.push(ts);
        continue;
      }
      const obus = splitAv1Obus(AV1RtpPayload.getFrame(payloads)).map((o) => {
        const obu = AV1Obu.deSerialize(o);
        obu.obu_has_size_field = 1;
        return obu.serialize();
      });
      frames.push({
        rtpTimestamp: ts,
        obus: new Uint8Array(Buffer.concat(obus)),
        keyFrame: payloads[0].nBit_RtpStartsNewCodedVideoSequence === 1,
      });
    }
    return { frames, incomplete };
  }
}

/** Temporal units as a low-overhead bitstream: a temporal delimiter before each. */
export function toSection5(frames: WhipFrame[]): Uint8Array {
  const td = [0x12, 0x00];
  const out = new Uint8Array(frames.reduce((n, f) => n + 2 + f.obus.length, 0));
  let at = 0;
  for (const f of frames) {
    out.set(td, at);
    out.set(f.obus, at + 2);
    at += 2 + f.obus.length;
  }
  return out;
}

function codec() {
  return new RTCRtpCodecParameters({
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
 * werift ICE on 127.0.0.1 alone: the one host candidate, no interface enumeration, and no answer to
 * connectivity checks (so no pair) from any other address. The sink's `iceHostAddresses` and
 * `iceRemoteFilter` do the same on its side.
 */
export const LOOPBACK_ICE = {
  iceUseIpv4: false,
  iceUseIpv6: false,
  iceAdditionalHostAddresses: ["127.0.0.1"],
  iceInterfaceAddresses: { udp4: "127.0.0.1" },
  iceFilterStunResponse: (_msg: unknown, addr: readonly [string, number]) => addr[0] === "127.0.0.1",
  iceFilterCandidatePair: (pair: { remoteCandidate: { host: string } }) =>
    pair.remoteCandidate.host === "127.0.0.1",
};

/** The sink's options that keep its ICE on 127.0.0.1. */
export const SINK_LOOPBACK = {
  iceHostAddresses: ["127.0.0.1"],
  iceRemoteFilter: (ip: string) => ip === "127.0.0.1",
};

/** A WHIP endpoint on 127.0.0.1 (`/whip`), answering with werift. */
export class WhipEndpoint {
  readonly sessions: WhipSession[] = [];
  /** Answer POSTs with this status instead (a refusing endpoint). */
  refuseWith: number | undefined;
  /** POSTs received. */
  posts = 0;
  /** Authorization headers seen. */
  readonly authorizations: (string | undefined)[] = [];
  port = 0;
  #server: http.Server;
  #next = 1;
  #playoutDelay: boolean;

  private constructor(playoutDelay: boolean) {
    this.#playoutDelay = playoutDelay;
    this.#server = http.createServer((req, res) => void this.#handle(req, res));
  }

  /** `playoutDelay`: accept the playout-delay header extension (libwebrtc's) when offered. */
  static async start(options: { playoutDelay?: boolean } = {}): Promise<WhipEndpoint> {
    const ep = new WhipEndpoint(options.playoutDelay ?? false);
    await new Promise<void>((r) => ep.#server.listen(0, "127.0.0.1", () => r()));
    ep.port = (ep.#server.address() as AddressInfo).port;
    return ep;
  }

  get url(): string {
    return `whip+http://127.0.0.1:${this.port}/whip`;
  }

  /** Resolves with the next session that is connected. */
  nextConnected(after = this.sessions.length): Promise<WhipSession> {
    return new Promise((resolve) => {
      const check = setInterval(() => {
        const s = this.sessions[after];
        if (s && s.pc.connectionState === "connected") {
          clearInterval(check);
          resolve(s);
        }
      }, 10);
    });
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse) {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString();
    if (req.method === "POST" && req.url === "/whip") {
      this.posts++;
      this.authorizations.push(req.headers.authorization);
      if (this.refuseWith) {
        res.writeHead(this.refuseWith).end("not now");
        return;
      }
      if (req.headers["content-type"] !== "application/sdp") {
        res.writeHead(415).end("application/sdp expected");
        return;
      }
      const pc = new RTCPeerConnection({
        codecs: { video: [codec()] },
        headerExtensions: {
          video: [
            useSdesMid(),
            ...(this.#playoutDelay ? [new RTCRtpHeaderExtensionParameters({ uri: PLAYOUT_DELAY_URI })] : []),
          ],
        },
        iceServers: [],
        ...LOOPBACK_ICE,
      });
      const session = new WhipSession(String(this.#next++), pc);
      this.sessions.push(session);
      session.offer = body;
      await pc.setRemoteDescription({ type: "offer", sdp: body });
      await pc.setLocalDescription(await pc.createAnswer());
      session.answer = pc.localDescription!.sdp;
      res.writeHead(201, {
        "content-type": "application/sdp",
        location: `/whip/resource/${session.id}`,
      }).end(pc.localDescription!.sdp);
      return;
    }
    const m = /^\/whip\/resource\/(\d+)$/.exec(req.url ?? "");
    const session = m && this.sessions.find((s) => s.id === m[1]);
    if (req.method === "DELETE" && session) {
      session.deleted = true;
      await session.pc.close();
      res.writeHead(200).end();
      return;
    }
    res.writeHead(404).end();
  }

  /** Closes a session's peer connection abruptly, as a crashed receiver would. */
  async drop(session: WhipSession): Promise<void> {
    await session.pc.close();
  }

  /** Closes every session and the HTTP server. */
  async close(): Promise<void> {
    await Promise.all(this.sessions.map((s) => s.pc.close().catch(() => {})));
    await new Promise<void>((r) => {
      this.#server.close(() => r());
      this.#server.closeAllConnections?.();
    });
  }
}
