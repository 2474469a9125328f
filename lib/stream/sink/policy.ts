/**
 * What a disconnect policy is: the part of a sink that decides what happens to a packet while the peer
 * is gone or slower than real time, and what a lost or new connection means for what is queued. The
 * sink's core ({@linkcode SinkCore}) owns the link; a policy only sees it through {@linkcode PolicyContext}.
 * @module
 */

import type { Packet } from "../../types.ts";
import type { DisconnectPolicy, SinkEvents } from "../packet_sink.ts";

/** A packet waiting in a sink, or kept for resending. */
export interface Entry {
  packet: Packet;
  size: number;
  /** Block policy: the writer waits for this. */
  sent?: { resolve(): void; reject(e: unknown): void };
}

/** A key frame and the packets after it, kept for resending on a new connection. */
export interface Group {
  entries: Entry[];
  bytes: number;
  /** Value of the sent-bytes counter after the group's last byte went to the current link. */
  endOffset: number;
}

/** Why packets were discarded. */
export type DropReason = SinkEvents["drop"]["reason"];

/** What a policy may see and do of the sink it belongs to. */
export interface PolicyContext {
  /** A link is open and not known to be lost. */
  readonly connected: boolean;
  /** Connections opened so far. */
  readonly connections: number;
  /** Packets are discarded until the next key frame (a group was cut short). */
  dropUntilKey: boolean;
  /** The current link has not had its key frame yet. */
  readonly linkNeedsKey: boolean;
  /** The next packet to send is a key frame. */
  readonly queueStartsWithKey: boolean;
  /** Queues a packet for the link; `bounded` applies `maxBufferBytes` / `maxBufferDuration`. */
  enqueue(entry: Entry, bounded: boolean): void;
  /** Discards packets, counting them and telling listeners. */
  drop(entries: Entry[], reason: DropReason): void;
  /** Empties the queue of packets not sent yet and returns them. */
  takeQueue(): Entry[];
  /** Asks the encoder for a key frame (`onKeyFrameNeeded`). */
  requestKeyFrame(reason: SinkEvents["keyframe"]["reason"]): void;
  /** Counts a reinit and tells listeners. */
  reinitStarted(): void;
  /** Fails the sink for good. */
  fail(error: Error): void;
}

/** One disconnect policy: `block`, `buffer`, `drop` or `reinit`. */
export interface SinkPolicy {
  readonly name: DisconnectPolicy;
  /** Defaults of `maxBufferBytes` and `maxBufferDuration` (seconds). */
  readonly defaultBounds: { bytes: number; seconds: number };
  /** Sent key-frame groups are kept and resent on a new connection (when the transport reconnects). */
  readonly retains: boolean;
  /** A packet from the writer: resolves when the writer may go on. */
  write(sink: PolicyContext, entry: Entry): Promise<void>;
  /** The link was lost (before the sink reconnects). */
  linkLost(sink: PolicyContext): void;
  /** A new link is open: its header and the kept groups were written. */
  linkStarted(sink: PolicyContext): void;
}

/** One mebibyte. */
export const MiB = 1 << 20;

const done = Promise.resolve();

/**
 * The writer's side of the policies that never hold the writer (`buffer`, `drop`, `reinit`): skip to the
 * next key frame after a cut, discard while the peer is gone when `dropWhileGone`, queue within the bound.
 */
export function admitLive(sink: PolicyContext, entry: Entry, dropWhileGone: boolean): Promise<void> {
  if (sink.dropUntilKey && !entry.packet.keyFrame) {
    sink.drop([entry], "no-keyframe");
    return done;
  }
  if (dropWhileGone && !sink.connected) {
    sink.dropUntilKey = true;
    sink.drop([entry], "disconnected");
    return done;
  }
  sink.dropUntilKey = false;
  sink.enqueue(entry, true);
  return done;
}

/** A new connection of a policy that may have skipped packets: it must start at a key frame, so ask for one. */
export function keyFrameForNewLink(sink: PolicyContext): void {
  if (sink.linkNeedsKey && !sink.queueStartsWithKey && (sink.dropUntilKey || sink.connections > 1)) {
    sink.requestKeyFrame("connected");
  }
}

/** Discards what is queued when the link is lost, and skips to the next key frame. */
export function dropQueueOnLoss(sink: PolicyContext): void {
  sink.drop(sink.takeQueue(), "disconnected");
  sink.dropUntilKey = true;
}
