/**
 * `reinit`: like `drop` while the peer is gone, and when a connection returns after an interruption the
 * sink asks for a fresh encoder (`onReinit`), so the new connection's stream starts from scratch: a new
 * sequence header, a key frame first, timestamps continuing. Packets of the old encoder are dropped.
 * @module
 */

import { EncoderError } from "../../errors.ts";
import { asError } from "../../transport/link.ts";
import type { PacketSinkOptions } from "../packet_sink.ts";
import {
  admitLive,
  dropQueueOnLoss,
  type Entry,
  MiB,
  type PolicyContext,
  type SinkPolicy,
} from "./policy.ts";

/** The `reinit` policy; `onReinit` replaces the encoder and resolves with its first frame's timestamp. */
export function reinitPolicy(onReinit: NonNullable<PacketSinkOptions["onReinit"]>): SinkPolicy {
  /** Set while the fresh encoder's first packet is awaited; `from` once it is known. */
  let pending: { from: number | undefined; untilKey: boolean } | undefined;

  const failed = (sink: PolicyContext, e: unknown) =>
    sink.fail(new EncoderError("IO_ERROR", `onReinit failed: ${asError(e).message}`, { cause: e }));

  function start(sink: PolicyContext) {
    const state: { from: number | undefined; untilKey: boolean } = { from: undefined, untilKey: false };
    pending = state;
    sink.drop(sink.takeQueue(), "reinit");
    sink.reinitStarted();
    let answer: Promise<number | void> | number | void;
    try {
      answer = onReinit();
    } catch (e) {
      failed(sink, e);
      return;
    }
    Promise.resolve(answer).then(
      (from) => {
        if (typeof from === "number") state.from = from;
        else state.untilKey = true;
      },
      (e) => failed(sink, e),
    );
  }

  return {
    name: "reinit",
    defaultBounds: { bytes: MiB, seconds: 2 },
    retains: false,
    write(sink: PolicyContext, entry: Entry) {
      if (pending) {
        // Packets of the old encoder, or any packet while the fresh one has not started yet.
        const old = pending.from === undefined
          ? !pending.untilKey || !entry.packet.keyFrame
          : entry.packet.timestamp < pending.from;
        if (old && sink.connected) {
          sink.drop([entry], "reinit");
          return Promise.resolve();
        }
        if (!old) pending = undefined;
      }
      return admitLive(sink, entry, true);
    },
    // A fresh encoder starts with a key frame anyway: asking the old one for one would be wasted.
    linkLost: dropQueueOnLoss,
    linkStarted(sink) {
      if (sink.connections > 1 || sink.dropUntilKey) start(sink);
    },
  };
}
