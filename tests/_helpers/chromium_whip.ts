/**
 * A WHIP endpoint (RFC 9725) on 127.0.0.1 whose answerer is an `RTCPeerConnection` in a chromium page:
 * node:http serves the page at `/`, and a POST to `/whip` hands the offer to the page (playwright's
 * `evaluate`), which answers with its candidates cut to UDP on 127.0.0.1 (after gathering completes: no
 * trickle) and plays the received track in a `<video>`. DELETE takes a last `getStats()` and closes the
 * page's connection. An optional {@linkcode UdpRelay} is put between the two peers by rewriting the
 * candidates of both descriptions, so a test can cut the network.
 * @module
 */
import { Buffer } from "node:buffer";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import type { Page } from "playwright-core";
import type { UdpRelay } from "./udp_relay.ts";

/** One entry of an `RTCStatsReport`, as plain data. */
export type Stat = Record<string, unknown> & { id: string; type: string };

const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>WHIP receiver</title>
<video id="view" muted autoplay playsinline></video>
<script>
const state = { pcs: [], tracks: 0, errors: [] };
globalThis.whip = state;
// Only UDP host candidates on 127.0.0.1 are signalled: the sink never learns the other addresses.
function loopbackOnly(sdp) {
  return sdp.split("\\r\\n").filter((line) => {
    const m = /^a=candidate:\\S+ \\d+ (\\S+) \\d+ (\\S+) \\d+ typ/i.exec(line);
    return !m || (m[1].toLowerCase() === "udp" && m[2] === "127.0.0.1");
  }).join("\\r\\n");
}
state.answer = async (offer) => {
  const pc = new RTCPeerConnection({ iceServers: [], bundlePolicy: "max-bundle", rtcpMuxPolicy: "require" });
  const index = state.pcs.push(pc) - 1;
  pc.ontrack = (e) => {
    state.tracks++;
    const view = document.getElementById("view");
    view.srcObject = new MediaStream([e.track]);
    view.play().catch((err) => state.errors.push("play: " + err));
  };
  await pc.setRemoteDescription({ type: "offer", sdp: offer });
  await pc.setLocalDescription(await pc.createAnswer());
  if (pc.iceGatheringState !== "complete") {
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, 5000);
      pc.addEventListener("icegatheringstatechange", () => {
        if (pc.iceGatheringState === "complete") {
          clearTimeout(timer);
          resolve();
        }
      });
    });
  }
  const sdp = pc.localDescription.sdp;
  return { index, sdp: loopbackOnly(sdp), gathered: sdp };
};
state.stats = async (index) => {
  const pc = state.pcs[index];
  if (!pc) return [];
  return [...(await pc.getStats()).values()].map((s) => JSON.parse(JSON.stringify(s)));
};
state.connected = (index) => state.pcs[index]?.connectionState === "connected";
state.close = (index) => state.pcs[index]?.close();
</script>
`;

/** One WHIP resource: the page's peer connection `index` and both descriptions as signalled. */
export interface ChromiumWhipSession {
  index: number;
  /** The offer as the page received it (after the relay's rewrite). */
  offer: string;
  /** The answer as the sink received it (filtered, and rewritten for the relay). */
  answer: string;
  /** Every candidate chromium gathered, before the page's filter. */
  gathered: string;
  deleted: boolean;
  /** `getStats()` just before DELETE closed the connection. */
  finalStats?: Stat[];
}

export class ChromiumWhipEndpoint {
  readonly sessions: ChromiumWhipSession[] = [];
  #server: http.Server;
  #page: Page;
  #relay: UdpRelay | undefined;
  port = 0;

  private constructor(page: Page, relay: UdpRelay | undefined) {
    this.#page = page;
    this.#relay = relay;
    this.#server = http.createServer((req, res) => {
      this.#handle(req, res).catch((e) => {
        if (!res.headersSent) res.writeHead(500);
        res.end(String((e as Error)?.message ?? e));
      });
    });
  }

  /** Serves the page, opens it in `page` and answers WHIP there. */
  static async start(page: Page, options: { relay?: UdpRelay } = {}): Promise<ChromiumWhipEndpoint> {
    const ep = new ChromiumWhipEndpoint(page, options.relay);
    await new Promise<void>((r) => ep.#server.listen(0, "127.0.0.1", () => r()));
    ep.port = (ep.#server.address() as AddressInfo).port;
    await page.goto(`http://127.0.0.1:${ep.port}/`);
    return ep;
  }

  get url(): string {
    return `whip+http://127.0.0.1:${this.port}/whip`;
  }

  /** `getStats()` of session `index`'s connection now (empty once closed). */
  stats(index = 0): Promise<Stat[]> {
    return this.#page.evaluate(
      (i) => (globalThis as unknown as { whip: { stats(i: number): Promise<Stat[]> } }).whip.stats(i),
      index,
    );
  }

  /**
   * Resolves when the page's connection `index` is up (ICE and DTLS done on chromium's side too, so
   * it can decrypt what comes); rejects after `ms`.
   */
  async receiverConnected(index = 0, ms = 10_000): Promise<void> {
    const end = performance.now() + ms;
    while (
      !await this.#page.evaluate(
        (i) => (globalThis as unknown as { whip: { connected(i: number): boolean } }).whip.connected(i),
        index,
      )
    ) {
      if (performance.now() > end) throw new Error(`chromium's connection ${index} not up within ${ms} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse) {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString();
    if (req.method === "GET" && req.url === "/") {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(PAGE);
      return;
    }
    if (req.method === "GET" && req.url === "/favicon.ico") {
      res.writeHead(204).end();
      return;
    }
    if (req.method === "POST" && req.url === "/whip") {
      if (req.headers["content-type"] !== "application/sdp") {
        res.writeHead(415).end("application/sdp expected");
        return;
      }
      const offer = this.#relay ? this.#relay.rewrite(body, "offer") : body;
      const got = await this.#page.evaluate(
        (sdp) =>
          (globalThis as unknown as {
            whip: { answer(s: string): Promise<{ index: number; sdp: string; gathered: string }> };
          }).whip.answer(sdp),
        offer,
      );
      const answer = this.#relay ? this.#relay.rewrite(got.sdp, "answer") : got.sdp;
      this.sessions.push({ index: got.index, offer, answer, gathered: got.gathered, deleted: false });
      res.writeHead(201, { "content-type": "application/sdp", location: `/whip/resource/${got.index}` })
        .end(answer);
      return;
    }
    const m = /^\/whip\/resource\/(\d+)$/.exec(req.url ?? "");
    const session = m && this.sessions.find((s) => s.index === Number(m[1]));
    if (req.method === "DELETE" && session) {
      session.finalStats = await this.stats(session.index);
      session.deleted = true;
      await this.#page.evaluate(
        (i) => (globalThis as unknown as { whip: { close(i: number): void } }).whip.close(i),
        session.index,
      );
      res.writeHead(200).end();
      return;
    }
    res.writeHead(404).end();
  }

  async close(): Promise<void> {
    await new Promise<void>((r) => {
      this.#server.close(() => r());
      this.#server.closeAllConnections?.();
    });
  }
}

/** The inbound video RTP stream of a stats report, with its codec and selected candidate pair. */
export function inboundVideo(stats: Stat[]): {
  inbound?: Stat;
  codec?: Stat;
  pair?: Stat;
  local?: Stat;
  remote?: Stat;
} {
  const byId = new Map(stats.map((s) => [s.id, s]));
  const inbound = stats.find((s) => s.type === "inbound-rtp" && s.kind === "video");
  const codec = inbound && byId.get(inbound.codecId as string);
  const transport = stats.find((s) => s.type === "transport");
  const pair = transport && byId.get(transport.selectedCandidatePairId as string);
  return {
    inbound,
    codec,
    pair,
    local: pair && byId.get(pair.localCandidateId as string),
    remote: pair && byId.get(pair.remoteCandidateId as string),
  };
}
