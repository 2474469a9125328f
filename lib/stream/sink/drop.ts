/**
 * `drop`: live first. While the peer is gone every packet is discarded and a key frame is requested at
 * once, so that the next connection starts with a fresh picture; nothing is kept for resending.
 * @module
 */

import { admitLive, dropQueueOnLoss, keyFrameForNewLink, MiB, type SinkPolicy } from "./policy.ts";

/** The `drop` policy. */
export function dropPolicy(): SinkPolicy {
  return {
    name: "drop",
    defaultBounds: { bytes: MiB, seconds: 2 },
    retains: false,
    write: (sink, entry) => admitLive(sink, entry, true),
    linkLost(sink) {
      dropQueueOnLoss(sink);
      sink.requestKeyFrame("disconnected");
    },
    linkStarted: keyFrameForNewLink,
  };
}
