/**
 * Node only: how koffi's own asynchronous calls (`fn.async`, run on koffi's thread pool) compare with the
 * project's worker thread for keeping the event loop free, on the call that blocks longest: rav1e's
 * `rav1e_receive_packet`, which encodes on the calling thread. Both encode the same frames with the same
 * settings while a 1 ms timer measures the event loop's worst stall.
 * Usage: node .cache/node/bench/node_async_lag.js [frames] [width] [height]
 * @module
 */
import koffi from "koffi";
import { RaPacketLayout, RaStatus } from "../ffi/layouts/rav1e.ts";
import { locateRav1e } from "../ffi/load.ts";
import { Rav1eEncoder } from "../lib/encoder/rav1e.ts";
import { testSource } from "../lib/io/testsrc.ts";
import { LagMeter } from "./measure.ts";

const frames = Number(process.argv[2] ?? 30);
const width = Number(process.argv[3] ?? 640);
const height = Number(process.argv[4] ?? 360);
// koffi runs async calls on stacks of 128 KiB by default: rav1e's flush (the whole lookahead encoded in one
// receive_packet) overflowed it and crashed the process (SIGSEGV). Set before koffi makes its first call.
const asyncStack = Number(process.env.KOFFI_ASYNC_STACK ?? 8 << 20);
koffi.config({ ...koffi.config(), async_stack_size: asyncStack });
const settings: [string, string][] = [["width", `${width}`], ["height", `${height}`], ["speed", "10"]];

interface Run {
  name: string;
  seconds: number;
  lagMs: number;
  bytes: number;
}

async function throughWorker(): Promise<Run> {
  const src = testSource({ width, height, frames });
  const lag = new LagMeter();
  const started = performance.now();
  const enc = await Rav1eEncoder.create({ ...src.info, speed: 10 });
  const pump = (async () => {
    for await (const f of src.frames()) await enc.encode(f);
    await enc.flush();
  })();
  let bytes = 0;
  for await (const p of enc.packets()) bytes += p.data.byteLength;
  await pump;
  await enc.close();
  lag.stop();
  return { name: "worker thread", seconds: (performance.now() - started) / 1000, lagMs: lag.max, bytes };
}

async function throughKoffiAsync(): Promise<Run> {
  const where = await locateRav1e();
  const lib = koffi.load(where.path);
  const f = (name: string, result: string, params: string[]) => lib.func(name, result, params);
  const configDefault = f("rav1e_config_default", "uintptr_t", []);
  const configParse = f("rav1e_config_parse", "int", ["uintptr_t", "str", "str"]);
  const configUnref = f("rav1e_config_unref", "void", ["uintptr_t"]);
  const contextNew = f("rav1e_context_new", "uintptr_t", ["uintptr_t"]);
  const contextUnref = f("rav1e_context_unref", "void", ["uintptr_t"]);
  const frameNew = f("rav1e_frame_new", "uintptr_t", ["uintptr_t"]);
  const frameUnref = f("rav1e_frame_unref", "void", ["uintptr_t"]);
  const fillPlane = f("rav1e_frame_fill_plane", "void", [
    "uintptr_t",
    "int",
    "void *",
    "size_t",
    "int64_t",
    "int",
  ]);
  const sendFrame = f("rav1e_send_frame", "int", ["uintptr_t", "uintptr_t"]);
  const receivePacket = f("rav1e_receive_packet", "int", ["uintptr_t", "void *"]);
  const packetUnref = f("rav1e_packet_unref", "void", ["uintptr_t"]);
  const receive = (ctx: number | bigint, out: Uint8Array) =>
    new Promise<number>((resolve, reject) =>
      receivePacket.async(ctx, out, (err: unknown, status: number) => (err ? reject(err) : resolve(status)))
    );

  const src = testSource({ width, height, frames });
  const lag = new LagMeter();
  const started = performance.now();
  const config = configDefault();
  for (const [k, v] of settings) configParse(config, k, v);
  const ctx = contextNew(config);
  configUnref(config);
  const out = new Uint8Array(8);
  const outView = new DataView(out.buffer);
  let bytes = 0;
  const drain = async (until: number) => {
    while (true) {
      const status = await receive(ctx, out);
      if (status === until) return;
      if (status === RaStatus.encoded) continue;
      if (status !== RaStatus.success) throw new Error(`rav1e_receive_packet: status ${status}`);
      const pkt = outView.getBigUint64(0, true);
      bytes += Number(koffi.decode(pkt, RaPacketLayout.len, "size_t"));
      packetUnref(pkt);
    }
  };
  const lumaLength = width * height;
  const chromaWidth = width >> 1;
  const chromaLength = chromaWidth * (height >> 1);
  for await (const frame of src.frames()) {
    const fr = frameNew(ctx);
    const d = frame.data;
    fillPlane(fr, 0, d.subarray(0, lumaLength), lumaLength, width, 1);
    fillPlane(fr, 1, d.subarray(lumaLength, lumaLength + chromaLength), chromaLength, chromaWidth, 1);
    fillPlane(fr, 2, d.subarray(lumaLength + chromaLength), chromaLength, chromaWidth, 1);
    const st = sendFrame(ctx, fr);
    frameUnref(fr);
    if (st !== RaStatus.success) throw new Error(`rav1e_send_frame: status ${st}`);
    await drain(RaStatus.needMoreData);
  }
  sendFrame(ctx, 0);
  await drain(RaStatus.limitReached);
  contextUnref(ctx);
  lib.unload();
  lag.stop();
  return { name: "koffi fn.async", seconds: (performance.now() - started) / 1000, lagMs: lag.max, bytes };
}

const load = (await import("node:fs")).readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
console.log(
  `rav1e speed 10, ${width}x${height}, ${frames} frames, Node ${process.version}, koffi async stack ${asyncStack} B, load ${load}`,
);
console.log("| calls on | wall s | worst event-loop stall ms | bytes |");
console.log("| --- | --- | --- | --- |");
for (let round = 0; round < 2; round++) {
  for (const r of [await throughWorker(), await throughKoffiAsync()]) {
    console.log(`| ${r.name} | ${r.seconds.toFixed(2)} | ${r.lagMs.toFixed(1)} | ${r.bytes} |`);
  }
}
