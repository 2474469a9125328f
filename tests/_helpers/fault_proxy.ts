/**
 * A fault-injecting TCP proxy for the sink tests (node:net, 127.0.0.1, port 0): it sits between a sink
 * and an in-test peer, opens one upstream connection per client connection, and on each connection
 * applies a {@linkcode Fault} from its plan — forward everything, cut the connection after exactly `at`
 * bytes, stall (stop reading) after `at` bytes, or cut and then refuse connections for a while (its
 * listener closed, reopened after the sink announced a number of reconnection attempts). Fault `n` of the
 * plan goes to the `n`th connection that reached the peer (a client whose peer refused is reset and not
 * counted). Plans come from
 * {@linkcode randomFaults} with a seed, so a failing run can be replayed.
 * @module
 */

import * as net from "node:net";

/** What the proxy does to one connection. */
export type Fault =
  | { kind: "pass" }
  /** Forward exactly `at` bytes to the peer, then close the peer's side and reset the client's. */
  | { kind: "cut"; at: number; refuse?: number }
  /** Forward `at` bytes, then stop reading from the client until it gives up (a stalled peer). */
  | { kind: "stall"; at: number };

/** One client connection as the proxy saw it. */
export interface ProxiedConnection {
  index: number;
  fault: Fault;
  /** Bytes passed on to the peer. */
  forwarded: number;
  /** Bytes read from the client and thrown away (after a cut or stall point). */
  discarded: number;
  /** The peer could not be reached: the client was reset. */
  upstreamFailed: boolean;
  /** The fault was applied (the cut or stall point was reached). */
  faulted: boolean;
  closed: boolean;
}

/** Small deterministic PRNG (mulberry32): numbers in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Options of {@linkcode randomFaults}. */
export interface RandomFaultsOptions {
  seed: number;
  /** Faulty connections; the ones after them pass. */
  count: number;
  /** Cut and stall points are drawn from [minOffset, maxOffset). */
  minOffset?: number;
  maxOffset: number;
  /** Indexes of connections that stall instead of being cut. */
  stalls?: number[];
  /**
   * Indexes of connections after whose cut the proxy refuses connections, each with the number of
   * reconnection notices ({@linkcode FaultProxy.attempted}) to wait before reopening: `n - 1` refused attempts.
   */
  refusals?: Record<number, number>;
}

/** A seeded plan: `count` faults at random byte offsets, with the given stalls and refusals. */
export function randomFaults(options: RandomFaultsOptions): Fault[] {
  const random = prng(options.seed);
  const min = options.minOffset ?? 1;
  const faults: Fault[] = [];
  for (let i = 0; i < options.count; i++) {
    const at = min + Math.floor(random() * (options.maxOffset - min));
    if (options.stalls?.includes(i)) faults.push({ kind: "stall", at });
    else faults.push({ kind: "cut", at, refuse: options.refusals?.[i] });
  }
  return faults;
}

interface Pair {
  record: ProxiedConnection;
  client: net.Socket;
  upstream: net.Socket | undefined;
}

function reset(socket: net.Socket) {
  const r = socket as net.Socket & { resetAndDestroy?: () => void };
  try {
    if (r.resetAndDestroy && !socket.destroyed) r.resetAndDestroy();
    else socket.destroy();
  } catch {
    socket.destroy();
  }
}

/** The proxy. Close it with {@linkcode FaultProxy.close}: it destroys every socket it holds. */
export class FaultProxy {
  readonly connections: ProxiedConnection[] = [];
  /** Listening port (the same after a refusal). */
  port = 0;
  /** Connections refused so far would be made by the sink: how many reconnect notices to wait. */
  #refuseLeft = 0;
  #server: net.Server | undefined;
  #pairs = new Set<Pair>();
  #upstreams = new Set<net.Socket>();
  #reached = 0;
  #faults: (index: number) => Fault;
  #target: { host: string; port: number };
  #closed = false;
  #reopening: Promise<void> | undefined;

  private constructor(target: { host: string; port: number }, faults: Fault[] | ((index: number) => Fault)) {
    this.#target = target;
    this.#faults = typeof faults === "function" ? faults : (i) => faults[i] ?? { kind: "pass" };
  }

  /** Starts a proxy to `target` on 127.0.0.1 (a free port). */
  static async start(
    target: { host?: string; port: number },
    faults: Fault[] | ((index: number) => Fault),
  ): Promise<FaultProxy> {
    const p = new FaultProxy({ host: target.host ?? "127.0.0.1", port: target.port }, faults);
    await p.#listen();
    return p;
  }

  /** True while connections are refused. */
  get refusing(): boolean {
    return this.#server === undefined && !this.#closed;
  }

