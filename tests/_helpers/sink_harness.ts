/**
 * What the sink tests share around their peers: a frame source a test can hold at chosen frames, the
 * events a sink emitted, and promises of its first connection, first disconnect and second connection.
 * @module
 */

import type { PacketSink, SinkEvents } from "../../lib/stream/packet_sink.ts";
import type { Frame } from "../../lib/types.ts";
import { until } from "./stream_servers.ts";

/**
 * `count` frames made by `frame(n)`, pulled one at a time: before frame `n` the source waits for
 * `gates[n]()` where there is one, and `ms` milliseconds from the second frame on.
 */
export function gatedFrames(
  count: number,
  frame: (n: number) => Frame,
  gates: Record<number, () => Promise<unknown>> = {},
  ms = 0,
): ReadableStream<Frame> {
  let n = 0;
  return new ReadableStream<Frame>({
    async pull(c) {
      await gates[n]?.();
      if (n >= count) return c.close();
      if (n > 0 && ms > 0) await new Promise((r) => setTimeout(r, ms));
      c.enqueue(frame(n++));
    },
  }, { highWaterMark: 0 });
}

/** Every event of `type` the sink emits from now on, in order. */
export function record<K extends keyof SinkEvents>(sink: PacketSink, type: K): SinkEvents[K][] {
  const events: SinkEvents[K][] = [];
  sink.on(type, (e) => events.push(e));
  return events;
}

/** Promises of sink events: the first connection, the first disconnect, the second connection. */
export function milestones(
  sink: { on<K extends keyof SinkEvents>(t: K, l: (e: SinkEvents[K]) => void): () => void },
): {
  connected: Promise<SinkEvents["connect"]>;
  disconnected: Promise<SinkEvents["disconnect"]>;
  reconnected: Promise<SinkEvents["connect"]>;
} {
  return {
    connected: until<SinkEvents["connect"]>((cb) => sink.on("connect", cb), (e) => e.connection === 1),
    disconnected: until<SinkEvents["disconnect"]>((cb) => sink.on("disconnect", cb), () => true),
    reconnected: until<SinkEvents["connect"]>((cb) => sink.on("connect", cb), (e) => e.connection === 2),
  };
}
