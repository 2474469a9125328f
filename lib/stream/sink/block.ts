/**
 * `block`: nothing is lost. The writer — and through backpressure the encoder and the source — waits
 * while the peer is gone or slow; sent key-frame groups are kept until enough bytes followed them, and a
 * new connection resends from the oldest kept key frame.
 * @module
 */

import { MiB, type SinkPolicy } from "./policy.ts";

/** The `block` policy (the default). */
export function blockPolicy(): SinkPolicy {
  return {
    name: "block",
    defaultBounds: { bytes: 16 * MiB, seconds: 10 },
    retains: true,
    write(sink, entry) {
      const sent = new Promise<void>((resolve, reject) => (entry.sent = { resolve, reject }));
      sink.enqueue(entry, false);
      return sent;
    },
    linkLost() {},
    linkStarted() {},
  };
}
