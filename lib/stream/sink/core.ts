/**
 * The core of every sink: one task owns the link, connects with backoff and jitter, writes the format's
 * header and what is kept for resending, watches for a peer that stopped reading, and ends the stream
 * only when the peer confirmed it. What happens to packets while the peer is gone is the policy's
 * ({@linkcode SinkPolicy}: `block.ts`, `buffer.ts`, `drop.ts`, `reinit.ts`).
 *
 * Why `block` and `buffer` keep more than one keyframe group: a write that succeeded only means the
 * kernel has the bytes (docs/transport.md). A group stays until `retainBytes` have followed it on the same
 * connection — more than the socket buffers hold — and a new connection resends from the oldest kept key
 * frame.
 * @module
 */

import { EncoderError } from "../../errors.ts";
import {
  asError,
  type Link,
  type LinkError,
  linkError,
  sleep,
  type Transport,
} from "../../transport/link.ts";
import type { Packet } from "../../types.ts";
import { type Backoff, backoff } from "../backoff.ts";
import type { StreamFormat } from "../format.ts";
import type { DisconnectPolicy, PacketSinkOptions, SinkEvents, SinkStats } from "../packet_sink.ts";
import { resolveFormat } from "../packet_sink.ts";
import { sinkPolicy } from "./policies.ts";
import { type Entry, type Group, MiB, type PolicyContext, type SinkPolicy } from "./policy.ts";

function positive(name: string, v: number | undefined, fallback: number): number {
  const x = v ?? fallback;
  if (typeof x !== "number" || !(x > 0)) {
    throw new EncoderError("INVALID_CONFIG", `${name} must be a positive number, got ${v}`);
  }
  return x;
}

/** Owns the link: connects with backoff, writes, resends what is kept, ends cleanly; the policy decides the rest. */
export class SinkCore {
  readonly transport: Transport;
  readonly format: StreamFormat;
  readonly policy: DisconnectPolicy;
  #policy: SinkPolicy;
  readonly backoff: Backoff;
  readonly stats: SinkStats = {
    state: "connecting",
    connections: 0,
    bytes: 0,
    packets: 0,
    resent: 0,
    dropped: 0,
    droppedBytes: 0,
    buffered: 0,
    bufferedBytes: 0,
    keyFramesRequested: 0,
    reconnects: 0,
    reinits: 0,
  };
  #listeners = new Map<string, Set<(e: never) => void>>();
  #maxBufferBytes: number;
  #maxBufferDuration: number;
  #retainBytes: number;
  #maxRetainBytes: number;
  #writeTimeout: number;
  #connectTimeout: number;
  #secondsPerUnit: number;
  #onKeyFrameNeeded: (() => void) | undefined;
  #retaining: boolean;

  #queue: Entry[] = [];
  #queueBytes = 0;
  #retained: Group[] = [];
  #retainedBytes = 0;
  #link: Link | undefined;
  #lostCause: LinkError | undefined;
  #connectedAt = 0;
  #linkNeedsKey = true;
  #dropUntilKey = false;
  #sentBytes = 0;
  #linkPackets = 0;
  #closing = false;
  #error: Error | undefined;
  #wake: (() => void) | undefined;
  #finished: Promise<void>;
  #abort = new AbortController();
  #watchdog: ReturnType<typeof setInterval> | undefined;
  #errorStream: ((e: unknown) => void) | undefined;

