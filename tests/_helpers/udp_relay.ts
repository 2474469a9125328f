/**
 * A UDP relay on 127.0.0.1 between two WebRTC peers, for cutting the network between them: the offerer's
 * candidate in the offer is replaced by one of the relay's sockets ({@linkcode UdpRelay.rewrite}), so the
 * answerer sends its checks and media there; the relay forwards them to the offerer from its other
 * socket, which the offerer then knows as the answerer (peer-reflexive, or from the answer's candidate if
 * it has one, rewritten too). Every packet (STUN, DTLS, SRTP) crosses it, and {@linkcode UdpRelay.block}
 * drops them all, both ways, for a while. The answerer's address is learnt from its first datagram when
 * the answer carries no candidate; datagrams from anywhere but 127.0.0.1 and the two peers are dropped.
 * @module
 */
import * as dgram from "node:dgram";
import type { AddressInfo } from "node:net";

interface Side {
  socket: dgram.Socket;
  /** The peer's candidate this side's socket sends to. */
  peer?: { address: string; port: number };
}

/** One UDP candidate of an SDP. */
export interface SdpCandidate {
  line: string;
  transport: string;
  address: string;
  port: number;
  type: string;
}

/** The `a=candidate` lines of an SDP, parsed. */
export function sdpCandidates(sdp: string): SdpCandidate[] {
  return sdp.split(/\r?\n/).flatMap((line) => {
    const m = /^a=candidate:\S+ \d+ (\S+) \d+ (\S+) (\d+) typ (\S+)/i.exec(line);
    return m ? [{ line, transport: m[1].toLowerCase(), address: m[2], port: Number(m[3]), type: m[4] }] : [];
  });
}

export class UdpRelay {
  /** `a` faces the offerer (it stands for the answerer in the offer's view), `b` the answerer. */
  #a: Side;
  #b: Side;
  #blockedUntil = 0;
  /** Datagrams forwarded and dropped (while blocked), and from strangers (not a peer's candidate). */
  forwarded = 0;
  dropped = 0;
  strangers: string[] = [];

  private constructor(a: dgram.Socket, b: dgram.Socket) {
    this.#a = { socket: a };
    this.#b = { socket: b };
    this.#wire(this.#a, this.#b);
    this.#wire(this.#b, this.#a);
  }

  static async start(): Promise<UdpRelay> {
    const bind = () =>
      new Promise<dgram.Socket>((resolve, reject) => {
        const s = dgram.createSocket("udp4");
        s.once("error", reject);
        s.bind(0, "127.0.0.1", () => resolve(s));
      });
    return new UdpRelay(await bind(), await bind());
  }

  /** Packets arriving at `from` (sent by `from.peer`) leave through `to`'s socket to `to.peer`. */
  #wire(from: Side, to: Side) {
    from.socket.on("message", (msg, rinfo) => {
      if (!from.peer && from === this.#b && rinfo.address === "127.0.0.1") {
        from.peer = { address: rinfo.address, port: rinfo.port };
      }
      const peer = from.peer;
      if (!peer || rinfo.address !== peer.address || rinfo.port !== peer.port) {
        if (this.strangers.length < 100) this.strangers.push(`${rinfo.address}:${rinfo.port}`);
        return;
      }
      if (!to.peer) return;
      if (performance.now() < this.#blockedUntil) {
        this.dropped++;
        return;
      }
      this.forwarded++;
      to.socket.send(msg, to.peer.port, to.peer.address);
    });
  }

  #port(side: Side): number {
    return (side.socket.address() as AddressInfo).port;
  }

  /**
   * The offer as the answerer must see it (the offerer's one UDP candidate replaced by the relay) or the
   * answer as the offerer must see it (its UDP candidate, if any, replaced likewise). Throws unless the
   * offer has exactly one UDP candidate and the answer at most one.
   */
  rewrite(sdp: string, from: "offer" | "answer"): string {
    const udp = sdpCandidates(sdp).filter((c) => c.transport === "udp");
    if (from === "answer" && udp.length === 0) return sdp;
    if (udp.length !== 1) {
      throw new Error(`the ${from} has ${udp.length} UDP candidates, the relay takes one`);
    }
    const [c] = udp;
    // The offerer's packets arrive at `a` from its candidate; the answerer's at `b` from its.
    const near = from === "offer" ? this.#a : this.#b;
    const far = from === "offer" ? this.#b : this.#a;
    near.peer = { address: c.address, port: c.port };
    const line = c.line.replace(` ${c.address} ${c.port} typ`, ` 127.0.0.1 ${this.#port(far)} typ`);
    return sdp.replace(c.line, line);
  }

  /** Drops every datagram, both ways, for `ms`; resolves when the network is back. */
  block(ms: number): Promise<void> {
    this.#blockedUntil = performance.now() + ms;
    return new Promise((r) => setTimeout(r, ms));
  }

  close(): void {
    this.#a.socket.close();
    this.#b.socket.close();
  }
}
