/**
 * `buffer`: the writer never waits. Packets queue while the peer is gone or slow, up to
 * `maxBufferBytes` / `maxBufferDuration`; past the bound the oldest groups go, and a group cut short is
 * dropped to the next key frame (which is requested). Kept groups are resent on a new connection.
 * @module
 */

import { admitLive, keyFrameForNewLink, MiB, type SinkPolicy } from "./policy.ts";

/** The `buffer` policy. */
export function bufferPolicy(): SinkPolicy {
  return {
    name: "buffer",
    defaultBounds: { bytes: 16 * MiB, seconds: 10 },
    retains: true,
    write: (sink, entry) => admitLive(sink, entry, false),
    linkLost() {},
    linkStarted: keyFrameForNewLink,
  };
}