  constructor(transport: Transport, options: PacketSinkOptions) {
    this.transport = transport;
    this.format = resolveFormat(options);
    this.#policy = sinkPolicy(options);
    this.policy = this.#policy.name;
    this.backoff = backoff(transport.reconnects ? options : { ...options, maxAttempts: 0 });
    const bounds = this.#policy.defaultBounds;
    this.#maxBufferBytes = positive("maxBufferBytes", options.maxBufferBytes, bounds.bytes);
    this.#maxBufferDuration = positive("maxBufferDuration", options.maxBufferDuration, bounds.seconds);
    this.#retainBytes = positive("retainBytes", options.retainBytes, 16 * MiB);
    this.#maxRetainBytes = positive("maxRetainBytes", options.maxRetainBytes, 64 * MiB);
    this.#writeTimeout = positive("writeTimeout", options.writeTimeout, 10_000);
    this.#connectTimeout = positive("connectTimeout", options.connectTimeout, 10_000);
    const tb = options.timeBase
      ?? (options.info ? { num: options.info.fps.den, den: options.info.fps.num } : undefined);
    this.#secondsPerUnit = tb ? tb.num / tb.den : 1 / 30;
    this.#onKeyFrameNeeded = options.onKeyFrameNeeded;
    this.#retaining = transport.reconnects && this.#policy.retains;
    this.#context = this.#makeContext();
    const signal = options.signal;
    if (signal) {
      const onAbort = () =>
        this.fail(
          new EncoderError("ABORTED", `The sink to ${transport.name} was aborted`, { cause: signal.reason }),
        );
      if (signal.aborted) queueMicrotask(onAbort);
      else signal.addEventListener("abort", onAbort, { once: true });
    }
    this.#finished = this.#run();
    this.#finished.catch(() => {});
  }

  /** Called from the stream's start(): lets the core error the stream when it fails between writes. */
  bindStream(error: (e: unknown) => void) {
    this.#errorStream = error;
  }

  on<K extends keyof SinkEvents>(type: K, listener: (event: SinkEvents[K]) => void): () => void {
    let set = this.#listeners.get(type);
    if (!set) this.#listeners.set(type, set = new Set());
    set.add(listener as (e: never) => void);
    return () => set!.delete(listener as (e: never) => void);
  }

