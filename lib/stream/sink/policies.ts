/**
 * Picks a sink's disconnect policy from its options, checking them first.
 * @module
 */

import { EncoderError } from "../../errors.ts";
import type { PacketSinkOptions } from "../packet_sink.ts";
import { blockPolicy } from "./block.ts";
import { bufferPolicy } from "./buffer.ts";
import { dropPolicy } from "./drop.ts";
import type { SinkPolicy } from "./policy.ts";
import { reinitPolicy } from "./reinit.ts";

/** The policy `onDisconnect` names (default `block`). */
export function sinkPolicy(options: PacketSinkOptions): SinkPolicy {
  const name = options.onDisconnect ?? "block";
  switch (name) {
    case "block":
      return blockPolicy();
    case "buffer":
      return bufferPolicy();
    case "drop":
      return dropPolicy();
    case "reinit":
      if (typeof options.onReinit !== "function") {
        throw new EncoderError(
          "INVALID_CONFIG",
          'onDisconnect "reinit" needs onReinit: pass () => encode.reinit() from createEncodeStream',
        );
      }
      return reinitPolicy(options.onReinit);
    default:
      throw new EncoderError(
        "INVALID_CONFIG",
        `onDisconnect must be "block", "buffer", "drop" or "reinit", got ${JSON.stringify(name)}`,
      );
  }
}