  /**
   * Call from the sink's `reconnect` listener: while refusing, counts the attempts announced and reopens
   * the listener once the planned number of them has been refused.
   */
  attempted(): void {
    if (!this.refusing || this.#reopening) return;
    if (--this.#refuseLeft > 0) return;
    this.#reopening = this.#listen().finally(() => (this.#reopening = undefined));
  }

  #listen(): Promise<void> {
    const server = net.createServer({ allowHalfOpen: true }, (client) => this.#accept(client));
    return new Promise<void>((resolve, reject) => {
      let tries = 0;
      const attempt = () => {
        server.once("error", (err: Error & { code?: string }) => {
          // The old listener's port may take a moment to be free again; bounded retries.
          if (err.code === "EADDRINUSE" && ++tries < 50) setTimeout(attempt, 10);
          else reject(err);
        });
        server.listen(this.port, "127.0.0.1", () => {
          this.port = (server.address() as net.AddressInfo).port;
          if (this.#closed) {
            server.close();
            return resolve();
          }
          this.#server = server;
          resolve();
        });
      };
      attempt();
    });
  }

  /** Closes the listener: connections are refused until {@linkcode attempted} reopens it (or `reopen()`). */
  async refuse(attempts: number): Promise<void> {
    this.#refuseLeft = attempts;
    const server = this.#server;
    this.#server = undefined;
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }

  /** Opens the listener again now. */
  async reopen(): Promise<void> {
    if (this.#reopening) return this.#reopening;
    if (!this.#server && !this.#closed) await this.#listen();
  }

  #accept(client: net.Socket) {
    const index = this.connections.length;
    const record: ProxiedConnection = {
      index,
      // Decided once the peer answers: the plan counts the connections that reached the peer.
      fault: { kind: "pass" },
      forwarded: 0,
      discarded: 0,
      upstreamFailed: false,
      faulted: false,
      closed: false,
    };
    this.connections.push(record);
    // A new connection means the client gave up on the stalled ones: let them go.
    for (const p of this.#pairs) if (p.record.fault.kind === "stall" && p.record.faulted) this.#drop(p);
    const pair: Pair = { record, client, upstream: undefined };
    this.#pairs.add(pair);
    client.pause();
    client.on("error", () => {});
    client.on("close", () => this.#drop(pair));
    const upstream = net.connect({ host: this.#target.host, port: this.#target.port, allowHalfOpen: true });
    pair.upstream = upstream;
    this.#upstreams.add(upstream);
    upstream.on("error", () => {
      if (!record.faulted) record.upstreamFailed = true;
      this.#drop(pair);
    });
    upstream.once("connect", () => {
      if (record.closed) return;
      record.fault = this.#faults(this.#reached++);
      client.resume();
    });
    // What the peer sends back (its FIN answering ours) goes to the client.
    upstream.on("data", (chunk: Uint8Array) => {
      if (!record.faulted && !client.destroyed) client.write(chunk);
    });
    let answered = false;
    upstream.on("end", () => {
      if (record.faulted || client.destroyed) return;
      answered = true;
      client.end();
    });
    upstream.on("close", () => {
      this.#upstreams.delete(upstream);
      // After a clean end the client's socket closes by itself once our FIN is through: no reset.
      if (!answered) this.#drop(pair);
    });
    client.on("data", (chunk: Uint8Array) => this.#forward(pair, chunk));
    client.on("end", () => {
      if (!record.faulted) upstream.end();
    });
  }

  #forward(pair: Pair, chunk: Uint8Array) {
    const { record, client } = pair;
    const upstream = pair.upstream!;
    const fault = record.fault;
    if (record.faulted) {
      record.discarded += chunk.length;
      return;
    }
    if (fault.kind === "pass" || record.forwarded + chunk.length < fault.at) {
      record.forwarded += chunk.length;
      // Backpressure through the proxy: stop reading the client while the peer is behind.
      if (!upstream.write(chunk)) {
        client.pause();
        upstream.once("drain", () => {
          if (!record.faulted && !record.closed) client.resume();
        });
      }
      return;
    }
    const take = fault.at - record.forwarded;
    record.forwarded += take;
    record.discarded += chunk.length - take;
    record.faulted = true;
    if (fault.kind === "stall") {
      if (take > 0) upstream.write(chunk.subarray(0, take));
      client.pause();
      return;
    }
    // Cut: the peer gets exactly `at` bytes and a FIN; the client a reset.
    upstream.end(chunk.subarray(0, take));
    reset(client);
    if (fault.refuse) void this.refuse(fault.refuse);
  }

  #drop(pair: Pair) {
    if (!this.#pairs.delete(pair)) return;
    pair.record.closed = true;
    reset(pair.client);
    const up = pair.upstream;
    // Let the peer have what was forwarded: end rather than reset, then make sure it goes.
    if (up && !up.destroyed) {
      if (pair.record.faulted || pair.record.upstreamFailed) up.end();
      else up.destroy();
    }
  }

  /** Stops listening and destroys every connection. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#reopening?.catch(() => {});
    for (const p of [...this.#pairs]) this.#drop(p);
    for (const u of this.#upstreams) u.destroy();
    this.#upstreams.clear();
    const server = this.#server;
    this.#server = undefined;
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }
}