  #emit<K extends keyof SinkEvents>(type: K, event: SinkEvents[K]) {
    for (const l of this.#listeners.get(type) ?? []) {
      try {
        (l as (e: SinkEvents[K]) => void)(event);
      } catch (e) {
        // A throwing listener must not break the transport; report it without stopping.
        queueMicrotask(() => {
          throw e;
        });
      }
    }
  }

  #updateBuffered() {
    this.stats.buffered = this.#queue.length + this.#retained.reduce((n, g) => n + g.entries.length, 0);
    this.stats.bufferedBytes = this.#queueBytes + this.#retainedBytes;
  }

  #notify() {
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }

  #requestKeyFrame(reason: SinkEvents["keyframe"]["reason"]) {
    if (!this.#onKeyFrameNeeded) return;
    this.stats.keyFramesRequested++;
    this.#emit("keyframe", { reason });
    try {
      this.#onKeyFrameNeeded();
    } catch { /* the encoder may be closed already */ }
  }

  #dropped(entries: Entry[], reason: SinkEvents["drop"]["reason"]) {
    if (!entries.length) return;
    const bytes = entries.reduce((n, e) => n + e.size, 0);
    this.stats.dropped += entries.length;
    this.stats.droppedBytes += bytes;
    for (const e of entries) e.sent?.resolve();
    this.#emit("drop", { packets: entries.length, bytes, reason });
  }

  // ---- the writer's side ----

  write(packet: Packet): Promise<void> {
    if (this.#error) return Promise.reject(this.#error);
    if (this.#closing) {
      return Promise.reject(new EncoderError("CLOSED", `The sink to ${this.transport.name} is closed`));
    }
    return this.#policy.write(this.#context, { packet, size: packet.data.length });
  }

  /** What a policy may see and do of this sink. */
  #context: PolicyContext;

  #makeContext(): PolicyContext {
    // deno-lint-ignore no-this-alias
    const core = this;
    return {
      get connected() {
        return Boolean(core.#link && !core.#lostCause);
      },
      get connections() {
        return core.stats.connections;
      },
      get dropUntilKey() {
        return core.#dropUntilKey;
      },
      set dropUntilKey(v: boolean) {
        core.#dropUntilKey = v;
      },
      get linkNeedsKey() {
        return core.#linkNeedsKey;
      },
      get queueStartsWithKey() {
        return Boolean(core.#queue[0]?.packet.keyFrame);
      },
      enqueue: (entry, bounded) => {
        this.#queue.push(entry);
        this.#queueBytes += entry.size;
        if (bounded) this.#enforceBound();
        this.#updateBuffered();
        this.#notify();
      },
      drop: (entries, reason) => this.#dropped(entries, reason),
      takeQueue: () => {
        const queued = this.#queue.splice(0);
        this.#queueBytes = 0;
        this.#updateBuffered();
        return queued;
      },
      requestKeyFrame: (reason) => this.#requestKeyFrame(reason),
      reinitStarted: () => {
        this.stats.reinits++;
        this.#emit("reinit", { connection: this.stats.connections });
      },
      fail: (e) => this.fail(e),
    };
  }

  #overBound(): boolean {
    if (this.#queueBytes + this.#retainedBytes > this.#maxBufferBytes) return true;
    const first = this.#retained[0]?.entries[0] ?? this.#queue[0];
    const last = this.#queue.at(-1) ?? this.#retained.at(-1)?.entries.at(-1);
    if (!first || !last) return false;
    const span = (last.packet.timestamp + (last.packet.duration || 0) - first.packet.timestamp)
      * this.#secondsPerUnit;
    return span > this.#maxBufferDuration;
  }

  /** `buffer` and `drop`: past the bound, let go of the oldest groups; if one unfinished group is over it, drop it to the next key frame. */
  #enforceBound() {
    while (this.#overBound()) {
      if (this.#retained.length) {
        const released = this.#releaseOldestGroup();
        // While the peer is gone a released group will not be resent: the peer may never have read it,
        // so it counts as dropped (it may have arrived before the link died; nothing can tell).
        if (!this.#link) this.#dropped(released.entries, "buffer-full");
        continue;
      }
      const next = this.#queue.findIndex((e, i) => i > 0 && e.packet.keyFrame);
      const cut = next > 0 ? next : this.#queue.length;
      const evicted = this.#queue.splice(0, cut);
      this.#queueBytes -= evicted.reduce((n, e) => n + e.size, 0);
      // The link may be in the middle of the evicted group: it must skip to a key frame now.
      this.#linkNeedsKey = true;
      this.#dropped(evicted, "buffer-full");
      if (next <= 0) {
        this.#dropUntilKey = true;
        this.#requestKeyFrame("dropped");
        return;
      }
    }
  }

  #releaseOldestGroup(): Group {
    const g = this.#retained.shift()!;
    this.#retainedBytes -= g.bytes;
    return g;
  }

  close(): Promise<void> {
    if (this.#error) return Promise.reject(this.#error);
    this.#closing = true;
    this.#notify();
    return this.#finished;
  }

  abort(reason: unknown): Promise<void> {
    this.fail(
      new EncoderError("ABORTED", `The sink to ${this.transport.name} was aborted`, { cause: reason }),
    );
    return this.#finished.catch(() => {});
  }

  fail(error: Error) {
    if (this.#error || this.stats.state === "closed") return;
    this.#error = error;
    this.stats.state = "failed";
    this.#abort.abort();
    this.#link?.destroy(error);
    this.#stopWatchdog();
    for (const e of this.#queue.splice(0)) e.sent?.reject(error);
    for (const g of this.#retained.splice(0)) for (const e of g.entries) e.sent?.reject(error);
    this.#queueBytes = this.#retainedBytes = 0;
    this.#updateBuffered();
    this.#notify();
    this.#emit("error", { error });
    this.#errorStream?.(error);
  }

  // ---- the pump: one task owns the link ----

  async #run(): Promise<void> {
    await Promise.resolve();
    try {
      await this.#connect(undefined);
      while (true) {
        if (this.#error) throw this.#error;
        if (this.#lostCause) {
          await this.#connect(this.#lostCause);
          continue;
        }
        const entry = this.#queue[0];
        if (!entry) {
          if (this.#closing) {
            if (await this.#finish()) return;
            continue;
          }
          await new Promise<void>((r) => (this.#wake = r));
          continue;
        }
        this.#queue.shift();
        this.#queueBytes -= entry.size;
        if (this.#linkNeedsKey && !entry.packet.keyFrame) {
          this.#dropped([entry], "no-keyframe");
          this.#updateBuffered();
          continue;
        }
        this.#linkNeedsKey = false;
        if (this.#retaining) this.#retain(entry);
        this.#updateBuffered();
        try {
          await this.#send(entry);
        } catch (e) {
          if (!this.#retaining) this.#dropped([entry], "disconnected");
          this.#lostCause ??= asError(e);
          continue;
        }
        entry.sent?.resolve();
      }
    } catch (e) {
      this.fail(asError(e));
      throw this.#error;
    } finally {
      this.#stopWatchdog();
    }
  }

  #retain(entry: Entry) {
    const last = this.#retained.at(-1);
    if (entry.packet.keyFrame || !last) {
      this.#retained.push({ entries: [entry], bytes: entry.size, endOffset: 0 });
    } else {
      last.entries.push(entry);
      last.bytes += entry.size;
    }
    this.#retainedBytes += entry.size;
    // Let go of groups that enough bytes have followed on this connection, and keep under the cap.
    while (
      this.#retained.length > 1
      && (this.#sentBytes - this.#retained[0].endOffset >= this.#retainBytes
        || this.#retainedBytes > this.#maxRetainBytes)
    ) this.#releaseOldestGroup();
  }

  async #send(entry: Entry) {
    const out = this.format.packet(entry.packet);
    const bytes = out instanceof Uint8Array ? out : await out;
    // A container holding packets for its next fragment answers nothing yet: send no empty message.
    if (bytes.length) await this.#writeRaw(bytes);
    this.#linkPackets++;
    this.stats.packets++;
    const last = this.#retained.at(-1);
    if (last && last.entries.includes(entry)) last.endOffset = this.#sentBytes;
  }

  async #writeRaw(bytes: Uint8Array) {
    const link = this.#link;
    if (!link || this.#lostCause) throw this.#lostCause ?? linkError("ENOTCONN", "Not connected");
    this.#sentBytes += bytes.length;
    this.stats.bytes += bytes.length;
    await link.write(bytes);
  }

  /** Opens a link (retrying per the backoff schedule), then writes the header and resends what is kept. */
  async #connect(cause: LinkError | undefined) {
    let attempt = 0;
    if (cause) {
      const connection = this.stats.connections;
      this.#emit("disconnect", { connection, cause });
      // A connection that died young does not end the outage: keep counting its attempts.
      if (performance.now() - this.#connectedAt < Math.max(1000, this.backoff.initialDelay)) {
        attempt = this.#attempt;
      }
      this.#dropLink(cause);
    }
    while (true) {
      if (this.#error) throw this.#error;
      if (cause) {
        if (!this.transport.reconnects) {
          throw new EncoderError("IO_ERROR", `Writing to ${this.transport.name} failed: ${cause.message}`, {
            cause,
          });
        }
        attempt++;
        this.#attempt = attempt;
        if (attempt > this.backoff.maxAttempts) {
          throw new EncoderError(
            "IO_ERROR",
            `Could not reach ${this.transport.name} after ${
              attempt - 1
            } reconnection attempts: ${cause.message}`,
            { cause },
          );
        }
        const delay = this.backoff.delay(attempt);
        this.stats.state = "reconnecting";
        this.stats.reconnects++;
        this.#emit("reconnect", { attempt, delay, cause });
        await sleep(delay, this.#abort.signal);
        if (this.#error) throw this.#error;
      }
      let link: Link;
      try {
        link = await this.transport.connect({
          timeout: this.#connectTimeout,
          contentType: this.format.contentType,
        });
      } catch (e) {
        cause = asError(e);
        // A refused certificate or password comes back the same on every attempt.
        if (cause.final) {
          throw new EncoderError(
            "IO_ERROR",
            `Could not connect to ${this.transport.name}: ${cause.message}`,
            {
              cause,
            },
          );
        }
        continue;
      }
      if (this.#error) {
        link.destroy(this.#error);
        throw this.#error;
      }
      try {
        await this.#startLink(link);
        return;
      } catch (e) {
        cause = this.#lostCause ?? asError(e);
        this.#emit("disconnect", { connection: this.stats.connections, cause });
        this.#dropLink(cause);
      }
    }
  }
  #attempt = 0;

  #dropLink(cause: LinkError) {
    this.#link?.destroy(cause);
    this.#link = undefined;
    this.#lostCause = undefined;
    this.#stopWatchdog();
    this.#policy.linkLost(this.#context);
    this.#updateBuffered();
  }

  async #startLink(link: Link) {
    this.#link = link;
    this.#lostCause = undefined;
    this.#connectedAt = performance.now();
    this.#linkPackets = 0;
    this.stats.connections++;
    this.stats.state = "connected";
    this.#linkNeedsKey = true;
    link.lost.then((cause) => {
      if (this.#link === link && !this.#lostCause) {
        this.#lostCause = cause;
        this.#notify();
      }
    });
    this.#startWatchdog(link);
    const header = this.format.header();
    await this.#writeRaw(header instanceof Uint8Array ? header : await header);
    let resent = 0;
    for (const group of this.#retained) {
      for (const entry of group.entries) {
        await this.#send(entry);
        resent++;
        entry.sent?.resolve();
      }
      group.endOffset = this.#sentBytes;
    }
    if (resent) this.#linkNeedsKey = false;
    this.stats.resent += this.stats.connections > 1 ? resent : 0;
    this.#policy.linkStarted(this.#context);
    this.#emit("connect", { connection: this.stats.connections, resent });
  }

  /** Clean end: trailer, FIN, and the peer's answer. False when the link failed and the tail was resent. */
  async #finish(): Promise<boolean> {
    const link = this.#link!;
    this.stats.state = "ending";
    try {
      const end = this.format.end?.();
      const trailer = end instanceof Promise ? await end : end;
      if (trailer?.length) await this.#writeRaw(trailer);
      const patch = this.format.finalize?.(this.#linkPackets);
      if (patch && link.patch) await link.patch(patch.offset, patch.bytes);
      const timedOut = Symbol();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const result = await Promise.race([
        link.end(),
        link.lost.then((c) => Promise.reject(c)),
        new Promise<symbol>((r) => (timer = setTimeout(() => r(timedOut), this.#writeTimeout))),
      ]).finally(() => clearTimeout(timer));
      if (result === timedOut) {
        throw linkError(
          "ETIMEDOUT",
          `The peer did not close the connection within ${this.#writeTimeout} ms of the end`,
        );
      }
    } catch (e) {
      if (this.#error) throw this.#error;
      const cause = asError(e);
      // A peer that never answers our FIN would have us reconnect for ever: count those ends apart.
      if (cause.code === "ETIMEDOUT" && ++this.#endAttempts > Math.max(1, this.backoff.maxAttempts)) {
        throw new EncoderError(
          "IO_ERROR",
          `Could not end the stream to ${this.transport.name}: ${cause.message}`,
          { cause },
        );
      }
      this.#lostCause = cause;
      return false;
    }
    this.#stopWatchdog();
    this.#link = undefined;
    this.#retained = [];
    this.#retainedBytes = 0;
    this.#updateBuffered();
    this.stats.state = "closed";
    this.#emit("end", {});
    return true;
  }
  #endAttempts = 0;

  #startWatchdog(link: Link) {
    this.#stopWatchdog();
    let last = link.progress().flushed;
    let since = performance.now();
    const period = Math.max(20, Math.min(1000, this.#writeTimeout / 4));
    this.#watchdog = setInterval(() => {
      const { pending, flushed } = link.progress();
      const now = performance.now();
      if (flushed !== last || pending === 0) {
        last = flushed;
        since = now;
        return;
      }
      if (now - since >= this.#writeTimeout) {
        link.destroy(
          linkError(
            "ETIMEDOUT",
            `Writes to ${this.transport.name} made no progress for ${this.#writeTimeout} ms: the peer stopped reading`,
          ),
        );
      }
    }, period);
  }

  #stopWatchdog() {
    if (this.#watchdog !== undefined) clearInterval(this.#watchdog);
    this.#watchdog = undefined;
  }
}
